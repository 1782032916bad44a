"""Run-record helpers: the summary table from the typed record, figures and previews."""

from __future__ import annotations

import numpy as np
from PIL import Image

from stratum_kernel.core.timeline import FrameFeatures
from stratum_kernel.render.config import RenderConfig
from stratum_kernel.render.record import RUN_FORMAT, RunRecord
from stratum_kernel.studio import run_record


def _record(timed: bool = True) -> RunRecord:
    def track(tid, frames, seconds):
        timing = {"frames_rendered": frames, "frames_seconds": seconds} if timed else None
        return {"id": tid, "fps": 24.0, "preset": "pulse", "seed": 3, "frames": frames,
                "duration": frames / 24, "frames_sha256": "a" * 64, "decoded_sha256": "b" * 64,
                "film": {"file": f"{tid}.mp4", "sha256": "c" * 64, "width": 96, "height": 64},
                "previews": [], "timing": timing}

    return RunRecord.model_validate({
        "format": RUN_FORMAT, "run_id": "r1",
        "tracks": [track("a", 48, 1.5), track("b-2", 24, 0.8)],
        "album": {"frames": 72, "duration": 3.0, "sha256": "d" * 64}})


def test_summary_rows_and_table():
    rows = run_record.summary_rows(_record(), 4.2)
    assert [r["track"] for r in rows] == ["a", "b-2", "album.mp4"]
    assert rows[0]["render s"] == 1.5 and rows[0]["fps"] == 32.0
    assert rows[0]["× real time"] == 1.33
    assert rows[0]["frames sha256"] == "a" * 12 and rows[2]["film sha256"] == "d" * 12
    assert rows[2]["render s"] == 4.2 and rows[1]["length s"] == 1.0
    html = run_record.html_table(rows, caption="run <r1>")
    assert html.count("<tr>") == 4 and "&lt;r1&gt;" in html and "<th" in html
    assert "nothing" in run_record.html_table([])
    no_times = run_record.summary_rows(_record(timed=False))
    assert no_times[0]["render s"] == "" and no_times[2]["render s"] == ""


def test_feature_figure_has_a_panel_per_track():
    n = 48
    t = np.arange(n) / 24
    ff = FrameFeatures(track_id="a", fps=24.0, start=0.0, n_frames=n,
                       values={"rms": np.abs(np.sin(t)).astype(np.float32)},
                       stems={"bass": {"envelope": np.full(n, 0.3, np.float32)}},
                       beat_frames=np.array([0, 12, 24]), tempo=120.0, markers=(1.0,))
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
    record = _record()
    record.tracks[0].previews = ["a_start_0000.00s.png", "a.gif", "a_gone.png"]
    html = run_record.previews_html(tmp_path, record, width=120)
    assert html.count("data:image/jpeg;base64,") == 1 and "data:image/gif;base64," in html
    assert "start_0000.00s" in html and "width='120'" in html and "gone" not in html


def test_config_yaml_shows_the_resolved_config(tmp_path):
    cfg = RenderConfig.from_dict({"output_root": str(tmp_path), "frame_rate": 30})
    text = run_record.config_yaml(cfg)
    assert "frame_rate: 30" in text and "resolved_paths:" in text and str(tmp_path) in text
