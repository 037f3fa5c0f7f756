"""The evaluation gate, judged for a pull request without moving anything.

``opsloop models promote`` judges a candidate and moves the alias on a pass: right for the
main branch, wrong for a pull request, whose model must not become the champion before it is
merged. Here the same pieces judge it (the policy's reader, the evaluation of both models on
the policy's dataset version, the behavioural checks, :func:`opsloop.evaluation.gates.judge`),
so the verdict has the same shape and the same numbers as a promotion's, and nothing is
recorded or moved.

The candidate is the version the head's runs registered: a pipeline step that registers a
model tags its run ``opsloop.model.version`` (``NAME@N``), and a version registered from a run
keeps its ``run_id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from opsloop.evaluation.behaviour import prediction_regression
from opsloop.evaluation.behaviour import run_check
from opsloop.evaluation.evaluate import evaluate_frame
from opsloop.evaluation.gates import GatePolicy
from opsloop.evaluation.gates import judge
from opsloop.evaluation.gates import load_policy
from opsloop.pipelines.cache_index import MODEL_TAG

__all__ = ["candidate_of", "dry_gate"]


def candidate_of(models: Any, name: str, runs: Iterable[Any]) -> str:
    """``NAME@N``: the newest version of model ``name`` that the head's ``runs`` registered.

    Raises:
        NotFound: None of the runs registered a version of ``name``.
    """
    runs = list(runs)
    tagged = [run.data.tags.get(MODEL_TAG, "") for run in runs]  # newest run first
    for ref in tagged:
        if ref.rsplit("@", 1)[0] == name:
            return ref
    run_ids = {run.info.run_id for run in runs}
    for version in models.versions(name, 200).items:
        if version.run_id in run_ids:
            return str(version.ref)
    raise NotFound(
        f"none of the head's {len(runs)} run(s) registered a version of {name!r}: "
        "name one with --candidate NAME@N"
    )


def _policy(models: Any, name: str, policy: str | Path | None) -> GatePolicy:
    if policy is not None:
        return load_policy(policy)
    stored = models.get(name).gate_policy
    if stored is None:
        raise InvalidInput(
            f"model {name!r} has no gate policy: pass --policy FILE or store one with "
            "`opsloop models set-policy`"
        )
    return load_policy(stored)


def dry_gate(
    models: Any,
    data: Any,
    candidate: str,
    *,
    against: str = "champion",
    policy: str | Path | None = None,
) -> dict[str, Any]:
    """The gate's verdict for ``candidate`` (``NAME@N``) against the holder of ``against``.

    Returns the verdict as a promotion records it: ``passed``, ``rules`` and ``checks`` with
    every number, plus ``data``, ``task``, ``candidate`` and ``champion`` (ref and metrics;
    ``champion`` is None while the alias points nowhere, and comparative rules do not apply).

    Raises:
        InvalidInput: No policy, or a policy naming a metric the task does not report.
        NotFound: The candidate, the policy's dataset version or the model is unknown.
    """
    version = models.version(candidate)
    gate = _policy(models, version.name, policy)
    task = gate.task or version.task
    if task is None:
        raise InvalidInput("the policy names no task and the model does not say; add task:")
    gate.check_metrics(task)
    table = data.get(gate.data)
    frame = table.to_pandas()
    holder_ref = models.get(version.name).aliases.get(against)
    challenger = models.load(version.ref)
    features = frame.drop(columns=[gate.target])
    options = {
        "target": gate.target,
        "task": task,
        "slices": gate.slices,
        "latency_samples": gate.latency_samples,
        "plots": False,
    }
    candidate_report = evaluate_frame(challenger, frame, **options)
    checks = [run_check(challenger, features, check) for check in gate.checks]
    champion_report = holder = None
    if holder_ref is not None and holder_ref != version.number:
        holder = models.load(f"{version.name}@{holder_ref}")
        champion_report = evaluate_frame(holder, frame, **options)
        if gate.prediction_regression is not None:
            limit = gate.prediction_regression.max_changed_fraction
            checks.append(prediction_regression(challenger, holder, features, limit))
    verdict = judge(gate, candidate_report, champion_report, checks)
    verdict.update(
        data=table.ref,
        task=task,
        against=against,
        candidate={"ref": version.ref, "metrics": candidate_report["metrics"]},
        champion=None
        if champion_report is None
        else {"ref": f"{version.name}@{holder_ref}", "metrics": champion_report["metrics"]},
    )
    return verdict
