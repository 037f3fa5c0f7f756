"""Running a recorded pipeline run again: ``resume`` after a failure, ``reproduce`` to check it.

Every pipeline run records what it needs to be run again: the pipeline (``module:name``), its
params (as JSON, so types survive), its executor, and the environment (git commit, package
lock, seed) that every run captures.

``resume`` runs the same pipeline with the same params: the steps that finished are cache hits,
so work starts at the step that failed. The new run is tagged ``opsloop.resumed_from``.

``reproduce`` runs it again with every step recomputed (no cache) and the recorded seed, then
compares: each step's output digest (identical bytes or not, and for outputs that are mappings
of numbers, which numbers moved and by how much), the git commit and the package lock (which
packages differ). By default it runs in the current environment and says where that differs
from the recorded one; with ``clean_env`` it runs in a fresh environment built from the run's
lock, on the run's commit checked out beside this one (:mod:`opsloop.pipelines.cleanenv`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field

from opsloop.errors import Conflict, InvalidInput, OpsloopError

__all__ = ["Reproduction", "StepComparison", "compare", "reproduce", "rerun", "resume"]


class StepComparison(BaseModel):
    step: str
    original_digest: str | None
    new_digest: str | None
    identical: bool
    changes: dict[str, tuple[Any, Any]] = Field(
        default_factory=dict, description="for JSON outputs: key -> (original, new)"
    )


class Reproduction(BaseModel):
    original_run_id: str
    run_id: str = Field(description="the reproduction's own pipeline run")
    steps: list[StepComparison]
    commit: tuple[str | None, str | None] = Field(description="(recorded, reproduced on)")
    changed_packages: list[str] = Field(description="lock lines in one of the two only")
    environment: dict[str, Any] = Field(
        default_factory=dict, description="the clean environment, when one was built"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def identical(self) -> bool:
        return all(s.identical for s in self.steps)


REPRODUCES_TAG = "opsloop.reproduces"


def _recorded(client: Any, run_id: str) -> tuple[Any, Any, dict[str, Any]]:
    from opsloop.pipelines.cli import load_pipeline

    run = client.get_run(run_id)
    tags = run.data.tags
    if "opsloop.pipeline.target" not in tags:
        raise InvalidInput(f"run {run_id} is not a pipeline run recorded with its target")
    params = json.loads(tags.get("opsloop.pipeline.params", "{}"))
    return run, load_pipeline(tags["opsloop.pipeline.target"]), params


def resume(
    client: Any, run_id: str, *, executor: str | None = None,
    on_start: Callable[[str], None] | None = None, tags: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    """Run ``run_id``'s pipeline again with its params; finished steps come from the cache."""
    run, found, params = _recorded(client, run_id)
    recorded = run.data.tags
    experiment = client.get_experiment(run.info.experiment_id).name
    return found.run(
        client=client, experiment=experiment, tags={**(tags or {}), "opsloop.resumed_from": run_id},
        executor=executor or recorded.get("opsloop.pipeline.executor", "local"),
        on_start=on_start, **params,
    )  # fmt: skip


def _step_outputs(client: Any, run_id: str) -> dict[str, tuple[str | None, Any]]:
    """Step name -> (its outputs' digest, its JSON outputs' values: the value itself for a
    one-output step, a dict by output name for a step with several)."""
    from opsloop.pipelines.runner import DIGEST_TAG, OUTPUTS_TAG

    parent = client.get_run(run_id)
    steps = client.search_runs(
        parent.info.experiment_id, f"attributes.parent_run_id = '{run_id}'",
        order_by=["attributes.start_time"], max_results=1000,
    ).items  # fmt: skip
    out = {}
    for s in steps:
        tags = s.data.tags
        source = tags.get("opsloop.cache.source", s.info.run_id)
        values = {
            name: json.loads(client.read_artifact(source, f"output/{d['file']}"))
            for name, d in json.loads(tags.get(OUTPUTS_TAG, "{}")).items()
            if d["kind"] == "json"
        }
        value = values.get("output") if list(values) == ["output"] else (values or None)
        out[tags.get("opsloop.step", s.info.run_name)] = (tags.get(DIGEST_TAG), value)
    return out


def _changes(old: Any, new: Any) -> dict[str, tuple[Any, Any]]:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return {} if old == new else {"value": (old, new)}
    return {k: (old.get(k), new.get(k)) for k in sorted({*old, *new}) if old.get(k) != new.get(k)}


def _lock_lines(text: str) -> set[str]:
    return {line for line in text.splitlines() if line.strip()}


def reproduce(
    client: Any, run_id: str, *, executor: str | None = None, clean_env: bool = False
) -> Reproduction:
    """Recompute ``run_id`` (no cache, its seed) and compare it step by step; with
    ``clean_env``, in an environment built from its lock, on its commit."""
    if clean_env:
        return _reproduce_in_clean_env(client, run_id, executor)
    return compare(client, rerun(client, run_id, executor=executor).run_id)


def rerun(
    client: Any, run_id: str, *, executor: str | None = None,
    on_start: Callable[[str], None] | None = None, tags: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    """Recompute pipeline run ``run_id``: its params and seed, no cache, nothing registered.
    The new run is tagged ``opsloop.reproduces``; :func:`compare` reads it once finished."""
    from opsloop.tracking.reproducibility import seed_everything

    run, found, params = _recorded(client, run_id)
    recorded = run.data.tags
    if "opsloop.seed" in recorded:
        seed_everything(int(recorded["opsloop.seed"]))
    experiment = client.get_experiment(run.info.experiment_id).name
    return found.run(
        client=client, experiment=experiment, no_cache=True, register_models=False,
        tags={**(tags or {}), REPRODUCES_TAG: run_id}, on_start=on_start,
        executor=executor or recorded.get("opsloop.pipeline.executor", "local"), **params,
    )  # fmt: skip


def compare(client: Any, reproduction_id: str) -> Reproduction:
    """How a finished reproduction compares with the run it reproduces: each step's outputs
    (identical bytes, or which numbers moved), the git commit and the package lock."""
    from opsloop.tracking.reproducibility import LOCK_ARTIFACT, _git, package_lock

    again = client.get_run(reproduction_id)
    run_id = again.data.tags.get(REPRODUCES_TAG)
    if run_id is None:
        raise InvalidInput(f"run {reproduction_id} is not a reproduction of a pipeline run")
    if again.info.status == "RUNNING":
        raise Conflict(f"reproduction {reproduction_id} is still running: ask when it ends")
    before, after = _step_outputs(client, run_id), _step_outputs(client, reproduction_id)
    steps = []
    for name in before:
        old_digest, old_value = before[name]
        new_digest, new_value = after.get(name, (None, None))
        same = old_digest is not None and old_digest == new_digest
        steps.append(StepComparison(
            step=name, original_digest=old_digest, new_digest=new_digest, identical=same,
            changes={} if same else _changes(old_value, new_value),
        ))  # fmt: skip
    locks = []
    for run in (run_id, reproduction_id):
        try:
            locks.append(client.read_artifact(run, LOCK_ARTIFACT).decode())
        except LookupError:
            locks.append(None)
    recorded_lock, new_lock = locks[0], locks[1] or package_lock()
    changed = sorted(_lock_lines(recorded_lock) ^ _lock_lines(new_lock)) if recorded_lock else []
    commit_now = again.data.tags.get("opsloop.git.commit") or (
        (_git("rev-parse", "HEAD") or "").strip() or None)  # fmt: skip
    original = client.get_run(run_id).data.tags.get("opsloop.git.commit")
    return Reproduction(
        original_run_id=run_id, run_id=reproduction_id, steps=steps,
        commit=(original, commit_now), changed_packages=changed,
    )  # fmt: skip


def _settings_environ(settings: Any) -> dict[str, str]:
    """The store settings as ``OPSLOOP_*`` variables, for a process in another folder."""
    environ = {"OPSLOOP_HOME": str(settings.home), "OPSLOOP_DATABASE_URL": settings.database_url,
               "OPSLOOP_BLOB_URL": settings.blob_url}  # fmt: skip
    if settings.server_url:
        environ["OPSLOOP_SERVER_URL"] = settings.server_url
    if settings.token:
        environ["OPSLOOP_TOKEN"] = settings.token
    config = Path(os.environ.get("OPSLOOP_CONFIG") or "opsloop.toml")
    if config.is_file():
        environ["OPSLOOP_CONFIG"] = str(config.resolve())
    return environ


def _reproduce_in_clean_env(client: Any, run_id: str, executor: str | None) -> Reproduction:
    from opsloop.pipelines import cleanenv
    from opsloop.tracking.reproducibility import DIFF_ARTIFACT, LOCK_ARTIFACT

    tags = client.get_run(run_id).data.tags
    if "opsloop.pipeline.target" not in tags:
        raise InvalidInput(f"run {run_id} is not a pipeline run recorded with its target")
    commit = tags.get("opsloop.git.commit")
    if not commit:
        raise InvalidInput(f"run {run_id} recorded no git commit: it ran outside a repository")
    try:
        lock = client.read_artifact(run_id, LOCK_ARTIFACT).decode()
    except LookupError:
        raise InvalidInput(f"run {run_id} recorded no package lock") from None
    diff = client.read_artifact(run_id, DIFF_ARTIFACT) if "opsloop.git.diff_hash" in tags else None
    with tempfile.TemporaryDirectory(prefix="opsloop-reproduce-") as tmp:
        remote = tags.get("opsloop.git.remote")
        repo, tree = cleanenv.checkout(commit, diff, Path(tmp) / "code", remote)
        try:
            env = cleanenv.build_env(lock, tags["opsloop.env.lock_hash"], client.settings.home)
            cwd = tree
            recorded_cwd = Path(tags.get("opsloop.source.cwd", str(repo)))
            if recorded_cwd.is_relative_to(repo):
                cwd = tree / recorded_cwd.relative_to(repo)
            environ = {
                **{k: v for k, v in os.environ.items()
                   if not k.startswith("OPSLOOP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")},
                **_settings_environ(client.settings),
                "PYTHONPATH": os.pathsep.join([*cleanenv.editable_paths(repo, tree), str(cwd)]),
                "PATH": f"{env.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            }  # fmt: skip
            report = Path(tmp) / "reproduction.json"
            cli = "from opsloop.cli.main import main; main()"  # the CLI of the run's opsloop
            args = [str(env.python), "-c", cli, "runs", "reproduce", run_id]
            args += ["--output", str(report)]
            args += ["--executor", executor] if executor else []
            done = subprocess.run(args, cwd=cwd, env=environ, capture_output=True, text=True)
            if done.returncode not in (0, 1) or not report.is_file():
                raise OpsloopError(
                    "the reproduction failed in the clean environment "
                    f"({env.root}): {(done.stderr or done.stdout).strip()[-3000:]}"
                )
            data = json.loads(report.read_text())
        finally:
            cleanenv.remove_worktree(repo, tree)
    return Reproduction(
        original_run_id=run_id, run_id=data["run_id"],
        steps=[StepComparison.model_validate(s) for s in data["steps"]],
        commit=tuple(data["commit"]),  # type: ignore[arg-type]
        changed_packages=data["changed_packages"],
        environment={
            "path": str(env.root), "python": cleanenv.python_version(env.python),
            "recorded_python": tags.get("opsloop.python.version"),
            "linked": len(env.linked), "installed": env.installed, "reused": env.reused,
        },
    )  # fmt: skip
