"""A pull request's report as one Markdown comment: pure functions over what the sources read.

Sections, each left out when it has nothing to say: the gate's verdict with every number
(rules and behavioural checks, candidate vs champion), metric changes per experiment/step
(head vs base, with arrows and percentages, green when better by the metric's direction),
data versions that changed, and eval suites with their regressions.

About the chart: a pull-request comment can only show images the host can fetch, and a CI
job's files are not such; so the comment carries the numbers as tables, and the chart (an
SVG of the changes, :mod:`opsloop.ci.chart`) is written next to the report file, linked from
the file's copy only. The generated workflows keep that folder as a build artifact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from opsloop.ci.hosts import MARKER
from opsloop.evaluation.gates import verdict_rows
from opsloop.evaluation.metrics import LOWER_IS_BETTER

__all__ = [
    "EXIT_GATE_FAILED",
    "EXIT_PASSED",
    "CiReport",
    "MetricDelta",
    "RunPair",
    "exit_code",
    "render_markdown",
]

EXIT_PASSED = 0  # the gate passed, or there was no gate to run
EXIT_GATE_FAILED = 1  # the gate rejected the candidate; errors exit 2 and above
_LOWER_WORDS = ("loss", "error", "latency", "rmse", "mae", "mape", "perplexity", "_ms", "time")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value is the better one: the evaluation metrics' own directions,
    then the words a logged metric's name usually carries (``val_loss``, ``p99_latency_ms``)."""
    name = metric.lower()
    return name in LOWER_IS_BETTER or any(word in name for word in _LOWER_WORDS)


@dataclass(frozen=True)
class MetricDelta:
    """One metric of one experiment/step on both sides (None where a side did not log it)."""

    metric: str
    base: float | None
    head: float | None

    @property
    def change(self) -> float | None:
        return None if self.base is None or self.head is None else self.head - self.base

    @property
    def percent(self) -> float | None:
        change = self.change
        return None if change is None or not self.base else 100.0 * change / abs(self.base)

    @property
    def better(self) -> bool | None:
        """True when the head improved, False when it got worse, None when unchanged/unknown."""
        change = self.change
        if not change:
            return None
        return (change < 0) if lower_is_better(self.metric) else (change > 0)


@dataclass(frozen=True)
class RunPair:
    """The run standing for an experiment/step on each side, and their metrics."""

    key: str
    base_run_id: str | None
    head_run_id: str | None
    metrics: list[MetricDelta]


@dataclass
class CiReport:
    """Everything one report says. ``gate`` is a verdict as :mod:`opsloop.ci.gate` returns it;
    ``data`` holds (base ref, head ref, ``DataDiff`` or None); ``evals`` stored eval runs."""

    base: str
    head: str
    pairs: list[RunPair] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    data: list[tuple[str | None, str, Any]] = field(default_factory=list)
    evals: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def exit_code(report: CiReport) -> int:
    """0 when the gate passed or none ran, 1 when it rejected the candidate."""
    return EXIT_GATE_FAILED if report.gate is not None and not report.gate["passed"] else 0


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.4g}"


def _arrow(delta: MetricDelta) -> str:
    change = delta.change
    if change is None:
        return "new" if delta.base is None else "gone"
    if change == 0:
        return "= 0"
    arrow = "▲" if change > 0 else "▼"
    mark = {True: " 🟢", False: " 🔴", None: ""}[delta.better]
    percent = "" if delta.percent is None else f" ({delta.percent:+.1f}%)"
    return f"{arrow} {change:+.4g}{percent}{mark}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _gate_section(gate: dict[str, Any]) -> list[str]:
    candidate = gate["candidate"]["ref"]
    champion = (gate.get("champion") or {}).get("ref")
    against = f"{champion} (@{gate.get('against', 'champion')})" if champion else "no champion yet"
    lines = [f"### Evaluation gate: `{candidate}` vs {against} on `{gate.get('data')}`", ""]
    rows = [("✅" if passed else "❌", *cells) for passed, *cells in verdict_rows(gate, number)]
    lines += _table(["", "rule", "candidate", "champion", "detail"], rows)
    both = gate["candidate"]["metrics"], (gate.get("champion") or {}).get("metrics") or {}
    names = [m for m in both[0] if both[0].get(m) is not None]
    if names:
        lines += ["", "<details><summary>every metric of the gate's evaluation</summary>", ""]
        lines += _table(
            ["metric", "candidate", "champion"],
            [(m, number(both[0].get(m)), number(both[1].get(m))) for m in names],
        )
        lines += ["", "</details>"]
    return lines


def _metrics_section(report: CiReport) -> list[str]:
    lines = [f"### Metrics: `{report.head}` vs `{report.base}`", ""]
    rows = []
    for pair in report.pairs:
        for delta in pair.metrics:
            rows.append(
                (pair.key, delta.metric, number(delta.base), number(delta.head), _arrow(delta))
            )
    lines += _table(["experiment / step", "metric", report.base, report.head, "change"], rows)
    runs = [
        f"`{p.key}`: {(p.base_run_id or '-')[:8]} → {(p.head_run_id or '-')[:8]}"
        for p in report.pairs
    ]
    lines += ["", "Runs compared (base → head): " + "; ".join(runs)]
    return lines


def _data_section(changes: list[tuple[str | None, str, Any]]) -> list[str]:
    lines = ["### Data versions that changed", ""]
    rows = []
    for old, new, diff in changes:
        if diff is None:
            rows.append((new, "-", "new input on this branch", "", ""))
            continue
        files = f"+{diff.added} -{diff.removed} ~{diff.modified} ={diff.unchanged}"
        table = diff.table
        rows_changed = "" if table is None else f"{table.old_rows:,} → {table.new_rows:,}"
        columns = (
            ""
            if table is None
            else ", ".join(f"{c.name} ({c.change})" for c in table.columns[:8]) or "none"
        )
        rows.append((new, old, files, rows_changed, columns))
    lines += _table(["version", "base version", "files", "rows", "columns changed"], rows)
    return lines


def _evals_section(runs: list[Any]) -> list[str]:
    lines = ["### Eval suites", ""]
    rows, regressed = [], []
    for run in runs:
        comparison = run.comparison
        versus = (
            "-"
            if comparison is None
            else f"{comparison.previous_pass_rate:.1%} → {run.pass_rate:.1%}"
        )
        count = len(comparison.regressions) if comparison else 0
        rows.append(
            (
                run.suite,
                "✅ passed" if run.passed else "❌ failed",
                f"{run.passed_count}/{run.total} ({run.pass_rate:.1%})",
                f"{run.threshold:.0%}",
                versus,
                count,
            )
        )
        results = {f"{r.prompt} | {r.provider} | {r.case}": r for r in run.results or []}
        for key in comparison.regressions if comparison else []:
            regressed.append((run.suite, _case(key, results.get(key))))
    lines += _table(
        ["suite", "result", "passed", "threshold", "vs previous run", "regressions"], rows
    )
    if regressed:
        lines += ["", "Regressions (passed in the previous run, fail now):", ""]
        lines += [f"- `{suite}`: {case}" for suite, case in regressed[:50]]
    return lines


def _case(key: str, result: Any) -> str:
    """A regressed case as people read it: what it asks, what came back, which check failed."""
    if result is None:
        return f"`{key}`"
    failed = "; ".join(a.get("reason", "") for a in result.assertions if not a.get("passed"))
    output = (result.output or "")[:120]
    return f"{result.description} (`{key}`): got {output!r}; {result.error or failed}"


def render_markdown(report: CiReport, *, chart: str | None = None) -> str:
    """The comment's Markdown, starting with the marker that finds it again on the next push.
    ``chart`` (a path relative to the file) adds the chart, for the file's copy only."""
    gate = report.gate
    if gate is None:
        verdict = "⚪ no gate ran"
    else:
        verdict = "✅ gate passed" if gate["passed"] else "❌ gate failed"
    lines = [MARKER, f"## opsloop: `{report.head}` vs `{report.base}` · {verdict}", ""]
    sections = []
    if gate is not None:
        sections.append(_gate_section(gate))
    if report.pairs:
        sections.append(_metrics_section(report))
    if report.data:
        sections.append(_data_section(report.data))
    if report.evals:
        sections.append(_evals_section(report.evals))
    if not sections:
        sections.append([f"No finished runs were found on `{report.head}` or `{report.base}`."])
    for section in sections:
        lines += [*section, ""]
    if chart:
        lines += [f"![metric changes, head vs base]({chart})", ""]
    lines += [f"> {note}" for note in report.notes]
    return "\n".join(lines).rstrip() + "\n"
