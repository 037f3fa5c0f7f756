"""The report's pure parts: metric directions, arrows and percentages, the sections a report
leaves out, the verdict's exit code, and the branch filter's quoting."""

from __future__ import annotations

from opsloop.ci.hosts import MARKER
from opsloop.ci.report import CiReport
from opsloop.ci.report import MetricDelta
from opsloop.ci.report import RunPair
from opsloop.ci.report import exit_code
from opsloop.ci.report import render_markdown
from opsloop.ci.sources import Side
from opsloop.tracking.filters import parse_filter


def test_deltas_follow_each_metrics_direction() -> None:
    assert MetricDelta("accuracy", 0.8, 0.9).better is True
    assert MetricDelta("val_loss", 0.5, 0.6).better is False
    assert MetricDelta("rmse", 2.0, 1.0).better is True
    assert MetricDelta("p99_latency_ms", 10.0, 12.0).better is False
    assert MetricDelta("f1", 0.5, 0.5).better is None
    assert MetricDelta("f1", 0.0, 0.5).percent is None  # no percentage of zero
    assert MetricDelta("f1", None, 0.5).change is None


def test_render_shows_only_what_it_has_and_the_verdict_decides_the_exit() -> None:
    empty = CiReport(base="main", head="feature")
    text = render_markdown(empty)
    assert text.startswith(MARKER + "\n") and "⚪ no gate ran" in text
    assert "No finished runs were found on `feature` or `main`." in text
    assert exit_code(empty) == 0
    pair = RunPair("churn", "a" * 32, "b" * 32,
                   [MetricDelta("auc", 0.8, 0.84), MetricDelta("log_loss", 0.4, 0.5),
                    MetricDelta("new_metric", None, 1.0)])  # fmt: skip
    gate = {"passed": False, "data": "churn-data@3", "against": "champion",
            "rules": [{"rule": "auc >= 0.9", "metric": "auc", "passed": False,
                       "candidate": 0.84, "detail": "0.84 < 0.9"}],
            "checks": [], "candidate": {"ref": "churn@4", "metrics": {"auc": 0.84}},
            "champion": None}  # fmt: skip
    report = CiReport(base="main", head="feature", pairs=[pair], gate=gate)
    text = render_markdown(report, chart="report.svg")
    assert "| churn | auc | 0.8 | 0.84 | ▲ +0.04 (+5.0%) 🟢 |" in text
    assert "| churn | log_loss | 0.4 | 0.5 | ▲ +0.1 (+25.0%) 🔴 |" in text
    assert "| churn | new_metric | - | 1 | new |" in text
    assert "`churn@4` vs no champion yet on `churn-data@3`" in text
    assert "| ❌ | auc >= 0.9 | 0.84 | - | 0.84 < 0.9 |" in text
    assert "![metric changes, head vs base](report.svg)" in text
    assert "Data versions" not in text and "Eval suites" not in text
    assert exit_code(report) == 1


def test_branch_names_are_quoted_for_the_filter_language() -> None:
    side = Side("it's/feature\\x", "abc123")
    parse_filter(side.filter())  # parses: a quote or a backslash in a branch cannot break it
    assert side.describe() == "it's/feature\\x (abc123)"
