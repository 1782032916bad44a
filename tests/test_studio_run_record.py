"""Run-record helpers: timings from render.log, the summary table, figures and previews."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stratum_kernel.config import RenderConfig
from stratum_kernel.studio import run_record
from stratum_kernel.timeline import FrameFeatures

LOG = """\
2026-01-01 10:00:00,000 INFO stratum_kernel.render: run r1: 2 track(s) a,b-2 at 96x64 24 fps
2026-01-01 10:00:01,000 INFO stratum_kernel.render_pipeline: a: chunk 0 (frames 0-47) done
2026-01-01 10:00:02,000 INFO stratum_kernel.render_pipeline: a: 48 frames in 1.50 s (32.00 fps, 1.33x real time)
2026-01-01 10:00:03,000 INFO stratum_kernel.render_pipeline: b-2: 24 frames in 0.80 s (30.00 fps, 1.25x real time)
2026-01-01 10:00:04,000 INFO stratum_kernel.render: run r1 finished: 72 frames in 4.2 s (17.14 fps)
"""  # noqa: E501


def _meta():
    def track(tid, frames):
        return {"id": tid, "preset": "pulse", "seed": 3, "frames": frames,
                "duration": frames / 24, "frames_sha256": "a" * 64, "decoded_sha256": "b" * 64,
                "film": {"sha256": "c" * 64}, "previews": []}

    return {"run_id": "r1", "tracks": [track("a", 48), track("b-2", 24)],
            "album": {"frames": 72, "duration": 3.0, "sha256": "d" * 64}}


def test_track_timings_from_render_log(tmp_path):
    (tmp_path / "render.log").write_text(LOG)
    t = run_record.track_timings(tmp_path)
    assert t["a"] == {"frames": 48, "seconds": 1.5, "fps": 32.0, "realtime": 1.33}
    assert t["b-2"]["seconds"] == 0.8 and t["(run)"] == {"frames": 72, "seconds": 4.2}
    assert run_record.track_timings(tmp_path / "missing") == {}


def test_summary_rows_and_table(tmp_path):
    (tmp_path / "render.log").write_text(LOG)
    rows = run_record.summary_rows(_meta(), run_record.track_timings(tmp_path))
    assert [r["track"] for r in rows] == ["a", "b-2", "album.mp4"]
    assert rows[0]["render s"] == 1.5 and rows[0]["× real time"] == 1.33
    assert rows[0]["frames sha256"] == "a" * 12 and rows[2]["film sha256"] == "d" * 12
    assert rows[2]["render s"] == 4.2 and rows[1]["length s"] == 1.0
    html = run_record.html_table(rows, caption="run <r1>")
    assert html.count("<tr>") == 4 and "&lt;r1&gt;" in html and "<th" in html
    assert "nothing" in run_record.html_table([])
    no_times = run_record.summary_rows(_meta(), {})
    assert no_times[0]["render s"] == ""


def test_feature_figure_has_a_panel_per_track():
    n = 48
    t = np.arange(n) / 24
    ff = FrameFeatures(track_id="a", fps=24.0, start=0.0, n_frames=n,
                       values={"rms": np.abs(np.sin(t)).astype(np.float32)},
                       stems={"bass": {"envelope": np.full(n, 0.3, np.float32)}},
                       beat_frames=np.array([0, 12, 24]), beat_phase=np.zeros(n, np.float32),
                       tempo=120.0, markers=(1.0,))
    fig = run_record.feature_figure({"a": ff, "b": ff})
    assert len(fig.axes) == 2 and "120.0 bpm" in fig.axes[0].get_title(loc="left")
    labels = [ln.get_label() for ln in fig.axes[0].lines]
    assert "rms" in labels and "bass" in labels
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_previews_html_embeds_small_thumbnails(tmp_path):
    prev = tmp_path / "previews"
    prev.mkdir()
    Image.new("RGB", (640, 360), (200, 10, 10)).save(prev / "a_start_0000.00s.png")
    frames = [Image.new("RGB", (32, 18), (0, 0, v)) for v in (0, 128, 255)]
    frames[0].save(prev / "a.gif", save_all=True, append_images=frames[1:])
    meta = _meta()
    meta["tracks"][0]["previews"] = ["a_start_0000.00s.png", "a.gif", "a_gone.png"]
    html = run_record.previews_html(tmp_path, meta, width=120)
    assert html.count("data:image/jpeg;base64,") == 1 and "data:image/gif;base64," in html
    assert "start_0000.00s" in html and "width='120'" in html and "gone" not in html


def test_config_yaml_shows_the_resolved_config(tmp_path):
    cfg = RenderConfig.from_dict({"output_root": str(tmp_path), "frame_rate": 30})
    text = run_record.config_yaml(cfg)
    assert "frame_rate: 30" in text and "resolved_paths:" in text and str(tmp_path) in text


def test_load_meta(tmp_path):
    (tmp_path / "meta.json").write_text('{"run_id": "x"}')
    assert run_record.load_meta(tmp_path) == {"run_id": "x"}
    with pytest.raises(FileNotFoundError):
        run_record.load_meta(tmp_path / "nope")
