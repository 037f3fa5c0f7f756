"""MLflow's filter strings as the registry's MLflow searches read them."""

from __future__ import annotations

import pytest

from opsloop.errors import InvalidInput
from opsloop.registry.mlflow_filters import Clause
from opsloop.registry.mlflow_filters import matches
from opsloop.registry.mlflow_filters import parse_filter
from opsloop.registry.mlflow_filters import sort_key

KEYS = ("name", "run_id", "version_number", "tags.")


def test_clauses_joined_by_and_with_both_tag_spellings() -> None:
    parsed = parse_filter(
        "name LIKE 'ch%' AND tag.`mlflow.x` != 'true' and run_id IN ('a', 'b') "
        "AND version_number >= 2",
        KEYS,
    )
    assert parsed == [
        Clause("name", "LIKE", "ch%"),
        Clause("tags.mlflow.x", "!=", "true"),
        Clause("run_id", "IN", ["a", "b"]),
        Clause("version_number", ">=", 2),
    ]
    fields = {"name": "churn", "run_id": "b", "version_number": 3}
    assert matches(parsed, fields.get)  # a missing tag matches !=
    assert not matches(parsed, {**fields, "version_number": 1}.get)
    assert matches(parse_filter("name ILIKE 'CH%'", KEYS), fields.get)
    assert not matches(parse_filter("run_id NOT IN ('b')", KEYS), fields.get)
    assert matches(parse_filter("name = 'it''s'", KEYS), {"name": "it's"}.get)


@pytest.mark.parametrize(
    "text",
    ["colour = 'blue'", "name ~ 'x'", "name = 'x' OR name = 'y'", "name =", "run_id IN 'a'"],
)
def test_malformed_filters_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_filter(text, KEYS)


def test_order_by() -> None:
    assert sort_key(["name", "version_number DESC"], KEYS) == [
        ("name", False),
        ("version_number", True),
    ]
    with pytest.raises(InvalidInput):
        sort_key(["name SIDEWAYS"], KEYS)
    with pytest.raises(InvalidInput):
        sort_key(["colour"], KEYS)
