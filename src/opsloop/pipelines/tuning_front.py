"""A multi-objective study's side of :mod:`opsloop.pipelines.tuning`: the objectives' names,
each trial's values, and the Pareto front (the trials no other beats on every objective),
returned and logged as a table on the study's run (``tuning/pareto_front.json``, MLflow's table
JSON: ``columns`` and ``data``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import Field

from opsloop.errors import InvalidInput

__all__ = ["FRONT_ARTIFACT", "FrontTrial", "front_of", "log_front", "objective_names",
           "objective_values"]  # fmt: skip

FRONT_ARTIFACT = "tuning/pareto_front.json"


class FrontTrial(BaseModel):
    """One trial of a multi-objective study's Pareto front."""

    number: int
    values: dict[str, float] = Field(description="objective name -> value")
    params: dict[str, Any]
    run_id: str


def objective_names(directions: list[str] | None, objectives: list[str] | None) -> list[str]:
    """The names of a multi-objective study's values (one per direction); [] for one."""
    if directions is None:
        if objectives is not None:
            raise InvalidInput("objectives names the values of several directions: give those")
        return []
    if not directions:
        raise InvalidInput("directions: give at least one")
    found = objectives or [f"objective_{i}" for i in range(len(directions))]
    if len(found) != len(directions) or len(set(found)) != len(found):
        raise InvalidInput("objectives: one distinct name per direction")
    return list(found)


def objective_values(outcome: Any, names: list[str]) -> list[float]:
    """A multi-objective trial's values, refused (the trial fails) when they do not match."""
    if not isinstance(outcome, list | tuple) or len(outcome) != len(names):
        raise InvalidInput(f"the objective must return {len(names)} values ({', '.join(names)})")
    return [float(v) for v in outcome]


def front_of(study: Any, names: list[str], runs: dict[int, str]) -> list[FrontTrial]:
    """The Optuna study's Pareto front in trial order, each trial with its run's id."""
    return [
        FrontTrial(number=t.number, values=dict(zip(names, t.values, strict=True)),
                   params=t.params, run_id=runs.get(t.number, ""))
        for t in sorted(study.best_trials, key=lambda t: t.number)
    ]  # fmt: skip


def log_front(client: Any, run_id: str, front: list[FrontTrial], names: list[str]) -> None:
    """Log the front on the study's run: the table and its size (``front_size``)."""
    params = sorted({k for t in front for k in t.params})
    table = {
        "columns": ["trial", *names, *params, "run_id"],
        "data": [[t.number, *t.values.values(), *(t.params.get(k) for k in params), t.run_id]
                 for t in front],
    }  # fmt: skip
    client.log_dict(run_id, table, FRONT_ARTIFACT)
    client.log_metric(run_id, "front_size", float(len(front)))
