"""The notebooks: run under nbval (every cell, with the ``stratum`` kernel) on a tiny album
and model, executed by papermill into a run folder, and committed clean.

The notebooks read their parameters from papermill's ``parameters`` cell; values left as
None come from ``STRATUM_NB_<NAME>`` environment variables (see
``stratum_kernel/studio/notebook_params.py``), which is how the tiny album, the tiny model
and small sizes reach the kernels here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from tests.test_studio_preview import write_studio_album

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MINE = ("explore_presets", "dashboard", "render_album")


def ensure_stratum_kernel() -> None:
    """The set-up registers the ``stratum`` kernelspec in .venv; register it when missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "stratum" not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix",
                        "--name", "stratum", "--display-name", "stratum"], check=True,
                       capture_output=True)


def notebook_env(tmp: Path, album: Path, model: Path, **extra: str) -> dict[str, str]:
    """The environment the notebook kernels inherit: tiny album and model, small sizes, a
    private settings file, and byte-code caching under cache/ (the machine sets
    PYTHONDONTWRITEBYTECODE, which makes every kernel recompile scipy on import)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({
        "PYTHONPYCACHEPREFIX": str(ROOT / "cache" / "pycache"),
        "STRATUM_SETTINGS": str(tmp / "settings.yaml"),
        "STRATUM_NB_CONFIG": "none",
        "STRATUM_NB_ALBUM_DIR": str(album),
        "STRATUM_NB_MODEL_DIR": str(model),
        "STRATUM_NB_OUTPUT_ROOT": str(tmp / "renders"),
        "STRATUM_NB_RESOLUTION": "96x64",
        "STRATUM_NB_DURATION": "1",
        "STRATUM_NB_PREVIEW": "96x64",
        **extra,
    })
    return env


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("nb")
    album = write_studio_album(tmp / "album")
    return tmp, album, tiny_model_dir


@pytest.fixture(scope="module")
def nbval_report(tiny_project):
    """One pytest --nbval-lax run over the studio's notebooks; {notebook: [failures]}."""
    ensure_stratum_kernel()
    tmp, album, model = tiny_project
    junit = tmp / "nbval.xml"
    paths = [str(NOTEBOOKS / f"{n}.ipynb") for n in MINE]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider",
         "--nbval-cell-timeout", "120", f"--junitxml={junit}", *paths],
        cwd=ROOT, env=notebook_env(tmp, album, model), capture_output=True, text=True,
        timeout=600)
    if not junit.exists():
        pytest.fail(f"nbval did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    out: dict[str, list[str]] = {n: [] for n in MINE}
    cells: dict[str, int] = dict.fromkeys(MINE, 0)
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = Path(case.get("classname", "").replace(".", "/")).name or case.get("file", "")
        nb = next((n for n in MINE if n in (case.get("classname", "") + case.get("name", ""))
                   or n in name), None)
        if nb is None:
            continue
        cells[nb] += 1
        for bad in (*case.iter("failure"), *case.iter("error")):
            out[nb].append(f"{case.get('name')}: {(bad.get('message') or '')[:300]}\n"
                           f"{(bad.text or '')[-1500:]}")
    return out, cells, proc.stdout[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", MINE)
def test_notebook_runs_under_nbval(nbval_report, name):
    failures, cells, tail = nbval_report
    assert cells[name] >= 3, f"no cells of {name} ran:\n{tail}"
    assert not failures[name], "\n\n".join(failures[name])


@pytest.mark.slow
def test_papermill_writes_the_run_record_into_the_run_folder(tiny_project):
    """The README's command, on the tiny album: the executed notebook lands in the run
    folder with the resolved config, a summary table with digests, and verification."""
    ensure_stratum_kernel()
    tmp, album, model = tiny_project
    run = tmp / "renders" / "pm-run"
    run.mkdir(parents=True)
    out = run / "render_album.ipynb"
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", "-k", "stratum", "--no-progress-bar",
         str(NOTEBOOKS / "render_album.ipynb"), str(out), "-p", "run_id", "pm-run",
         "-p", "tracks", "track2", "-p", "fps", "30", "-p", "seed", "7"],
        cwd=ROOT, env=notebook_env(tmp, album, model), capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((run / "meta.json").read_text())
    assert [t["id"] for t in meta["tracks"]] == ["track2"]
    assert meta["config"]["frame_rate"] == 30 and meta["config"]["seed"] == 7
    assert meta["tracks"][0]["frames"] == 30  # duration 1 s at 30 fps
    nb = nbformat.read(out, as_version=4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "frames sha256" in text and meta["tracks"][0]["frames_sha256"][:12] in text
    assert "run_id: pm-run" in text and ": OK" in text
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))


def tracked_notebooks() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
        found = [ROOT / line for line in out.splitlines() if line]
    except (OSError, subprocess.CalledProcessError):
        found = []
    mine = [NOTEBOOKS / f"{n}.ipynb" for n in MINE]
    return sorted(set(found) | {p for p in mine if p.exists()})


@pytest.mark.parametrize("path", tracked_notebooks(), ids=lambda p: p.name)
def test_committed_notebooks_are_clean(path):
    """No outputs, no execution counts, no widget state in what is committed."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata, f"{path.name}: strip the saved widget state"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.get("outputs", []) == [], f"{path.name} cell {i}: clear its outputs"
        assert cell.get("execution_count") is None, f"{path.name} cell {i}: execution count"
    assert path.stat().st_size < 64_000


@pytest.mark.parametrize("name", MINE)
def test_studio_notebooks_have_a_parameters_cell_and_the_stratum_kernel(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "stratum"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "resolve_parameters" in code[1].source  # derived values in the next cell


def test_resolve_parameters_fill_from_the_environment_and_convert():
    from stratum_kernel.core.errors import ConfigError
    from stratum_kernel.render.overrides import overrides_from_params
    from stratum_kernel.studio.notebook_params import resolve_parameters

    env = {"STRATUM_NB_TRACKS": "a, b", "STRATUM_NB_FPS": "30", "STRATUM_NB_RUN_ID": "x",
           "STRATUM_NB_PRESET": "none"}
    p = resolve_parameters(dict(tracks=None, fps=None, run_id="given", preset=None, seed="3",
                                albums="p,q"), env)
    assert p == {"tracks": ["a", "b"], "fps": 30.0, "run_id": "given", "preset": None,
                 "seed": 3, "albums": ["p", "q"]}
    over = overrides_from_params({**p, "preset": "drift", "resolution": "160x96"})
    assert over["controller.preset"] == "drift" and over["tracks.*.preset"] is None
    assert over["frame_rate"] == 30.0 and over["resolution"] == "160x96"
    with pytest.raises(ConfigError, match="not a number"):
        resolve_parameters({"fps": "fast"}, {})


def test_config_from_parameters_uses_render_yaml_and_overrides(tmp_path):
    from stratum_kernel.studio.notebook_params import config_from_parameters, config_path

    yaml_path = tmp_path / "render.yaml"
    yaml_path.write_text("frame_rate: 30\nresolution: [320, 192]\n")
    cfg = config_from_parameters({"config": str(yaml_path), "resolution": "160x96",
                                  "seed": 5, "output_root": str(tmp_path)})
    assert cfg.frame_rate == 30 and cfg.resolution == (160, 96) and cfg.seed == 5
    assert cfg.output_path == tmp_path.resolve()
    assert config_path("none") is None and config_path("render.yaml") == ROOT / "render.yaml"


def test_scheduler_parameter_reaches_the_config(tmp_path):
    from stratum_kernel.studio.notebook_params import config_from_parameters

    yaml_path = tmp_path / "render.yaml"
    yaml_path.write_text("frame_rate: 30\n")
    cfg = config_from_parameters({"config": str(yaml_path), "scheduler": "local:2"})
    assert cfg.scheduler == "local:2"
    assert config_from_parameters({"config": str(yaml_path)}).scheduler is None
    nb = nbformat.read(ROOT / "notebooks" / "render_album.ipynb", as_version=4)
    assert "scheduler = None" in nb.cells[1].source
