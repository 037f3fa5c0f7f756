"""A check reads a classifier's probabilities from the prediction log instead of loading it.

The server logs them with each answer (``proba``), so ``opsloop monitors check`` needs neither
scikit-learn nor skops (seconds of imports); over a window of numbers, not even pandas or
``scipy.special``. Logs written before that (no ``proba`` column) still work: the check loads
the versions that answered, and both ways give the same numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from opsloop.monitoring import quality
from opsloop.monitoring.measure_apart import FORCE_ENV
from tests.serving.conftest import COLUMNS
from tests.serving.conftest import register_two

DRIVER = """
import json, sys
from opsloop.app.cli import main
sys.argv = ["opsloop", "monitors", "check", sys.argv[1], "--json"]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = ("sklearn", "skops", "scipy.stats", "torch", "pandas", "scipy.special", "duckdb")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""
QUALITY = ("cbpe_accuracy", "cbpe_precision", "cbpe_recall", "cbpe_f1", "cbpe_roc_auc",
           "accuracy", "f1", "roc_auc", "labelled")  # fmt: skip


def _serve(client: Any, cancer: pd.DataFrame, weak: Any, strong: Any, tmp_path: Path) -> None:
    """A deployment of a real classifier, a monitor on it, and 120 scored rows in 40
    requests, half of them with ground truth."""
    register_two(client, weak, strong, cancer)
    cancer.to_csv(tmp_path / "cancer.csv", index=False)
    client.data.add(str(tmp_path / "cancer.csv"), name="cancer")
    client.deployments.deploy("cancer-clf@2", name="cancer")
    client.monitors.create(
        "watch", "cancer", "cancer@1", target="target",
        window={"by": "count", "size": 40, "mode": "sliding", "min_rows": 50},
    )  # fmt: skip
    frame = cancer.sample(120, random_state=3)
    for i in range(0, 120, 3):
        part = frame.iloc[i : i + 3]
        answer = client.deployments.predict("cancer", part[COLUMNS].to_dict(orient="records"))
        if i % 6 == 0:
            client.deployments.feedback("cancer", {answer["request_id"]: part["target"].tolist()})


def _strip_proba(folder: Path) -> None:
    """Rewrite the sealed log as an older server wrote it: no ``proba`` column."""
    files = sorted(folder.glob("predictions/deployment=*/date=*/*.parquet"))
    assert files
    for part in files:
        table = pq.read_table(part)
        pq.write_table(table.drop_columns(["proba"]), part)


def test_logged_probabilities_give_the_estimate_the_model_gives(
    cancer: pd.DataFrame, weak_model: Any, strong_model: Any, tmp_path: Path
) -> None:
    from opsloop import Client

    client = Client()
    try:
        _serve(client, cancer, weak_model, strong_model, tmp_path)
        log = client.deployments.prediction_log
        logged = log.requests("cancer")
        assert logged["proba"].notna().all()
        first = json.loads(logged["proba"].iloc[0])
        assert len(first) == 3 and all(0.0 <= p <= 1.0 for p in first)
        from_log = client.monitors.check("watch")
        assert from_log.rows == 120 and from_log.metrics["labelled"] == 60
        log.flush()
        _strip_proba(log.folder)
        assert log.requests("cancer")["proba"].isna().all()
        from_model = client.monitors.check("watch")  # the fallback: loads cancer-clf@2
    finally:
        client.close()
    assert from_model.rows == 120
    for key in QUALITY:
        assert from_log.metrics[key] == pytest.approx(from_model.metrics[key], abs=1e-9), key
    assert from_log.metrics["cbpe_accuracy"] > 0.8


def test_a_check_in_a_fresh_process_imports_no_model_library(
    cancer: pd.DataFrame, weak_model: Any, strong_model: Any, tmp_path: Path
) -> None:
    """A fresh ``opsloop monitors check`` measures its window in a second process (this one
    never imports DuckDB) and gives the in-process check's numbers; on a log without the
    probabilities the second process stops, and the command measures and loads the model
    itself, with the same numbers again."""
    from opsloop import Client

    client = Client()
    try:
        _serve(client, cancer, weak_model, strong_model, tmp_path)
        in_process = client.monitors.check("watch")
    finally:
        client.close()

    def fresh_check() -> tuple[dict[str, Any], list[str]]:
        # apart even on a busy machine (by default only when a core is idle)
        env = {**os.environ, FORCE_ENV: "1"}
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, "watch"], capture_output=True, text=True, env=env,
            timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout), json.loads(done.stderr.strip().splitlines()[-1])

    run, loaded = fresh_check()
    assert "sklearn" not in loaded and "skops" not in loaded and "torch" not in loaded
    assert "pandas" not in loaded and "scipy.special" not in loaded  # a window of numbers
    assert "duckdb" not in loaded  # measured apart
    assert run["rows"] == 120
    assert run["metrics"] == pytest.approx(in_process.metrics)
    assert run["report"] == in_process.report

    client = Client()
    try:
        log = client.deployments.prediction_log
        log.flush()
        _strip_proba(log.folder)
    finally:
        client.close()
    fallback, loaded = fresh_check()
    assert "duckdb" in loaded and "sklearn" in loaded  # measured here, with the model loaded
    assert fallback["metrics"] == pytest.approx(in_process.metrics, abs=1e-9)


def test_measured_quality_matches_scikit_learn() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 300)
    scores = np.clip(truth * 0.3 + rng.random(300) * 0.7, 0, 1).round(2)  # with ties
    predicted = (scores >= 0.5).astype(int)
    labels: list[Any] = truth.tolist()
    labels[::7] = [None] * len(labels[::7])  # rows without ground truth yet
    keep = [i for i, label in enumerate(labels) if label is not None]
    got = quality.measured(predicted.tolist(), labels, "classification", scores)
    assert got["labelled"] == len(keep)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(truth[keep], predicted[keep]))
    assert got["f1"] == pytest.approx(metrics.f1_score(truth[keep], predicted[keep]))
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth[keep], scores[keep]))

    names = np.array(["cat", "dog", "eel"])
    true3, pred3 = names[rng.integers(0, 3, 200)], names[rng.integers(0, 3, 200)]
    pred3[:5] = "fox"  # a class only ever predicted
    got3 = quality.measured(pred3.tolist(), true3.tolist(), "classification")
    assert got3["accuracy"] == pytest.approx(metrics.accuracy_score(true3, pred3))
    expected = metrics.f1_score(true3, pred3, average="macro", zero_division=0)
    assert got3["f1"] == pytest.approx(expected)
    assert "roc_auc" not in got3


def test_measuring_apart_is_judged_without_linux(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On macOS (no CPU affinity, no ``/proc``) the load average decides; on Windows (neither)
    the check stays in one process; ``OPSLOOP_MEASURE_APART`` overrides both."""
    from opsloop.monitoring import measure_apart

    monkeypatch.delenv(FORCE_ENV, raising=False)
    monkeypatch.setattr(measure_apart, "LOADAVG", str(tmp_path / "no-proc"))
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.delitem(sys.modules, "sqlalchemy")  # as in a fresh command
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    assert measure_apart.worth_it()
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 0.3, 0.3))
    assert not measure_apart.worth_it()
    monkeypatch.delattr(os, "getloadavg")
    assert not measure_apart.worth_it()
    monkeypatch.setenv(FORCE_ENV, "1")
    assert measure_apart.worth_it()


def test_a_check_started_apart_is_measured_apart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command judges once, before it starts the child: judged again at the check, the
    child (importing by then) counted as load and the check went in-process half the time on
    an idle two-core machine, with the child's start wasted."""
    from opsloop.config import load_settings
    from opsloop.monitoring import measure_apart

    monkeypatch.delenv(FORCE_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.delitem(sys.modules, "sqlalchemy", raising=False)  # as in a fresh command
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(measure_apart, "LOADAVG", str(loadavg))
    loadavg.write_text("0.4 0.3 0.2 1/180 4242\n")  # this process alone wants a core
    measure_apart.start_early(load_settings())
    loadavg.write_text("1.1 0.3 0.2 2/181 4243\n")  # and now its child too
    assert not measure_apart.worth_it()
    assert measure_apart.chosen()
    child = measure_apart.started()._child
    assert child.stdin is not None
    child.stdin.close()  # never sent anything: the child ends
    assert child.wait(timeout=60) == 0
    assert not measure_apart.chosen()  # no child waiting: judged afresh
