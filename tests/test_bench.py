"""The render and encode benchmarks run end to end on tiny sizes (their figures are real
measurements; only the sizes are small)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stratum_kernel import cli
from stratum_kernel.bench.encode import CANDIDATES, study


def test_encode_study_scores_each_candidate(tmp_path):
    w, h, n = 96, 64, 24
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.stack([np.stack([(xx * 2 + 3 * i) % 256, (yy * 3) % 256,
                                 np.full_like(xx, 40 + i)], axis=-1) for i in range(n)])
    raw = tmp_path / "frames.rgb"
    frames.astype(np.uint8).tofile(raw)
    rows = study(raw, tmp_path, n, (w, h), 24.0, kbps=400, threads=1, repeats=1,
                 candidates=CANDIDATES[:2], vmaf=False)
    assert [r["name"] for r in rows] == ["ultrafast", "superfast"]
    for r in rows:
        assert 0.5 < r["ssim_y"] <= 1.0 and r["psnr_y"] > 20
        assert r["cpu_ms_per_frame"] > 0 and r["fps"] > 0 and r["kbps"] > 0
    assert not (tmp_path / "candidate.mp4").exists()


@pytest.mark.train
@pytest.mark.filterwarnings("ignore")
def test_bench_render_in_bfloat16_reports_its_decoder_and_the_levels_it_is_off(
        torch_model_dir, tmp_path, capsys):
    out = tmp_path / "render.json"
    assert cli.main(["bench", "render", "--quick", "--repeats", "1", "--size", "160x96",
                     "--models", str(torch_model_dir), "--precision", "bfloat16",
                     "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "decoder torch:cpu:bfloat16" in text and "decoder vs float32" in text
    data = json.loads(out.read_text())["render"]
    assert data["decoder"] == "torch:cpu:bfloat16"
    drift = data["decoder_vs_float32"]
    assert 0 < drift["mean"] < 1.5 and drift["max"] <= 16


def test_bench_render_quick_reports_speed_quality_and_aims(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "render.json"
    assert cli.main(["bench", "render", "--quick", "--repeats", "1", "--size", "160x96",
                     "--models", str(tiny_model_dir), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("pipeline end to end", "aim >= 2.5x", "draft encode quality", "SSIM Y",
                   "2-core bound", "load"):
        assert needle in text, needle
    data = json.loads(out.read_text())["render"]
    assert data["size"] == [160, 96] and data["fps"] == 24.0
    assert data["fps_pipeline"] > 0 and 0 < data["quality"]["ssim_y"] <= 1
