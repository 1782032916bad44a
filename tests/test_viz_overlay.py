"""Film overlays: a strip in its region only, deterministic, with a moving playhead."""

from __future__ import annotations

import numpy as np
import pytest

from stratum_kernel.core.errors import ConfigError
from stratum_kernel.core.timeline import FrameFeatures
from stratum_kernel.viz.overlay import OverlaySpec, build_overlay, parse_overlay_spec
from stratum_kernel.viz.raster import parse_hex
from stratum_kernel.viz.settings import VisualizationSettings
from tests.fixtures_audio import sine

W, H = 160, 90
FPS = 10.0
NAMES = ("drums", "bass", "other", "vocals")


@pytest.fixture
def settings(tmp_path):
    return VisualizationSettings(tmp_path / "stratum_settings.yaml")


def frame_features(n=100, start=0.0):
    t = np.arange(n) / FPS
    stems = {name: {"envelope": (0.2 + 0.2 * np.sin(t * (i + 1))).astype(np.float32) ** 2,
                    "onset": np.zeros(n, np.float32)} for i, name in enumerate(NAMES)}
    chroma = np.zeros((12, n), np.float32)
    chroma[9] = 1.0
    return FrameFeatures(
        track_id="t1", fps=FPS, start=start, n_frames=n,
        values={"rms": np.full(n, 0.5, np.float32), "chroma": chroma},
        stems=stems, beat_frames=np.arange(0, n, 5), tempo=120.0, markers=(start + 3.0,),
    )


def film(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_spec_validation_and_sizes():
    spec = parse_overlay_spec({"kind": "stem_waveform", "height": 0.2})
    assert spec.strip_height(90) == 18
    assert OverlaySpec(height=30).strip_height(90) == 30
    assert OverlaySpec(height=500).strip_height(90) == 90
    for bad in [{"kind": "histogram"}, {"height": 0}, {"height": 12.5}, {"opacity": 120},
                {"colour": "red"}]:
        with pytest.raises(ConfigError):
            parse_overlay_spec(bad)
    assert parse_overlay_spec(spec) is spec


@pytest.mark.parametrize("position", ["bottom", "top"])
def test_paints_only_its_region_deterministically(settings, position):
    spec = {"kind": "stem_waveform", "position": position, "height": 0.25, "margin": 4,
            "opacity": 70}
    ff = frame_features()
    ov = build_overlay(spec, features=ff, size=(W, H), settings=settings)
    assert ov.height == 22
    rows = slice(H - 4 - 22, H - 4) if position == "bottom" else slice(4, 26)
    base = film()
    a, b = base.copy(), base.copy()
    ov.paint(a, 4.2)
    ov(b, 4.2)  # the painter protocol
    np.testing.assert_array_equal(a, b)
    outside = np.ones(H, bool)
    outside[rows] = False
    np.testing.assert_array_equal(a[outside], base[outside])
    assert (a[rows] != base[rows]).any()
    # a fresh overlay built the same way paints the same pixels (no hidden state)
    c = base.copy()
    build_overlay(spec, features=ff, size=(W, H), settings=settings).paint(c, 4.2)
    np.testing.assert_array_equal(a, c)


def test_playhead_moves_and_opaque_strip_copies(settings):
    spec = OverlaySpec(kind="stem_waveform", height=20, opacity=100, playhead_width=1)
    ff = frame_features(start=2.0)  # the strip spans track time 2..12 s
    ov = build_overlay(spec, features=ff, size=(W, H), settings=settings)
    ph = parse_hex(settings.get("stem_waveform").playhead)
    cols = []
    for t in (2.0, 4.5, 7.0, 11.99):
        f = np.zeros((H, W, 3), np.uint8)
        ov.paint(f, t)
        hit = np.where((f[H - 20:] == ph).all(axis=-1).all(axis=0))[0]
        cols.append(int(hit[0]))
    assert cols == [0, 40, 80, 159]
    f = np.zeros((H, W, 3), np.uint8)
    ov.paint(f, 2.0)
    bg = parse_hex(settings.get("stem_waveform").background)
    assert (f[H - 20:, 1:] != 0).all(axis=-1).any()  # opaque strip: background colour copied
    assert tuple(f[H - 20, 150]) in {bg, *[parse_hex(getattr(settings.get("stem_waveform"), n))
                                           for n in NAMES]}
    with pytest.raises(ValueError, match="160x90"):
        ov.paint(np.zeros((10, 10, 3), np.uint8), 1.0)


def test_transparent_background_keeps_the_film(settings):
    spec = {"kind": "stem_waveform", "height": 30, "opacity": 100,
            "params": {"background_opacity": 0}}
    ov = build_overlay(spec, features=frame_features(), size=(W, H), settings=settings)
    base = film(1)
    f = base.copy()
    ov.paint(f, 99.0)  # playhead off the strip
    region, before = f[H - 30:], base[H - 30:]
    same = (region == before).all(axis=-1)
    assert same.any() and (~same).any()  # film shows through where no stem is drawn
    assert (~same[0]).sum() < (~same[15]).sum()  # stems stack from the centre line


def test_scrolling_window_centres_the_playhead(settings):
    spec = OverlaySpec(kind="stem_waveform", height=20, opacity=100, window_s=2.0,
                       playhead_width=2)
    ov = build_overlay(spec, features=frame_features(), size=(W, H), settings=settings)
    assert ov.strip.shape[1] == W * 5  # 10 s at 2 s per frame width
    ph = parse_hex(settings.get("stem_waveform").playhead)
    f0 = np.zeros((H, W, 3), np.uint8)
    ov.paint(f0, 0.0)
    assert (f0[H - 20:, W // 2:W // 2 + 2] == ph).all()
    assert (f0[H - 20:, : W // 2 - 1] == 0).all()  # before the track: nothing drawn
    f1 = np.zeros((H, W, 3), np.uint8)
    ov.paint(f1, 5.0)
    assert (f1[H - 20:, :5] != 0).any()


def test_views_needing_audio(settings, tmp_path):
    import soundfile as sf

    tone = sine(1000.0, 4.0, 8000, amplitude=0.3, channels=2)
    for kind in ("loudness", "dynamics"):
        ov = build_overlay({"kind": kind, "height": 24}, audio=tone, sr=8000, size=(W, H),
                           settings=settings)
        f = film()
        ov.paint(f, 1.0)
        assert ov.strip.shape == (24, W, 4) and (ov.strip[..., 3] == 255).all()
    path = tmp_path / "tone.wav"
    sf.write(path, tone.T, 8000)
    from_file = build_overlay({"kind": "dynamics", "height": 24}, audio_path=path,
                              size=(W, H), settings=settings)
    np.testing.assert_array_equal(from_file.strip, ov.strip)
    with pytest.raises(ConfigError, match="needs the track's audio"):
        build_overlay({"kind": "loudness"}, features=frame_features(), size=(W, H),
                      settings=settings)
    chroma = build_overlay({"kind": "spectral", "params": {"kind": "chroma"}},
                           features=frame_features(), size=(W, H), settings=settings)
    assert chroma.strip.shape[1] == W
    with pytest.raises(ConfigError, match="mel"):
        build_overlay({"kind": "spectral"}, features=frame_features(), size=(W, H),
                      settings=settings)
    with pytest.raises(ConfigError, match="opacity"):
        build_overlay({"kind": "stem_waveform", "params": {"opacity": 3}},
                      features=frame_features(), size=(W, H), settings=settings)
    with pytest.raises(ValueError, match="size"):
        build_overlay({"kind": "stem_waveform"}, features=frame_features(), settings=settings)


def test_stems_audio_and_saved_params(settings, rng):
    stems = {n: (rng.standard_normal((2, 8000 * 3)) * 0.1).astype(np.float32) for n in NAMES}
    settings.set("stem_waveform", {"bass": "#00ff00", "drums": "#00ff00", "other": "#00ff00",
                                   "vocals": "#00ff00"})
    ov = build_overlay({"kind": "stem_waveform", "height": 40, "opacity": 100}, stems=stems,
                       sr=8000, size=(W, H), settings=settings, track_id="t")
    assert ((ov.strip[..., :3] == (0, 255, 0)).all(axis=-1)).any()  # the saved colours
    assert ov.params["bass"] == "#00ff00"  # what was used, for the run's meta.json
    with pytest.raises(ConfigError, match="needs stems"):
        build_overlay({"kind": "stem_waveform"}, duration=3.0, size=(W, H), settings=settings)
    with pytest.raises(ValueError, match="time span"):
        build_overlay({"kind": "loudness"}, size=(W, H), settings=settings)


def test_through_postfx_chunking_never_changes_a_pixel(settings):
    """The real post-FX stage calls the overlay per frame; any chunking gives the same film."""
    from stratum_kernel.picture.postfx import PostFXParams, apply_postfx

    ff = frame_features(n=12, start=1.0)
    ov = build_overlay({"kind": "stem_waveform", "height": 0.3, "opacity": 80}, features=ff,
                       size=(64, 36), fps=FPS, settings=settings)
    decoded = np.random.default_rng(4).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    params = PostFXParams()

    def run(lo, hi):
        return apply_postfx(decoded[lo:hi], params, frame_indices=range(lo, hi), seed=1,
                            track_id="t1", out_size=(64, 36), overlays=[ov], fps=FPS,
                            start_time=1.0)

    whole = run(0, 12)
    parts = np.concatenate([run(0, 5), run(5, 6), run(6, 12)])
    np.testing.assert_array_equal(whole, parts)
    plain = apply_postfx(decoded, params, frame_indices=range(12), seed=1, track_id="t1",
                         out_size=(64, 36))
    band = slice(36 - 11, 36)
    np.testing.assert_array_equal(whole[:, :band.start], plain[:, :band.start])
    assert (whole[:, band] != plain[:, band]).any()
    ph = parse_hex(settings.get("stem_waveform").playhead)
    xs = [int(np.where((whole[i, band] == ph).all(axis=-1).all(axis=0))[0][0]) for i in (0, 6)]
    assert xs == [0, 32]  # frame 6 is half-way through the 1.2 s strip
