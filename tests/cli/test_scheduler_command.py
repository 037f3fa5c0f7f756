"""``opsloop scheduler`` on several machines: one runs the passes, the others stand by, and a
killed leader is replaced by a scheduler that was standing by."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from opsloop.app.cli import app
from opsloop.app.cli import register_commands


class SchedulerProcess:
    def __init__(self, tmp: Path, index: int) -> None:
        self.out = tmp / f"scheduler-{index}.out"
        env = {
            **os.environ,
            "OPSLOOP_HOME": str(tmp / f"home-{index}"),
            "OPSLOOP_DATABASE_URL": f"sqlite:///{tmp / 'shared.db'}",
            "OPSLOOP_BLOB_URL": str(tmp / "blobs"),
            "COLUMNS": "200",
        }
        cli = str(Path(sys.executable).with_name("opsloop"))
        self.process = subprocess.Popen(
            [cli, "scheduler", "--interval", "0.5"], env=env,
            stdout=self.out.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def said(self, text: str) -> bool:
        return text in self.out.read_text(errors="replace")


def _wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_one_scheduler_leads_and_another_takes_over(tmp_path: Path) -> None:
    first = SchedulerProcess(tmp_path, 0)
    try:
        _wait_for(lambda: first.said("leading:"), 120, "the first scheduler did not lead")
        second = SchedulerProcess(tmp_path, 1)
        try:
            _wait_for(lambda: second.said("standing by:"), 120, "the second did not stand by")
            assert not second.said("leading:")
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(10)
            _wait_for(lambda: second.said("leading:"), 15, "no take-over within 15 s")
        finally:
            second.process.send_signal(signal.SIGINT)
            second.process.wait(30)
    finally:
        if first.process.poll() is None:
            first.process.kill()
            first.process.wait(10)


def test_an_interval_too_short_is_refused() -> None:
    register_commands(["scheduler"])
    result = CliRunner().invoke(app, ["scheduler", "--interval", "0"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "Invalid value for '--interval'" in result.output
