"""Stem separation: the DSP separator on signals with known parts, the backend choice,
bundled and cached stems."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio import dsp_separator as dsp
from stratum_kernel.audio import stems as st
from stratum_kernel.audio.album import load_album
from stratum_kernel.audio.stems import (
    DSPSeparatorParams,
    StemSet,
    load_stems,
    sdr,
    separate,
    separate_dsp,
    separation_key,
)
from stratum_kernel.core.errors import AudioError, ModelError, StratumError
from tests.fixtures_audio import album_stems, sine

STEMS = ("drums", "bass", "other", "vocals")


@pytest.fixture(autouse=True)
def _no_demucs_weights(monkeypatch):
    monkeypatch.delenv(st.WEIGHTS_ENV, raising=False)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sr", [22050, 44100])
def test_dsp_stems_sum_to_the_mix(channels, sr, rng):
    parts = album_stems(120.0, 1.5, sr, channels=channels)
    mix = sum(parts.values()) + 0.01 * rng.standard_normal((channels, round(1.5 * sr)))
    mix = mix.astype(np.float32)
    out = separate_dsp(mix, sr)
    assert set(out) == set(STEMS)
    for y in out.values():
        assert y.shape == mix.shape and y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_allclose(sum(out.values()), mix, atol=2e-6)


def test_stft_roundtrip_is_exact():
    x = np.random.default_rng(0).standard_normal((2, 5000)).astype(np.float32)
    spec = dsp._stft(x, 512, 128)
    assert spec.shape == (2, 1 + 5000 // 128, 257)
    np.testing.assert_allclose(dsp._istft(spec, 512, 128, 5000), x, atol=1e-5)


def _kick_train(sr: int, duration: float, period: float = 0.5) -> np.ndarray:
    """A kick every ``period`` s: a 12 ms noise click on a 30 ms decaying 60 Hz body."""
    n = round(duration * sr)
    y = np.zeros(n)
    t = np.arange(round(0.2 * sr)) / sr
    rng = np.random.default_rng(7)
    hit = 0.8 * np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.03)
    hit[: round(0.012 * sr)] += 0.5 * rng.standard_normal(round(0.012 * sr))
    for k in range(int(duration / period)):
        s = round(k * period * sr)
        e = min(n, s + len(hit))
        y[s:e] += hit[: e - s]
    return y[None, :].astype(np.float32)


def test_dsp_puts_a_kick_in_drums_and_a_low_sine_in_bass():
    sr, duration = 22050, 4.0
    kick = np.repeat(_kick_train(sr, duration), 2, axis=0)
    bass = sine(70.0, duration, sr, amplitude=0.3, channels=2)
    out = separate_dsp(kick + bass, sr)
    # the bass stem is mostly the sine, the drum stem mostly the kicks
    assert sdr(bass, out["bass"]) > 6.0
    assert sdr(kick, out["drums"]) > 2.0
    assert sdr(kick, out["drums"]) > sdr(kick, out["bass"]) + 3.0
    energy = {s: float(np.sum(out[s] ** 2)) for s in STEMS}
    assert energy["bass"] > 5 * (energy["other"] + energy["vocals"])


def test_dsp_finds_a_centred_melody_over_a_repeating_panned_accompaniment():
    sr, duration = 22050, 8.0
    n = round(duration * sr)
    t = np.arange(n) / sr
    # accompaniment: the same one-second chord pattern eight times, panned hard left/right
    bar = np.where((t % 1.0) < 0.5, 1.0, 0.0)
    left = 0.15 * bar * np.sin(2 * np.pi * 523.25 * t)
    right = 0.15 * (1 - bar) * np.sin(2 * np.pi * 659.26 * t)
    accomp = np.stack([left, right])
    # melody: a centred voice gliding over two octaves, never repeating
    freq = 300.0 * 2 ** (2 * t / duration) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    voice = 0.15 * np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.sin(np.pi * t / duration)
    vocals = np.stack([voice, voice])
    out = separate_dsp((accomp + vocals).astype(np.float32), sr)
    assert sdr(vocals, out["vocals"]) > 3.0
    assert sdr(accomp, out["other"]) > 3.0


def test_sdr_known_values():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((2, 1000))
    e = rng.standard_normal((2, 1000))
    e *= np.sqrt(0.01 * np.sum(s**2) / np.sum(e**2))
    assert sdr(s, s + e) == pytest.approx(20.0, abs=1e-9)
    assert sdr(s, s) > 150
    assert np.isnan(sdr(np.zeros(10), np.ones(10)))


def test_backend_choice_and_errors(monkeypatch, tmp_path):
    y = sine(200.0, 0.5, 22050)
    with pytest.raises(StratumError, match="unknown separation backend"):
        separate(y, 22050, backend="magic")
    with pytest.raises(ModelError, match="STRATUM_DEMUCS_WEIGHTS"):
        separate(y, 22050, backend="demucs")
    with pytest.raises(ModelError, match=r"missing\.th"):
        separate(y, 22050, backend="demucs", weights=tmp_path / "missing.th")
    auto = separate(y, 22050, backend="auto")
    np.testing.assert_array_equal(auto["bass"], separate_dsp(y, 22050)["bass"])
    assert separation_key("auto").startswith("dsp-v2-")
    assert separation_key("dsp") == separation_key("auto")
    with pytest.raises(AudioError):
        separate(np.zeros((2, 0), np.float32), 22050, backend="dsp")
    bad = y.copy()
    bad[0, 3] = np.inf
    with pytest.raises(AudioError, match="NaN or infinite"):
        separate(bad, 22050, backend="dsp")
    assert DSPSeparatorParams(bass_hz=(100.0, 200.0)).bass_hz == (100.0, 200.0)


def test_bundled_stems_are_loaded_as_they_are(make_album):
    album = load_album(make_album(1, duration=1.0, stems=True))
    track = album.tracks[0]
    stems = load_stems(track)
    assert stems.source == "bundled" and stems.sr == track.sample_rate
    for name in STEMS:
        y, _ = sf.read(track.stem_paths[name], dtype="float32", always_2d=True)
        np.testing.assert_array_equal(stems.stems[name], y.T)
    assert stems.key.count("=") == 4 and stems.duration == pytest.approx(1.0)


@pytest.fixture
def plain_track(make_album):
    return load_album(make_album(1, duration=1.5, stems=False, name="plain")).tracks[0]


@pytest.fixture
def separations(monkeypatch):
    """Counts separations: in memory (``separate``) or from the file in blocks (DSP)."""
    calls = []
    real, real_blocks = st.separate, st.separate_dsp_blocks

    def counting(y, sr, **kwargs):
        calls.append(kwargs.get("backend"))
        return real(y, sr, **kwargs)

    def counting_blocks(open_blocks, sr, **kwargs):
        calls.append("dsp")
        return real_blocks(open_blocks, sr, **kwargs)

    monkeypatch.setattr(st, "separate", counting)
    monkeypatch.setattr(st, "separate_dsp_blocks", counting_blocks)
    return calls


def test_separated_stems_are_cached(tmp_path, plain_track, separations):
    first = load_stems(plain_track, cache_root=tmp_path)
    assert first.source == "dsp" and separations == ["dsp"]
    (folder,) = tmp_path.glob(f"{plain_track.id}-*")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{s}.flac" for s in STEMS] + ["meta.json"]
    )
    second = load_stems(plain_track, cache_root=tmp_path)
    assert separations == ["dsp"] and second.source == "dsp" and second.key == first.key
    mix, _ = sf.read(plain_track.audio_path, dtype="float32", always_2d=True)
    for name in STEMS:
        np.testing.assert_allclose(second.stems[name], first.stems[name], atol=2e-7)
    np.testing.assert_allclose(sum(second.stems.values()), mix.T, atol=1e-6)


@pytest.mark.parametrize("damage", ["truncate", "checksum", "missing", "meta"])
def test_a_damaged_stem_cache_is_separated_again(tmp_path, plain_track, separations, damage):
    load_stems(plain_track, cache_root=tmp_path)
    (folder,) = tmp_path.glob(f"{plain_track.id}-*")
    flac = folder / "vocals.flac"
    if damage == "truncate":
        flac.write_bytes(flac.read_bytes()[:200])
    elif damage == "checksum":
        meta = json.loads((folder / "meta.json").read_text())
        meta["files"]["vocals"] = "0" * 64
        (folder / "meta.json").write_text(json.dumps(meta))
    elif damage == "missing":
        flac.unlink()
    else:
        (folder / "meta.json").write_text("{")
    again = load_stems(plain_track, cache_root=tmp_path)
    assert separations == ["dsp", "dsp"] and again.source == "dsp"
    assert st._read_cached(folder) is not None  # rewritten whole


def test_cache_keeps_levels_above_full_scale(tmp_path):
    loud = {s: np.full((2, 100), 0.5 * (i + 1), np.float32) for i, s in enumerate(STEMS)}
    st._write_cached(tmp_path / "x", StemSet(loud, 8000, "dsp", key="k"))
    back = st._read_cached(tmp_path / "x")
    assert back is not None and back.key == "k" and back.sr == 8000
    for s in STEMS:
        np.testing.assert_allclose(back.stems[s], loud[s], rtol=1e-5)
