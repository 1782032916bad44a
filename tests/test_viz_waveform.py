"""The pixel-exact stem waveform: counts, stacking, mirror, smoothing, gain, opacity, zoom."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from stratum_kernel.viz.params import StemWaveformParams
from stratum_kernel.viz.raster import parse_hex
from stratum_kernel.viz.waveform import (
    Q_ONE,
    StemEnvelope,
    album_reference_q,
    box_sums,
    quantize_levels,
    reference_units,
    render_stem_waveform,
    stem_columns,
    stem_pixel_counts,
    stem_waveform_image,
)

NAMES = ("drums", "bass", "other", "vocals")
JS = Path(__file__).resolve().parents[1] / "stratum_kernel" / "viz" / "static" / "stem_waveform.js"


def reference_counts(levels_q, half, radius, gain, ref):
    """The rule of waveform.py's docstring, column by column, in exact fractions."""
    q = np.asarray(levels_q, dtype=np.int64)
    n_stems, width = q.shape
    g = math.floor(gain * 100 + 0.5)
    out = np.zeros_like(q)
    for c in range(width):
        sums = [sum(int(q[s, min(width - 1, max(0, c + k))]) for k in range(-radius, radius + 1))
                for s in range(n_stems)]
        tot = sum(sums)
        if tot == 0:
            continue
        exact = Fraction(tot, 2 * radius + 1) * Fraction(g, 100) / ref * half
        total = min(half, math.floor(exact + Fraction(1, 2)))
        floors = [total * s // tot for s in sums]
        rems = [total * s % tot for s in sums]
        order = sorted(range(n_stems), key=lambda s: (-rems[s], s))
        for s in order[: total - sum(floors)]:
            floors[s] += 1
        out[:, c] = floors
    return out


def random_levels(rng, n_stems=4, width=37):
    lv = rng.random((n_stems, width)) ** 2
    lv[:, rng.random(width) < 0.15] = 0.0  # silent columns
    return quantize_levels(lv)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("radius", [0, 1, 5, 20])
@pytest.mark.parametrize("gain", [0.1, 1.0, 1.37, 3.0])
def test_counts_match_exact_rule(seed, radius, gain):
    rng = np.random.default_rng(seed)
    q = random_levels(rng)
    half = int(rng.integers(1, 120))
    ref = reference_units(q)
    got = stem_pixel_counts(q, half=half, smoothing=radius, gain=gain, reference_q=ref)
    np.testing.assert_array_equal(got, reference_counts(q, half, radius, gain, ref))


def test_counts_sum_exactly_and_are_proportional():
    q = quantize_levels(np.array([[0.5, 0.1, 0.0], [0.25, 0.1, 0.0], [0.25, 0.2, 0.0],
                                  [0.0, 0.6, 0.0]]))
    counts = stem_pixel_counts(q, half=100, reference_q=reference_units(q))
    # column 0: total 1.0 = reference -> 100 px split 50/25/25/0 exactly
    assert counts[:, 0].tolist() == [50, 25, 25, 0]
    # column 1: 1.0 total as well; 10/10/20/60
    assert counts[:, 1].tolist() == [10, 10, 20, 60]
    assert counts[:, 2].tolist() == [0, 0, 0, 0]
    # a third each of 10 px: 3.33 -> largest remainders go to the inner stems
    thirds = quantize_levels(np.full((3, 1), 0.3))
    got = stem_pixel_counts(thirds, half=10, reference_q=reference_units(thirds))
    assert got[:, 0].tolist() == [4, 3, 3]


def test_gain_scales_and_clips():
    q = quantize_levels(np.array([[0.2], [0.2], [0.0], [0.0]]))
    ref = int(Q_ONE)  # full height = a total of 1.0
    assert stem_pixel_counts(q, half=100, gain=1.0, reference_q=ref).sum() == 40
    assert stem_pixel_counts(q, half=100, gain=2.0, reference_q=ref).sum() == 80
    assert stem_pixel_counts(q, half=100, gain=5.0, reference_q=ref).sum() == 100  # clipped
    assert stem_pixel_counts(q, half=100, gain=0.5, reference_q=ref).sum() == 20


def test_box_sums_smoothing():
    q = np.zeros((1, 11), dtype=np.int64)
    q[0, 5] = 7
    out = box_sums(q, 2)
    assert out[0].tolist() == [0, 0, 0, 7, 7, 7, 7, 7, 0, 0, 0]
    const = np.full((2, 9), 5, dtype=np.int64)
    np.testing.assert_array_equal(box_sums(const, 4), const * 9)  # edges repeated


def colours_outward(column, centre_row, direction):
    """Row colours walking from the centre outward (direction -1 up, +1 down)."""
    rows = range(centre_row, -1, -1) if direction < 0 else range(centre_row, len(column))
    return [tuple(column[r]) for r in rows]


@pytest.mark.parametrize("height", [1, 2, 3, 7, 64, 65, 200])
@pytest.mark.parametrize("width", [1, 2, 13, 300])
def test_stacking_mirror_and_palette(height, width):
    rng = np.random.default_rng(height * 1000 + width)
    levels = rng.random((4, width))
    params = StemWaveformParams()
    img = render_stem_waveform(levels, params, height=height)
    assert img.shape == (height, width, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, img[::-1])  # mirror symmetry
    palette = [parse_hex(getattr(params, n)) for n in (*NAMES, "background")]
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    assert colours <= set(palette)
    half = (height + 1) // 2
    counts = stem_pixel_counts(quantize_levels(levels), half=half)
    for c in range(width):
        expected = []
        for s in range(4):
            expected += [palette[s]] * int(counts[s, c])
        expected += [palette[4]] * (half - len(expected))
        assert colours_outward(img[:, c], height // 2, +1) == expected
        assert colours_outward(img[:, c], (height - 1) // 2, -1) == expected
    # the loudest column fills the whole height at gain 1
    loudest = int(np.argmax(quantize_levels(levels).astype(np.int64).sum(axis=0)))
    assert tuple(img[0, loudest]) != palette[4] and tuple(img[-1, loudest]) != palette[4]


@pytest.mark.parametrize("height", [1, 5, 40])
def test_one_sided_grows_from_bottom(height):
    levels = np.array([[0.25], [0.25], [0.0], [0.5]])
    params = StemWaveformParams(mirror=False)
    img = render_stem_waveform(levels, params, height=height, reference_q=Q_ONE)
    counts = stem_pixel_counts(quantize_levels(levels), half=height, reference_q=Q_ONE)
    assert counts.sum() == height
    if height == 1:  # one pixel goes to the largest share
        assert tuple(img[0, 0]) == parse_hex(params.vocals)
        return
    assert tuple(img[-1, 0]) == parse_hex(params.drums)
    assert tuple(img[0, 0]) == parse_hex(params.vocals)
    walked = colours_outward(img[:, 0], height - 1, -1)
    assert walked.count(parse_hex(params.bass)) == counts[1, 0]


@pytest.mark.parametrize("opacity", [10, 37, 50, 99])
def test_opacity_blends_exactly(opacity):
    params = StemWaveformParams(opacity=opacity, bass="#ff0000", background="#000040")
    img = render_stem_waveform(np.array([[0.0], [1.0], [0.0], [0.0]]), params, height=4)
    r = (255 * opacity + 0 + 50) // 100
    b = (0 * opacity + 64 * (100 - opacity) + 50) // 100
    assert tuple(img[0, 0]) == (r, 0, b)


def test_rgba_alpha_and_playhead():
    params = StemWaveformParams(background_opacity=0)
    levels = np.array([[0.5] * 10, [0.0] * 10, [0.0] * 10, [0.0] * 10])
    img = render_stem_waveform(levels, params, height=10, reference_q=Q_ONE, playhead_x=3,
                               alpha=True)
    assert img.shape == (10, 10, 4)
    assert img[0, 0, 3] == 0 and img[5, 0, 3] == 255
    assert (img[:, 3, :3] == parse_hex(params.playhead)).all() and (img[:, 3, 3] == 255).all()


def test_dict_columns_missing_stem_and_errors():
    cols = {"drums": np.array([0.5, 0.5]), "vocals": np.array([0.5, 0.0])}
    img = render_stem_waveform(cols, height=8)
    assert img.shape == (8, 2, 3)
    with pytest.raises(ValueError, match="height"):
        render_stem_waveform(cols, height=0)
    with pytest.raises(ValueError, match="columns must be"):
        render_stem_waveform(np.zeros((3, 4)), height=8)
    with pytest.raises(ValueError, match="smoothing"):
        stem_pixel_counts(np.zeros((4, 4)), half=3, smoothing=21)
    silent = render_stem_waveform(np.zeros((4, 5)), height=6)
    assert {tuple(c) for c in silent.reshape(-1, 3)} == {parse_hex("#f3f0e8")}


def burst_stems(sr=1000, duration=10.0):
    """Drums silent except a 0.8 burst in [4, 5) s; vocals a 0.5 sine throughout."""
    n = int(sr * duration)
    t = np.arange(n) / sr
    drums = np.zeros((2, n), np.float32)
    drums[:, (t >= 4) & (t < 5)] = 0.8
    vocals = (0.5 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)[None, :]
    return {"drums": drums, "vocals": np.repeat(vocals, 2, axis=0)}


def test_stem_columns_peak_rms_and_time_range():
    stems = burst_stems()
    cols = stem_columns(stems, 1000, 10)
    np.testing.assert_allclose(cols["drums"], [0, 0, 0, 0, 0.8, 0, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(cols["vocals"], 0.5, atol=1e-3)
    rms = stem_columns(stems, 1000, 10, mode="rms")
    np.testing.assert_allclose(rms["vocals"], 0.5 / math.sqrt(2), rtol=1e-3)
    zoom = stem_columns(stems, 1000, 4, t0=3.0, t1=5.0)  # 0.5 s per column
    np.testing.assert_allclose(zoom["drums"], [0, 0, 0.8, 0.8], atol=1e-6)
    beyond = stem_columns(stems, 1000, 4, t0=8.0, t1=12.0)
    assert beyond["vocals"][-1] == 0 and beyond["vocals"][0] > 0.4
    many = stem_columns({"drums": stems["drums"][:, :20]}, 1000, 100)  # wider than samples
    assert many["drums"].shape == (100,)
    with pytest.raises(ValueError, match="mode"):
        stem_columns(stems, 1000, 4, mode="mean")
    with pytest.raises(ValueError, match="t1 > t0"):
        stem_columns(stems, 1000, 4, t0=5, t1=5)
    with pytest.raises(ValueError, match="width"):
        stem_columns(stems, 1000, 0)


def test_envelope_columns_agree_with_audio_columns():
    stems = burst_stems()
    env = StemEnvelope.from_stems(stems, 1000, block_rate=100)
    assert env.duration == pytest.approx(10.0)
    exact = stem_columns(stems, 1000, 20)
    via = env.columns(20)
    np.testing.assert_allclose(via[0], exact["drums"], atol=1e-6)
    np.testing.assert_allclose(via[3], exact["vocals"], atol=0.02)
    assert not via[1].any() and not via[2].any()  # missing stems are silent
    rms = env.columns(20, mode="rms")
    np.testing.assert_allclose(rms[3], 0.5 / math.sqrt(2), rtol=0.02)
    with pytest.raises(ValueError, match="no stems"):
        StemEnvelope.from_stems({"piano": stems["drums"]}, 1000)
    with pytest.raises(ValueError, match="mode"):
        env.columns(10, mode="x")


def test_view_time_range_playhead_and_album_scaling():
    stems = burst_stems()
    env = StemEnvelope.from_stems(stems, 1000, block_rate=100)
    params = StemWaveformParams()
    bg = parse_hex(params.background)
    drums = parse_hex(params.drums)
    img = stem_waveform_image(env, params, width=100, height=50, t0=2.0, t1=7.0, playhead=6.0)
    # the drum burst [4, 5) s sits in columns [40, 60) of a 2..7 s view
    has_drums = [(img[:, c] == drums).all(axis=1).any() for c in range(100)]
    assert [c for c in range(100) if has_drums[c]] == list(range(40, 60))
    assert (img[:, 80] == parse_hex(params.playhead)).all()
    assert (stem_waveform_image(env, params, width=10, height=8, playhead=99.0)
            != parse_hex(params.playhead)).any(axis=-1).all()
    # album-relative: a quieter copy renders smaller against the album's loudest column
    quiet = StemEnvelope.from_stems({k: v * 0.25 for k, v in stems.items()}, 1000,
                                    block_rate=100)
    album = album_reference_q([env, quiet], 50)
    own = stem_waveform_image(quiet, params, width=50, height=40)
    rel = stem_waveform_image(quiet, params.model_copy(update={"album_relative": True}),
                              width=50, height=40, album_reference=album)
    ink = lambda im: int((im != bg).any(axis=-1).sum())  # noqa: E731
    assert ink(rel) < ink(own) * 0.4
    assert album == env.reference_q(50)


@pytest.fixture(scope="module")
def node_module(tmp_path_factory):
    if shutil.which("node") is None:
        pytest.skip("node is not installed; the browser test covers the JS port")
    d = tmp_path_factory.mktemp("js")
    shutil.copy(JS, d / "stem_waveform.mjs")
    return d / "stem_waveform.mjs"


CASES = [
    dict(width=37, height=31, smoothing=0, gain=1.0, opacity=100, mirror=True),
    dict(width=64, height=64, smoothing=3, gain=1.37, opacity=55, mirror=True),
    dict(width=1, height=1, smoothing=20, gain=0.1, opacity=10, mirror=False),
    dict(width=120, height=9, smoothing=20, gain=7.77, opacity=100, mirror=False),
    dict(width=200, height=200, smoothing=7, gain=2.5, opacity=73, mirror=True),
]


def test_js_port_gives_identical_pixels(node_module, tmp_path):
    """Node runs the browser module on the same inputs: every pixel must match."""
    rng = np.random.default_rng(7)
    jobs = []
    expected = []
    for i, case in enumerate(CASES):
        q = random_levels(rng, width=case["width"])
        params = StemWaveformParams(smoothing=case["smoothing"], gain=case["gain"],
                                    opacity=case["opacity"], mirror=case["mirror"],
                                    bass="#8a11f0", background="#101820")
        ref = reference_units(q) if i % 2 else reference_units(q) * 3 // 4
        x = i * 7 % case["width"]
        expected.append(render_stem_waveform(q / Q_ONE, params, height=case["height"],
                                             reference_q=ref, playhead_x=x, alpha=True))
        jobs.append(dict(levels=q.ravel().tolist(), width=case["width"],
                         height=case["height"], params=params.model_dump(mode="json"),
                         ref=ref, x=x))
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    script = tmp_path / "run.mjs"
    script.write_text(
        f"import {{ renderStemWaveform }} from {json.dumps(str(node_module))};\n"
        "import fs from 'fs';\n"
        f"const jobs = JSON.parse(fs.readFileSync({json.dumps(str(tmp_path / 'jobs.json'))}));\n"
        "const names = ['drums', 'bass', 'other', 'vocals'];\n"
        "const out = jobs.map(j => Array.from(renderStemWaveform(j.levels, 4, j.width, "
        "j.height, j.params, j.ref, j.x, names)));\n"
        "process.stdout.write(JSON.stringify(out));\n"
    )
    res = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    for case, exp, arr in zip(CASES, expected, got, strict=True):
        js = np.asarray(arr, dtype=np.uint8).reshape(case["height"], case["width"], 4)
        np.testing.assert_array_equal(js, exp, err_msg=str(case))
