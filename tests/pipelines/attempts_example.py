"""Steps whose workers die: each counts its attempts in a folder the test gives it (a worker
that dies takes any in-memory count with it), prints and flushes a line, then ends its process
with ``os._exit`` (a segfault or the OOM killer, as the driver sees it) as many times as told.
Kept light: a spawned process or Ray worker imports this module to find the steps."""

from __future__ import annotations

import os
import time
from pathlib import Path

from opsloop.pipelines import pipeline
from opsloop.pipelines import step


def _attempt(folder: str) -> int:
    """This attempt's number, counted in ``folder``."""
    where = Path(folder)
    where.mkdir(parents=True, exist_ok=True)
    number = len(list(where.iterdir())) + 1
    (where / str(number)).write_text("ran")
    return number


def _crash_or_answer(folder: str, crashes: int, raises: int = 0) -> str:
    number = _attempt(folder)
    print(f"attempt {number}: pid {os.getpid()}, about to work", flush=True)
    if number <= raises:
        raise RuntimeError(f"a flaky network on attempt {number}")
    if number <= raises + crashes:
        print(f"attempt {number}: last words before the crash", flush=True)
        os._exit(1)
    print(f"attempt {number}: done")
    return f"answered on attempt {number}"


@step(cache=False, retries=2, retry_delay=0.01)
def crash_prone(folder: str, crashes: int) -> str:
    """Dies ``crashes`` times, then answers; up to three attempts."""
    return _crash_or_answer(folder, crashes)


@step(cache=False, retries=0)
def not_idempotent(folder: str) -> str:
    """Dies on its first attempt; ``retries=0``: never run twice."""
    return _crash_or_answer(folder, 1)


@step(cache=False, retries=2, retry_delay=0.01)
def raises_then_crashes(folder: str) -> str:
    """Raises on attempt 1, dies on attempt 2, answers on attempt 3: one budget for both."""
    return _crash_or_answer(folder, crashes=1, raises=1)


@step(cache=False, timeout=1.0)
def too_slow(seconds: float) -> str:
    """Prints, then sleeps past its timeout: its process is killed."""
    print("started, then slept", flush=True)
    time.sleep(seconds)
    return "woke"


@pipeline
def crashing(folder: str, crashes: int = 1) -> None:
    crash_prone(folder, crashes)


@pipeline
def crash_once_unretried(folder: str) -> None:
    not_idempotent(folder)


@pipeline
def mixed_failures(folder: str) -> None:
    raises_then_crashes(folder)


@pipeline
def sleepy(seconds: float = 30.0) -> None:
    too_slow(seconds)
