"""What a CI report is made of, read from the stores: the runs of two branches side by side,
the data versions they read, and the eval suites' latest results.

Every function is handed the SDK object it reads (``client``, ``client.data``, ...), never
looks one up, so the same code reads the embedded store in a test and a team server in CI.

Which runs belong to a branch: every run records the git branch and commit it ran on
(``opsloop.git.branch``, ``opsloop.git.commit``; see :mod:`opsloop.tracking.reproducibility`).
A pull request's job runs on a detached merge commit, whose branch reads ``HEAD``, so the head
side is the runs of the head branch *or* of the commit the job checked out. For each experiment
(and each pipeline step in it) the latest finished run with metrics stands for the branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol

from opsloop.ci.report import MetricDelta
from opsloop.ci.report import RunPair
from opsloop.errors import NotFound
from opsloop.kernel.paging import Page

__all__ = [
    "BRANCH_TAG",
    "COMMIT_TAG",
    "BranchRuns",
    "Side",
    "branch_runs",
    "changed_data",
    "latest_eval_runs",
    "pair_runs",
]

BRANCH_TAG = "opsloop.git.branch"
COMMIT_TAG = "opsloop.git.commit"
STEP_TAG = "opsloop.step"
CACHE_SOURCE_TAG = "opsloop.cache.source"  # a cached step run: the run that computed it
_MAX_RUNS = 1000
_MAX_DEPTH = 3  # pipeline run → step runs → trial runs
_BATCH = 50  # parent ids per search: well under the filter's clause limit
_MAX_LINEAGE_READS = 50  # the newest runs per side whose inputs are read


class RunSearch(Protocol):
    def search_runs(
        self,
        experiments: Any,
        filter: str | None = None,
        *,
        max_results: int = ...,
        page_token: str | None = ...,
    ) -> Page[Any]: ...

    def get_experiment(self, experiment_id: str) -> Any: ...

    def get_run(self, run_id: str) -> Any: ...


class Lineage(Protocol):
    def lineage(self, ref: str, *, kind: str | None = None) -> dict[str, Any]: ...


class DataDiffs(Protocol):
    def diff(self, old_ref: str, new_ref: str) -> Any: ...


class EvalRuns(Protocol):
    def runs(self, suite: str | None = None, limit: int = 50) -> list[Any]: ...

    def get(self, run_id: str) -> Any: ...


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a branch, and for the head the commit the job runs on."""

    branch: str
    commit: str | None = None

    def filter(self) -> str:
        clauses = [f"tags.`{BRANCH_TAG}` = {_quote(self.branch)}"]
        if self.commit:
            clauses.append(f"tags.`{COMMIT_TAG}` = {_quote(self.commit)}")
        return f"({' or '.join(clauses)}) and attributes.status = 'FINISHED'"

    def describe(self) -> str:
        return f"{self.branch} ({self.commit[:8]})" if self.commit else self.branch


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class BranchRuns:
    """A branch's finished runs (newest first) and, per experiment/step, the one that stands
    for it: the newest with metrics."""

    side: Side
    runs: list[Any] = field(default_factory=list)
    latest: dict[str, Any] = field(default_factory=dict)


def _search(tracking: RunSearch, filter: str, limit: int) -> list[Any]:
    runs: list[Any] = []
    token = None
    while len(runs) < limit:
        page = tracking.search_runs(None, filter, max_results=200, page_token=token)
        runs.extend(page.items)
        if not (token := page.next_page_token):
            break
    return runs


def _children(tracking: RunSearch, parents: list[Any]) -> list[Any]:
    """The finished runs under ``parents``, at any depth (a pipeline's step runs record no
    git state of their own: their pipeline run does)."""
    found: list[Any] = []
    level = [run.info.run_id for run in parents]
    for _ in range(_MAX_DEPTH):
        children: list[Any] = []
        for start in range(0, len(level), _BATCH):
            ids = ", ".join(_quote(i) for i in level[start : start + _BATCH])
            children += _search(
                tracking,
                f"attributes.parent_run_id in ({ids}) and attributes.status = 'FINISHED'",
                _MAX_RUNS,
            )
        if not children:
            break
        found += children
        level = [run.info.run_id for run in children]
    return found


def _metrics_of(tracking: RunSearch, run: Any) -> dict[str, float]:
    """A run's metrics; for a cached step, those of the run that computed its outputs."""
    source = run.data.tags.get(CACHE_SOURCE_TAG)
    if run.data.metrics or not source:
        return dict(run.data.metrics)
    try:
        return dict(tracking.get_run(source).data.metrics)
    except NotFound:
        return {}


def branch_runs(tracking: RunSearch, side: Side) -> BranchRuns:
    """Every finished run of ``side`` and the runs under them (newest first, up to 1,000
    each) across all experiments."""
    runs = _search(tracking, side.filter(), _MAX_RUNS)
    runs = sorted(runs + _children(tracking, runs), key=lambda r: -r.info.start_time)
    names: dict[str, str] = {}
    found = BranchRuns(side, runs)
    for run in runs:
        metrics = _metrics_of(tracking, run)
        if not metrics:
            continue
        run = run.model_copy(update={"data": run.data.model_copy(update={"metrics": metrics})})
        experiment = run.info.experiment_id
        if experiment not in names:
            names[experiment] = tracking.get_experiment(experiment).name
        step = run.data.tags.get(STEP_TAG)
        key = f"{names[experiment]} / {step}" if step else names[experiment]
        found.latest.setdefault(key, run)  # newest first: the first seen stands
    return found


def pair_runs(base: BranchRuns, head: BranchRuns) -> list[RunPair]:
    """Each experiment/step's head run against its base run, metric by metric."""
    pairs = []
    for key in sorted(set(base.latest) | set(head.latest)):
        old, new = base.latest.get(key), head.latest.get(key)
        old_metrics = old.data.metrics if old else {}
        new_metrics = new.data.metrics if new else {}
        deltas = [
            MetricDelta(metric, old_metrics.get(metric), new_metrics.get(metric))
            for metric in sorted(set(old_metrics) | set(new_metrics))
        ]
        pairs.append(
            RunPair(
                key=key,
                base_run_id=old.info.run_id if old else None,
                head_run_id=new.info.run_id if new else None,
                metrics=deltas,
            )
        )
    return pairs


def _inputs(lineage: Lineage, runs: list[Any]) -> dict[str, str]:
    """Dataset name → the version ref the runs read (the newest run's wins)."""
    read: dict[str, str] = {}
    for run in runs[:_MAX_LINEAGE_READS]:
        graph = lineage.lineage(run.info.run_id, kind="run")
        for node in graph.get("upstream", []):
            ref = node.get("ref")
            if node.get("type") == "dataset_version" and ref and "@" in ref:
                read.setdefault(ref.rsplit("@", 1)[0], ref)
    return read


def changed_data(
    lineage: Lineage, data: DataDiffs, base: BranchRuns, head: BranchRuns
) -> list[tuple[str | None, str, Any]]:
    """(base ref, head ref, diff) for each dataset the head's runs read in another version
    than the base's; a dataset only the head reads comes with no base and no diff."""
    old, new = _inputs(lineage, base.runs), _inputs(lineage, head.runs)
    changed: list[tuple[str | None, str, Any]] = []
    for name in sorted(new):
        if name not in old:
            changed.append((None, new[name], None))
        elif old[name] != new[name]:
            changed.append((old[name], new[name], data.diff(old[name], new[name])))
    return changed


def latest_eval_runs(evals: EvalRuns, suites: list[str] | None = None) -> list[Any]:
    """The newest run of each eval suite (of ``suites``, or of every suite run lately), with
    its comparison against the suite's previous run."""
    if suites:
        latest = [runs[0] for suite in suites if (runs := evals.runs(suite, 1))]
    else:
        newest: dict[str, Any] = {}
        for run in evals.runs(None, 200):
            newest.setdefault(run.suite, run)
        latest = [newest[name] for name in sorted(newest)]
    # a run with regressions is read whole, so the report can say what each case got
    return [evals.get(r.run_id) if r.comparison and r.comparison.regressions else r for r in latest]
