"""Stable Diffusion set generation, end to end on a tiny random SD pipeline built here.

The pipeline (tiny UNet, VAE, CLIP text encoder, a byte-level tokenizer with a written
vocabulary and no merges) is saved with ``save_pretrained`` and loaded back through
``training.sd_generate.load_pipeline`` with ``local_files_only`` — no network.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_torch_thread")]

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from stratum_kernel.core.errors import ConfigError, ModelError  # noqa: E402
from training import sd_generate  # noqa: E402
from training.dataset import ImageRecord, read_manifest  # noqa: E402


def _byte_chars() -> list[str]:
    """GPT-2/CLIP's byte → printable-unicode table (the base alphabet of byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _tiny_tokenizer(folder):
    from transformers import CLIPTokenizer

    chars = _byte_chars()
    vocab = {}
    for ch in chars:
        vocab[ch] = len(vocab)
    for ch in chars:
        vocab[ch + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    return tok, len(vocab)


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny-sd")
    tok_dir = root / "tok-src"
    tok_dir.mkdir()
    tokenizer, vocab_size = _tiny_tokenizer(tok_dir)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
        )
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(steps_offset=1, clip_sample=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    model_dir = root / "sd-tiny"
    pipe.save_pretrained(str(model_dir))
    return model_dir


def _config(tmp_path, model_dir, **kw):
    doc = {
        "model_path": str(model_dir),
        "size": 16,
        "steps": [2, 3],
        "guidance": [6.5, 9.5],
        "per_bucket": 2,
        "seed": 7,
        "cull_fraction": 0.5,
        "negative": "text, logo, people",
        "styles": ["vivid"],
        "buckets": {
            "glitch": {"prompts": ["glitch art, rgb split"]},
            "colour_field": {"prompts": ["soft colour field", "gradient bands"]},
        },
    }
    doc.update(kw)
    path = tmp_path / "prompts.yaml"
    import yaml

    path.write_text(yaml.safe_dump(doc))
    return path


def test_end_to_end_tiny_pipeline(tmp_path, tiny_sd):
    cfg = sd_generate.load_sd_config(_config(tmp_path, tiny_sd))
    pipe = sd_generate.load_pipeline(cfg.model_path)
    out = tmp_path / "set"
    records = sd_generate.generate_set(pipe, cfg, out, progress=False)
    assert len(records) == 4
    with open(out / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    # one of two per bucket culled (floor(2 * 0.5) = 1), the lowest score of each bucket
    assert sum(int(r["kept"]) for r in rows) == 2
    for bucket in ("glitch", "colour_field"):
        mine = [r for r in read_manifest(out) if r.bucket == bucket]
        dropped = [r for r in mine if not r.kept]
        assert len(dropped) == 1
        assert dropped[0].score == min(r.score for r in mine)
    side = json.loads((out / "images" / "glitch-00000.json").read_text())
    assert side["source"] == "stable-diffusion"
    p = side["params"]
    assert 2 <= p["steps"] <= 3 and 6.5 <= p["guidance"] <= 9.5
    assert p["negative_prompt"] == "text, logo, people" and p["prompt"].endswith("vivid")
    from PIL import Image

    img = np.asarray(Image.open(out / "images" / "glitch-00000.png"))
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    # the recorded settings regenerate the same image
    one = cfg.model_copy(update={"buckets": {"glitch": cfg.buckets["glitch"]}, "per_bucket": 1})
    again = sd_generate.generate_set(pipe, one, tmp_path / "again", progress=False)
    assert again[0].sha256 == next(r.sha256 for r in records if r.file.endswith("glitch-00000.png"))


def test_draw_settings_deterministic_and_in_range(tmp_path, tiny_sd):
    cfg = sd_generate.load_sd_config(_config(tmp_path, tiny_sd, steps=[20, 35]))
    a = [sd_generate.draw_settings(cfg, "glitch", i) for i in range(20)]
    b = [sd_generate.draw_settings(cfg, "glitch", i) for i in range(20)]
    assert a == b
    assert len({s["seed"] for s in a}) == 20
    assert all(20 <= s["steps"] <= 35 and 6.5 <= s["guidance"] <= 9.5 for s in a)


def test_missing_weights_and_bad_config(tmp_path):
    with pytest.raises(ModelError, match=r"model_index\.json"):
        sd_generate.load_pipeline(tmp_path / "nowhere")
    bad = _config(tmp_path, tmp_path, steps=[30, 20])
    with pytest.raises(ConfigError, match="steps"):
        sd_generate.load_sd_config(bad)
    with pytest.raises(ConfigError, match="prompt file not found"):
        sd_generate.load_sd_config(tmp_path / "missing.yaml")


def test_quality_score_prefers_vivid_sharp():
    rng = np.random.default_rng(0)
    grey = np.full((32, 32, 3), 128, np.uint8)
    vivid = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    assert sd_generate.quality_score(vivid) > sd_generate.quality_score(grey) + 0.5


def test_cull_without_fraction_keeps_all():
    recs = [ImageRecord(f"images/{i}.png", "b", i, 8, 8, "0" * 64, "x", score=i) for i in range(4)]
    assert sd_generate.cull(recs, 0.0) == recs
    assert [r.kept for r in sd_generate.cull(recs, 0.5)] == [False, False, True, True]
