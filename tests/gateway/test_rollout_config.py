"""A route's rollout section is checked with the rest of the file: each mistake is an
InvalidInput naming the field's path; and the split draws targets in the right proportions."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from opsloop.errors import InvalidInput
from opsloop.llm.gateway.config import parse_config
from opsloop.llm.gateway.rollout_split import Split

TARGETS = [{"name": "a", "base_url": "http://127.0.0.1:1/v1"},
           {"name": "b", "base_url": "http://127.0.0.1:1/v1"}]  # fmt: skip
JUDGE = {"max_error_rate": 0.05}


def _parse(rollout: dict[str, Any]) -> Any:
    return parse_config({"routes": [{"name": "r", "targets": TARGETS, "rollout": rollout}]})


def test_a_valid_rollout_is_read_with_its_defaults() -> None:
    rollout = _parse({"baseline": "a", "candidate": "b", "judge": JUDGE}).routes[0].rollout
    assert rollout.mode == "canary" and rollout.steps == [5, 25, 50, 100]
    assert [(b.metric, b.max, b.min_samples) for b in rollout.judge.bounds()] == [
        ("error_rate", 0.05, 20)
    ]


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ({"baseline": "a", "candidate": "c", "judge": JUDGE},
         "routes.0: rollout.candidate 'c' is not a target of this route; targets: a, b"),
        ({"baseline": "a", "candidate": "a", "judge": JUDGE}, "two different targets"),
        ({"baseline": "a", "candidate": "b", "judge": {}},
         "routes.0.rollout.judge: give at least one of"),
        ({"baseline": "a", "candidate": "b", "steps": [50, 25], "judge": JUDGE},
         "routes.0.rollout: steps must rise"),
        ({"baseline": "a", "candidate": "b", "steps": [0, 50], "judge": JUDGE},
         "steps are percentages above 0"),
        ({"baseline": "a", "candidate": "b", "mode": "ab", "steps": [5], "judge": JUDGE},
         "steps are for mode canary"),
        ({"baseline": "a", "candidate": "b", "mode": "blue-green", "judge": JUDGE},
         "routes.0.rollout.mode"),
        ({"baseline": "a", "candidate": "b", "judge": {"max_error_rate": 2}},
         "routes.0.rollout.judge.max_error_rate"),
        ({"baseline": "a", "candidate": "b", "judge": {**JUDGE, "min_calls": 0}},
         "routes.0.rollout.judge.min_calls"),
        ({"baseline": "a", "candidate": "b", "judge": {"min_score": 0.5,
                                                        "assertions": [{"type": "containz"}]}},
         "did you mean 'contains'"),
        ({"baseline": "a", "candidate": "b", "judge": {"min_score": 0.5, "assertions": [
            {"type": "llm-rubric", "value": "polite"}]}}, "llm-rubric needs a judge model"),
        ({"baseline": "a", "candidate": "b", "judge": {**JUDGE, "assertions": [
            {"type": "contains", "value": "x"}]}}, "give min_score"),
        ({"baseline": "a", "candidate": "b", "judge": JUDGE, "interval": 5},
         "routes.0.rollout.interval"),
    ],
)  # fmt: skip
def test_mistakes_name_their_field(rollout: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match="gateway config") as caught:
        _parse(rollout)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


@dataclass
class T:
    name: str
    weight: float = 1.0


def test_the_split_draws_the_pair_by_the_share_ignoring_their_weights() -> None:
    rng = random.Random(7)
    split = Split("a", "b", 20)
    pair = [T("a", 9.0), T("b", 1.0)]
    drawn = Counter(split.pick(pair, rng).name for _ in range(20_000))
    assert 0.185 < drawn["b"] / 20_000 < 0.215  # 20%, not the weights' 10%


def test_other_targets_keep_their_weight_against_the_pair() -> None:
    rng = random.Random(7)
    split = Split("a", "b", 50)
    targets = [T("a", 1.0), T("b", 1.0), T("c", 2.0)]
    drawn = Counter(split.pick(targets, rng).name for _ in range(20_000))
    assert 0.48 < drawn["c"] / 20_000 < 0.52  # c: 2 of 4; the pair's 2 halved by the share
    assert 0.23 < drawn["b"] / 20_000 < 0.27


def test_at_share_zero_the_candidate_is_drawn_only_when_nothing_else_is_left() -> None:
    split = Split("a", "b", 0)
    assert {split.pick([T("a"), T("b")]).name for _ in range(200)} == {"a"}
    assert split.pick([T("b"), T("c")]).name == "c"  # a failed: c, not the rolled-back b
    assert split.pick([T("b")]).name == "b"  # the router asks only with two or more live
