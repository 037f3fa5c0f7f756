"""Each attempt at running a step: its number, outcome, duration and error, kept on the step's
run as the ``opsloop.step.attempts`` tag (JSON) for ``opsloop pipelines show``, REST and the
run's page.

One retry policy for every executor: the step's ``retries`` counts exceptions, timeouts and
dead workers together, and the runner retries (an executor never does; Ray's own
``max_retries`` is 0), so a step that crashed its worker and then succeeded shows two
attempts, not one clean success, and a step marked ``retries=0`` runs at most once.

Outcomes: ``succeeded``, ``failed`` (the step raised), ``crashed`` (its process or Ray worker
died before it answered), ``timeout`` (it ran past its ``timeout`` and was stopped, or on a
thread, abandoned) and ``cancelled`` (its pipeline run was cancelled).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsloop.pipelines.executors import StepCancelled
from opsloop.pipelines.executors import StepTimedOut
from opsloop.pipelines.executors import WorkerDied
from opsloop.pipelines.step_logs import append_logs
from opsloop.pipelines.step_logs import take_spooled
from opsloop.tracking.validation import MAX_TAG_VALUE_LENGTH

__all__ = [
    "ATTEMPTS_TAG",
    "RETRIES_TAG",
    "Attempt",
    "attempts_tag",
    "keep_unfinished_logs",
    "read_attempts",
]

ATTEMPTS_TAG = "opsloop.step.attempts"
RETRIES_TAG = "opsloop.step.retries"  # how many times it was retried (kept for older readers)
_ERROR_CHARS = (300, 120, 40)  # an error is cut to fit many attempts into one tag


@dataclass
class Attempt:
    number: int
    outcome: str
    duration_s: float
    error: str | None = None

    @classmethod
    def ended(cls, number: int, exc: BaseException, duration_s: float) -> Attempt:
        """The attempt that ended with ``exc``."""
        if isinstance(exc, WorkerDied):
            outcome = "crashed"
        elif isinstance(exc, StepTimedOut):
            outcome = "timeout"
        elif isinstance(exc, StepCancelled):
            outcome = "cancelled"
        else:
            outcome = "failed"
        return cls(number, outcome, round(duration_s, 3), f"{type(exc).__name__}: {exc}")


def attempts_tag(attempts: list[Attempt]) -> str:
    """The attempts as the tag's JSON, shorter than a tag may be: errors are cut first, then
    the earliest attempts but the first are left out (their numbers show the gap)."""
    rows = [asdict(a) for a in attempts]
    for limit in _ERROR_CHARS:
        cut = [{**r, "error": _cut(r["error"], limit)} for r in rows]
        text = json.dumps(cut, separators=(",", ":"))
        if len(text) <= MAX_TAG_VALUE_LENGTH:
            return text
    while len(cut) > 2 and len(text) > MAX_TAG_VALUE_LENGTH:
        del cut[1]
        text = json.dumps(cut, separators=(",", ":"))
    return text


def _cut(error: str | None, limit: int) -> str | None:
    if error is None or len(error) <= limit:
        return error
    return error[: limit - 1] + "…"


def read_attempts(tags: dict[str, str], status: str) -> list[dict[str, Any]]:
    """A step run's attempts from its tags. A run from before attempts were recorded that was
    retried (``opsloop.step.retries``) gets its attempts rebuilt without times or errors; one
    never retried shows none."""
    recorded = tags.get(ATTEMPTS_TAG)
    if recorded:
        try:
            found = json.loads(recorded)
        except ValueError:
            found = None
        if isinstance(found, list):
            return [a for a in found if isinstance(a, dict) and "number" in a]
    retried = tags.get(RETRIES_TAG, "")
    if not retried.isdigit():
        return []
    last = {"FINISHED": "succeeded", "FAILED": "failed", "KILLED": "cancelled"}.get(status)
    earlier = [{"number": n, "outcome": "failed"} for n in range(1, int(retried) + 1)]
    return earlier + ([{"number": int(retried) + 1, "outcome": last}] if last else [])


def keep_unfinished_logs(
    client: Any, journal: Any, run_id: str, spool: Path, attempt: Attempt
) -> None:
    """In the driver, once ``attempt`` is over: what it printed, from its spool, where its
    worker never kept it (it died, or was stopped), with a last line saying how it ended.
    ``journal.flush()`` first writes the step's run where it exists only in the journal."""
    text = take_spooled(spool)
    if text is None:
        return
    if attempt.outcome != "succeeded":
        end = "" if text.endswith("\n") else "\n"
        text += f"{end}[attempt {attempt.number} {attempt.outcome}: {attempt.error}]\n"
    journal.flush()
    append_logs(client, run_id, text, attempt.number)
