"""A small real training pipeline for the tests: load, split, train, evaluate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from opsloop.pipelines import DataVersion
from opsloop.pipelines import pipeline
from opsloop.pipelines import step

CALLS: list[str] = []  # which step bodies really ran, for the cache tests
FEATURES = ["mean radius", "mean texture", "worst area", "mean smoothness"]


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """A project helper: editing it changes the code hash of the steps that call it."""
    return frame[FEATURES]


@step
def load(rows: int = 400) -> pd.DataFrame:
    CALLS.append("load")
    return load_breast_cancer(as_frame=True).frame.head(rows)


@step
def split(data: pd.DataFrame, test_share: float = 0.25, seed: int = 0) -> pd.DataFrame:
    CALLS.append("split")
    rng = np.random.default_rng(seed)
    return data.assign(fold=np.where(rng.random(len(data)) < test_share, "test", "train"))


@step(retries=1, retry_delay=0.01)
def train(data: pd.DataFrame, C: float = 1.0) -> LogisticRegression:
    CALLS.append("train")
    rows = data[data["fold"] == "train"]
    return LogisticRegression(C=C, max_iter=500).fit(features(rows), rows["target"])


@step
def evaluate(model: LogisticRegression, data: pd.DataFrame) -> dict[str, Any]:
    CALLS.append("evaluate")
    rows = data[data["fold"] == "test"]
    return {"accuracy": float((model.predict(features(rows)) == rows["target"]).mean())}


@pipeline
def training(C: float = 1.0, rows: int = 400) -> None:
    data = split(load(rows=rows))
    evaluate(train(data, C=C), data)


@step
def explode(data: pd.DataFrame) -> dict[str, Any]:
    raise RuntimeError("the cluster caught fire")


@pipeline
def broken() -> None:
    explode(load())


@pipeline
def mistyped() -> None:
    data = load()
    evaluate(data, data)  # a DataFrame where a model is expected


NAPS: list[tuple[float, float]] = []  # (start, end) of each nap, to see them overlap


@step(cache=False)
def nap(seconds: float = 0.3, label: str = "a") -> str:
    import time

    start = time.monotonic()
    time.sleep(seconds)
    NAPS.append((start, time.monotonic()))
    return label


@step(cache=False)
def join(a: str, b: str) -> str:
    return a + b


@pipeline
def fan_out() -> None:
    join(nap(label="a"), nap(label="b"))


@step(cache=False, timeout=0.3)
def stuck(seconds: float = 5.0) -> str:
    import time

    time.sleep(seconds)
    return "never"


@pipeline
def too_slow() -> None:
    stuck()


@step(cache=False)
def shout(ref: str) -> str:
    return ref.upper()


@pipeline
def echo(ref: str) -> None:
    """A pipeline that only passes its param on (what a data-version trigger hands it)."""
    shout(ref)


@step(cache=False, resources={"cpus": 1})
def whoami(tag: str) -> dict[str, Any]:
    """Where the step ran: its process id, and the step run it was told it is."""
    import os

    from opsloop.kernel.step_context import current_step_run_id

    return {"pid": os.getpid(), "tag": tag, "run": current_step_run_id()}


@pipeline
def where(tag: str = "x") -> None:
    whoami(tag)


@step(cache=False, timeout=60.0)  # room for a spawned process to start on a busy machine
def crash() -> str:
    import os

    os._exit(3)  # a segfault or the OOM killer, as the parent sees it


@pipeline
def crashing() -> None:
    crash()


@step(cache=False, retries=1, retry_delay=0.01)
def flaky_worker(marker: str) -> str:
    """Kills its worker the first time (a node lost), answers the second time: a worker that
    dies counts against the step's ``retries`` like an exception."""
    import os
    from pathlib import Path

    if not Path(marker).exists():
        Path(marker).write_text("died once")
        os._exit(1)
    return "survived"


@pipeline
def lost_worker(marker: str) -> None:
    flaky_worker(marker)


FLAKY_SWITCH: dict[str, bool] = {"fail": True}


@step
def fragile(data: pd.DataFrame) -> dict[str, Any]:
    """Fails while the switch is on: a failure that a later resume gets past."""
    if FLAKY_SWITCH["fail"]:
        raise RuntimeError("the disk was full")
    return {"rows": len(data)}


@pipeline
def resumable(rows: int = 300) -> None:
    fragile(split(load(rows)))


@step(cache=False)
def noisy(data: pd.DataFrame) -> dict[str, Any]:
    """A metric that moves on every run (unseeded randomness)."""
    import random

    return {"rows": len(data), "jitter": random.SystemRandom().random()}


@pipeline
def unstable(rows: int = 200) -> None:
    noisy(load(rows))


@step(cache=False)
def note_experiment(name: str) -> str:
    """Writes through the SDK's default client: it must reach the pipeline's store."""
    import opsloop

    return opsloop.get_client().set_experiment(name).experiment_id


@pipeline
def writes_through_the_sdk(name: str = "noted") -> None:
    note_experiment(name)


@step(outputs=("train", "test"))
def holdout(data: pd.DataFrame, test_share: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    CALLS.append("holdout")
    test = data.sample(frac=test_share, random_state=0)
    return data.drop(test.index), test


@step(register="pipeline-clf")
def fit(train: pd.DataFrame, C: float = 1.0) -> LogisticRegression:
    CALLS.append("fit")
    return LogisticRegression(C=C, max_iter=500).fit(features(train), train["target"])


@step
def score(model: LogisticRegression, test: pd.DataFrame) -> dict[str, Any]:
    CALLS.append("score")
    return {"accuracy": float((model.predict(features(test)) == test["target"]).mean())}


@pipeline
def registered(C: float = 1.0) -> None:
    """Two outputs from one step, and a model registered by a step."""
    train, test = holdout(load())
    score(fit(train, C=C), test)


@step(outputs=("left", "right"))
def three_values() -> tuple[int, int]:
    return (1, 2, 3)  # type: ignore[return-value]


@pipeline
def miscounted() -> None:
    three_values()


@pipeline
def crossed() -> None:
    train, test = holdout(load())
    score(train, test)  # a DataFrame where a model is expected


@step
def report(result: dict[str, Any]) -> dict[str, Any]:
    return result


@pipeline
def broken_chain() -> None:
    """A failure in the middle: the step after it never starts."""
    report(explode(load()))


@step(cache=False)
def self_reporting(seconds: float = 0.0) -> int:
    """Logs into its own run (which must exist by then), and may take its time."""
    import time

    import opsloop
    from opsloop.kernel.step_context import current_step_run_id

    opsloop.get_client().log_metric(current_step_run_id(), "progress", 1.0)
    time.sleep(seconds)
    return 1


@pipeline
def reporting(seconds: float = 0.0) -> None:
    self_reporting(seconds=seconds)


@step
def hold(marker: str, data: pd.DataFrame) -> dict[str, Any]:
    """Writes ``marker.started``, then waits while ``marker`` exists (a process to kill)."""
    import time
    from pathlib import Path

    Path(f"{marker}.started").write_text("running")
    while Path(marker).exists():
        time.sleep(0.05)
    return {"rows": len(data)}


@pipeline
def held(marker: str) -> None:
    hold(marker, load(100))


@step
def total(table: DataVersion, column: str = "x") -> dict[str, Any]:
    """Reads a data version (a CSV table): what the cache keys by its content."""
    CALLS.append("total")
    frame = table.to_pandas()
    return {"rows": len(frame), "total": float(frame[column].sum())}


@step
def doubled(summary: dict[str, Any]) -> dict[str, Any]:
    CALLS.append("doubled")
    return {"total": summary["total"] * 2}


@pipeline
def tally(table: str = "numbers", column: str = "x") -> None:
    doubled(total(table, column=column))


LEAKED: list[Any] = []  # an output kept from one pipeline's graph, to feed another's


@pipeline
def leaking() -> None:
    LEAKED.append(load(rows=10))


@pipeline
def borrowing() -> None:
    evaluate(train(LEAKED[0]), LEAKED[0])


@pipeline
def looping() -> None:
    """Tries to feed ``split`` the output of a step that comes after it: a cycle."""
    from opsloop.pipelines.graph import StepOutput

    data = load(rows=10)
    later = StepOutput(node=data.node + 1, step="split", graph=data.graph)
    split(later)


@step
def chatty(marker: str, lines: int = 3) -> int:
    """Prints, logs and warns, slowly enough that two of them overlap on threads."""
    import logging
    import sys
    import time
    import warnings

    for i in range(lines):
        print(f"{marker} line {i}")
        time.sleep(0.02)
    logging.getLogger("tests.chatty").warning("%s logged", marker)
    print(f"{marker} on stderr", file=sys.stderr)
    warnings.warn(f"{marker} warned", stacklevel=1)
    return lines


@step
def fails_loudly(first: int, second: int) -> int:
    print("about to fail after", first + second, "lines")
    raise RuntimeError("the disk is full")


@pipeline
def talking(lines: int = 3) -> None:
    both = [chatty("left", lines), chatty("right", lines)]
    add_up(both[0], both[1])


@step
def add_up(first: int, second: int) -> int:
    return first + second


@pipeline
def talking_then_failing(lines: int = 2) -> None:
    fails_loudly(chatty("left", lines), chatty("right", lines))


ATTEMPTS: list[int] = []


@step(retries=2, retry_delay=0.01, cache=False)
def second_time_lucky() -> int:
    """Prints on every attempt and fails on the first."""
    ATTEMPTS.append(1)
    print(f"attempt {len(ATTEMPTS)} starting")
    if len(ATTEMPTS) == 1:
        raise RuntimeError("a flaky network")
    return len(ATTEMPTS)


@pipeline
def retried() -> None:
    second_time_lucky()


@step
def after(marker: str, previous: dict[str, Any]) -> dict[str, Any]:
    """Writes ``marker``: shows that it ran."""
    from pathlib import Path

    Path(marker).write_text("ran")
    return previous


@pipeline
def held_twice(marker: str) -> None:
    """``hold`` waits while ``marker`` exists; ``after`` then writes ``marker.second``."""
    after(f"{marker}.second", hold(marker, load(100)))
