"""The quickstart's closed loop: a monitor on the served champion sees the traffic shift, alerts,
and retrains; the new version is gated, canaried and promoted (or rolled back if it is worse).
A promotion settles the loop: the monitor re-baselines on the traffic the new version learned
from, and the alert resolves "resolved by vN".

The shift is a scanner recalibrated by +30%: every measurement grows, the diagnoses (the ground
truth, fed back as labels) do not. The champion, trained on the old scale, starts to err; the
monitor's drift test catches the shift before the labels do, and the retrained model learns the
new scale from the labelled traffic the loop exports.
"""

from __future__ import annotations

from typing import Any

MODEL = "breast-cancer-clf"
MONITOR = "breast-cancer-watch"
SCALE = 1.3


def _traffic(client: Any, frame: Any, n: int, seed: int, *, shift: bool) -> None:
    """``n`` single-row requests drawn from ``frame``, with their true labels fed back."""
    rows = frame.sample(n, random_state=seed)
    features = rows.drop(columns=["target"])
    if shift:
        features = features * SCALE
    labels = {}
    for (_, row), truth in zip(features.iterrows(), rows["target"], strict=True):
        labels[client.deployments.predict(MODEL, [row.to_dict()])["request_id"]] = int(truth)
    client.deployments.feedback(MODEL, labels)


def _monitor(client: Any, reference: str, validation: str) -> Any:
    import contextlib

    from opsloop.errors import NotFound

    with contextlib.suppress(NotFound):
        client.monitors.delete(MONITOR)  # a fresh monitor on every quickstart run
    retrain = {
        "pipeline": "opsloop.app.quickstart_pipeline:retrain", "on": ["data-drift"],
        "params": {"reference": reference}, "export_dataset": "breast-cancer-live",
        "gate_policy": {
            "data": validation, "target": "target", "latency_samples": 20,
            "rules": [{"metric": "f1", "min": 0.9}, {"metric": "roc_auc", "min": 0.95},
                      {"metric": "f1", "max_regression": 0.03}],
        },
        "rollout_steps": [{"set_weight": 50}, {"pause_requests": 20}, {"set_weight": 100}],
        "rollout_checks": [{"metric": "error_rate", "max": 0.05, "min_samples": 10},
                           {"metric": "accuracy", "min": 0.85, "min_samples": 20}],
    }  # fmt: skip
    return client.monitors.create(
        MONITOR, MODEL, validation, target="target", every_seconds=3600,
        window={"by": "count", "size": 60, "min_rows": 30}, retrain=retrain,
        rules=[{"name": "data-drift", "metric": "dataset_drift", "threshold": 1,
                "severity": "critical", "channels": [{"type": "log"}, {"type": "prometheus"}]}],
    )  # fmt: skip


def _accuracy(run: Any) -> str:
    value = run.metrics.get("accuracy")
    return "-" if value is None else f"{value:.3f}"


def closed_loop(
    client: Any, out: Any, frame: Any, reference: str, validation: str
) -> list[tuple[str, str]]:
    """Walk the loop; the commands that show what happened, each with what it shows."""
    import logging

    logging.getLogger("opsloop.alerts").setLevel(logging.ERROR)  # the quickstart prints its own
    monitor = _monitor(client, reference, validation)
    out.print(f"monitor: [cyan]{monitor.name}[/] watches {MODEL} against {validation}")
    scheduler = client.scheduler()
    try:
        _traffic(client, frame, 60, seed=1, shift=False)
        calm = client.monitors.check(MONITOR)
        out.print(
            f"monitor: usual traffic → {calm.status}, drift share "
            f"{calm.metrics.get('drift_share', 0):.2f}, accuracy {_accuracy(calm)}"
        )
        _traffic(client, frame, 60, seed=2, shift=True)
        out.print(f"traffic: the scanner is recalibrated (+{SCALE - 1:.0%} on every measurement)")
        with out.status("monitor check, alert, retraining pipeline, gate"):
            shifted = client.monitors.check(MONITOR)  # the alert starts the loop
            scheduler.advance_loops(wait=True)
        drifted = len((shifted.report or {}).get("drifted_columns") or [])
        out.print(
            f"monitor: [red]{shifted.status}[/] — {drifted} of {len(monitor.columns)} columns "
            f"drifted, accuracy {_accuracy(shifted)}"
        )
        for _ in range(6):
            (run,) = client.monitors.loop_runs(MODEL, limit=1)
            if run.stage != "rolling_out":
                break
            _traffic(client, frame, 40, seed=10 + _, shift=True)  # the canary's share of it
            scheduler.advance_loops(wait=True)
        (run,) = client.monitors.loop_runs(MODEL, limit=1)
        for step in run.history:
            out.print(f"loop: {step['stage']:<11} {step['message']}")
        if run.stage == "promoted":
            out.print(f"loop: [green]v{run.candidate} is the champion[/] and takes all traffic")
        else:
            out.print(f"loop: [red]{run.stage}[/]: {MODEL} keeps serving its champion")
        if run.stage == "promoted":
            _traffic(client, frame, 60, seed=30, shift=True)
            after = client.monitors.check(MONITOR)
            (status,) = client.monitors.loop_status(MODEL)
            reference = client.monitors.get(MONITOR).reference
            out.print(
                f"monitor: accuracy on the shifted traffic {_accuracy(shifted)} → "
                f"{_accuracy(after)} with v{run.candidate}; against {reference} the check is "
                f"{after.status}, the loop is [green]{status['stage']}[/]\n"
            )
    finally:
        scheduler.stop()
    return [
        (f"opsloop loop status {MODEL}", "the loop: check, alert, retraining, rollout"),
        ("opsloop alerts list", "alerts, their channels and state"),
        (f"opsloop monitors runs {MONITOR}", "every check with its metrics"),
        (f"opsloop monitors references {MONITOR}", "re-baselined after the promotion (revert)"),
        *_drift_suggestion(validation, run.data_ref),
    ]


def _drift_suggestion(validation: str, shifted: str | None) -> list[tuple[str, str]]:
    """The ad hoc drift command on the two sides of this run's shift: the split the monitor
    started from against the traffic the loop exported, pinned to the version this run made
    (``breast-cancer-live`` alone would name whatever a later run exported)."""
    if shifted is None:  # the loop never exported: there is no shifted data to compare
        return []
    return [
        (
            f"opsloop drift {validation} {shifted} --html drift.html",
            "ad hoc drift: the monitor's reference against the shifted traffic it alerted on",
        )
    ]
