import subprocess
import sys

import pytest

from stratum_kernel import cli


def test_help_lists_commands(capsys):
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_bench_area_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "nonsense"])
    assert exc.value.code == 2


def test_module_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "stratum_kernel", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "analyze" in proc.stdout


@pytest.mark.parametrize(
    "argv", [["--debug", "warmup", "--quiet"], ["warmup", "--quiet", "--debug"]]
)
def test_debug_flag_before_or_after_command(argv, monkeypatch):
    seen = {}

    def fake_run(args):
        seen["debug"] = args.debug
        return 0

    from stratum_kernel.commands import warmup

    monkeypatch.setattr(warmup, "run", fake_run)
    assert cli.main(argv) == 0
    assert seen["debug"] is True


def test_user_error_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "stratum_kernel", "analyze", "--album", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "nope" in proc.stderr
