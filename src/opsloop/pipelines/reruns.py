"""Running a recorded pipeline run again: ``resume`` after a failure, ``reproduce`` to check it.

Every pipeline run records what it needs to be run again: the pipeline (``module:name``), its
params (as JSON, so types survive), the data versions its references resolved to, its
executor, and the environment (git commit, package lock, seed) that every run captures. Both
``resume`` and ``reproduce`` read the versions the original read, wherever aliases have moved.

``resume`` runs the same pipeline with the same params: the steps that finished are cache hits,
so work starts at the step that failed. The new run is tagged ``opsloop.resumed_from``.

``reproduce`` runs it again with every step recomputed (no cache) and the recorded seed, then
compares: each step's outputs, up to identity fields (identical bytes; the same but for run
ids, timestamps and would-be version numbers; or which numbers moved and by how much, see
:mod:`opsloop.pipelines.reproduction_compare`), the git commit and the package lock (which
packages differ). It writes nothing outside its own runs: its steps run inside a
:class:`~opsloop.kernel.step_context.Rehearsal`, so what they would have registered, aliased,
promoted or versioned is held and recorded on their runs (``opsloop.reproduction.held``).
By default it runs in the current environment and says where that differs from the recorded
one; with ``clean_env`` it runs in a fresh environment built from the run's lock, on the run's
commit checked out beside this one (:mod:`opsloop.pipelines.cleanenv`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic import Field
from pydantic import computed_field

from opsloop.errors import Conflict
from opsloop.errors import InvalidInput
from opsloop.errors import OpsloopError
from opsloop.kernel.code_policy import ANY_CODE
from opsloop.kernel.code_policy import CodePolicy
from opsloop.pipelines.data_inputs import DATA_TAG
from opsloop.pipelines.reproduction_compare import OutputComparison

__all__ = ["Reproduction", "StepComparison", "compare", "reproduce", "rerun", "resume"]


class StepComparison(BaseModel):
    step: str
    original_digest: str | None
    new_digest: str | None
    identical: bool = Field(description="the same bytes, every output")
    changes: dict[str, tuple[Any, Any]] = Field(
        default_factory=dict,
        description="for JSON outputs: path -> (original, new), identity fields set aside",
    )
    outputs: list[OutputComparison] = Field(default_factory=list)
    held: list[dict[str, Any]] = Field(
        default_factory=list, description="the writes the step would have made, held"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> str:
        """identical, same (up to identity fields), differs, or held (differs, but its result
        came from a write held unjudged: nothing to compare it with)."""
        verdicts = {o.verdict for o in self.outputs} or {"identical" if self.identical else
                                                         "differs"}  # fmt: skip
        if verdicts <= {"identical"}:
            return "identical"
        if verdicts <= {"identical", "same"}:
            return "same"
        return "held" if any(not h.get("faithful", True) for h in self.held) else "differs"


class Reproduction(BaseModel):
    original_run_id: str
    run_id: str = Field(description="the reproduction's own pipeline run")
    steps: list[StepComparison]
    commit: tuple[str | None, str | None] = Field(description="(recorded, reproduced on)")
    changed_packages: list[str] = Field(description="lock lines in one of the two only")
    data_versions: dict[str, tuple[str | None, str | None]] = Field(
        default_factory=dict,
        description="each data reference -> (the version the run read, the one it re-read)",
    )
    environment: dict[str, Any] = Field(
        default_factory=dict, description="the clean environment, when one was built"
    )

    held: list[dict[str, Any]] = Field(
        default_factory=list, description="writes held outside any step"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def identical(self) -> bool:
        return all(s.identical for s in self.steps)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def matches(self) -> bool:
        """Every output the same up to identity fields (a held step is not a difference)."""
        return all(s.verdict != "differs" for s in self.steps)


REPRODUCES_TAG = "opsloop.reproduces"
HELD_TAG = "opsloop.reproduction.held"  # JSON: the writes a reproduction's run held
CLEAN_ENV_TAG = "opsloop.reproduction.environment"  # JSON: the clean environment and code


def _recorded(
    client: Any, run_id: str, code: CodePolicy = ANY_CODE
) -> tuple[Any, Any, dict[str, Any]]:
    """The run, its recorded pipeline (if ``code`` allows importing it here) and its params."""
    from opsloop.pipelines.loading import load_pipeline

    run = client.get_run(run_id)
    tags = run.data.tags
    if "opsloop.pipeline.target" not in tags:
        raise InvalidInput(f"run {run_id} is not a pipeline run recorded with its target")
    params = json.loads(tags.get("opsloop.pipeline.params", "{}"))
    params["pinned_data"] = json.loads(tags.get(DATA_TAG, "{}"))  # the versions it resolved
    return run, load_pipeline(tags["opsloop.pipeline.target"], code), params


def resume(
    client: Any, run_id: str, *, executor: str | None = None,
    on_start: Callable[[str], None] | None = None, tags: dict[str, str] | None = None,
    code: CodePolicy = ANY_CODE,
) -> Any:  # fmt: skip
    """Run ``run_id``'s pipeline again with its params; finished steps come from the cache."""
    run, found, params = _recorded(client, run_id, code)
    recorded = run.data.tags
    experiment = client.get_experiment(run.info.experiment_id).name
    return found.run(
        client=client, experiment=experiment, tags={**(tags or {}), "opsloop.resumed_from": run_id},
        executor=executor or recorded.get("opsloop.pipeline.executor", "local"),
        on_start=on_start, **params,
    )  # fmt: skip


def _step_runs(client: Any, run_id: str) -> dict[str, tuple[str, dict[str, Any], list[Any], Any]]:
    """Step name -> (the run holding its outputs, its outputs as described, its held writes,
    its outputs' digest)."""
    from opsloop.pipelines.cache_index import DIGEST_TAG
    from opsloop.pipelines.reproduction_compare import outputs_of

    parent = client.get_run(run_id)
    steps = client.search_runs(
        parent.info.experiment_id, f"attributes.parent_run_id = '{run_id}'",
        order_by=["attributes.start_time"], max_results=1000,
    ).items  # fmt: skip
    out = {}
    for s in steps:
        tags = s.data.tags
        source = tags.get("opsloop.cache.source", s.info.run_id)
        held = json.loads(tags.get(HELD_TAG, "[]"))
        name = tags.get("opsloop.step", s.info.run_name)
        out[name] = (source, outputs_of(tags), held, tags.get(DIGEST_TAG))
    return out


def _lock_lines(text: str) -> set[str]:
    return {line for line in text.splitlines() if line.strip()}


def reproduce(
    client: Any, run_id: str, *, executor: str | None = None, clean_env: bool = False,
    on_start: Callable[[str], None] | None = None, tags: dict[str, str] | None = None,
    code: CodePolicy = ANY_CODE,
) -> Reproduction:  # fmt: skip
    """Recompute ``run_id`` (no cache, its seed) and compare it step by step; with
    ``clean_env``, in an environment built from its lock, on its code (see the module
    docstring). ``on_start`` gets the reproduction's run id as soon as it exists. ``code``
    guards what this process imports; a clean environment runs the run's own recorded code
    in a process of its own, so it needs no allow-list."""
    if clean_env:
        return _reproduce_in_clean_env(client, run_id, executor, on_start, tags or {})
    again = rerun(client, run_id, executor=executor, on_start=on_start, tags=tags, code=code)
    return compare(client, again.run_id)


def rerun(
    client: Any, run_id: str, *, executor: str | None = None,
    on_start: Callable[[str], None] | None = None, tags: dict[str, str] | None = None,
    code: CodePolicy = ANY_CODE,
) -> Any:  # fmt: skip
    """Recompute pipeline run ``run_id``: its params and seed, no cache, and every write
    outside its own runs held (see the module). The new run is tagged ``opsloop.reproduces``;
    :func:`compare` reads it once finished."""
    from opsloop.kernel.step_context import Rehearsal
    from opsloop.kernel.step_context import rehearsing
    from opsloop.tracking.reproducibility import seed_everything

    run, found, params = _recorded(client, run_id, code)
    recorded = run.data.tags
    if "opsloop.seed" in recorded:
        seed_everything(int(recorded["opsloop.seed"]))
    experiment = client.get_experiment(run.info.experiment_id).name
    rehearsal = Rehearsal(run_id)
    started: list[str] = []

    def start(new_id: str) -> None:
        started.append(new_id)
        if on_start is not None:
            on_start(new_id)

    try:
        with rehearsing(rehearsal):
            return found.run(
                client=client, experiment=experiment, no_cache=True, register_models=False,
                tags={**(tags or {}), REPRODUCES_TAG: run_id}, on_start=start,
                executor=executor or recorded.get("opsloop.pipeline.executor", "local"),
                **params,
            )  # fmt: skip
    finally:  # on its own runs, whatever became of it
        for step_run, writes in rehearsal.held.items():
            if step_run or started:
                client.set_tag(step_run or started[0], HELD_TAG, json.dumps(writes))


def compare(client: Any, reproduction_id: str) -> Reproduction:
    """How a finished reproduction compares with the run it reproduces: each step's outputs
    (identical bytes, or which numbers moved), the git commit and the package lock."""
    from opsloop.tracking.reproducibility import LOCK_ARTIFACT
    from opsloop.tracking.reproducibility import _git
    from opsloop.tracking.reproducibility import package_lock

    again = client.get_run(reproduction_id)
    run_id = again.data.tags.get(REPRODUCES_TAG)
    if run_id is None:
        raise InvalidInput(f"run {reproduction_id} is not a reproduction of a pipeline run")
    if again.info.status == "RUNNING":
        raise Conflict(f"reproduction {reproduction_id} is still running: ask when it ends")
    from opsloop.pipelines.reproduction_compare import compare_outputs

    before, after = _step_runs(client, run_id), _step_runs(client, reproduction_id)
    held_here = json.loads(again.data.tags.get(HELD_TAG, "[]"))
    assigned = {h["ref"].rpartition("@")[0] for writes in [held_here, *(a[2] for a in
                after.values())] for h in writes if h.get("ref")}  # fmt: skip
    steps = []
    for name, (old_run, old_outputs, _, old_digest) in before.items():
        new_run, new_outputs, held, new_digest = after.get(name, ("", {}, [], None))
        outputs, changes = compare_outputs(
            client, (old_run, old_outputs), (new_run, new_outputs), assigned
        )
        steps.append(StepComparison(
            step=name, original_digest=old_digest, new_digest=new_digest,
            identical=old_digest is not None and old_digest == new_digest,
            changes=changes, outputs=outputs, held=held,
        ))  # fmt: skip
    locks = []
    for run in (run_id, reproduction_id):
        try:
            locks.append(client.read_artifact(run, LOCK_ARTIFACT).decode())
        except LookupError:
            locks.append(None)
    recorded_lock, new_lock = locks[0], locks[1] or package_lock()
    changed = sorted(_lock_lines(recorded_lock) ^ _lock_lines(new_lock)) if recorded_lock else []
    environment = json.loads(again.data.tags.get(CLEAN_ENV_TAG, "{}"))
    commit_now = (again.data.tags.get("opsloop.git.commit") or environment.get("commit")
                  or (_git("rev-parse", "HEAD") or "").strip() or None)  # fmt: skip
    recorded = client.get_run(run_id).data.tags
    was, now = (json.loads(tags.get(DATA_TAG, "{}")) for tags in (recorded, again.data.tags))
    return Reproduction(
        original_run_id=run_id, run_id=reproduction_id, steps=steps, held=held_here,
        commit=(recorded.get("opsloop.git.commit"), commit_now), changed_packages=changed,
        environment=environment,
        data_versions={ref: (was.get(ref), now.get(ref)) for ref in sorted({*was, *now})},
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


def _reproduce_in_clean_env(
    client: Any, run_id: str, executor: str | None, on_start: Callable[[str], None] | None,
    tags: dict[str, str],
) -> Reproduction:  # fmt: skip
    from opsloop.pipelines import cleanenv
    from opsloop.tracking.reproducibility import LOCK_ARTIFACT

    recorded = client.get_run(run_id).data.tags
    if "opsloop.pipeline.target" not in recorded:
        raise InvalidInput(f"run {run_id} is not a pipeline run recorded with its target")
    if not recorded.get("opsloop.git.commit"):
        raise InvalidInput(f"run {run_id} recorded no git commit: it ran outside a repository")
    try:
        lock = client.read_artifact(run_id, LOCK_ARTIFACT).decode()
    except LookupError:
        raise InvalidInput(f"run {run_id} recorded no package lock") from None
    with tempfile.TemporaryDirectory(prefix="opsloop-reproduce-") as tmp:
        code = _place_code(client, run_id, recorded, Path(tmp) / "code")
        try:
            editable = json.loads(recorded.get("opsloop.env.editable", "null"))
            env = cleanenv.build_env(lock, recorded["opsloop.env.lock_hash"],
                                     client.settings.home, frozenset(editable or ()))  # fmt: skip
            if editable is not None:  # recorded: the run's own development installs
                paths = [str(code.tree / p) for ps in editable.values() for p in ps]
            else:
                paths = cleanenv.editable_paths(code.root, code.tree)
            environment = {
                "path": str(env.root), "python": cleanenv.python_version(env.python),
                "recorded_python": recorded.get("opsloop.python.version"),
                "linked": len(env.linked), "installed": env.installed[:100],
                "from_source": env.from_source, "reused": env.reused, "code": code.how,
                "commit": recorded["opsloop.git.commit"],
            }  # fmt: skip
            cwd = code.cwd(recorded.get("opsloop.source.cwd"))
            reproduction_id = _run_in(env, code, cwd, paths, client, run_id, executor,
                                      {**tags, CLEAN_ENV_TAG: json.dumps(environment)},
                                      on_start)  # fmt: skip
        finally:
            code.remove()
    return compare(client, reproduction_id)


class _Code:
    """The run's code placed in a folder: ``tree`` holds what was the repository's ``root``."""

    def __init__(self, tree: Path, root: Path, how: str, repo: Path | None = None) -> None:
        self.tree, self.root, self.how, self._repo = tree, root, how, repo

    def cwd(self, recorded_cwd: str | None) -> Path:
        """Where the run started, inside ``tree`` (its root when that lay elsewhere)."""
        cwd = Path(recorded_cwd or self.root)
        if not cwd.is_relative_to(self.root):
            return self.tree
        return self.tree / cwd.relative_to(self.root)

    def remove(self) -> None:
        from opsloop.pipelines import cleanenv

        if self._repo is not None:
            cleanenv.remove_worktree(self._repo, self.tree)


def _place_code(client: Any, run_id: str, recorded: dict[str, str], dest: Path) -> _Code:
    """The run's commit as a worktree of a repository here that has it; else its source tree
    from the store; else fetched from its recorded remote. Its diff applied on top."""
    from opsloop.pipelines import cleanenv
    from opsloop.tracking.reproducibility import DIFF_ARTIFACT
    from opsloop.tracking.source_tree import TREE_TAG

    commit = recorded["opsloop.git.commit"]
    if cleanenv.repository_with(commit) is None and TREE_TAG in recorded:
        client.restore_source(run_id, dest)
        root = Path(recorded.get("opsloop.git.root") or dest)
        how = f"source tree {recorded[TREE_TAG][:12]} of commit {commit[:12]}, from the store"
        return _Code(dest, root, how)
    diff = None
    if "opsloop.git.diff_hash" in recorded:
        diff = client.read_artifact(run_id, DIFF_ARTIFACT)
    repo, tree = cleanenv.checkout(commit, diff, dest, recorded.get("opsloop.git.remote"))
    return _Code(tree, repo, f"commit {commit[:12]} checked out from {repo}", repo)


def _run_in(
    env: Any, code: _Code, cwd: Path, paths: list[str], client: Any, run_id: str,
    executor: str | None, tags: dict[str, str], on_start: Callable[[str], None] | None,
) -> str:  # fmt: skip
    """Recompute ``run_id`` with the CLI of the clean environment's opsloop, from ``cwd`` in
    the run's code; the reproduction's run id (passed to ``on_start`` as soon as the child
    has it)."""
    environ = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith("OPSLOOP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        **_settings_environ(client.settings),
        "PYTHONPATH": os.pathsep.join([*paths, str(cwd)]),
        "PATH": f"{env.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }  # fmt: skip
    started = code.tree.parent / "started"
    cli = "from opsloop.app.cli import main; main()"  # the CLI of the run's opsloop
    args = [str(env.python), "-c", cli, "runs", "reproduce", run_id, "--started-file",
            str(started), "--tags-json", json.dumps(tags)]  # fmt: skip
    args += ["--executor", executor] if executor else []
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(args, cwd=cwd, env=environ, stdout=log, stderr=subprocess.STDOUT)
        reproduction_id = None
        while reproduction_id is None and child.poll() is None:
            reproduction_id = _started(started)
            time.sleep(0.05)
        reproduction_id = reproduction_id or _started(started)
        if reproduction_id is not None and on_start is not None:
            on_start(reproduction_id)
        returncode = child.wait()
        log.seek(0)
        output = log.read().decode(errors="replace").strip()
    if returncode not in (0, 1) or reproduction_id is None:
        raise OpsloopError(
            f"the reproduction failed in the clean environment ({env.root}): {output[-3000:]}"
        )
    return reproduction_id


def _started(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None
