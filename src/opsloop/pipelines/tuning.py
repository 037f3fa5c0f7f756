"""Hyperparameter tuning with Optuna, tracked: a study is a run, each trial a nested run.

``tune(objective, space, n_trials=...)`` samples ``space`` with Optuna, calls
``objective(params, trial)`` for each trial, and records everything on the tracking store:

- the study's run holds the search space, ``best_score``, ``best.<param>`` params, and the
  parameter importances and optimisation history as plots;
- each trial is a nested run with its params, its ``score`` (and every value it reported
  through ``trial.report(value, step)``, as the score's history), and its state. A trial that
  the pruner stops (``trial.should_prune()``) ends ``KILLED`` with ``opsloop.trial.state=pruned``.

The objective returns the score, or ``(score, model)``; then the best trial's model is
registered as the next version of ``register`` with the alias ``candidate`` (the gate decides
whether it becomes ``champion``). Inside a pipeline step the study's run nests under the
step's run.

Several objectives (:mod:`.tuning_front`; ``directions=["minimize", "minimize"]``,
``objectives=["eval_loss", "tokens"]``): the objective returns one value per direction, each
logged under its name on the trial's run, and there is no single best but a Pareto front (the
trials no other beats on every objective), returned as ``TuneResult.front`` and logged as the table
``tuning/pareto_front.json`` (MLflow's table JSON: ``columns`` and ``data``). Optuna cannot
prune a multi-objective study, so none is used.

Optuna's own tables live beside opsloop's: in a schema ``optuna`` of the same PostgreSQL
database (``<schema>_optuna`` when the URL sets a ``search_path``), or in a sibling file
``<database>-optuna.db`` for SQLite. Optuna keeps its schema
version in a table named like opsloop's (``alembic_version``), so the two cannot share one
namespace. A study of the same name resumes where it stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from opsloop.errors import InvalidInput
from opsloop.kernel import ambient
from opsloop.kernel.code_policy import ANY_CODE
from opsloop.kernel.code_policy import CodePolicy
from opsloop.pipelines.tuning_front import FrontTrial
from opsloop.pipelines.tuning_front import front_of
from opsloop.pipelines.tuning_front import log_front
from opsloop.pipelines.tuning_front import objective_names
from opsloop.pipelines.tuning_front import objective_values

__all__ = [
    "FrontTrial",
    "TrialContext",
    "TuneCreate",
    "TuneResult",
    "load_objective",
    "optuna_storage",
    "read_result",
    "tune",
]

_KINDS = ("float", "int", "categorical")


class TuneResult(BaseModel):
    study: str
    run_id: str = Field(description="the study's run; each trial is a run nested under it")
    best_score: float | None = Field(None, description="none for a multi-objective study")
    best_params: dict[str, Any]
    best_run_id: str
    trials: int
    pruned: int
    importances: dict[str, float] = Field(default_factory=dict)
    model_version: str | None = Field(None, description="NAME@N of the registered best model")
    front: list[FrontTrial] = Field(
        default_factory=list, description="multi-objective only: the Pareto front's trials"
    )


class TuneCreate(BaseModel):
    """A tuning to run on the server (``POST /api/tuning``); see :func:`tune`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    objective: str = Field(description="MODULE:NAME of the objective, importable on the server")
    space: dict[str, Any]
    n_trials: int = 20
    direction: str = "maximize"
    study: str | None = None
    pruner: str = "median"
    sampler: str = "tpe"
    parallel: int = 1
    executor: str = "threads"
    seed: int | None = 0
    model_name: str | None = Field(  # "register" itself is a name BaseModel has taken
        None, alias="register", description="register the best trial's model under this name"
    )
    experiment: str | None = None

    def tune_arguments(self) -> dict[str, Any]:
        """The keyword arguments of :func:`tune`, besides the objective and the space."""
        return self.model_dump(exclude={"objective", "space"}, by_alias=True)


RESULT_ARTIFACT = "tuning/result.json"  # the TuneResult, on the study's run once it ends


def load_objective(target: str, code: CodePolicy = ANY_CODE) -> Callable[..., Any]:
    """The objective function ``MODULE:NAME`` or ``FILE.py:NAME`` names, if ``code`` allows
    importing it."""
    from opsloop.pipelines.loading import load_target

    objective = load_target(target, code)
    if not callable(objective):
        raise InvalidInput(f"{target} is not a function")
    return objective  # type: ignore[no-any-return]


def read_result(client: Any, run_id: str) -> TuneResult:
    """The result of the study whose run is ``run_id``, once it has ended."""
    from opsloop.errors import Conflict

    run = client.get_run(run_id)
    tags = run.data.tags
    if "opsloop.tune.study" not in tags:
        raise InvalidInput(f"run {run_id} is not a tuning study's run")
    if run.info.status == "FINISHED":
        return TuneResult.model_validate_json(client.read_artifact(run_id, RESULT_ARTIFACT))
    if run.info.status == "RUNNING":
        raise Conflict(f"study {tags['opsloop.tune.study']} is still running: ask when it ends")
    raise InvalidInput(
        f"study {tags['opsloop.tune.study']} ended {run.info.status} with no result: "
        "see its trials' runs"
    )


class TrialContext:
    """What an objective gets besides its params: report intermediate scores, ask to stop."""

    def __init__(self, trial: Any, client: Any, run_id: str) -> None:
        self._trial, self._client, self.run_id = trial, client, run_id
        self.number = trial.number

    def report(self, value: float, step: int) -> None:
        self._trial.report(float(value), step)
        self._client.log_metric(self.run_id, "score", float(value), step=step)

    def should_prune(self) -> bool:
        return bool(self._trial.should_prune())


def optuna_storage(database_url: str) -> str:
    """Where Optuna's tables go for an opsloop database (see the module docstring)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:":
            raise InvalidInput("tuning needs a file or server database, not an in-memory one")
        stem = path[:-3] if path.endswith(".db") else path
        return str(url.set(database=f"{stem}-optuna.db"))
    if url.get_backend_name() == "postgresql":
        import re

        from sqlalchemy import create_engine
        from sqlalchemy import text

        options = str(url.query.get("options") or "")
        found = re.search(r"search_path=([A-Za-z0-9_]+)", options)
        schema = f"{found.group(1)}_optuna" if found else "optuna"
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        engine.dispose()
        tuned = url.update_query_dict({"options": f"-csearch_path={schema}"})
        return tuned.render_as_string(hide_password=False)
    raise InvalidInput(f"tuning does not support {url.get_backend_name()} databases")


def _suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    params = {}
    for name, spec in space.items():
        kind = spec.get("type")
        if kind == "float":
            params[name] = trial.suggest_float(name, spec["low"], spec["high"],
                                               log=bool(spec.get("log", False)))  # fmt: skip
        elif kind == "int":
            params[name] = trial.suggest_int(name, spec["low"], spec["high"],
                                             log=bool(spec.get("log", False)))  # fmt: skip
        else:
            params[name] = trial.suggest_categorical(name, spec["choices"])
    return params


def check_space(space: dict[str, Any]) -> None:
    """Refuse a search space Optuna would choke on, naming the parameter."""
    if not isinstance(space, dict) or not space:
        raise InvalidInput("the search space is a non-empty mapping of param name to range")
    for name, spec in space.items():
        if not isinstance(spec, dict) or spec.get("type") not in _KINDS:
            raise InvalidInput(f"space.{name}: give type: float, int or categorical")
        if spec["type"] == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise InvalidInput(f"space.{name}: a categorical param needs a list of choices")
        elif not {"low", "high"} <= set(spec) or spec["low"] >= spec["high"]:
            raise InvalidInput(f"space.{name}: needs low < high")
        elif spec.get("log") and spec["low"] <= 0:
            raise InvalidInput(f"space.{name}: a log scale needs low > 0")


def _remote_trial(
    settings: Any, storage: str, study: str, trial_id: int, paths: list[str], blob: bytes,
    params: dict[str, Any], run_id: str,
) -> Any:  # fmt: skip
    """A trial on a Ray worker: the study and the tracking store reached from there; the
    objective unpickled once the driver's import path is in place."""
    import optuna

    from opsloop.pipelines.executors import unpack

    objective = unpack(paths, blob)
    trial = optuna.trial.Trial(optuna.load_study(study_name=study, storage=storage), trial_id)
    client = ambient.client_for(settings)
    try:
        return objective(params, TrialContext(trial, client, run_id))
    finally:
        client.close()  # the reported scores are written before the driver ends the run


def _on_ray(
    client: Any, storage: str, study: str, trial: Any, objective: Any, params: dict[str, Any],
    run_id: str,
) -> Any:  # fmt: skip
    import sys

    from opsloop.kernel.ray_cluster import connect_ray

    ray = connect_ray()
    task = ray.remote(_remote_trial).options(max_retries=1)
    blob = ray.cloudpickle.dumps(objective)  # closures too; functions by reference
    ref = task.remote(client.settings, storage, study, trial._trial_id, list(sys.path), blob,
                      params, run_id)  # fmt: skip
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        raise exc.as_instanceof_cause() from None


def _sampler(optuna: Any, kind: str, space: dict[str, Any], seed: int | None) -> Any:
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    grid = {}
    for name, spec in space.items():
        if spec["type"] == "float":
            raise InvalidInput(f"space.{name}: a grid takes categorical and int params only")
        grid[name] = spec["choices"] if spec["type"] == "categorical" else list(
            range(int(spec["low"]), int(spec["high"]) + 1))  # fmt: skip
    return optuna.samplers.GridSampler(grid, seed=seed)


def _log_plots(client: Any, run_id: str, study: Any, importances: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if importances:
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(importances) + 1.2))
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names], color="#3b7dd8")
        ax.set_xlabel("importance (fANOVA)")
        fig.tight_layout()
        client.log_figure(run_id, fig, "tuning/importances.png")
        plt.close(fig)
    finished = [t for t in study.trials if t.value is not None]
    if finished:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        values = [t.value for t in finished]
        best = [max(values[: i + 1]) if study.direction.name == "MAXIMIZE" else min(values[: i + 1])
                for i in range(len(values))]  # fmt: skip
        ax.plot([t.number for t in finished], values, "o", color="#8a96a3", label="trial")
        ax.plot([t.number for t in finished], best, "-", color="#3b7dd8", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel("score")
        ax.legend()
        fig.tight_layout()
        client.log_figure(run_id, fig, "tuning/history.png")
        plt.close(fig)


def tune(
    objective: Callable[[dict[str, Any], TrialContext], Any],
    space: dict[str, Any],
    *,
    n_trials: int = 20,
    direction: str = "maximize",
    study: str | None = None,
    pruner: str = "median",
    sampler: str = "tpe",
    parallel: int = 1,
    executor: str = "threads",
    seed: int | None = 0,
    register: str | None = None,
    input_example: Any = None,
    client: Any = None,
    experiment: str | None = None,
    on_start: Callable[[str], None] | None = None,
    directions: list[str] | None = None,
    objectives: list[str] | None = None,
) -> TuneResult:
    """Tune ``objective`` over ``space`` (see the module docstring).

    Args:
        space: ``{"C": {"type": "float", "low": 1e-3, "high": 10, "log": True},
            "penalty": {"type": "categorical", "choices": ["l1", "l2"]}}``.
        pruner: ``median`` (stop trials below the median of earlier ones at the same step) or
            ``none``.
        sampler: ``tpe`` (Optuna's default) or ``grid`` (every combination once; categorical
            and int params only).
        parallel: Trials run side by side, this many at a time.
        executor: ``threads`` (this process) or ``ray`` (each trial a Ray task on the cluster
            at ``RAY_ADDRESS`` or a local instance; it reports and is pruned through the study
            storage, and logs to the same tracking store).
        register: Model name under which to register the best trial's model.
        on_start: Called with the study's run id as soon as that run exists.
        directions: Several objectives, one direction each (``direction`` is then unused);
            the objective returns one value per direction.
        objectives: The values' names (default ``objective_0``, ...), as the trials' metrics
            and the front table's columns.
    """
    import optuna

    from opsloop.kernel.step_context import current_step_run_id

    check_space(space)
    multi = directions is not None
    names = objective_names(directions, objectives)
    if any(d not in ("maximize", "minimize") for d in directions or [direction]):
        raise InvalidInput("direction must be maximize or minimize")
    if pruner not in ("median", "none"):
        raise InvalidInput("pruner must be median or none")
    if sampler not in ("tpe", "grid"):
        raise InvalidInput("sampler must be tpe or grid")
    if multi and register is not None:
        raise InvalidInput("register takes one best trial: several objectives have a front")
    if n_trials < 1 or parallel < 1:
        raise InvalidInput("n_trials and parallel must be at least 1")
    if executor not in ("threads", "ray"):
        raise InvalidInput("executor must be threads or ray")
    client = client or ambient.default_client()
    storage = client.pipelines.study_storage()  # InvalidInput for a client of a server
    name = study or getattr(objective, "__name__", "study")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna_study = optuna.create_study(
        study_name=name, storage=storage,
        directions=directions or [direction], load_if_exists=True,
        sampler=_sampler(optuna, sampler, space, seed),
        pruner=optuna.pruners.MedianPruner(n_warmup_steps=1) if pruner == "median" and not multi
        else optuna.pruners.NopPruner(),
    )  # fmt: skip
    step_run = current_step_run_id()
    if experiment is None and step_run is not None:  # nest under the step, in its experiment
        exp = client.get_experiment(client.get_run(step_run).info.experiment_id)
    else:
        exp = client.set_experiment(experiment or f"tune-{name}")
    parent = client.create_run(
        exp.experiment_id, run_name=f"study {name}", parent_run_id=step_run,
        tags={"opsloop.tune.study": name,
              "opsloop.tune.direction": ",".join(directions or [direction])},
    )  # fmt: skip
    parent_id = parent.info.run_id
    if on_start is not None:
        on_start(parent_id)
    client.log_dict(parent_id, space, "tuning/space.json")
    models: dict[int, Any] = {}
    runs: dict[int, str] = {}
    lock = threading.Lock()

    def run_trial(trial: Any) -> float | list[float]:
        params = _suggest(trial, space)
        run = client.create_run(
            exp.experiment_id, run_name=f"trial {trial.number}", parent_run_id=parent_id,
            capture_env=False, tags={"opsloop.trial.number": trial.number},
        )  # fmt: skip
        run_id = run.info.run_id
        with lock:
            runs[trial.number] = run_id
        client.log_params(run_id, params)
        try:
            if executor == "ray":
                outcome = _on_ray(client, storage, name, trial, objective, params, run_id)
            else:
                outcome = objective(params, TrialContext(trial, client, run_id))
            values = (
                objective_values(outcome, names) if multi else []
            )  # a wrong count fails the trial
        except optuna.TrialPruned:
            client.set_tag(run_id, "opsloop.trial.state", "pruned")
            client.end_run(run_id, "KILLED")
            raise
        except Exception as exc:
            client.set_tag(run_id, "opsloop.error", f"{type(exc).__name__}: {exc}")
            client.end_run(run_id, "FAILED")
            raise
        if multi:
            client.log_metrics(run_id, dict(zip(names, values, strict=True)))
            client.set_tag(run_id, "opsloop.trial.state", "complete")
            client.end_run(run_id, "FINISHED")
            return values
        score, model = outcome if isinstance(outcome, tuple) else (outcome, None)
        client.log_metric(run_id, "score", float(score))
        client.set_tag(run_id, "opsloop.trial.state", "complete")
        client.end_run(run_id, "FINISHED")
        if model is not None:
            with lock:
                models[trial.number] = model
        return float(score)

    optuna_study.optimize(run_trial, n_trials=n_trials, n_jobs=parallel, catch=(Exception,))
    complete = [t for t in optuna_study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        client.end_run(parent_id, "FAILED")
        raise InvalidInput(f"no trial of study {name!r} completed; see the trials' runs")
    if multi:
        return _finish_front(client, optuna_study, name, parent_id, names, runs)
    best = optuna_study.best_trial
    importances: dict[str, float] = {}
    if len(complete) > 1 and len(space) > 1:
        try:
            found = optuna.importance.get_param_importances(optuna_study)
            importances = {k: float(v) for k, v in found.items()}
        except (RuntimeError, ValueError):
            importances = {}  # too few distinct trials to apportion
    client.log_params(parent_id, {f"best.{k}": v for k, v in best.params.items()})
    summary = {"best_score": float(best.value)}
    summary.update({f"importance.{k}": v for k, v in importances.items()})
    client.log_metrics(parent_id, summary)
    _log_plots(client, parent_id, optuna_study, importances)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in optuna_study.trials)
    result = TuneResult(
        study=name, run_id=parent_id, best_score=float(best.value), best_params=best.params,
        best_run_id=runs.get(best.number, ""), trials=len(optuna_study.trials), pruned=pruned,
        importances=importances,
    )  # fmt: skip
    if register is not None and best.number in models:
        version = client.models.register(
            register, models[best.number], run_id=result.best_run_id, input_example=input_example,
            description=f"best of study {name}: score {best.value:.4g}",
            tags={"opsloop.tune.study": name},
        )  # fmt: skip
        client.models.set_alias(version.ref, "candidate", reason=f"best of study {name}")
        result.model_version = version.ref
    client.log_text(parent_id, result.model_dump_json(), RESULT_ARTIFACT)
    client.end_run(parent_id, "FINISHED")
    return result


def _finish_front(
    client: Any, study: Any, name: str, parent_id: str, names: list[str], runs: dict[int, str]
) -> TuneResult:
    """End a multi-objective study: its Pareto front returned and logged as a table."""
    import optuna

    front = front_of(study, names, runs)
    log_front(client, parent_id, front, names)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    result = TuneResult(study=name, run_id=parent_id, best_params={}, best_run_id="",
                        trials=len(study.trials), pruned=pruned, front=front)  # fmt: skip
    client.log_text(parent_id, result.model_dump_json(), RESULT_ARTIFACT)
    client.end_run(parent_id, "FINISHED")
    return result
