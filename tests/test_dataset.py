"""Procedural buckets, the on-disk set format, loading and augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training import procedural
from training.dataset import (
    AugmentedImages,
    AugmentParams,
    ImageRecord,
    augment,
    load_images,
    read_manifest,
    write_image,
    write_manifest,
)
from training.make_dataset import main as make_dataset_main
from training.make_dataset import make_set
from training.procedural import BUCKETS, apply_palette, fbm, generate


@pytest.mark.parametrize("bucket", BUCKETS)
def test_buckets_are_deterministic_by_seed(bucket):
    a, pa = generate(bucket, 11, 64)
    b, pb = generate(bucket, 11, 64)
    c, _ = generate(bucket, 12, 64)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and pa == pb
    assert not np.array_equal(a, c)
    json.dumps(pa)  # parameters are JSON-ready for the sidecar
    assert a.std() > 5  # not a flat image


@pytest.mark.parametrize("bucket", ["colour_field", "flow_field", "glitch"])
def test_colourful_buckets_have_colour(bucket):
    from training.metrics import colour_stats

    imgs = np.stack([generate(bucket, s, 64)[0] for s in range(4)])
    assert float(colour_stats(imgs)["chroma"].mean()) > 0.1


def test_monochrome_is_one_hue():
    from training.metrics import colour_stats

    imgs = np.stack([generate("monochrome_noise", s, 64)[0] for s in range(4)])
    assert float(colour_stats(imgs)["hue_spread"].max()) < 0.2


def test_bad_bucket_and_size():
    with pytest.raises(ValueError, match="unknown bucket"):
        generate("landscape", 0)
    with pytest.raises(ValueError, match="at least 32"):
        generate("glitch", 0, 16)


def test_palettes_and_noise():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 50, dtype=np.float32)[None]
    for pal in (procedural.cosine_palette(rng), procedural.harmony_palette(rng)):
        rgb = apply_palette(t, pal)
        assert rgb.shape == (1, 50, 3) and rgb.min() >= 0 and rgb.max() <= 1
    n = fbm(np.random.default_rng(1), 64)
    assert n.shape == (64, 64) and 0.2 < float(n.std()) < 5


def test_set_round_trip_and_reuse(tmp_path):
    records = make_set(
        tmp_path, count=5, size=48, buckets=("colour_field", "glitch"), progress=False
    )
    assert [r.bucket for r in records] == ["colour_field", "glitch"] * 2 + ["colour_field"]
    back = read_manifest(tmp_path)
    assert back == sorted(records, key=lambda r: r.file)
    side = json.loads((tmp_path / "images" / "00001-glitch.json").read_text())
    assert side["bucket"] == "glitch" and side["seed"] == 1 and side["source"] == "procedural"
    # a second run reuses files and writes the same manifest
    before = (tmp_path / "manifest.csv").read_text()
    again = make_set(tmp_path, count=5, size=48, buckets=("colour_field", "glitch"), progress=False)
    assert again == records and (tmp_path / "manifest.csv").read_text() == before
    imgs = load_images(tmp_path, 24, cache=tmp_path / "cache")
    assert imgs.shape == (5, 24, 24, 3) and imgs.dtype == np.uint8
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    assert np.array_equal(load_images(tmp_path, 24, cache=tmp_path / "cache"), imgs)
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_cli_writes_a_set(tmp_path, capsys):
    assert (
        make_dataset_main(
            [
                "--out",
                str(tmp_path),
                "--count",
                "2",
                "--size",
                "32",
                "--buckets",
                "monochrome_noise",
            ]
        )
        == 0
    )
    assert "wrote 2 images" in capsys.readouterr().out
    assert len(read_manifest(tmp_path)) == 2


def test_manifest_errors(tmp_path):
    with pytest.raises(ValueError, match="no manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text("file,bucket,seed\nimages/a.png,x,notanint\n")
    with pytest.raises(ValueError, match="line 2"):
        read_manifest(tmp_path)
    rec = ImageRecord("images/a.png", "x", 1, 8, 8, "0" * 64, "procedural", kept=False)
    write_manifest(tmp_path, [rec])
    with pytest.raises(ValueError, match="no kept images"):
        load_images(tmp_path, 8)
    with pytest.raises(ValueError, match="uint8"):
        write_image(tmp_path, "bad", np.zeros((4, 4)), bucket="x", seed=0, source="t", params={})
    write_manifest(tmp_path, [ImageRecord("images/gone.png", "x", 1, 8, 8, "0" * 64, "t")])
    with pytest.raises(ValueError, match="missing"):
        load_images(tmp_path, 8)


def _picture(size=64):
    rng = np.random.default_rng(0)
    return (rng.random((size, size, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("size", [16, 32, 96])
def test_augment_shapes_and_determinism(size):
    img = _picture()
    params = AugmentParams()
    a = augment(img, np.random.default_rng(5), size, params)
    b = augment(img, np.random.default_rng(5), size, params)
    c = augment(img, np.random.default_rng(6), size, params)
    assert a.shape == (size, size, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_augment_without_changes_is_a_resize():
    img = _picture(32)
    off = AugmentParams(crop_scale=(1.0, 1.0), flip=False)
    out = augment(img, np.random.default_rng(0), 32, off)
    assert np.array_equal(out, img)


def test_load_time_augmentation_keeps_the_pixels_real():
    """Crops and flips only: every output pixel value occurs in the image (no colour change,
    blur, JPEG or cutout that the generator would learn to reproduce)."""
    img = _picture(32)
    out = augment(img, np.random.default_rng(3), 32, AugmentParams(crop_scale=(1.0, 1.0)))
    flips = [img, img[:, ::-1], img[::-1], img[::-1, ::-1]]
    assert any(np.array_equal(out, f) for f in flips)


def test_augmented_dataset_items():
    pytest.importorskip("torch")
    images = np.stack([_picture(48)] * 3)
    ds = AugmentedImages(images, 32, params=AugmentParams(), seed=1)
    x0 = ds[0]
    assert tuple(x0.shape) == (3, 32, 32) and float(x0.min()) >= -1 and float(x0.max()) <= 1
    assert np.array_equal(ds[0].numpy(), x0.numpy())
    ds.set_epoch(1)
    assert not np.array_equal(ds[0].numpy(), x0.numpy())  # new draws each epoch
    plain = AugmentedImages(images, 24)
    assert tuple(plain[2].shape) == (3, 24, 24) and len(plain) == 3


@pytest.mark.parametrize("row", [1, 2, 3, 4])
def test_committed_sample_regenerates_exactly(row):
    """data/sample holds the first images of the bundled set; they regenerate by seed."""
    from PIL import Image

    from stratum_kernel.core.paths import project_root

    sample = project_root() / "data" / "sample"
    rec = read_manifest(sample)[row]
    img, _ = generate(rec.bucket, rec.seed, rec.width)
    assert np.array_equal(np.asarray(Image.open(sample / rec.file).convert("RGB")), img)
