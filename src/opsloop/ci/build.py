"""Put a report together: read both branches' runs, their data, the eval suites and the gate
from a handed-in client, and write the report where the job keeps it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsloop.ci.chart import changes_svg
from opsloop.ci.gate import candidate_of
from opsloop.ci.gate import dry_gate
from opsloop.ci.report import CiReport
from opsloop.ci.report import render_markdown
from opsloop.ci.sources import Side
from opsloop.ci.sources import branch_runs
from opsloop.ci.sources import changed_data
from opsloop.ci.sources import latest_eval_runs
from opsloop.ci.sources import pair_runs

__all__ = ["GateRequest", "Written", "build_report", "write_report"]


@dataclass(frozen=True)
class GateRequest:
    """Which gate to judge: model ``model`` (its candidate found in the head's runs) or an
    explicit ``candidate`` ``NAME@N``, against the holder of ``against``."""

    model: str | None = None
    candidate: str | None = None
    against: str = "champion"
    policy: str | None = None


@dataclass(frozen=True)
class Written:
    """Where the report went: the Markdown file, the chart (None without one), and whether
    the job summary got a copy."""

    path: Path
    chart: Path | None
    summary: bool


def build_report(
    client: Any, base: Side, head: Side, gate: GateRequest, suites: list[str] | None = None
) -> CiReport:
    """The report of ``head`` against ``base`` from ``client``'s stores (nothing is written)."""
    base_runs, head_runs = branch_runs(client, base), branch_runs(client, head)
    report = CiReport(base=base.describe(), head=head.describe())
    report.pairs = pair_runs(base_runs, head_runs)
    report.data = changed_data(client.models, client.data, base_runs, head_runs)
    report.evals = latest_eval_runs(client.evals, suites)
    if gate.model or gate.candidate:
        name = gate.model or (gate.candidate or "").split("@")[0]
        candidate = gate.candidate or candidate_of(client.models, name, head_runs.runs)
        report.gate = dry_gate(
            client.models, client.data, candidate, against=gate.against, policy=gate.policy
        )
    if not head_runs.runs:
        report.notes.append(f"No finished run records branch or commit {head.describe()}.")
    if not base_runs.runs:
        report.notes.append(f"No finished run records branch {base.describe()} yet.")
    return report


def write_report(report: CiReport, out: Path, env: Mapping[str, str] | None = None) -> Written:
    """Write the Markdown to ``out`` with its chart beside it (``NAME.svg``), and append the
    comment's text to the job summary when the runner offers one (``GITHUB_STEP_SUMMARY``)."""
    env = os.environ if env is None else env
    out.parent.mkdir(parents=True, exist_ok=True)
    svg = changes_svg(report.pairs)
    chart = out.with_suffix(".svg") if svg else None
    if chart is not None and svg is not None:
        chart.write_text(svg, encoding="utf-8")
    out.write_text(render_markdown(report, chart=chart.name if chart else None), encoding="utf-8")
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(render_markdown(report) + "\n")
    return Written(out, chart, bool(summary))
