"""Faults: each gives a clear message, leaves nothing half-written under a final name, and a
resumed run ends with the same bytes as an uninterrupted one.

Real ffmpeg and ONNX Runtime at tiny sizes (160x96, 24 frames per track); the album
analysis is the numpy stand-in of ``tests/test_render.py``. The signal tests run the
command line in a subprocess through this module's ``__main__`` (the same ``cli.main`` with
the analysis stand-in and an optional per-batch decode delay, so a signal lands mid-run).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stratum_kernel.core.errors import ModelError, RenderError
from tests.test_render import NumpyAnalysis, render, sha, write_album

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"tracks": ["track1"], "render__duration": 1.0, "render__chunk_frames": 8}


@pytest.fixture(scope="module")
def album_dir(tmp_path_factory) -> Path:
    return write_album(tmp_path_factory.mktemp("fault_album"))


@pytest.fixture(scope="module")
def baseline(album_dir, tiny_model_dir, tmp_path_factory):
    """An uninterrupted run: track1, 24 frames in three chunks of 8."""
    return render(album_dir, tiny_model_dir, tmp_path_factory.mktemp("fault_base"), "base",
                  **SMALL)


def _no_partial_files(run: Path) -> None:
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name], "temporary files left"


def _same_bytes(run: Path, base: Path) -> None:
    for name in ("track1.mp4", "album.mp4"):
        assert sha(run / name) == sha(base / name), name


def _finished_chunks(run: Path) -> set[str]:
    state = run / ".work" / "track1" / "state.json"
    return set(json.loads(state.read_text())["chunks"]) if state.exists() else set()


# ------------------------------------------------------------------------ ffmpeg dies


def test_ffmpeg_killed_mid_encode(baseline, album_dir, tiny_model_dir, tmp_path, monkeypatch):
    from stratum_kernel.film import encode

    real_write = encode.VideoEncoder.write
    writes = {"n": 0}

    def write(self, frames):
        writes["n"] += 1
        if writes["n"] == 3:  # the first batch of chunk 1 (batch 4, chunks of 8)
            self._proc.kill()
            self._proc.wait()
        return real_write(self, frames)

    monkeypatch.setattr(encode.VideoEncoder, "write", write)
    with pytest.raises(RenderError, match=r"killed by signal 9 \(SIGKILL\)"):
        render(album_dir, tiny_model_dir, tmp_path, "k", **SMALL)
    run = tmp_path / "k"
    assert not (run / "track1.mp4").exists() and not (run / "meta.json").exists()
    _no_partial_files(run)
    assert _finished_chunks(run) == {"0"}
    assert "continue it with --resume" in (run / "render.log").read_text()
    monkeypatch.undo()
    done: list = []
    render(album_dir, tiny_model_dir, tmp_path, "k", resume=True,
           on_chunk=lambda t, c: done.append(c), **SMALL)
    assert done == [1, 2]
    _same_bytes(run, baseline.run_dir)


# ------------------------------------------------------------- SIGINT / SIGTERM (CLI)


def _write_cli_config(tmp: Path, album_dir: Path, model_dir: Path) -> Path:
    cfg = tmp / "render.yaml"
    cfg.write_text(
        f"album_dir: {album_dir}\nmodel_dir: {model_dir}\noutput_root: {tmp / 'out'}\n"
        "resolution: 160x96\nframe_rate: 24\ncontroller: {preset: pulse}\n"
        "postfx: {persistence: 0.6, grain_intensity: 0.25}\n"
        "render: {chunk_frames: 8, duration: 1.0}\ndecoder: {batch_size: 2, threads: 1}\n"
    )
    return cfg


def _cli(cfg: Path, run_id: str, *extra: str, delay: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "STRATUM_TEST_DECODE_DELAY": str(delay)}
    cmd = [sys.executable, "-m", "tests.test_faults", "render", "--config", str(cfg),
           "--run-id", run_id, "--tracks", "track1", "--no-progress", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture
def stand_in_analysis(monkeypatch):
    """The in-process CLI with the numpy analysis stand-in (as ``_main`` does)."""
    from stratum_kernel.render import run as render_mod

    real_init = render_mod.RenderContext.__init__

    def init(self, config, **kw):
        real_init(self, config, **kw)
        self._analysis = NumpyAnalysis(self.album)

    monkeypatch.setattr(render_mod.RenderContext, "__init__", init)


@pytest.fixture(scope="module")
def cli_setup(album_dir, tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fault_cli")
    cfg = _write_cli_config(tmp, album_dir, tiny_model_dir)
    proc = _cli(cfg, "whole")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return cfg, tmp / "out"


@pytest.mark.parametrize(("sig", "code", "said"), [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated (SIGTERM); stopped cleanly"),
])
def test_cli_signal_stops_cleanly_and_resumes(cli_setup, stand_in_analysis, sig, code, said):
    cfg, out = cli_setup
    run_id = f"sig{int(sig)}"
    run = out / run_id
    proc = _cli(cfg, run_id, delay=0.25)
    try:
        deadline = time.monotonic() + 90
        while not _finished_chunks(run):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "no chunk finished in time"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert said in err and "Traceback" not in err
    assert not (run / "meta.json").exists() and not (run / "track1.mp4").exists()
    assert 1 <= len(_finished_chunks(run)) < 3
    _no_partial_files(run)
    assert "continue it with --resume --run-id " + run_id in (run / "render.log").read_text()
    from stratum_kernel.cli import main

    assert main(["render", "--config", str(cfg), "--run-id", run_id, "--tracks", "track1",
                 "--no-progress", "--resume"]) == 0
    _same_bytes(run, out / "whole")


def _fake_command(run):
    class Command:
        @staticmethod
        def add_arguments(parser):
            pass

    Command.run = staticmethod(run)
    return Command


@pytest.mark.parametrize(("raised", "code", "said"), [
    ("sigterm", 143, "stratum: terminated (SIGTERM); stopped cleanly"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/x.npz"), 1,
     "stratum: error: no space left on device while writing /data/x.npz: free some space;"),
    (PermissionError(errno.EACCES, "Permission denied", "/x"), 1,
     "stratum: error: PermissionError: [Errno 13] Permission denied: '/x' (run with --debug"),
])
def test_cli_turns_signals_and_os_errors_into_one_line(monkeypatch, capsys, raised, code, said):
    from stratum_kernel import cli

    def run(args):
        if raised == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
            return 0
        raise raised

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "_load_command", lambda name: _fake_command(run))
    assert cli.main(["verify"]) == code
    assert said in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before  # the CLI's handler is removed again


# ------------------------------------------------------------------ CUDA falls back


def test_cuda_provider_failure_falls_back_to_cpu(tiny_model, monkeypatch, caplog):
    import onnxruntime as ort

    from stratum_kernel.picture import decoder as dec

    real_session = ort.InferenceSession
    tried: list = []

    def session(path, so=None, providers=None, **kw):
        tried.append(list(providers or []))
        if providers and providers[0] == dec.CUDA_EP:
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        return real_session(path, so, providers=providers, **kw)

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: [dec.CUDA_EP, dec.CPU_EP])
    monkeypatch.setattr(ort, "preload_dlls", lambda *a, **k: None, raising=False)
    monkeypatch.setattr(dec, "_nvidia_device_present", lambda: True)
    monkeypatch.setattr(dec, "_cuda_works", None)
    with caplog.at_level(logging.WARNING, logger="stratum_kernel.picture.decoder"):
        fd = dec.FrameDecoder(tiny_model, dec.DecoderParams(execution_provider="auto"))
    assert fd.provider == dec.CPU_EP and tried[0][0] == dec.CUDA_EP
    assert "CUDA could not be used" in caplog.text and "CUDA failure 100" in caplog.text
    import numpy as np

    frames = fd.decode(np.zeros((2, 8, 16, 16), np.float32))
    assert frames.shape == (2, 64, 64, 3)
    monkeypatch.setattr(dec, "_cuda_works", None)
    with pytest.raises(RenderError, match=r"execution_provider is 'cuda'"):
        dec.FrameDecoder(tiny_model, dec.DecoderParams(execution_provider="cuda"))


# ------------------------------------------------------------- corrupt feature cache


def test_corrupt_feature_cache_is_recomputed(make_album, tmp_path, caplog):
    """A cache file cut short by a crash, or another track's file under this name."""
    from stratum_kernel.analysis.cache import FeatureCache
    from stratum_kernel.audio.album import load_album

    album = load_album(make_album(2, duration=1.0, stems=False))
    cache = FeatureCache(tmp_path / "features")
    a, b = album.tracks
    good_a = cache.load_or_compute(a, stems="none")
    cache.load_or_compute(b, stems="none")
    (pa,) = (tmp_path / "features").glob(f"{a.id}-*.npz")
    (pb,) = (tmp_path / "features").glob(f"{b.id}-*.npz")
    for damage in ("cut", "swapped"):
        data = pa.read_bytes()
        pa.write_bytes(data[: len(data) * 2 // 3] if damage == "cut" else pb.read_bytes())
        with caplog.at_level(logging.WARNING, logger="stratum_kernel.analysis.cache"):
            again = cache.load_or_compute(a, stems="none")
        assert "recomputing" in caplog.text
        caplog.clear()
        assert again.track_id == a.id
        for name, series in good_a.series.items():
            assert (again.series[name] == series).all(), name


# ------------------------------------------------------------ corrupt / wrong model


@pytest.mark.parametrize("damage", ["flipped_byte", "truncated", "other_model", "no_onnx",
                                    "bad_meta"])
def test_corrupt_or_mismatched_model(tiny_model_dir, tmp_path, damage):
    import shutil

    from stratum_kernel.picture.model import load_model
    from tests.fixtures_model import build_tiny_onnx

    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    onnx = d / "generator.onnx"
    if damage == "flipped_byte":
        data = bytearray(onnx.read_bytes())
        data[len(data) // 2] ^= 0xFF
        onnx.write_bytes(bytes(data))
    elif damage == "truncated":
        onnx.write_bytes(onnx.read_bytes()[:100])
    elif damage == "other_model":
        build_tiny_onnx(onnx, seed=7)
    elif damage == "no_onnx":
        onnx.unlink()
    else:
        (d / "meta.json").write_text('{"format": "stratum-generator/1", "name": ')
    with pytest.raises(ModelError) as info:
        load_model(d)
    msg = str(info.value)
    assert str(d) in msg
    if damage in ("flipped_byte", "truncated", "other_model"):
        assert "does not match meta.json field 'onnx.sha256'" in msg
    elif damage == "no_onnx":
        assert "missing" in msg
    else:
        assert "meta.json" in msg


def test_render_refuses_a_mismatched_model(album_dir, tiny_model_dir, tmp_path):
    import shutil

    from tests.fixtures_model import build_tiny_onnx

    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    build_tiny_onnx(d / "generator.onnx", seed=3)
    with pytest.raises(ModelError, match=r"onnx\.sha256"):
        render(album_dir, d, tmp_path / "out", "m", **SMALL)
    assert not (tmp_path / "out" / "m").exists()  # refused before the run folder exists


# ------------------------------------------------------------------------- disk full


def test_disk_full_while_writing_run_files(album_dir, tiny_model_dir, tmp_path, monkeypatch,
                                           capsys, stand_in_analysis):
    """ENOSPC injected into the run's own writes (a torn meta.json)."""
    from stratum_kernel.cli import main

    real_write_text = Path.write_text

    def full(self, *args, **kwargs):
        if self.name.startswith("meta.tmp-"):
            real_write_text(self, "{\"partial", encoding="utf-8")  # a torn write...
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    cfg = _write_cli_config(tmp_path, album_dir, tiny_model_dir)
    code = main(["render", "--config", str(cfg), "--run-id", "full", "--tracks", "track1",
                 "--no-progress", "--batch-size", "4"])
    err = capsys.readouterr().err
    assert code == 1
    assert "no space left on device" in err and "--resume --run-id full" in err
    run = tmp_path / "out" / "full"
    assert not (run / "meta.json").exists()
    monkeypatch.setattr(Path, "write_text", real_write_text)
    for p in run.glob("meta.tmp-*"):  # ...that the user may find, under a temp name
        p.unlink()
    assert main(["render", "--config", str(cfg), "--run-id", "full", "--tracks", "track1",
                 "--no-progress", "--resume"]) == 0
    assert json.loads((run / "meta.json").read_text())["run_id"] == "full"


def _fake_ffmpeg(tmp: Path, real: str, mode: str) -> Path:
    """A wrapper around the real ffmpeg: 'full' sends every temporary output to /dev/full
    (real ENOSPC from the kernel)."""
    script = tmp / f"ffmpeg-{mode}"
    script.write_text(
        "#!/bin/bash\nargs=(\"$@\")\nlast=\"${args[-1]}\"\n"
        "if [[ \"$last\" == *.tmp-* ]]; then args[-1]=/dev/full; fi\n"
        f"exec {real} \"${{args[@]}}\"\n"
    )
    script.chmod(0o755)
    return script


@pytest.fixture
def fresh_ffmpeg_lookup():
    from stratum_kernel.film import encode

    encode.ffmpeg_exe.cache_clear()
    encode.ffmpeg_version.cache_clear()
    yield encode
    encode.ffmpeg_exe.cache_clear()
    encode.ffmpeg_version.cache_clear()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_disk_full_while_encoding(baseline, album_dir, tiny_model_dir, tmp_path, monkeypatch,
                                  fresh_ffmpeg_lookup):
    real = fresh_ffmpeg_lookup.ffmpeg_exe()
    fresh_ffmpeg_lookup.ffmpeg_exe.cache_clear()
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(_fake_ffmpeg(tmp_path, real, "full")))
    with pytest.raises(RenderError, match="No space left on device") as info:
        render(album_dir, tiny_model_dir, tmp_path, "enc", **SMALL)
    assert "is full: free some space, then continue the run with --resume" in str(info.value)
    run = tmp_path / "enc"
    assert not (run / "track1.mp4").exists() and not (run / "meta.json").exists()
    _no_partial_files(run)
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    fresh_ffmpeg_lookup.ffmpeg_exe.cache_clear()
    fresh_ffmpeg_lookup.ffmpeg_version.cache_clear()
    render(album_dir, tiny_model_dir, tmp_path, "enc", resume=True, **SMALL)
    _same_bytes(run, baseline.run_dir)


# --------------------------------------------------------------------- ffmpeg missing


def test_missing_ffmpeg_binary(baseline, album_dir, tiny_model_dir, tmp_path, monkeypatch,
                               fresh_ffmpeg_lookup):
    missing = tmp_path / "no" / "ffmpeg"
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(missing))
    with pytest.raises(RenderError) as info:
        fresh_ffmpeg_lookup.ffmpeg_exe()
    msg = str(info.value)
    assert str(missing) in msg and "IMAGEIO_FFMPEG_EXE" in msg
    with pytest.raises(RenderError, match="ffmpeg"):
        render(album_dir, tiny_model_dir, tmp_path, "nf", **SMALL)
    run = tmp_path / "nf"
    assert not run.exists()  # found before the run folder was made: the id stays free
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    fresh_ffmpeg_lookup.ffmpeg_exe.cache_clear()
    render(album_dir, tiny_model_dir, tmp_path, "nf", **SMALL)
    _same_bytes(run, baseline.run_dir)


# ------------------------------------------------------------- kernel dies (papermill)


def _dying_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("config = None\nrun_id = None\noutput_root = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print('working')"),
                nbformat.v4.new_code_cell("import os\nos._exit(3)  # the kernel dies"),
                nbformat.v4.new_code_cell("print('never')")]
    nb.metadata["kernelspec"] = {"name": "stratum", "display_name": "stratum",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_kernel_dying_under_papermill_make_render(tmp_path):
    """``make render`` with a notebook whose kernel dies: papermill fails, the Makefile says
    so in one line, and no finished-looking run record is left."""
    import shutil

    from tests.test_notebooks import ensure_stratum_kernel

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    ensure_stratum_kernel()
    nb = _dying_notebook(tmp_path / "die.ipynb")
    renders = tmp_path / "renders"
    cmd = ["make", "-s", "-o", ".venv/.stratum-setup", "render", f"NOTEBOOK={nb}",
           f"RENDERS={renders}", "RUN_ID=dead"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode != 0
    assert "DeadKernelError" in out.stderr or "Kernel died" in out.stderr
    said = [ln for ln in out.stderr.splitlines() if ln.startswith("make render:")]
    assert said and "the render notebook did not finish" in said[0], out.stderr[-2000:]
    assert "--run-id dead --resume" in out.stderr
    run = renders / "dead"
    assert not (run / "render_album.ipynb").exists()
    assert not (run / "render_album.partial.ipynb").exists()
    failed = run / "render_album.FAILED.ipynb"
    assert failed.is_file()
    import nbformat

    cells = nbformat.read(failed, 4).cells
    assert any("working" in str(c.get("outputs")) for c in cells)
    assert not any("never" in str(c.get("outputs")) for c in cells)


# ------------------------------------------------------------ the CLI entry for tests


def _main() -> int:
    """``python -m tests.test_faults render ...``: the real CLI with the analysis stand-in
    and ``$STRATUM_TEST_DECODE_DELAY`` seconds of sleep per decoded batch."""
    from stratum_kernel.cli import main
    from stratum_kernel.render import run as render_mod

    delay = float(os.environ.get("STRATUM_TEST_DECODE_DELAY") or 0)
    real_init = render_mod.RenderContext.__init__
    real_decode = render_mod.RenderContext.decode

    def init(self, config, **kw):
        real_init(self, config, **kw)
        self._analysis = NumpyAnalysis(self.album)

    def decode(self, job, start, stop):
        if delay:
            time.sleep(delay)
        return real_decode(self, job, start, stop)

    render_mod.RenderContext.__init__ = init
    render_mod.RenderContext.decode = decode
    return main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(_main())
