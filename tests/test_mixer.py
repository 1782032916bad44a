"""The stem mixer's arithmetic: dB, solo/mute rule, mixing, render specs and exports."""

from __future__ import annotations

import io
import itertools
import json
import math
import zipfile

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.audio.mixer import (
    GAIN_DB_MAX,
    GAIN_DB_MIN,
    SILENCE_DBFS,
    MixerRenderSpec,
    MixerState,
    StemChannel,
    apply_gains,
    apply_reactive_weights,
    db_to_linear,
    effective_gains,
    encode_audio,
    export_mix_wav,
    export_stems_zip,
    linear_to_db,
    load_mixer_state,
    mix,
    reactive_mix,
    reactive_stem_weights,
    sounding,
    soundtrack_mix,
    stem_levels,
    stems_zip_bytes,
)
from stratum_kernel.core.errors import AudioError, ConfigError
from stratum_kernel.core.timeline import STEM_NAMES, FrameFeatures
from tests.fixtures_audio import album_stems, sine

SR = 8000


@pytest.fixture
def stems() -> dict[str, np.ndarray]:
    """Four stereo stems (0.5 s at 8 kHz) whose sum stays inside [-1, 1]."""
    return album_stems(120.0, 0.5, SR, channels=2)


def state_of(**strips) -> MixerState:
    return MixerState.model_validate(strips)


# ------------------------------------------------------------------ decibels


@pytest.mark.parametrize(
    ("db", "linear"),
    [(0.0, 1.0), (20.0, 10.0), (-20.0, 0.1), (-60.0, 0.001), (12.0, 3.981071705534973),
     (-6.020599913279624, 0.5)],
)
def test_db_to_linear_and_back(db, linear):
    assert db_to_linear(db) == pytest.approx(linear, rel=1e-12)
    assert linear_to_db(linear) == pytest.approx(db, abs=1e-9)


@pytest.mark.parametrize("gain", [0.0, -1.0])
def test_linear_to_db_of_silence_is_minus_infinity(gain):
    assert linear_to_db(gain) == -math.inf


# ------------------------------------------------------------------ state


def test_default_state_is_unity_and_covers_every_stem():
    state = MixerState()
    assert state.is_unity
    assert list(state.channels()) == list(STEM_NAMES)
    assert effective_gains(state) == {s: 1.0 for s in STEM_NAMES}


def test_number_is_shorthand_for_gain():
    state = state_of(vocals=-6, bass={"gain_db": 3, "mute": True})
    assert state.vocals == StemChannel(gain_db=-6.0)
    assert state.bass.mute and state.bass.gain_db == 3.0
    assert not state.is_unity


@pytest.mark.parametrize(
    ("doc", "field"),
    [({"vocal": {"mute": True}}, "vocal"),
     ({"drums": {"gain_db": GAIN_DB_MAX + 0.5}}, "drums.gain_db"),
     ({"bass": {"gain_db": GAIN_DB_MIN - 1}}, "bass.gain_db"),
     ({"master_db": 40}, "master_db"),
     ({"other": {"gain_db": float("nan")}}, "other.gain_db"),
     ({"drums": {"level": 1}}, "drums.level")],
)
def test_bad_state_names_the_field(doc, field):
    with pytest.raises(ConfigError) as info:
        MixerState.parse(doc, "mixer.json")
    assert info.value.field == field
    assert "mixer.json" in str(info.value)


def test_with_stem_changes_one_strip_and_validates():
    state = MixerState().with_stem("bass", gain_db=-3.0, solo=True)
    assert state.bass == StemChannel(gain_db=-3.0, solo=True)
    assert state.drums == StemChannel()
    with pytest.raises(ConfigError, match="unknown stem 'kazoo'"):
        state.with_stem("kazoo", mute=True)
    with pytest.raises(ConfigError, match=r"bass\.gain_db"):
        MixerState.parse(state.with_stem("bass").model_dump() | {"bass": {"gain_db": 99}})


# Explicit cases of the rule: (solo set, mute set) -> stems heard.
@pytest.mark.parametrize(
    ("solo", "mute", "heard"),
    [
        ((), (), STEM_NAMES),
        ((), ("vocals",), ("drums", "bass", "other")),
        (("bass",), (), ("bass",)),
        (("bass",), ("drums", "vocals"), ("bass",)),  # solo wins over the others' mute
        (("bass", "vocals"), (), ("bass", "vocals")),
        (("bass",), ("bass",), ()),  # a muted soloed stem is silent
        (("bass", "drums"), ("bass",), ("drums",)),
        ((), STEM_NAMES, ()),
        (STEM_NAMES, (), STEM_NAMES),
    ],
)
def test_solo_and_mute_rule(solo, mute, heard):
    state = state_of(**{s: {"solo": s in solo, "mute": s in mute} for s in STEM_NAMES})
    assert sounding(state) == {s: s in heard for s in STEM_NAMES}
    gains = effective_gains(state)
    assert {s for s, g in gains.items() if g > 0} == set(heard)


@pytest.mark.parametrize("solo_bits", range(16))
def test_rule_holds_for_every_combination(solo_bits):
    gains_db = dict(zip(STEM_NAMES, (-3.0, 0.0, 6.0, -60.0), strict=True))
    solo = {s: bool(solo_bits >> i & 1) for i, s in enumerate(STEM_NAMES)}
    for mute_bits in itertools.product((False, True), repeat=4):
        mute = dict(zip(STEM_NAMES, mute_bits, strict=True))
        state = state_of(**{s: {"gain_db": gains_db[s], "solo": solo[s], "mute": mute[s]}
                            for s in STEM_NAMES})
        gains = effective_gains(state)
        any_solo = any(solo.values())
        for s in STEM_NAMES:
            if mute[s] or (any_solo and not solo[s]):
                assert gains[s] == 0.0, (s, solo, mute)
            else:
                assert gains[s] == pytest.approx(10 ** (gains_db[s] / 20)), (s, solo, mute)


# ------------------------------------------------------------------ mixing


def test_mix_at_unity_gives_back_the_album_mix(make_album):
    from stratum_kernel.audio.files import load_audio

    root = make_album(1, duration=1.0, sr=SR, stems=True)
    mix_file, _ = load_audio(root / "audio" / "track1.wav")
    parts = {s: load_audio(root / "stems" / "track1" / f"{s}.wav")[0] for s in STEM_NAMES}
    out = mix(parts)
    assert out.dtype == np.float32 and out.shape == mix_file.shape
    np.testing.assert_allclose(out, mix_file, atol=1e-6)
    np.testing.assert_allclose(mix(parts, MixerState()), mix_file, atol=1e-6)


def test_mix_solo_mute_gain_and_master(stems):
    full = mix(stems)
    np.testing.assert_allclose(mix(stems, state_of(bass={"solo": True})), stems["bass"],
                               atol=1e-7)
    np.testing.assert_allclose(mix(stems, state_of(vocals={"mute": True})),
                               full - stems["vocals"], atol=1e-6)
    half = state_of(drums={"gain_db": linear_to_db(0.5)})
    np.testing.assert_allclose(mix(stems, half), full - 0.5 * stems["drums"], atol=1e-6)
    master = state_of(master_db=-6.0)
    np.testing.assert_allclose(mix(stems, master), full * db_to_linear(-6.0), atol=1e-6)
    silent = state_of(**{s: {"mute": True} for s in STEM_NAMES})
    assert not np.any(mix(stems, silent))


def test_apply_gains_sums_to_the_mix(stems):
    state = state_of(drums=-3.0, bass={"gain_db": 4.5}, other={"mute": True}, master_db=-1.5)
    scaled = apply_gains(stems, state)
    assert set(scaled) == set(STEM_NAMES)
    np.testing.assert_allclose(sum(scaled.values()), mix(stems, state), atol=1e-6)
    np.testing.assert_allclose(scaled["drums"], stems["drums"] * db_to_linear(-4.5), atol=1e-7)
    assert not np.any(scaled["other"])


def test_mono_stems_spread_and_short_stems_padded():
    a = sine(220, 0.25, SR, channels=2, amplitude=0.3)
    b = sine(330, 0.2, SR, channels=1, amplitude=0.2)
    out = mix({"drums": a, "bass": b})
    assert out.shape == (2, a.shape[1])
    np.testing.assert_allclose(out[:, : b.shape[1]], a[:, : b.shape[1]] + b, atol=1e-7)
    np.testing.assert_allclose(out[:, b.shape[1]:], a[:, b.shape[1]:], atol=0)


def test_mix_refuses_bad_stems():
    with pytest.raises(AudioError, match="channel counts"):
        mix({"drums": np.zeros((2, 10), np.float32), "bass": np.zeros((3, 10), np.float32)})
    with pytest.raises(ValueError, match="unknown stem"):
        mix({"kazoo": np.zeros((1, 10), np.float32)})
    with pytest.raises(ValueError, match=r"\[channels, samples\]"):
        mix({"drums": np.zeros(10, np.float32)})
    with pytest.raises(ValueError, match="no stems"):
        mix({})


def test_stem_levels_in_dbfs():
    levels = stem_levels({"bass": sine(100, 1.0, SR, amplitude=0.5),
                          "drums": np.zeros((2, 100), np.float32)})
    assert levels["bass"].peak_dbfs == pytest.approx(-6.02, abs=0.01)
    assert levels["bass"].rms_dbfs == pytest.approx(-9.03, abs=0.01)
    assert levels["drums"].peak_dbfs == SILENCE_DBFS == levels["drums"].rms_dbfs


# ------------------------------------------------------------------ renders


def _features(n: int = 6) -> FrameFeatures:
    ramp = np.linspace(0.2, 1.0, n, dtype=np.float32)
    return FrameFeatures(
        track_id="t", fps=10.0, start=0.0, n_frames=n, values={"rms": ramp},
        stems={s: {"envelope": ramp.copy(), "onset": ramp[::-1].copy()} for s in STEM_NAMES},
        beat_frames=np.array([0, 3]), tempo=120.0,
    )


@pytest.mark.parametrize("target", ["reactivity", "soundtrack", "both"])
def test_render_spec_targets(stems, target):
    state = state_of(vocals={"mute": True}, drums=6.0)
    spec = MixerRenderSpec(state=state, applies_to=target)
    weights = reactive_stem_weights(spec)
    picture = target in ("reactivity", "both")
    sound = target in ("soundtrack", "both")
    if picture:
        assert weights["vocals"] == 0.0
        assert weights["drums"] == pytest.approx(db_to_linear(6.0))
        assert weights["bass"] == 1.0
        np.testing.assert_allclose(reactive_mix(stems, spec), mix(stems, state))
    else:
        assert weights == {s: 1.0 for s in STEM_NAMES}
        assert reactive_mix(stems, spec) is None
    track_audio = soundtrack_mix(stems, spec)
    if sound:
        np.testing.assert_allclose(track_audio, mix(stems) - stems["vocals"]
                                   + (db_to_linear(6.0) - 1) * stems["drums"], atol=1e-6)
    else:
        assert track_audio is None
    ff = _features()
    out = apply_reactive_weights(ff, spec)
    if picture:
        assert not np.any(out.stems["vocals"]["envelope"])
        np.testing.assert_allclose(out.stems["bass"]["onset"], ff.stems["bass"]["onset"])
        drums = np.minimum(ff.stems["drums"]["envelope"] * db_to_linear(6.0), 1.0)
        np.testing.assert_allclose(out.stems["drums"]["envelope"], drums, rtol=1e-6)
        assert out.values is ff.values
    else:
        assert out is ff
    meta = json.loads(json.dumps(spec.to_meta()))
    assert meta["applies_to"] == target
    assert MixerState.parse(meta["state"]) == state
    assert meta["reactive_weights"] == pytest.approx(weights)
    assert (meta["soundtrack_gains"] is None) == (not sound)


def test_render_spec_at_unity_changes_nothing(stems):
    spec = MixerRenderSpec(applies_to="both")
    assert not spec.affects_reactivity and not spec.affects_soundtrack
    assert soundtrack_mix(stems, spec) is None
    assert apply_reactive_weights(_features(), spec).stems["vocals"]["envelope"][0] > 0


def test_render_spec_flat_yaml_form():
    spec = MixerRenderSpec.model_validate(
        {"applies_to": "soundtrack", "vocals": {"mute": True}, "master_db": -2}
    )
    assert spec.state.vocals.mute and spec.state.master_db == -2.0
    nested = MixerRenderSpec.model_validate(
        {"applies_to": "soundtrack", "state": {"vocals": {"mute": True}, "master_db": -2}}
    )
    assert nested == spec
    with pytest.raises(ValueError, match="applies_to"):
        MixerRenderSpec.model_validate({"applies_to": "picture"})


# ------------------------------------------------------------------ state files


@pytest.mark.parametrize("wrap", ["bare", "state", "meta"])
def test_load_mixer_state_forms(tmp_path, wrap):
    state = state_of(bass={"solo": True}, drums=-12.5)
    doc = state.model_dump()
    if wrap == "state":
        doc = {"format": "stratum-mixer/1", "state": doc}
    elif wrap == "meta":
        doc = {"run": "x", "mixer": MixerRenderSpec(state=state).to_meta()}
    path = tmp_path / "mixer.json"
    path.write_text(json.dumps(doc))
    assert load_mixer_state(path) == state


def test_load_mixer_state_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_mixer_state(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match=r"bad.json: invalid JSON at line 1, column 2"):
        load_mixer_state(bad)
    bad.write_text(json.dumps({"drums": {"gain_db": 50}}))
    with pytest.raises(ConfigError, match=r"drums\.gain_db") as info:
        load_mixer_state(bad)
    assert str(bad) in str(info.value)


# ------------------------------------------------------------------ exports


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize(("subtype", "atol"), [("PCM_24", 2.0**-23), ("PCM_16", 2.0**-15),
                                              ("FLOAT", 0.0)])
def test_export_mix_wav_reads_back(tmp_path, stems, subtype, atol):
    state = state_of(vocals={"mute": True}, bass=-6.0)
    report = export_mix_wav(stems, SR, state, tmp_path / "mix.wav", subtype=subtype)
    y, sr = sf.read(tmp_path / "mix.wav", dtype="float64", always_2d=True)
    expected = mix(stems, state)
    assert sr == SR and y.shape == expected.T.shape
    assert sf.info(tmp_path / "mix.wav").subtype == subtype
    np.testing.assert_allclose(y.T, expected, atol=atol + 1e-7)
    assert report.peak == pytest.approx(float(np.abs(expected).max()))
    assert report.clipped_samples == 0 and report.path == tmp_path / "mix.wav"
    assert "peak" in report.summary() and "CLIPPED" not in report.summary()
    assert _leftovers(tmp_path) == []


def test_export_mix_clipping_is_guarded_and_reported(tmp_path, stems, caplog):
    loud = state_of(**{s: {"gain_db": 12.0} for s in STEM_NAMES})
    expected = mix(stems, loud)
    n_over = int(np.count_nonzero(np.abs(expected) > 1.0))
    assert n_over > 0
    report = export_mix_wav(stems, SR, loud, tmp_path / "loud.wav")
    y, _ = sf.read(tmp_path / "loud.wav", always_2d=True)
    assert np.abs(y).max() <= 1.0
    assert report.clipped_samples == n_over and report.peak_dbfs > 0
    assert "CLIPPED" in report.summary() and "CLIPPED" in caplog.text
    # float keeps the overs; normalisation brings the peak to the target instead
    floaty = export_mix_wav(stems, SR, loud, tmp_path / "float.wav", subtype="FLOAT")
    assert floaty.clipped_samples == 0
    assert sf.read(tmp_path / "float.wav")[0].max() > 1.0
    norm = export_mix_wav(stems, SR, loud, tmp_path / "norm.wav", normalize_dbfs=-1.0)
    y, _ = sf.read(tmp_path / "norm.wav", always_2d=True)
    assert norm.clipped_samples == 0 and norm.peak_dbfs == pytest.approx(-1.0, abs=1e-4)
    assert 20 * np.log10(np.abs(y).max()) == pytest.approx(-1.0, abs=1e-3)
    assert norm.normalize_gain_db < 0 and "normalised" in norm.summary()


def test_export_refuses_bad_values(tmp_path, stems):
    with pytest.raises(AudioError, match="NaN"):
        encode_audio(np.full((1, 8), np.nan, np.float32), SR, "wav", "PCM_16")
    with pytest.raises(ConfigError, match="FLAC cannot be written as 'FLOAT'"):
        export_stems_zip(stems, SR, MixerState(), tmp_path / "s.zip", subtype="FLOAT")
    with pytest.raises(ConfigError, match="unknown stem format 'mp3'"):
        export_stems_zip(stems, SR, MixerState(), tmp_path / "s.zip", fmt="mp3")
    with pytest.raises(ConfigError, match="outside"):
        export_mix_wav(stems, SR, MixerState(), tmp_path / "m.wav", normalize_dbfs=3.0)
    assert not (tmp_path / "s.zip").exists() and not (tmp_path / "m.wav").exists()


@pytest.mark.parametrize(("fmt", "subtype"), [("flac", "PCM_24"), ("wav", "FLOAT"),
                                              ("wav", "16")])
def test_export_stems_zip_contents(tmp_path, stems, fmt, subtype):
    state = state_of(drums={"gain_db": -6.0}, vocals={"mute": True}, master_db=-1.0)
    path = tmp_path / "song.zip"
    report = export_stems_zip(stems, SR, state, path, fmt=fmt, subtype=subtype,
                              extra={"track": "song"})
    assert _leftovers(tmp_path) == []
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        assert names == sorted([f"song/{s}.{fmt}" for s in STEM_NAMES] + ["song/mixer.json"])
        doc = json.loads(zf.read("song/mixer.json"))
        decoded = {s: sf.read(io.BytesIO(zf.read(f"song/{s}.{fmt}")), dtype="float64",
                              always_2d=True)[0].T for s in STEM_NAMES}
    scaled = apply_gains(stems, state)
    atol = 0.0 if subtype == "FLOAT" else (2.0**-15 if subtype == "16" else 2.0**-23)
    for s in STEM_NAMES:
        np.testing.assert_allclose(decoded[s], scaled[s], atol=atol + 1e-7)
    assert not np.any(decoded["vocals"])
    np.testing.assert_allclose(sum(decoded.values()), mix(stems, state), atol=4 * atol + 1e-6)
    assert doc["format"] == "stratum-mixer/1" and doc["track"] == "song"
    assert doc["sample_rate"] == SR and doc["files"]["bass"] == f"song/bass.{fmt}"
    assert MixerState.parse(doc["state"]) == state
    assert doc["effective_gains"]["vocals"] == 0.0
    assert doc["stem_peaks_dbfs"]["vocals"] == SILENCE_DBFS
    (tmp_path / "mixer.json").write_text(json.dumps(doc))
    assert load_mixer_state(tmp_path / "mixer.json") == state
    assert report.kind == "zip" and report.size_bytes == path.stat().st_size


def test_stems_zip_normalisation_keeps_the_balance(stems):
    state = state_of(drums=6.0)
    data, report = stems_zip_bytes(stems, SR, state, fmt="wav", subtype="FLOAT",
                                   normalize_dbfs=-3.0)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        decoded = {s: sf.read(io.BytesIO(zf.read(f"stems/{s}.wav")), always_2d=True)[0].T
                   for s in STEM_NAMES}
    total = sum(decoded.values())
    assert 20 * np.log10(np.abs(total).max()) == pytest.approx(-3.0, abs=1e-4)
    g = 10 ** (report.normalize_gain_db / 20)
    np.testing.assert_allclose(decoded["bass"], stems["bass"] * g, atol=1e-6)
    np.testing.assert_allclose(decoded["drums"], stems["drums"] * g * db_to_linear(6.0),
                               atol=1e-6)


# ------------------------------------------------------------------ the widget (Python side)


@pytest.fixture
def widget_stems() -> dict[str, np.ndarray]:
    return album_stems(120.0, 0.5, 44100, channels=2)


@pytest.mark.parametrize(("encoding", "mono", "sr", "rate"),
                         [("flac", False, 44100, 22050), ("wav", True, 44100, 22050),
                          ("flac", False, 8000, 8000)])
def test_encode_preview(widget_stems, encoding, mono, sr, rate):
    from stratum_kernel.audio.resampling import resample
    from stratum_kernel.studio.mixer_widget import encode_preview

    y = widget_stems["bass"] if sr == 44100 else album_stems(120.0, 0.5, sr)["bass"]
    data = encode_preview(y, sr, encoding=encoding, mono=mono)
    back, got_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    info = sf.info(io.BytesIO(data))
    assert got_rate == rate and info.format == encoding.upper() and info.subtype == "PCM_16"
    ref = y.mean(axis=0, keepdims=True) if mono else y
    np.testing.assert_allclose(back.T, resample(ref, sr, rate), atol=2.0**-15 + 1e-6)


def test_encode_preview_refuses_unknown_encoding(widget_stems):
    from stratum_kernel.studio.mixer_widget import encode_preview

    with pytest.raises(ConfigError, match="unknown preview encoding 'mp3'"):
        encode_preview(widget_stems["bass"], 44100, encoding="mp3")


def test_widget_traits(widget_stems):
    import traitlets

    from stratum_kernel.studio.mixer_widget import STEM_COLORS, StemMixer

    w = StemMixer(widget_stems, 44100, state={"vocals": {"mute": True}}, title="Track 1")
    assert w.names == list(STEM_NAMES) and len(w.audio) == 4
    assert w.sample_rate == 22050 and w.duration == pytest.approx(0.5)
    assert w.mixer_state == state_of(vocals={"mute": True})
    assert set(w.state) == {*STEM_NAMES, "master_db"}  # completed for the browser
    assert w.colors == STEM_COLORS
    assert w.levels["bass"]["peak_dbfs"] == pytest.approx(
        stem_levels(widget_stems)["bass"].peak_dbfs)
    w.state = {"bass": {"solo": True}}
    assert w.state["bass"] == {"gain_db": 0.0, "mute": False, "solo": True}
    assert w.state["vocals"]["mute"] is False
    with pytest.raises(traitlets.TraitError, match=r"drums\.gain_db"):
        w.state = {"drums": {"gain_db": 99}}
    w.mixer_state = MixerState().with_stem("other", gain_db=-12)
    assert w.state["other"]["gain_db"] == -12.0
    spec = w.render_spec("soundtrack")
    assert spec.applies_to == "soundtrack" and spec.state.other.gain_db == -12.0
    w.position = 7.0
    assert w.position == pytest.approx(0.5)
    w.position = -1.0
    assert w.position == 0.0


def test_widget_refuses_unknown_stems(widget_stems):
    from stratum_kernel.studio.mixer_widget import StemMixer

    with pytest.raises(ConfigError, match="expected stems named"):
        StemMixer({"guitar": widget_stems["bass"]}, 44100)


def test_widget_subset_of_stems(widget_stems):
    from stratum_kernel.studio.mixer_widget import StemMixer

    w = StemMixer({"vocals": widget_stems["vocals"], "drums": widget_stems["drums"]}, 44100,
                  preview_sr=11025, mono=True, encoding="wav")
    assert w.names == ["drums", "vocals"] and w.sample_rate == 11025
    assert sf.info(io.BytesIO(w.audio[0])).channels == 1


def test_widget_export_buttons(widget_stems, tmp_path):
    from stratum_kernel.studio.mixer_widget import StemMixer

    w = StemMixer(widget_stems, 44100, state={"drums": {"solo": True}}, title="Track 1",
                  export_dir=tmp_path / "exports")
    sent = []
    w.send = lambda content, buffers=None: sent.append((content, buffers))
    w._on_custom_msg(w, {"type": "export", "what": "wav"}, [])
    w._on_custom_msg(w, {"type": "export", "what": "zip", "format": "wav"}, [])
    w._on_custom_msg(w, {"type": "something else"}, [])
    assert [c["type"] for c, _ in sent] == ["export_ready", "export_ready"]
    (wav_msg, (wav_bytes,)), (zip_msg, (zip_bytes,)) = sent
    assert wav_msg["name"] == "Track-1-mix.wav" and wav_msg["mime"] == "audio/wav"
    y, sr = sf.read(io.BytesIO(wav_bytes), always_2d=True)
    assert sr == 44100
    np.testing.assert_allclose(y.T, widget_stems["drums"], atol=2.0**-23 + 1e-7)
    assert (tmp_path / "exports" / "Track-1-mix.wav").read_bytes() == wav_bytes
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        assert "Track-1-stems/drums.wav" in zf.namelist()
        assert json.loads(zf.read("Track-1-stems/mixer.json"))["track"] == "Track 1"
    assert zip_msg["name"] == "Track-1-stems.zip"
    assert str(tmp_path / "exports" / "Track-1-stems.zip") in w.export_status
    assert w.last_export.kind == "zip"
    sent.clear()
    w._on_custom_msg(w, {"type": "export", "what": "zip", "format": "mp3"}, [])
    assert sent == [({"type": "export_error", "message": sent[0][0]["message"]}, None)]
    assert "unknown stem format 'mp3'" in w.export_status
    sent.clear()
    w.export_dir = None
    w._on_custom_msg(w, {"type": "export", "what": "wav"}, [])
    assert sent[0][0]["summary"].startswith("Track-1-mix.wav: ")


def test_widget_file_exports(widget_stems, tmp_path):
    from stratum_kernel.studio.mixer_widget import StemMixer

    w = StemMixer(widget_stems, 44100, state={"bass": {"mute": True}}, title="t")
    report = w.export_wav(tmp_path / "m.wav", subtype="FLOAT")
    y, _ = sf.read(tmp_path / "m.wav", always_2d=True)
    np.testing.assert_allclose(y.T, mix(widget_stems, w.mixer_state), atol=1e-7)
    assert report.path == tmp_path / "m.wav"
    w.export_zip(tmp_path / "s.zip")
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        assert json.loads(zf.read("s/mixer.json"))["state"]["bass"]["mute"] is True
    with pytest.raises(ConfigError, match="unknown export"):
        w.export_bytes("mp4")


def test_widget_links_to_a_timeline(widget_stems):
    import ipywidgets

    from stratum_kernel.studio.mixer_widget import StemMixer

    w = StemMixer(widget_stems, 44100)
    slider = ipywidgets.FloatSlider(min=0, max=w.duration, step=0.05)
    play = ipywidgets.Play()
    toggle = ipywidgets.ToggleButton()
    links = w.link_timeline(position=slider, playing=play)
    assert [(ln.source, ln.target) for ln in links] == [
        ((w, "position"), (slider, "value")), ((w, "playing"), (play, "playing"))]
    (link,) = w.link_timeline(playing=(toggle, "value"))
    assert link.target == (toggle, "value")


def test_widget_from_track(make_album, monkeypatch):
    from dataclasses import dataclass

    from stratum_kernel.audio.album import load_album
    from stratum_kernel.audio.files import load_audio
    from stratum_kernel.studio.mixer_widget import StemMixer

    try:
        import stratum_kernel.audio.stems  # noqa: F401
    except ModuleNotFoundError:  # until stems.py exists: a stand-in for bundled stems
        import sys
        import types

        @dataclass
        class StemSet:
            stems: dict
            sr: int
            source: str

        def load_stems(track, *, cache_root=None, backend="auto"):
            loaded = {s: load_audio(p) for s, p in track.stem_paths.items()}
            return StemSet({s: y for s, (y, _) in loaded.items()}, loaded["bass"][1], "bundled")

        module = types.ModuleType("stratum_kernel.audio.stems")
        module.load_stems = load_stems
        monkeypatch.setitem(sys.modules, "stratum_kernel.audio.stems", module)

    root = make_album(1, duration=0.5, sr=SR, stems=True)
    track = load_album(root).track("track1")
    w = StemMixer.from_track(track, preview_sr=SR)
    assert w.title == "Track 1" and w.sample_rate == SR
    back = sf.read(io.BytesIO(w.audio[w.names.index("vocals")]), always_2d=True)[0].T
    np.testing.assert_allclose(back, load_audio(track.stem_paths["vocals"])[0],
                               atol=2.0**-15 + 1e-6)


@pytest.mark.parametrize(("alias", "subtype"), [("24", "PCM_24"), ("16", "PCM_16"),
                                                ("float32", "FLOAT"), ("32f", "FLOAT")])
def test_subtype_aliases(tmp_path, stems, alias, subtype):
    report = export_mix_wav(stems, SR, MixerState(), tmp_path / "a.wav", subtype=alias)
    assert report.subtype == subtype == sf.info(tmp_path / "a.wav").subtype


def test_unwritable_destination_is_a_clear_error(tmp_path, stems):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(AudioError, match="could not write"):
        export_mix_wav(stems, SR, MixerState(), blocker / "mix.wav")


def test_stem_zip_clipping_is_reported(stems, caplog):
    loud = state_of(drums=12.0, master_db=12.0)
    _, report = stems_zip_bytes(stems, SR, loud)
    assert report.clipped_samples > 0 and "CLIPPED" in caplog.text
    assert report.stem_peaks_dbfs["drums"] > 0


def test_levels_of_an_empty_stem():
    assert stem_levels({"bass": np.zeros((2, 0), np.float32)})["bass"].rms_dbfs == SILENCE_DBFS
