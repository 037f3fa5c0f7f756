"""The retraining driver: walks a loop run from its alert to a promoted or rolled-back model.

A loop run's stages and records belong to monitoring (:mod:`opsloop.monitoring.loop`); walking
it crosses every domain (the prediction log's labelled traffic becomes a data version, a
pipeline trains on it, the registry's gate judges the candidate, serving canaries it), so the
walk lives on this floor, above all of them, and is handed the clients and stores it uses.

A promotion ends the walk by settling the incident (``_settle``): the loop knows what the new
version was trained on, because it exported that data itself and handed it to the pipeline
(the run's ``data_ref``), so it hands the same reference to the monitor's re-baseline rather
than guessing it back from lineage.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from opsloop.errors import OpsloopError
from opsloop.governance import audit
from opsloop.governance.acting import author_principal
from opsloop.governance.acting import run_as
from opsloop.governance.acting import via
from opsloop.kernel.code_policy import ANY_CODE
from opsloop.kernel.code_policy import CodePolicy
from opsloop.kernel.identity import current_user
from opsloop.kernel.step_context import STEP_RUN_TAG
from opsloop.lineage import graph
from opsloop.monitoring.entities import LoopRun
from opsloop.monitoring.entities import MonitorSpec
from opsloop.monitoring.entities import RetrainPolicy
from opsloop.monitoring.loop import ACTOR
from opsloop.monitoring.loop import get_loop_run
from opsloop.monitoring.loop import loop_run_rows
from opsloop.monitoring.loop import move_stage
from opsloop.monitoring.loop import note
from opsloop.monitoring.loop import settle
from opsloop.monitoring.references import profile_reference
from opsloop.monitoring.tables import AlertRow
from opsloop.monitoring.tables import LoopRunRow
from opsloop.monitoring.tables import MonitorRow
from opsloop.monitoring.tables import MonitorRunRow
from opsloop.monitoring.windows import explode
from opsloop.pipelines.loading import load_pipeline
from opsloop.registry.promotion import PromotionContext
from opsloop.registry.promotion import promote

__all__ = ["advance"]


def _load(store: Any, loop_id: str) -> tuple[LoopRunRow, MonitorRow, RetrainPolicy]:
    with store.read() as session:
        row, monitor, policy = loop_run_rows(session, loop_id)
        session.expunge_all()
    assert policy is not None
    return row, monitor, policy


def _save(store: Any, loop_id: str, stage: str, message: str, **fields: Any) -> None:
    with store.write() as session:
        row = session.get(LoopRunRow, loop_id)
        assert row is not None
        for key, value in fields.items():
            setattr(row, key, value)
        move_stage(row, stage, message)
        audit.append(session, actor=current_user(), action=via(f"loop {stage}", ACTOR),
                     resource=f"loops/{loop_id}", outcome=200)  # fmt: skip


def _since(store: Any, row: LoopRunRow) -> int | None:
    """Where the traffic the alert judged begins: the start of the window of the check that
    opened it (None for an alert no check window explains)."""
    with store.read() as session:
        alert = session.get(AlertRow, row.alert_id)
        run = session.get(MonitorRunRow, alert.run_id) if alert and alert.run_id else None
        return None if run is None else run.window_start


def _export(
    client: Any, store: Any, log: Any, row: LoopRunRow, monitor: MonitorRow, policy: RetrainPolicy
) -> str | None:
    """The deployment's labelled traffic, from the start of the window that raised the alert
    on, as the next version of ``policy.export_dataset``.

    Not the older traffic: the alert says the traffic since then differs from the reference,
    so that is what the new version must learn (the pipeline also gets its own reference
    data) and what the monitor compares to once it is promoted. Exporting the traffic from
    before the shift too would make a reference that the shifted traffic drifts from again,
    and the loop would never settle."""
    if policy.export_dataset is None:
        return None
    since = _since(store, row)
    window = explode(log.requests(monitor.deployment, since_ms=since), since, None)
    target = MonitorSpec.model_validate_json(monitor.spec).target or "label"
    frame = window.features
    frame[target] = window.labels
    frame = frame[frame[target].notna()]
    if frame.empty:
        raise OpsloopError(
            f"deployment {monitor.deployment!r} has no labelled traffic to retrain on"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{policy.export_dataset}.parquet"
        frame.reset_index(drop=True).to_parquet(path)
        added = client.data.add(
            str(path), name=policy.export_dataset,
            message=f"labelled traffic of {monitor.deployment} since the window of alert "
            f"{row.alert_id[:8]} ({len(frame)} rows)",
        )  # fmt: skip
    return str(added.version.ref)


def _train(
    client: Any, store: Any, row: LoopRunRow, policy: RetrainPolicy, data_ref: str | None,
    code: CodePolicy,
) -> tuple[str, int]:  # fmt: skip
    """Run the pipeline; its run id and the model version it registered."""
    pipeline = load_pipeline(policy.pipeline, code)
    params = dict(policy.params)
    if data_ref is not None:
        params[policy.data_param] = data_ref
    tags = {"opsloop.trigger": f"alert:{row.alert_id}", "opsloop.loop": row.id}
    result = pipeline.run(client=client, tags=tags, **params)
    with store.write() as session:
        graph.add_edge(session, ("alert", row.alert_id), (graph.RUN, result.run_id), "triggered")
    runs = {result.run_id, *(s.run_id for s in result.steps)}
    model = client.deployments.get(row.deployment).model
    made = [
        v
        for v in client.models.versions(model, max_results=1000).items
        if v.run_id in runs or v.tags.get(STEP_RUN_TAG) in runs
    ]
    if not made:
        raise OpsloopError(
            f"pipeline run {result.run_id[:8]} registered no version of {model!r} "
            "(a registering step must not be cached: @step(cache=False))"
        )
    return result.run_id, max(v.number for v in made)


def _settle(client: Any, store: Any, loop_id: str) -> None:
    """Re-baseline the monitor on the promoted version's training data, profiled with that
    version, and resolve the incident's alerts (``monitoring.loop.settle``). Without an
    exported dataset the loop does not know that data: the reference is kept, profiled with the
    new version. If profiling fails the loop stays promoted, the alerts stay open for a person,
    and the failure is in the run's history."""
    row, monitor, _ = _load(store, loop_id)
    spec = MonitorSpec.model_validate_json(monitor.spec)
    version = f"{client.deployments.get(row.deployment).model}@{row.candidate}"
    promoted = f"v{row.candidate} promoted by loop {row.id[:8]}"
    if row.data_ref is not None:
        reference = row.data_ref
        reason = (
            f"{promoted}: trained on {reference} (pipeline run {(row.pipeline_run_id or '')[:8]})"
        )
    else:
        reference = json.loads(monitor.baseline)["reference"]
        reason = (
            f"{promoted}: its training data is not known (no export_dataset); {reference} is "
            f"kept, profiled with v{row.candidate}"
        )
    try:
        profiled = profile_reference(
            spec, reference, version, models=client.models, data=client.data
        )
        with store.write() as session:
            settle(session, loop_id, profiled, reason)
    except Exception as exc:  # the incident stays open; say why on the run, which stays promoted
        with store.write() as session:
            fresh = session.get(LoopRunRow, loop_id)
            assert fresh is not None
            why = f"{reference}: {type(exc).__name__}: {exc}; the alerts stay open"
            note(fresh, "rebaseline failed", f"{why} (opsloop monitors rebaseline, alerts resolve)")


def advance(
    client: Any, store: Any, promotions: PromotionContext, log: Any, loop_id: str, *,
    tick_rollout: bool = True, code: CodePolicy = ANY_CODE,
) -> LoopRun:  # fmt: skip
    """Walk a loop run as far as it can go now (see :mod:`opsloop.monitoring.loop`), acting as
    the user who set the loop up (its monitor's creator): the pipeline run, the candidate alias,
    the rollout and the audit events are theirs, each naming the loop alongside. The policy's
    pipeline is imported only if ``code`` allows it."""
    with store.read() as session:
        _, monitor, _ = loop_run_rows(session, loop_id)
        author = author_principal(session, monitor.created_by)
    return run_as(author, _advance, client, store, promotions, log, loop_id,
                  tick_rollout=tick_rollout, code=code)  # fmt: skip


def _advance(
    client: Any, store: Any, promotions: PromotionContext, log: Any, loop_id: str, *,
    tick_rollout: bool, code: CodePolicy,
) -> LoopRun:  # fmt: skip
    row, monitor, policy = _load(store, loop_id)
    try:
        if row.stage == "triggered":
            data_ref = _export(client, store, log, row, monitor, policy)
            _save(store, loop_id, "training", f"running {policy.pipeline}", data_ref=data_ref)
            run_id, candidate = _train(client, store, row, policy, data_ref, code)
            _save(store, loop_id, "gating", f"pipeline run {run_id[:8]} registered v{candidate}",
                  pipeline_run_id=run_id, candidate=candidate)  # fmt: skip
            row, monitor, policy = _load(store, loop_id)
        if row.stage == "gating":
            model = client.deployments.get(row.deployment).model
            ref = f"{model}@{row.candidate}"
            result = promote(
                promotions, ref, "candidate", created_by=current_user(),
                policy=policy.gate_policy, baseline="champion",
                reason=f"retraining loop {row.id[:8]}",
            )  # fmt: skip
            if not result.passed:
                failed = [
                    r for r in (result.event.verdict or {}).get("rules", []) if not r.get("passed")
                ]
                why = (
                    "; ".join(str(r.get("detail") or r.get("rule")) for r in failed)
                    or "gate failed"
                )
                _save(store, loop_id, "rejected", f"v{row.candidate} failed the gate: {why}")
                return get_loop_run(store, loop_id)
            rollout = client.deployments.rollout(
                ref, name=row.deployment, steps=policy.rollout_steps, checks=policy.rollout_checks,
                max_inconclusive_seconds=policy.max_inconclusive_seconds,
            )  # fmt: skip
            started = f"v{row.candidate} passed the gate; canary started"
            _save(store, loop_id, "rolling_out", started, rollout_id=rollout.id)
            row, monitor, policy = _load(store, loop_id)
        if row.stage == "rolling_out":
            rollout = (
                client.deployments.advance if tick_rollout else client.deployments.rollout_status
            )(row.deployment)
            if rollout.id != row.rollout_id:
                _save(store, loop_id, "failed", "the rollout was replaced by another one")
            elif rollout.status == "succeeded":
                _save(store, loop_id, "promoted", f"the canary passed: {rollout.message}")
                _settle(client, store, loop_id)
            elif rollout.status in ("degraded", "aborted"):
                _save(
                    store,
                    loop_id,
                    "rolled_back",
                    f"v{row.candidate} rolled back: {rollout.message}",
                )
    except OpsloopError as exc:
        _save(store, loop_id, "failed", exc.message)
    except Exception as exc:  # a user pipeline may raise anything: keep it on the record
        _save(store, loop_id, "failed", f"{type(exc).__name__}: {exc}")
    return get_loop_run(store, loop_id)
