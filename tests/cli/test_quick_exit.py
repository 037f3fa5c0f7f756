"""The ``opsloop`` command ends without the interpreter's teardown, and loses nothing by it
(console/quick_exit.py): each case runs in a fresh process, as the command does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

# A module-level object whose finalizer says whether the interpreter tore the module down.
ENDING = """
import atexit, sys
from opsloop.console.quick_exit import exit_without_teardown

class Finalized:
    def __del__(self):
        sys.stdout.write("finalized\\n")

WITNESS = Finalized()
{before}
with exit_without_teardown():
    atexit.register(lambda: sys.stdout.write("handler ran\\n"))
    sys.stdout.write("no newline yet")
    {end}
"""


def ending(tmp_path: Path, end: str, before: str = "") -> subprocess.CompletedProcess[str]:
    source = ENDING.format(before=before, end=end)
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=60,
        cwd=tmp_path,
    )  # fmt: skip


def test_exits_with_the_status_after_the_handlers_and_skips_the_teardown(tmp_path: Path) -> None:
    done = ending(tmp_path, "raise SystemExit(4)")
    assert done.returncode == 4, done.stderr
    # the buffered line reached the pipe, the handler registered inside ran, nothing was torn down
    assert done.stdout == "no newline yethandler ran\n"


def test_a_message_in_system_exit_is_printed_and_exits_1(tmp_path: Path) -> None:
    done = ending(tmp_path, 'raise SystemExit("stopped: out of disk")')
    assert done.returncode == 1
    assert done.stderr.strip() == "stopped: out of disk"
    assert "finalized" not in done.stdout


def test_user_code_imported_gets_the_usual_teardown(tmp_path: Path) -> None:
    """A module from outside the installed packages may leave a file open for the
    interpreter to flush as it frees it: then the process ends as usual."""
    (tmp_path / "user_step.py").write_text(
        "LOG = open('step.log', 'w')\nLOG.write('kept only if finalized')\n"
    )
    done = ending(
        tmp_path, "raise SystemExit(0)", before="sys.path.insert(0, '.')\nimport user_step"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("finalized\n")
    assert (tmp_path / "step.log").read_text() == "kept only if finalized"


def test_ctrl_c_still_ends_the_process_by_sigint(tmp_path: Path) -> None:
    """A shell tells an interrupted command from a failed one by the signal."""
    done = ending(tmp_path, "raise KeyboardInterrupt")
    assert done.returncode == -signal.SIGINT
    assert "finalized" in done.stdout


def test_the_opsloop_command_keeps_its_output_and_statuses(tmp_path: Path) -> None:
    env = {**os.environ, "OPSLOOP_HOME": str(tmp_path / "home")}
    env.pop("OPSLOOP_SERVER_URL", None)
    command = [sys.executable, "-c", "from opsloop.app.cli import main; main()"]

    def opsloop(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
        )

    created = opsloop("experiments", "create", "churn")
    assert created.returncode == 0, created.stderr
    listed = opsloop("experiments", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "churn" in [e["name"] for e in json.loads(listed.stdout)]
    missing = opsloop("models", "show", "no-such-model")
    assert missing.returncode == 3
    assert missing.stderr.startswith("error: ")
    assert opsloop("experiments", "lsit").returncode == 2  # a usage error
