"""What a check measures on its window, apart from the store: the window's rows read from the
prediction log and turned into metrics and a drift report.

A check is two halves: this one (DuckDB over the log, NumPy and the drift tests) and the
store's (:func:`~opsloop.monitoring.services.record_check`: SQLAlchemy, alerts, loops). Nothing
here imports SQLAlchemy or pydantic, so a process can run this half while another opens the
store (:mod:`~opsloop.monitoring.measure_apart`). What it needs of the monitor is a
:class:`Measuring` (part of the :class:`CheckInputs` the ORM or the quick reads give); what it
gives back, a :class:`Measured`: both plain data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from opsloop.errors import InvalidInput
from opsloop.monitoring import quality
from opsloop.monitoring.drift import drift
from opsloop.monitoring.profiles import TableProfile
from opsloop.monitoring.windows import WindowData
from opsloop.monitoring.windows import read_window

if TYPE_CHECKING:
    from opsloop.monitoring.entities import MonitorSpec
    from opsloop.monitoring.ports import ModelSource
    from opsloop.monitoring.ports import PredictionSource

__all__ = [
    "PREDICTION", "CheckInputs", "Measured", "Measuring", "WindowShape", "measure",
    "positive_scores",
]  # fmt: skip

PREDICTION = "prediction"


@dataclass(frozen=True)
class WindowShape:
    """A monitor's :class:`~opsloop.monitoring.entities.Window` as plain values."""

    by: str
    size: int
    mode: str
    min_rows: int


@dataclass(frozen=True)
class Measuring:
    """What measuring a window needs of its monitor, as plain values, so that a process can
    unpickle it without importing pydantic and the entities (a third of a check's imports):
    the drift test settings of its spec, the baseline and the reference profile as stored
    (JSON texts), and where the last tumbling window ended."""

    deployment: str
    window: WindowShape
    stattest: str | None
    column_stattests: dict[str, str]
    drift_share: float
    baseline: str
    profile: str
    last_window_end: int | None


@dataclass(frozen=True)
class CheckInputs:
    """What a check reads of its monitor: the spec (the store's half judges its rules) and
    what the measuring half needs."""

    spec: MonitorSpec
    measuring: Measuring

    @classmethod
    def of(
        cls, deployment: str, spec: MonitorSpec, baseline: str, profile: str,
        last_window_end: int | None,
    ) -> CheckInputs:  # fmt: skip
        """From a ``monitors`` row's columns (the spec parsed)."""
        window = spec.window
        measuring = Measuring(
            deployment=deployment,
            window=WindowShape(window.by, window.size, window.mode, window.min_rows),
            stattest=spec.stattest, column_stattests=dict(spec.column_stattests),
            drift_share=spec.drift_share, baseline=baseline, profile=profile,
            last_window_end=last_window_end,
        )  # fmt: skip
        return cls(spec, measuring)


@dataclass(frozen=True)
class Measured:
    """A window measured: its bounds and size, the metrics, the drift report (None when the
    window is too small for a verdict, with ``note`` saying so)."""

    window_start: int | None
    window_end: int | None
    rows: int
    last_ts: int | None
    metrics: dict[str, Any]
    report: dict[str, Any] | None
    note: str | None


def measure(
    inputs: Measuring, log: PredictionSource, *, models: ModelSource, now: int
) -> Measured | None:
    """The window due at ``now`` measured, or None while a tumbling window is not complete.

    The model versions that answered the window are loaded from ``models`` only when the log
    lacks the probabilities a classifier's server writes (older rows)."""
    window = read_window(
        log, inputs.deployment, inputs.window, now_ms=now, checked_until=inputs.last_window_end
    )
    if window is None:
        return None
    metrics, report, note = _metrics(models, inputs, window)
    return Measured(
        window_start=window.start, window_end=window.end, rows=window.rows,
        last_ts=window.last_ts, metrics=metrics, report=report, note=note,
    )  # fmt: skip


def positive_scores(model: Any, features: Any) -> np.ndarray | None:
    """The positive-class probability of a binary classifier, else None."""
    classes = model.classes
    if classes is None or len(classes) != 2:
        return None
    try:
        return np.asarray(model.predict_proba(features), dtype=float)[:, 1]
    except InvalidInput:  # the flavor has no probabilities for this model
        return None


_MODELS: dict[str, Any] = {}


def _model(models: ModelSource, ref: str) -> Any:
    """Loaded model versions, kept: a version's package never changes."""
    if ref not in _MODELS:
        _MODELS[ref] = models.load(ref)
    return _MODELS[ref]


def _metrics(
    models: ModelSource, inputs: Measuring, window: WindowData
) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """The check's metrics, its drift report (dict) and a note when it gives no verdict."""
    metrics: dict[str, Any] = {"rows": window.rows, "requests": window.requests}
    if window.requests:
        metrics["errors"] = window.errors
        metrics["error_rate"] = window.errors / window.requests
    if window.latencies_ms:
        metrics["latency_p50_ms"] = float(np.percentile(window.latencies_ms, 50))
        metrics["latency_p99_ms"] = float(np.percentile(window.latencies_ms, 99))
    if window.rows < inputs.window.min_rows:
        return (
            metrics,
            None,
            f"{window.rows} rows in the window, {inputs.window.min_rows} needed: no verdict",
        )
    baseline = json.loads(inputs.baseline)
    profile = TableProfile.from_dict(json.loads(inputs.profile))
    current = window.table()
    scalar = all(not isinstance(p, list | dict) for p in window.predictions)
    if scalar:
        current[PREDICTION] = window.predictions
    feature_columns = [c for c in profile.columns if c != PREDICTION]
    report = drift(
        profile, current, columns=[*feature_columns, PREDICTION] if scalar else feature_columns,
        stattest=inputs.stattest, column_stattests=inputs.column_stattests,
        drift_share=inputs.drift_share,
    )  # fmt: skip
    features_only = [c for c in report.columns if c.column != PREDICTION]
    tested = [c for c in features_only if c.drift_detected is not None]
    if tested:
        drifted = sum(bool(c.drift_detected) for c in tested)
        metrics["drift_share"] = drifted / len(tested)
        metrics["drifted_columns"] = drifted
        metrics["dataset_drift"] = float(metrics["drift_share"] >= inputs.drift_share)
    if scalar and report.column(PREDICTION).drift_detected is not None:
        prediction = report.column(PREDICTION)
        metrics["prediction_drift"] = float(bool(prediction.drift_detected))
        metrics["prediction_drift_score"] = prediction.statistic
    task = baseline.get("task", "classification")
    scores = _scores(models, baseline, window, feature_columns)
    metrics.update(quality.measured(window.predictions, window.labels, task, scores))
    if scores is not None:
        metrics.update(quality.estimate(scores, baseline.get("calibration")))
    return metrics, report.to_dict(), None


def _scores(
    models: ModelSource, baseline: dict[str, Any], window: WindowData, columns: list[str]
) -> np.ndarray | None:
    """Positive-class scores of each row from the version that answered it (CBPE's input):
    as the server logged them when every row has them, else from the versions, loaded (the
    imports alone take seconds)."""
    if baseline.get("task") != "classification":
        return None
    if window.scores is not None and len(window.scores) == window.rows:
        if all(isinstance(s, int | float) and not isinstance(s, bool) for s in window.scores):
            return np.asarray(window.scores, dtype=float)
        return None  # more than two classes: no CBPE, as positive_scores says
    model_name = baseline["model"].rpartition("@")[0]
    scores = np.full(window.rows, np.nan)
    versions = np.asarray(window.versions)
    columns = [c for c in columns if c in window.features.columns]
    for version in np.unique(versions):
        model = _model(models, f"{model_name}@{int(version)}")
        mask = versions == version
        part = positive_scores(model, window.features.loc[mask, columns])
        if part is None:
            return None
        scores[mask] = part
    return scores
