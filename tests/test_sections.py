"""Sections with their own looks (render.yaml ``tracks[].sections``): the crossfade weights,
the frames on both sides of a change, chunk and batch invariance, the studio's preview
agreeing with the render, validation, and what a resume makes of an edited section.

Real ONNX Runtime and post-FX at tiny sizes, the numpy analysis stand-in.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from stratum_kernel.audio.album import load_album
from stratum_kernel.core.errors import ConfigError, RenderError
from stratum_kernel.render.jobs import RenderContext
from stratum_kernel.render.sections import blend_looks, section_weights
from stratum_kernel.studio.preview import PreviewEngine
from tests.fixtures_analysis import NumpyAnalysis
from tests.test_render import make_config, render, write_album

SECTION = {"marker": "drop", "preset": "prism", "crossfade_beats": 1.0,
           "postfx": {"palette": {"mix": 0.9}}}


@pytest.fixture(scope="module")
def album_dir(tmp_path_factory):
    return write_album(tmp_path_factory.mktemp("album"))


def _ctx(album_dir, model_dir, out, sections=(SECTION,), **over):
    cfg = make_config(album_dir, model_dir, out, "s",
                      tracks=[{"id": "track1", "preset": "pulse", "sections": list(sections)},
                              {"id": "track2"}], **over)
    album = load_album(album_dir)
    return RenderContext(cfg, album=album, analysis=NumpyAnalysis(album))


# ------------------------------------------------------------------ weights


def test_weights_sum_to_one_and_ramp_smoothly():
    w = section_weights([0, 10, 30], [0, 8, 50], 0, 40)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    assert (w[0, :10] == 1).all() and (w[1, 18:30] == 1).all()
    ramp = w[1, 10:18]
    assert (np.diff(ramp) > 0).all() and 0 < ramp[0] < 0.1 and 0.9 < ramp[-1] < 1
    # the last fade is not cut (nothing follows); a fade longer than its section would be
    assert w[2, 39] < 1
    short = section_weights([0, 10, 14], [0, 20, 0], 0, 20)
    assert short[1, 13] > 0.9 and short[2, 14] == 1.0  # cut to the 4 frames it has
    cut = section_weights([0, 5], [0, 0], 0, 10)
    assert cut[0].tolist() == [1] * 5 + [0] * 5


def test_blend_keeps_single_looks_exact():
    a = np.full((2, 2, 2, 3), 10, np.uint8)
    b = np.full((2, 2, 2, 3), 30, np.uint8)
    out = blend_looks([(np.array([1.0, 0.25]), a), (np.array([0.0, 0.75]), b)])
    assert (out[0] == 10).all() and (out[1] == 25).all()


# ------------------------------------------------------------------ frames


def test_each_side_of_the_change_is_its_own_look(album_dir, tiny_model_dir, tmp_path):
    ctx = _ctx(album_dir, tiny_model_dir, tmp_path, sections=[{**SECTION, "postfx": {}}])
    job = ctx.job("track1")
    look = job.looks[1]
    assert [lk.preset.name for lk in job.looks] == ["pulse", "prism"]
    assert look.start == job.frame_at(1.2) and look.crossfade == 12  # 1 beat at 120 bpm
    before = ctx.frames(job, 0, 10)
    plain = ctx.job("track1", "pulse", sections=False)
    np.testing.assert_array_equal(before, ctx.frames(plain, 0, 10))
    # well after the crossfade (and the trails' window), the section's preset alone
    after = look.start + look.crossfade + job.window_frames + 2
    np.testing.assert_array_equal(ctx.frames(job, after, after + 3),
                                  ctx.frames(ctx.job("track1", "prism", sections=False),
                                             after, after + 3))
    # inside the crossfade: neither
    mid = look.start + look.crossfade // 2
    f = ctx.frames(job, mid, mid + 1)[0]
    assert not np.array_equal(f, ctx.frames(plain, mid, mid + 1)[0])


@pytest.mark.parametrize("cuts", [[0, 60], [0, 29, 30, 31, 60], [0, 7, 33, 60]])
def test_any_chunking_gives_the_same_frames(album_dir, tiny_model_dir, tmp_path, cuts):
    ctx = _ctx(album_dir, tiny_model_dir, tmp_path)
    job = ctx.job("track1")
    whole = ctx.frames(job, 0, job.n_frames)
    parts = np.concatenate([ctx.frames(job, a, b) for a, b in itertools.pairwise(cuts)])
    np.testing.assert_array_equal(parts, whole)


def test_the_render_is_batch_and_chunk_invariant_and_recorded(album_dir, tiny_model_dir,
                                                             tmp_path):
    tracks = [{"id": "track1", "preset": "pulse", "sections": [SECTION]}]
    a = render(album_dir, tiny_model_dir, tmp_path / "a", "a", tracks=tracks,
               render__chunk_frames=20, decoder__batch_size=4)
    b = render(album_dir, tiny_model_dir, tmp_path / "b", "b", tracks=tracks,
               render__chunk_frames=7, decoder__batch_size=3)
    ra, rb = a.record.tracks[0], b.record.tracks[0]
    assert ra.frames_sha256 == rb.frames_sha256
    (sec,) = ra.sections
    assert sec["preset"] == "prism" and sec["spec"]["marker"] == "drop"
    assert sec["start_frame"] == 28 and sec["crossfade_frames"] == 12
    assert sec["postfx"]["palette"]["mix"] == 0.9


def test_the_studio_preview_agrees_with_the_render(album_dir, tiny_model_dir, tmp_path):
    ctx = _ctx(album_dir, tiny_model_dir, tmp_path)
    engine = PreviewEngine(ctx.config, album=ctx.album, analysis=ctx.analysis)
    job = ctx.job("track1")
    for i in (20, 28, 33, 40, 59):  # before, at, inside and after the crossfade
        np.testing.assert_array_equal(engine.frames("track1", i, i + 1)[0],
                                      ctx.frames(job, i, i + 1)[0])


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("section, field, pattern", [
    ({"marker": 3}, "sections[0].marker", "marker 3: the track has 1 marker"),
    ({"marker": "dorp"}, "sections[0].marker", "no marker labelled 'dorp'; did you mean 'drop'"),
    ({"at": 9.0}, "sections[0].at", "starts at 9 s, outside the track"),
])
def test_section_starts_are_checked_against_the_album(album_dir, tiny_model_dir, tmp_path,
                                                      section, field, pattern):
    with pytest.raises(ConfigError, match=pattern) as err:
        _ctx(album_dir, tiny_model_dir, tmp_path, sections=[section]).album  # noqa: B018
    assert field in str(err.value.field)


@pytest.mark.parametrize("section, pattern", [
    ({"marker": 1, "at": 1.0}, "either marker"),
    ({}, "either marker"),
    ({"marker": 0}, "numbered from 1"),
    ({"at": 1.0, "preset": "nope"}, "unknown preset 'nope'"),
    ({"at": 1.0, "crossfade_beats": -1}, "greater than or equal to 0"),
])
def test_bad_sections_name_the_field(album_dir, tiny_model_dir, tmp_path, section, pattern):
    with pytest.raises(ConfigError, match=pattern) as err:
        _ctx(album_dir, tiny_model_dir, tmp_path, sections=[section])
    assert "tracks[0].sections[0]" in str(err.value.field)


def test_sections_in_time_order(album_dir, tiny_model_dir, tmp_path):
    ctx = _ctx(album_dir, tiny_model_dir, tmp_path, sections=[{"at": 1.5}, {"at": 1.0}])
    with pytest.raises(ConfigError, match="not after the section before it"):
        ctx.album  # noqa: B018 - the property validates


def test_an_edited_section_refuses_the_resume(album_dir, tiny_model_dir, tmp_path):
    class Stop(Exception):
        pass

    def stop(t, c):
        if (t, c) == ("track1", 1):
            raise Stop

    tracks = [{"id": "track1", "sections": [SECTION]}]
    with pytest.raises(Stop):
        render(album_dir, tiny_model_dir, tmp_path, "r", tracks=tracks, on_chunk=stop)
    edited = [{"id": "track1", "sections": [{**SECTION, "crossfade_beats": 4.0}]}]
    with pytest.raises(RenderError, match=r"track track1: the track's sections"):
        render(album_dir, tiny_model_dir, tmp_path, "r", tracks=edited, resume=True)


def test_the_studio_edits_sections_on_the_timeline(album_dir, tiny_model_dir, tmp_path):
    from stratum_kernel.studio.sections_editor import NONE, SectionsEditor

    ctx = _ctx(album_dir, tiny_model_dir, tmp_path, sections=[])
    engine = PreviewEngine(ctx.config, album=ctx.album, analysis=ctx.analysis)
    changed = []
    editor = SectionsEditor(engine, "track1", on_change=lambda: changed.append(1))
    assert len(editor.pickers) == 1 and editor.pickers[0].value == NONE
    before = engine.frames("track1", 50, 51)[0]
    editor.pickers[0].value = "prism"
    editor.beats[0].value = 1.0
    assert changed and engine.config.track_config("track1").sections[0].preset == "prism"
    assert "marker: 1" in editor.yaml.value and "preset: prism" in editor.yaml.value
    expected = _ctx(album_dir, tiny_model_dir, tmp_path, sections=[
        {"marker": 1, "preset": "prism", "crossfade_beats": 1.0}])
    job = expected.job("track1")
    after = engine.frames("track1", 50, 51)[0]
    np.testing.assert_array_equal(after, expected.frames(job, 50, 51)[0])
    assert not np.array_equal(after, before)
    assert engine.config.track_ids(engine.album) == ["track1", "track2"]  # still both
    editor.pickers[0].value = NONE
    assert engine.config.track_config("track1").sections == []
