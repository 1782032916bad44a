"""The stem mixer steering a render: reactivity (the picture ignores a muted stem, the sound
keeps it) and soundtrack (the film's audio lacks it, the picture still follows it), both
recorded in meta.json. Tiny album with bundled stems; numpy stand-in for the analysis.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio.album import load_album
from stratum_kernel.audio.files import load_audio
from stratum_kernel.core.timeline import STEM_NAMES, frame_count, frame_times
from stratum_kernel.render.jobs import RenderContext
from stratum_kernel.render.run import render_album
from tests.fixtures_audio import album_stems
from tests.test_render import NumpyAnalysis, make_config

MUTE_VOCALS = {"vocals": {"mute": True}}


class StemAnalysis(NumpyAnalysis):
    """The numpy stand-in plus per-stem envelope/onset from the bundled stem files."""

    def frame_features(self, track_id, *, fps, start=0.0, end=None, album_normalised=True):
        ff = super().frame_features(track_id, fps=fps, start=start, end=end)
        track = self.album.track(track_id)
        t = frame_times(ff.n_frames, fps, start)
        stems = {}
        for name in STEM_NAMES:
            y, sr = load_audio(track.stem_paths[name], mono=True)
            y = y[0]
            idx = np.clip((t * sr).astype(int), 0, len(y) - 1)
            win = int(sr / fps)
            env = np.array([np.sqrt(np.mean(y[i:i + win] ** 2) + 1e-12) for i in idx])
            env = (env / max(env.max(), 1e-9)).astype(np.float32)
            onset = np.clip(np.diff(env, prepend=env[:1]) * 4, 0, 1).astype(np.float32)
            stems[name] = {"envelope": env, "onset": onset}
        return dataclasses.replace(ff, stems=stems)


@pytest.fixture(scope="module")
def album_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("malbum")
    (root / "audio").mkdir()
    parts = album_stems(120.0, 1.5, 22050, 2)
    sf.write(root / "audio/track1.wav", sum(parts.values()).T, 22050, subtype="FLOAT")
    (root / "stems/track1").mkdir(parents=True)
    for stem, y in parts.items():
        sf.write(root / f"stems/track1/{stem}.wav", y.T, 22050, subtype="FLOAT")
    (root / "tracklist.json").write_text(json.dumps(
        [{"id": "track1", "src": "audio/track1.wav", "bpm": 120.0}]))
    return root


def render(album_dir, model_dir, out, run_id, mixer=None):
    over = {"audio": {"normalization": None}, "render__chunk_frames": 12}
    if mixer is not None:
        over["mixer"] = mixer
    cfg = make_config(album_dir, model_dir, out, run_id, **over)
    album = load_album(album_dir)
    ctx = RenderContext(cfg, album=album, analysis=StemAnalysis(album))
    return render_album(cfg, progress=False, context=ctx)


@pytest.fixture(scope="module")
def renders(album_dir, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("mrenders")
    return {
        "plain": render(album_dir, tiny_model_dir, out, "plain"),
        "reactivity": render(album_dir, tiny_model_dir, out, "reactivity",
                             {"applies_to": "reactivity", **MUTE_VOCALS}),
        "soundtrack": render(album_dir, tiny_model_dir, out, "soundtrack",
                             {"applies_to": "soundtrack", **MUTE_VOCALS}),
    }


def film_audio(res) -> np.ndarray:
    y, sr = load_audio(res.run_dir / "track1.mp4")
    assert sr == 48000
    return y


def test_reactivity_changes_the_picture_not_the_sound(renders):
    plain = renders["plain"].record.model_dump(mode="json")["tracks"][0]
    react = renders["reactivity"].record.model_dump(mode="json")["tracks"][0]
    assert plain["frames"] == react["frames"] == frame_count(1.5, 24.0)
    assert react["frames_sha256"] != plain["frames_sha256"]  # vocals drive pca:4 in pulse
    a, b = film_audio(renders["plain"]), film_audio(renders["reactivity"])
    np.testing.assert_array_equal(a, b)  # the very same soundtrack
    assert react["mixer"]["applies_to"] == "reactivity"
    assert react["mixer"]["reactive_weights"]["vocals"] == 0.0
    assert react["mixer"]["soundtrack_gains"] is None
    meta = json.loads((renders["reactivity"].run_dir / "meta.json").read_text())
    assert meta["mixer"]["state"]["vocals"]["mute"] is True
    assert renders["plain"].record.mixer is None


def test_soundtrack_mute_removes_the_vocals_only_from_the_sound(renders, album_dir):
    plain = renders["plain"].record.model_dump(mode="json")["tracks"][0]
    snd = renders["soundtrack"].record.model_dump(mode="json")["tracks"][0]
    assert snd["frames_sha256"] == plain["frames_sha256"]  # the picture is untouched
    assert snd["mixer"]["soundtrack_gains"]["vocals"] == 0.0
    assert len(snd["audio"]["mixed_sha256"]) == 64
    full, muted = film_audio(renders["plain"]), film_audio(renders["soundtrack"])
    n = min(full.shape[1], muted.shape[1])
    removed = full[:, :n] - muted[:, :n]
    vocals, _ = load_audio(album_dir / "stems/track1/vocals.wav", sr=48000)
    vocals = vocals[:, :n]
    energy = float(np.sum(removed ** 2))
    # what went missing is the vocal stem (up to AAC coding noise), and nothing else
    assert energy == pytest.approx(float(np.sum(vocals ** 2)), rel=0.2)
    corr = float(np.sum(removed * vocals) / np.sqrt(energy * np.sum(vocals ** 2)))
    assert corr > 0.9
    assert float(np.sum(muted[:, :n] ** 2)) < float(np.sum(full[:, :n] ** 2))


def test_mixer_changes_the_fingerprint_and_per_track_spec(album_dir, tiny_model_dir, tmp_path):
    from stratum_kernel.audio.album import load_album
    from stratum_kernel.render.fingerprint import run_fingerprint
    from stratum_kernel.render.jobs import RenderContext

    def fingerprint(cfg):
        album = load_album(album_dir)
        ctx = RenderContext(cfg, album=album, analysis=StemAnalysis(album))
        return run_fingerprint(ctx, {t: ctx.job(t) for t in ctx.track_ids()})

    a = make_config(album_dir, tiny_model_dir, tmp_path, "x")
    b = make_config(album_dir, tiny_model_dir, tmp_path, "x",
                    mixer={"applies_to": "both", **MUTE_VOCALS})
    c = make_config(album_dir, tiny_model_dir, tmp_path, "x",
                    tracks=[{"id": "track1", "mixer": {"applies_to": "soundtrack",
                                                       "drums": {"gain_db": -6.0}}}])
    fa, fb, fc = fingerprint(a), fingerprint(b), fingerprint(c)
    # muted vocals change the picture (they drive the motion) and the sound
    assert fa["picture"]["tracks.track1.features"] != fb["picture"]["tracks.track1.features"]
    assert fa["sound"]["tracks.track1.mixer"] != fb["sound"]["tracks.track1.mixer"]
    # a soundtrack-only mix changes the sound, never the picture
    t1 = [k for k in fa["picture"] if k.startswith("tracks.track1.")]
    assert [fa["picture"][k] for k in t1] == [fc["picture"][k] for k in t1]
    assert fa["sound"]["tracks.track1.mixer"] != fc["sound"]["tracks.track1.mixer"]
    assert a.mixer_for("track1") is None
    assert b.mixer_for("track1").affects_reactivity and b.mixer_for("track1").affects_soundtrack
    assert c.mixer_for("track1").state.drums.gain_db == -6.0
