"""A real ``python:`` eval provider for the CI tests: answers capital-city questions, except
the ones a test marks broken (so a second suite run regresses on them)."""

from __future__ import annotations

from typing import Any

CAPITALS = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid"}
BROKEN: set[str] = set()


def answer(prompt: str, variables: dict[str, Any]) -> str:
    country = variables["country"]
    return "I do not know." if country in BROKEN else f"The capital is {CAPITALS[country]}."
