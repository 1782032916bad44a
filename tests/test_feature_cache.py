"""The feature disk cache: hits, misses, parameter and file changes, damaged files; content
hashes; analysing a whole album."""

from __future__ import annotations

import logging
import os
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf

from stratum_kernel.analysis import cache as fc
from stratum_kernel.analysis.cache import AlbumAnalysis, FeatureCache, analyze_album
from stratum_kernel.analysis.features import (
    FeatureCacheError,
    FeatureParams,
    TrackFeatures,
    compute_features,
    features_from_blocks,
)
from stratum_kernel.audio.album import load_album
from stratum_kernel.core import digests
from stratum_kernel.core.digests import file_sha256
from tests.fixtures_audio import click_track, sine


@pytest.fixture
def counted(monkeypatch):
    """Counts the analyses the cache runs (features_from_blocks: it reads files in blocks)."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(kwargs.get("track_id"))
        return features_from_blocks(*args, **kwargs)

    monkeypatch.setattr(fc, "features_from_blocks", counting)
    return calls


def _settle(path):
    """Make a file look written long ago (its hash may then be remembered)."""
    old = time.time() - 3600
    os.utime(path, (old, old))


@pytest.fixture
def album(make_album):
    return load_album(make_album(2, duration=1.5, stems=True))


def test_miss_then_hit_then_param_change(tmp_path, album, counted):
    cache = FeatureCache(tmp_path / "features")
    track = album.tracks[0]
    first = cache.load_or_compute(track)
    assert counted == [track.id]
    files = list((tmp_path / "features").glob(f"{track.id}-*.npz"))
    assert len(files) == 1 and len(files[0].stem.split("-")[-1]) == 16
    second = cache.load_or_compute(track)
    assert counted == [track.id]  # a hit
    for name, arr in first.series.items():
        np.testing.assert_array_equal(second.series[name], arr)
    np.testing.assert_array_equal(second.beats, first.beats)
    assert second.stem_source == first.stem_source == "bundled"
    assert set(second.stems) == {"drums", "bass", "other", "vocals"}
    changed = cache.load_or_compute(track, FeatureParams(n_mfcc=8))
    assert counted == [track.id, track.id]
    assert changed.series["mfcc"].shape[0] == 8
    assert len(list((tmp_path / "features").glob(f"{track.id}-*.npz"))) == 2


def test_a_changed_audio_file_is_recomputed(tmp_path, album, counted):
    cache = FeatureCache(tmp_path / "features")
    track = album.tracks[0]
    before = cache.load_or_compute(track, stems="none")
    y, sr = sf.read(track.audio_path, dtype="float32", always_2d=True)
    sf.write(track.audio_path, 0.5 * y, sr, subtype="FLOAT")  # same size, new content
    after = cache.load_or_compute(track, stems="none")
    assert len(counted) == 2
    np.testing.assert_allclose(after.series["rms"], 0.5 * before.series["rms"], rtol=1e-3)
    assert before.stem_source == after.stem_source == "none" and after.stems == {}


def test_a_changed_stem_file_is_recomputed(tmp_path, album, counted):
    cache = FeatureCache(tmp_path / "features")
    track = album.tracks[0]
    cache.load_or_compute(track)
    y, sr = sf.read(track.stem_paths["vocals"], dtype="float32")
    sf.write(track.stem_paths["vocals"], 0.25 * y, sr, subtype="FLOAT")
    cache.load_or_compute(track)
    assert len(counted) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "empty", "meta"])
def test_a_damaged_cache_file_is_recomputed_not_trusted(tmp_path, album, counted, damage, caplog):
    cache = FeatureCache(tmp_path / "features")
    track = album.tracks[1]
    good = cache.load_or_compute(track, stems="none")
    (path,) = (tmp_path / "features").glob(f"{track.id}-*.npz")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "flip":  # a valid npz whose rms series was altered
        arrays = dict(np.load(path))
        arrays["series/rms"] = arrays["series/rms"] * 1.01
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    else:  # meta.json replaced by garbage inside an intact zip
        arrays = dict(np.load(path))
        arrays["meta"] = np.frombuffer(b"{not json", dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    with pytest.raises(FeatureCacheError):
        TrackFeatures.load(path)
    with caplog.at_level(logging.WARNING, logger="stratum_kernel.analysis.cache"):
        again = cache.load_or_compute(track, stems="none")
    assert len(counted) == 2 and "recomputing" in caplog.text
    np.testing.assert_array_equal(again.series["rms"], good.series["rms"])
    assert TrackFeatures.load(path).track_id == track.id  # rewritten intact


def test_save_is_atomic_and_roundtrips(tmp_path):
    y = click_track(120.0, 2.0, 22050) + sine(300.0, 2.0, 22050, amplitude=0.1)
    stems = {"drums": click_track(120.0, 2.0, 22050), "bass": sine(300.0, 2.0, 22050)}
    tf = compute_features(y, 22050, stems=stems, stem_source="dsp", track_id="x", bpm_prior=120)
    path = tf.save(tmp_path / "x.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]  # no temp file left behind
    back = TrackFeatures.load(path)
    assert (back.track_id, back.tempo, back.stem_source) == ("x", 120.0, "dsp")
    assert back.duration == pytest.approx(2.0) and back.rate == tf.rate
    np.testing.assert_array_equal(back.stems["drums"]["onset"], tf.stems["drums"]["onset"])
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None


def test_shape_mismatch_is_detected(tmp_path):
    tf = compute_features(sine(300.0, 1.0, 22050), 22050, track_id="x")
    tf.series["rms"] = tf.series["rms"][:-3]  # unequal lengths: refused on load
    path = tf.save(tmp_path / "x.npz")
    with pytest.raises(FeatureCacheError, match="unequal"):
        TrackFeatures.load(path)


def test_file_sha256_memo(tmp_path, monkeypatch):
    path = tmp_path / "a.bin"
    path.write_bytes(b"hello")
    memo = tmp_path / "memo"
    fresh = file_sha256(path, memo_dir=memo)
    assert fresh == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert not memo.exists()  # just written: too recent to remember
    _settle(path)
    assert file_sha256(path, memo_dir=memo) == fresh
    assert len(list(memo.iterdir())) == 1
    # remembered in this process: another memo folder still gets its file
    assert file_sha256(path, memo_dir=tmp_path / "memo2") == fresh
    assert len(list((tmp_path / "memo2").iterdir())) == 1
    # a new process (empty in-memory memo) reads the memo file instead of the bytes
    monkeypatch.setattr(digests, "_MEMO", {})
    opened = []
    real_open = open

    def spy(p, *a, **k):
        opened.append(str(p))
        return real_open(p, *a, **k)

    monkeypatch.setattr("builtins.open", spy)
    assert file_sha256(path, memo_dir=memo) == fresh
    assert str(path) not in opened
    monkeypatch.setattr("builtins.open", real_open)
    path.write_bytes(b"hellO")  # same size, new mtime: hashed again
    assert file_sha256(path, memo_dir=memo) != fresh


def test_cached_hash_is_reused_for_a_settled_album(tmp_path, album, counted, monkeypatch):
    for track in album.tracks:
        _settle(track.audio_path)
        for p in track.stem_paths.values():
            _settle(p)
    cache = FeatureCache(tmp_path / "features")
    cache.load_or_compute(album.tracks[0])
    hashed = []
    real = fc.hashlib.sha256

    def spy(*a, **k):
        hashed.append(a)
        return real(*a, **k)

    monkeypatch.setattr(fc.hashlib, "sha256", spy)
    cache.load_or_compute(album.tracks[0])
    # only the short key strings are hashed, never the audio bytes again
    assert all(len(a) == 1 and len(a[0]) < 1000 for a in hashed if a)


def test_separated_stems_when_the_album_has_none(tmp_path, make_album, counted):
    album = load_album(make_album(1, duration=1.0, stems=False, name="plain"))
    cache = FeatureCache(tmp_path / "features")
    tf = cache.load_or_compute(album.tracks[0])
    assert tf.stem_source == "dsp" and set(tf.stems) == {"drums", "bass", "other", "vocals"}
    assert len(list((tmp_path / "stems").glob(f"{album.tracks[0].id}-*"))) == 1
    bundled_only = cache.load_or_compute(album.tracks[0], stems="bundled")
    assert bundled_only.stem_source == "none" and len(counted) == 2


def test_analyze_album(tmp_path, make_album):
    root = make_album(
        2, duration=2.0, stems=True, overrides={1: {"markers": [0.5, 1.0]}}, name="two"
    )
    cache = FeatureCache(tmp_path / "features")
    analysis = analyze_album(root, cache=cache, progress=False)
    assert isinstance(analysis, AlbumAnalysis)
    assert list(analysis.tracks) == ["track1", "track2"]
    assert analysis.stem_sources == {"track1": "bundled", "track2": "bundled"}
    assert analysis.reference.track_ids == ("track1", "track2")
    ff = analysis.frame_features("track2", fps=30)
    assert ff.n_frames == 60 and ff.markers == (0.5, 1.0)
    assert ff.section[0] == 0 and ff.section[-1] == 2
    assert ff.tempo == 98.0
    rows = analysis.summary()
    assert rows[0]["id"] == "track1" and rows[0]["tempo"] == 120.0 and rows[0]["stems"] == "bundled"
    with pytest.raises(Exception, match="no analysed track"):
        analysis.frame_features("nope", fps=30)
    again = analyze_album(load_album(root), cache=cache, progress=True, separate_missing=False)
    np.testing.assert_array_equal(
        again.tracks["track1"].series["rms"], analysis.tracks["track1"].series["rms"]
    )


def test_analyze_album_without_cache_writes_no_features(tmp_path, make_album, monkeypatch):
    monkeypatch.setenv("STRATUM_CACHE", str(tmp_path / "project-cache"))
    root = make_album(1, duration=1.0, stems=True, name="nocache")
    analysis = analyze_album(root, cache=False, progress=False)
    assert analysis.tracks["track1"].stem_source == "bundled"
    assert not (tmp_path / "project-cache" / "features").exists() or not list(
        (tmp_path / "project-cache" / "features").glob("*.npz")
    )


def test_bad_stems_argument(tmp_path, album):
    with pytest.raises(ValueError, match="stems must be"):
        FeatureCache(tmp_path).load_or_compute(album.tracks[0], stems="maybe")
