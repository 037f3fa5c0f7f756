"""Behavioural tests for models: what must (not) change when an input changes.

- ``invariance``: perturbing a column must not change the prediction (e.g. a name, a zip code).
- ``directional``: perturbing a column must move the score one way (more income must not lower
  the approval probability).
- ``prediction_regression``: on fixed data, the candidate's predictions may differ from the
  champion's on at most a given share of rows.

Each check reports the failure rate and up to five failing rows, and passes when the rate is
at most ``max_failure_rate`` (0 by default).
"""

from __future__ import annotations

from typing import Any
from typing import Literal

import numpy as np
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator

from opsloop.errors import InvalidInput

__all__ = ["BehaviourCheck", "Perturbation", "prediction_regression", "run_check"]


class Perturbation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    add: float | None = None
    multiply: float | None = None
    set: Any = None
    swap: tuple[Any, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> Perturbation:
        given = [k for k in ("add", "multiply", "set", "swap") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a perturbation is exactly one of add, multiply, set or swap")
        return self

    def apply(self, column: Any) -> Any:
        if self.add is not None:
            return column + self.add
        if self.multiply is not None:
            return column * self.multiply
        if self.set is not None:
            return column.map(lambda _: self.set)
        first, second = self.swap  # type: ignore[misc]
        return column.map(lambda v: second if v == first else first if v == second else v)


class BehaviourCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: Literal["invariance", "directional"]
    column: str
    perturb: Perturbation
    expect: Literal["unchanged", "increase", "decrease", "no_increase", "no_decrease"] = "unchanged"
    tolerance: float = Field(0.0, ge=0)
    max_failure_rate: float = Field(0.0, ge=0, le=1)


def _scores(model: Any, features: Any) -> Any:
    """The number a check compares: the positive-class probability, else the prediction."""
    if hasattr(model, "predict_proba"):
        try:
            proba = np.asarray(model.predict_proba(features), dtype=float)
            return proba[:, -1] if proba.ndim == 2 else proba
        except (InvalidInput, AttributeError):
            pass
    predicted = np.asarray(model.predict(features))
    return predicted.astype(float) if predicted.dtype.kind in "biuf" else predicted


def _failures(check: BehaviourCheck, before: Any, after: Any) -> Any:
    if before.dtype.kind not in "biuf":
        if check.expect != "unchanged":
            raise InvalidInput(
                f"check {check.name!r}: the model predicts labels without probabilities, "
                "so only invariance can be checked"
            )
        return before != after
    delta = after - before
    tol = check.tolerance
    return {
        "unchanged": np.abs(delta) > tol,
        "increase": delta <= tol,
        "decrease": delta >= -tol,
        "no_increase": delta > tol,
        "no_decrease": delta < -tol,
    }[check.expect]


def run_check(model: Any, features: Any, check: BehaviourCheck) -> dict[str, Any]:
    """Run one invariance or directional check over every row of ``features``."""
    if check.column not in features.columns:
        raise InvalidInput(f"check {check.name!r} perturbs {check.column!r}, which the data lacks")
    if check.type == "invariance" and check.expect != "unchanged":
        raise InvalidInput(f"check {check.name!r}: an invariance check expects 'unchanged'")
    if check.type == "directional" and check.expect == "unchanged":
        raise InvalidInput(f"check {check.name!r}: say which way a directional check moves")
    perturbed = features.copy()
    perturbed[check.column] = check.perturb.apply(features[check.column])
    before, after = _scores(model, features), _scores(model, perturbed)
    failed = np.asarray(_failures(check, before, after))
    rate = float(failed.mean()) if len(failed) else 0.0
    rows = np.flatnonzero(failed)[:5].tolist()
    return {
        "name": check.name,
        "type": check.type,
        "column": check.column,
        "expect": check.expect,
        "rows": len(failed),
        "failures": int(failed.sum()),
        "failure_rate": rate,
        "max_failure_rate": check.max_failure_rate,
        "failing_rows": [
            {"row": r, "before": _plain(before[r]), "after": _plain(after[r])} for r in rows
        ],
        "passed": rate <= check.max_failure_rate,
    }


def prediction_regression(
    candidate: Any, champion: Any, features: Any, max_changed_fraction: float
) -> dict[str, Any]:
    """Share of rows where the candidate predicts another label (or value) than the champion."""
    new = np.asarray(candidate.predict(features))
    old = np.asarray(champion.predict(features))
    if new.dtype.kind in "f" or old.dtype.kind in "f":
        changed = ~np.isclose(new.astype(float), old.astype(float), rtol=1e-9, atol=1e-12)
    else:
        changed = new != old
    rate = float(changed.mean()) if len(changed) else 0.0
    return {
        "name": "prediction_regression",
        "type": "prediction_regression",
        "rows": len(changed),
        "changed": int(changed.sum()),
        "changed_fraction": rate,
        "max_changed_fraction": max_changed_fraction,
        "changed_rows": np.flatnonzero(changed)[:5].tolist(),
        "passed": rate <= max_changed_fraction,
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
