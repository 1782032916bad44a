"""verify_run / ``stratum verify``: an intact run passes; any tampering is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stratum_kernel.cli import main
from stratum_kernel.core.errors import RenderError
from stratum_kernel.render.verify import verify_run
from tests.test_render import render, write_album


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model_dir) -> Path:
    album = write_album(tmp_path_factory.mktemp("valbum"))
    out = tmp_path_factory.mktemp("vrenders")
    res = render(album, tiny_model_dir, out, "v", render__duration=1.0,
                 render__chunk_frames=10)
    return res.run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(finished_run, dst)
    return dst


def test_intact_run_passes(finished_run, capsys):
    report = verify_run(finished_run)
    assert report.ok, report.summary()
    text = " ".join(report.checked)
    assert "track1.mp4: 24 frames" in text and "album.mp4: 48 frames" in text
    assert "decoded frames match 3 chunk digest(s)" in text
    assert main(["verify", str(finished_run)]) == 0
    assert "OK" in capsys.readouterr().out


def test_tampered_film_is_named(run_copy, capsys):
    film = run_copy / "track2.mp4"
    data = bytearray(film.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)  # damage the picture, keep the container readable
    film.write_bytes(bytes(data))
    report = verify_run(run_copy)
    assert not report.ok
    assert any("track2.mp4: sha256" in p for p in report.problems)
    assert main(["verify", str(run_copy)]) == 1
    assert "MISMATCH" in capsys.readouterr().err


def test_changed_digest_names_the_chunk(run_copy):
    meta_path = run_copy / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["tracks"][0]["chunks"][1]["decoded_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    report = verify_run(run_copy)
    assert report.problems == [
        "track1.mp4: decoded frames differ from meta.json in chunk(s) 1"]
    assert verify_run(run_copy, decode=False).ok  # the quick check does not decode


@pytest.mark.parametrize("victim", ["track1.mp4", "album.mp4", "previews/track1.gif"])
def test_missing_files_are_named(run_copy, victim):
    (run_copy / victim).unlink()
    report = verify_run(run_copy)
    assert any(p.startswith(f"{victim}: missing") for p in report.problems), report.problems


def test_wrong_frame_count_in_meta(run_copy):
    meta_path = run_copy / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["album"]["frames"] = 47
    meta["tracks"][1]["frames"] = 23
    meta_path.write_text(json.dumps(meta))
    problems = verify_run(run_copy).problems
    assert any("24 video frames, expected 23" in p for p in problems)
    assert any("album.mp4" in p and "48 video frames, expected 47" in p for p in problems)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RenderError, match=r"meta\.json: not found"):
        verify_run(tmp_path)
    (tmp_path / "meta.json").write_text("{")
    with pytest.raises(RenderError, match="invalid JSON"):
        verify_run(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(RenderError, match="format"):
        verify_run(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "stratum-run/2", "tracks": []}))
    assert verify_run(tmp_path).problems == ["meta.json: lists no tracks"]
    assert main(["verify", str(tmp_path / "nowhere")]) == 1


def test_an_older_run_format_says_render_again(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"format": "stratum-run/1", "tracks": []}))
    with pytest.raises(RenderError, match=r"older stratum.*render the run again"):
        verify_run(tmp_path)


def test_decoded_digests_are_over_the_planes_and_previews_match_the_film(finished_run):
    import hashlib

    import numpy as np
    from PIL import Image

    from stratum_kernel.film.streams import decoded_digests, read_frames, yuv420p_to_rgb
    from stratum_kernel.render.record import RunRecord

    record = RunRecord.load(finished_run / "meta.json")
    t = record.tracks[0]
    film = finished_run / t.film.file
    w, h = t.film.width, t.film.height
    planes = np.concatenate(list(read_frames(film, w, h, pix_fmt="yuv420p")))
    assert planes.shape == (t.frames, w * h * 3 // 2)
    digests = decoded_digests(film, w, h)
    assert digests == [hashlib.sha256(p.tobytes()).digest() for p in planes]
    ours = np.stack([yuv420p_to_rgb(p, w, h) for p in planes])
    # each still is the decoded film's frame at its time
    stills = [p for p in t.previews if p.endswith(".png")]
    assert stills
    for name in stills:
        seconds = float(name.rsplit("_", 1)[1][:-5])
        i = round((seconds - t.start) * t.fps)
        still = np.asarray(Image.open(finished_run / "previews" / name).convert("RGB"))
        assert np.array_equal(still, ours[i]), name


def test_yuv_to_rgb_is_bt709_limited_range(tmp_path):
    """Flat colours encoded losslessly come back within 2 levels (BT.601 would miss by 10+)."""
    import numpy as np

    from stratum_kernel.film.encode import EncodeParams, VideoEncoder
    from stratum_kernel.film.streams import read_frames, yuv420p_to_rgb

    w, h = 64, 48
    colours = [(200, 30, 40), (20, 180, 60), (30, 40, 220), (128, 128, 128)]
    frame = np.zeros((1, h, w, 3), np.uint8)
    for k, c in enumerate(colours):
        frame[:, :, 16 * k : 16 * (k + 1)] = c
    film = tmp_path / "flat.mp4"
    with VideoEncoder(film, width=w, height=h, fps=24, params=EncodeParams(crf=0)) as enc:
        enc.write(frame)
    planes = next(read_frames(film, w, h, pix_fmt="yuv420p"))[0]
    rgb = yuv420p_to_rgb(planes, w, h)
    for k, c in enumerate(colours):
        got = rgb[h // 2, 16 * k + 8].astype(int)
        assert np.abs(got - np.array(c)).max() <= 2, (c, got)
