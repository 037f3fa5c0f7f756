"""One verdict, two pages: the CI comment and `opsloop models promote` draw a gate's rules and
checks from the same rows, each rounding numbers for its page."""

from __future__ import annotations

from opsloop.ci.report import number
from opsloop.console.output import for_people
from opsloop.evaluation.gates import verdict_rows

_VERDICT = {
    "passed": False,
    "rules": [{"rule": "f1 >= 0.9", "passed": True, "candidate": 0.912345, "champion": None,
               "detail": "0.9123 >= 0.9"}],
    "checks": [
        {"name": "radius-up", "passed": False, "failure_rate": 0.25, "max_failure_rate": 0.0},
        {"name": "prediction-regression", "passed": True, "changed_fraction": 0.05,
         "max_changed_fraction": 0.1},
    ],
}  # fmt: skip


def test_rules_then_checks_with_each_checks_share_and_limit() -> None:
    assert verdict_rows(_VERDICT, for_people) == [
        (True, "f1 >= 0.9", "0.9123", "", "0.9123 >= 0.9"),
        (False, "check radius-up", "0.25", "", "share failing 0.25 (max 0)"),
        (True, "check prediction-regression", "0.05", "", "share failing 0.05 (max 0.1)"),
    ]


def test_the_markdown_page_marks_a_missing_number_with_a_dash() -> None:
    rule = verdict_rows(_VERDICT, number)[0]
    assert rule[2:4] == ("0.9123", "-")
