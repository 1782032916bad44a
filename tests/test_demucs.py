"""The Demucs backend on tiny randomly initialised models built here (no network): the real
loading (demucs.states.load_model) and apply (demucs.apply.apply_model) code."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("demucs", reason="the Demucs backend needs the 'demucs' package")
torch = pytest.importorskip("torch")

from stratum_kernel.audio import stems as st  # noqa: E402
from stratum_kernel.audio.demucs import DemucsSeparator, save_demucs_model  # noqa: E402
from stratum_kernel.audio.stems import separate, separation_key  # noqa: E402
from stratum_kernel.core.errors import ModelError  # noqa: E402

SR = 22050


def tiny_htdemucs(sources=("drums", "bass", "other", "vocals"), seed=0):
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HTDemucs(
            sources=list(sources),
            audio_channels=2,
            samplerate=8000,
            segment=1,
            channels=8,
            depth=2,
            nfft=256,
            t_layers=1,
            t_heads=1,
            dconv_comp=2,
            t_hidden_scale=1.0,
        )


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_demucs_model(tiny_htdemucs(), tmp_path_factory.mktemp("demucs") / "tiny.th")


@pytest.fixture(scope="module")
def mix():
    rng = np.random.default_rng(0)
    return (0.2 * rng.standard_normal((2, round(1.2 * SR)))).astype(np.float32)


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv(st.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(st, "_DEMUCS_CACHE", {})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add overhead on a shared machine
    yield
    torch.set_num_threads(threads)


def test_loads_the_saved_model_and_applies_it(weights, mix):
    from demucs.apply import apply_model

    from stratum_kernel.audio.resampling import resample

    sep = DemucsSeparator(weights)
    assert sep.sources == ["drums", "bass", "other", "vocals"] and sep.samplerate == 8000
    out = sep(mix, SR)
    assert set(out) == {"drums", "bass", "other", "vocals"}
    for y in out.values():
        assert y.shape == mix.shape and y.dtype == np.float32 and np.isfinite(y).all()
    # the same as running demucs by hand: resample, normalise once, apply, undo, resample
    x = torch.from_numpy(resample(mix, SR, 8000))
    ref = x.mean(0)
    with torch.inference_mode():
        est = apply_model(
            sep.model, ((x - ref.mean()) / ref.std())[None], shifts=0, split=True, overlap=0.25
        )[0]
    est = (est * ref.std() + ref.mean() / 4).numpy()
    expected = resample(np.ascontiguousarray(est[3]), 8000, SR)[:, : mix.shape[1]]
    np.testing.assert_allclose(out["vocals"], expected, atol=1e-5)


def test_levels_scale_with_the_mix_no_per_stem_rescaling(weights, mix):
    sep = DemucsSeparator(weights)
    one, two = sep(mix, SR), sep(2.0 * mix, SR)
    for name in one:
        np.testing.assert_allclose(two[name], 2.0 * one[name], rtol=1e-3, atol=1e-5)


def test_auto_backend_takes_demucs_when_weights_are_set(weights, mix, monkeypatch):
    monkeypatch.setenv(st.WEIGHTS_ENV, str(weights))
    assert st.demucs_available()
    auto = separate(mix, SR, backend="auto")
    direct = DemucsSeparator(weights)(mix, SR)
    np.testing.assert_allclose(auto["drums"], direct["drums"], atol=1e-6)
    key = separation_key("auto")
    assert key.startswith("demucs-v2-") and key == separation_key("demucs", weights)
    assert separation_key("dsp").startswith("dsp-")


def test_extra_sources_fold_into_other_and_mono_input(tmp_path):
    six = ("drums", "bass", "other", "vocals", "guitar", "piano")
    path = save_demucs_model(tiny_htdemucs(six, seed=1), tmp_path / "six.th")
    sep = DemucsSeparator(path)
    mono = (0.1 * np.random.default_rng(1).standard_normal((1, 9000))).astype(np.float32)
    out = sep(mono, 16000)
    assert set(out) == {"drums", "bass", "other", "vocals"}
    assert all(y.shape == (1, 9000) for y in out.values())
    assert float(np.abs(out["other"]).max()) > 0


def test_a_damaged_weights_file_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.th"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="could not load a Demucs model"):
        DemucsSeparator(bad)
    with pytest.raises(ModelError, match="not found"):
        DemucsSeparator(tmp_path / "nothing.th")


def test_load_stems_caches_demucs_stems(weights, make_album, tmp_path, monkeypatch):
    from stratum_kernel.audio.album import load_album

    monkeypatch.setenv(st.WEIGHTS_ENV, str(weights))
    track = load_album(make_album(1, duration=1.0, stems=False, sr=16000)).tracks[0]
    first = st.load_stems(track, cache_root=tmp_path)
    assert first.source == "demucs"
    second = st.load_stems(track, cache_root=tmp_path)
    assert second.source == "demucs" and second.key == first.key
    np.testing.assert_allclose(second.stems["bass"], first.stems["bass"], atol=1e-6)
