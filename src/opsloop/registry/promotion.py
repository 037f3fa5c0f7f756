"""Promotion through a gate: evaluate the candidate and the alias's current holder on the
policy's dataset version, judge, record everything, and move the alias only on a pass.

This runs where the blobs are (in-process for the embedded store, on the server for a shared
one) and works over a ``Store`` rather than a session: the evaluations take seconds, so they
run between a short read transaction and a short write transaction. The write moves the alias
only if it still points where it did when the gate started; otherwise the promotion is refused
with ``Conflict`` and nothing is recorded, so a decision is never made on stale numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsloop.data import versions as data_versions
from opsloop.data.manifest import Manifest
from opsloop.data.transfer import materialized_copy
from opsloop.data.transfer import verify_copy
from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.evaluation.behaviour import prediction_regression
from opsloop.evaluation.behaviour import run_check
from opsloop.evaluation.evaluate import evaluate_frame
from opsloop.evaluation.gates import GatePolicy
from opsloop.evaluation.gates import judge
from opsloop.evaluation.gates import load_policy
from opsloop.kernel.refs import check_alias
from opsloop.registry import aliases
from opsloop.registry import models
from opsloop.registry import versions
from opsloop.registry.entities import AliasEvent
from opsloop.registry.evaluations import record_evaluation
from opsloop.registry.package import LoadedModel
from opsloop.registry.package import load_package
from opsloop.store.blobs import BlobStore
from opsloop.store.database import Store
from opsloop.store.local_blobs import LocalBlobStore

__all__ = ["Promotion", "PromotionContext", "promote"]


@dataclass(frozen=True)
class PromotionContext:
    """Where promotion reads from: the metadata store, the blob store, a local cache folder."""

    store: Store
    blobs: BlobStore
    cache_root: Path

    def local_copy(self, manifest: Manifest, key: str, what: str) -> Path:
        missing = self.blobs.missing(e.digest for e in manifest.entries)
        if missing:
            raise Conflict(
                f"{len(missing)} file(s) of {what} are not in the blob store {self.blobs.url}; "
                f"push them first (opsloop data push / the SDK's push=True)",
                details={"missing": missing[:10]},
            )
        if isinstance(self.blobs, LocalBlobStore):
            return materialized_copy(self.blobs, None, manifest, self.cache_root / key)
        cache = LocalBlobStore(self.cache_root / "blobs")
        return materialized_copy(cache, self.blobs, manifest, self.cache_root / key)

    def load_model(self, ref: str, manifest: Manifest, package_id: str) -> LoadedModel:
        folder = self.local_copy(manifest, f"packages/{package_id}", ref)
        verify_copy(folder, manifest)
        return load_package(folder, ref=ref)

    def load_table(self, ref: str) -> Any:
        from opsloop.data.tabular import open_table

        with self.store.read() as session:
            version, manifest = data_versions.get_manifest(session, ref)
        if version.table is None:
            raise InvalidInput(f"{version.ref} is not a table; a gate evaluates on a table")
        root = self.local_copy(manifest, f"versions/{version.version_id}", version.ref)
        with open_table(
            [str(root / e.path) for e in manifest.entries], version.table.format
        ) as con:
            return con.sql("SELECT * FROM data").df()


@dataclass(frozen=True)
class Promotion:
    """What a promotion decided: the recorded event (with the gate's verdict) and whether the
    alias moved."""

    event: AliasEvent
    passed: bool

    @property
    def moved(self) -> bool:
        return self.event.moved


def _evaluate(model: LoadedModel, frame: Any, policy: GatePolicy, task: str) -> dict[str, Any]:
    return evaluate_frame(
        model,
        frame,
        target=policy.target,
        task=task,
        slices=policy.slices,
        latency_samples=policy.latency_samples,
    )


def promote(
    context: PromotionContext,
    ref: str,
    alias: str,
    *,
    created_by: str,
    policy: str | Path | dict[str, Any] | GatePolicy | None = None,
    force: bool = False,
    reason: str | None = None,
    baseline: str | None = None,
) -> Promotion:
    """Move ``alias`` to ``ref`` if it passes the gate (or unconditionally with ``force``).

    The candidate is judged against the holder of ``baseline`` (default: ``alias`` itself):
    the retraining loop moves ``candidate`` only for a model better than the ``champion``.

    The policy is the one given, else the model's stored policy. Both models' evaluations and
    the verdict (every number used) are recorded, passed or not.

    Raises:
        InvalidInput: No policy and no ``force``; ``force`` without a reason; a policy naming
            an unknown metric or a dataset that is not a table.
        Conflict: The alias moved while the gate ran.
        PermissionDenied: A package that cannot be loaded safely (pyfunc: use ``force``).
    """
    check_alias(alias)
    with context.store.read() as session:
        candidate, candidate_manifest = versions.manifest_of(session, ref)
        registered = models.get_model(session, candidate.name)
        current = registered.aliases.get(alias)
        compared = registered.aliases.get(baseline or alias)
        champion = champion_manifest = None
        if compared is not None and compared != candidate.number:
            champion, champion_manifest = versions.manifest_of(
                session, f"{candidate.name}@{compared}"
            )
    if force:
        if not reason or not reason.strip():
            raise InvalidInput("a forced promotion needs a reason (--reason), which is recorded")
        with context.store.write() as session:
            event = aliases.move_alias(
                session,
                candidate.ref,
                alias,
                kind="forced",
                moved=True,
                created_by=created_by,
                reason=reason,
                expected_from=current,
            )
        return Promotion(event, passed=False)
    raw_policy = policy if policy is not None else registered.gate_policy
    if raw_policy is None:
        raise InvalidInput(
            f"model {candidate.name!r} has no gate policy: pass one (--policy FILE), store one "
            "with `opsloop models set-policy`, or use --force with --reason"
        )
    gate = load_policy(raw_policy)
    task = gate.task or candidate.task
    if task is None:
        raise InvalidInput("the policy names no task and the model does not say; add task:")
    gate.check_metrics(task)
    frame = context.load_table(gate.data)
    challenger = context.load_model(candidate.ref, candidate_manifest, candidate.package_id)
    candidate_report = _evaluate(challenger, frame, gate, task)
    champion_report = None
    checks: list[dict[str, Any]] = []
    features = frame.drop(columns=[gate.target])
    for check in gate.checks:
        checks.append(run_check(challenger, features, check))
    if champion is not None:
        holder = context.load_model(champion.ref, champion_manifest, champion.package_id)  # type: ignore[arg-type]
        champion_report = _evaluate(holder, frame, gate, task)
        if gate.prediction_regression is not None:
            checks.append(
                prediction_regression(
                    challenger, holder, features, gate.prediction_regression.max_changed_fraction
                )
            )
    verdict = judge(gate, candidate_report, champion_report, checks)
    with context.store.write() as session:
        data_ref = data_versions.get_version(session, gate.data).ref
        evaluation = record_evaluation(
            session,
            candidate_report,
            created_by=created_by,
            model_ref=candidate.ref,
            dataset_ref=data_ref,
        )
        verdict.update(
            policy=gate.to_mapping(),
            data=data_ref,
            task=task,
            candidate={
                "ref": candidate.ref,
                "evaluation_id": evaluation.evaluation_id,
                "metrics": candidate_report["metrics"],
            },
            champion=None,
        )
        if champion is not None and champion_report is not None:
            held = record_evaluation(
                session,
                champion_report,
                created_by=created_by,
                model_ref=champion.ref,
                dataset_ref=data_ref,
            )
            verdict["champion"] = {
                "ref": champion.ref,
                "evaluation_id": held.evaluation_id,
                "metrics": champion_report["metrics"],
            }
        event = aliases.move_alias(
            session,
            candidate.ref,
            alias,
            kind="promoted" if verdict["passed"] else "rejected",
            moved=verdict["passed"],
            created_by=created_by,
            reason=reason,
            verdict=verdict,
            expected_from=current,
        )
    return Promotion(event, passed=verdict["passed"])
