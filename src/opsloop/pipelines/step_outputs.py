"""A step's outputs as a pipeline run keeps them: written with their materializers and logged
as the step run's ``output/`` (one digest each, and one for the step), and read back for a
cached step from the blob store in place or from the run that computed them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsloop.pipelines import materializers
from opsloop.pipelines.cache_index import DIGEST_TAG
from opsloop.pipelines.cache_index import MODEL_TAG
from opsloop.pipelines.cache_index import OUTPUTS_TAG
from opsloop.pipelines.cache_index import Seen
from opsloop.pipelines.graph import Node
from opsloop.pipelines.hashing import combine
from opsloop.pipelines.journal import StepJournal

__all__ = ["cached_run_tags", "described_digest", "load_outputs", "step_value", "store_outputs"]


def described_digest(described: dict[str, dict[str, str]]) -> str:
    """One digest for all of a step's outputs (the output's own for a one-output step)."""
    if list(described) == ["output"]:
        return described["output"]["digest"]
    return combine({name: d["digest"] for name, d in described.items()})


def store_outputs(
    journal: StepJournal, run_id: str, node: Node, value: Any, tmp: Path
) -> tuple[dict[str, dict[str, str]], dict[str, tuple[Any, str]]]:
    """Write each output with its materializer and log them as the run's ``output/``."""
    step = node.step
    folder, prefix = journal.scratch(node.name, tmp / f"{node.name}-out")
    kind = "package" if step.register is not None else None
    files: dict[str, tuple[Path, str, Any]] = {}  # a failure leaves files the run's end removes
    for name, got in step.split_outputs(value).items():
        path, chosen = materializers.save(got, folder, prefix + name, kind)
        files[name] = (path, chosen, got)
    named = {path.name[len(prefix) :]: path for path, _, _ in files.values()}
    stored = journal.store_outputs(run_id, named, folder, "output")
    described, outputs = {}, {}
    for name, (path, chosen, got) in files.items():
        file = path.name[len(prefix) :]
        inside = {p: d for p, d in stored.items() if p.startswith(f"output/{file}/")}
        digest = combine(inside) if inside else stored[f"output/{file}"]
        described[name] = {"file": file, "kind": chosen, "digest": digest}
        outputs[name] = (got, digest)
    return described, outputs


def load_outputs(
    described: dict[str, dict[str, str]], blob_path: Callable[[str], Path | None],
    download: Callable[[], Path],
) -> dict[str, tuple[Any, str]]:  # fmt: skip
    """A cached step's outputs (name -> (value, digest)) as its ``opsloop.outputs`` tag
    describes them: a file read in place where the blob store holds it (``blob_path``), else
    from the source run's ``output/`` folder, downloaded once (``download``)."""
    outputs = {}
    folder = None
    for name, d in described.items():
        path = blob_path(d["digest"])
        if path is None:
            folder = folder or download()
            path = folder / d["file"]
        outputs[name] = (materializers.load(path, d["kind"]), d["digest"])
    return outputs


def step_value(node: Node, outputs: dict[str, tuple[Any, str]]) -> Any:
    """What ``PipelineRun.outputs`` holds for a step: its value, or its outputs by name."""
    values = {name: got for name, (got, _) in outputs.items()}
    return values["output"] if node.step.outputs is None else values


def cached_run_tags(hit: Seen, tags: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The run that computed a cached step's outputs, and the tags of the run that reuses
    them: the step's own, what it reuses (outputs, digest, model), and where from."""
    source = hit.tags.get("opsloop.cache.source", hit.run_id)
    kept = {k: hit.tags[k] for k in (OUTPUTS_TAG, DIGEST_TAG, MODEL_TAG) if k in hit.tags}
    return source, {**tags, **kept, "opsloop.cache": "hit", "opsloop.cache.source": source}
