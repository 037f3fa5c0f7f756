"""How a reproduction's step outputs compare with the original's, up to identity fields.

Two runs of the same computation differ in what identifies them, never in what they
computed: run ids (and any 32-hex id), timestamps and durations, and the version numbers the
registry or the data store would have assigned (a reproduction's are would-be numbers: its
writes are held, see :class:`~opsloop.kernel.step_context.Rehearsal`). So each output is:

- ``identical``: the same bytes (same digest);
- ``same``: JSON equal once identity fields are set aside (how many were set aside is said);
- ``differs``: by how much: the numbers that moved and the largest absolute difference (JSON,
  tables, arrays), else the two hashes (a model, a blob);
- ``held``: differs, in a step whose result came from a write held without being judged (a
  promotion whose gate could not run): nothing to compare it with.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic import Field

__all__ = ["OutputComparison", "compare_outputs", "identity_free"]

_ID = re.compile(r"\b[0-9a-f]{32}\b")
_TIME_KEY = re.compile(
    r"(^|_)(at|time|timestamp|duration|duration_s|duration_ms|elapsed|elapsed_s|took|"
    r"start_time|end_time|created|updated)$"
)
_MAX_CHANGES = 200  # kept in the JSON; the table shows a handful


class OutputComparison(BaseModel):
    output: str
    kind: str | None = None
    verdict: str = Field(description="identical, same, differs, held or missing")
    how: str = Field("", description="by how much, or why it counts as the same")
    max_abs_diff: float | None = None
    identity_fields: int = Field(0, description="values set aside as identity fields")
    original_digest: str | None = None
    new_digest: str | None = None


class _Walk:
    """A side-by-side walk of two JSON values, collecting what really differs."""

    def __init__(self, assigned: set[str]) -> None:
        self.assigned = assigned  # names whose NAME@N numbers the reproduction would assign
        self.identity = 0
        self.changes: dict[str, tuple[Any, Any]] = {}
        self.max_abs: float | None = None

    def normal(self, text: str) -> str:
        text = _ID.sub("<id>", text)
        for name in self.assigned:
            text = re.sub(rf"(?<![\w.-]){re.escape(name)}@\d+\b", f"{name}@<n>", text)
        return text

    def walk(self, old: Any, new: Any, path: str, key: str) -> None:
        if old == new:
            return
        if isinstance(old, dict) and isinstance(new, dict):
            for k in sorted({*old, *new}, key=str):
                self.walk(old.get(k), new.get(k), f"{path}.{k}" if path else str(k), str(k))
            return
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                self.walk(a, b, f"{path}[{i}]", key)
            return
        if _number(old) and _number(new):
            if _TIME_KEY.search(key.lower()):
                self.identity += 1
                return
            diff = abs(float(new) - float(old))
            if not math.isnan(diff):
                self.max_abs = diff if self.max_abs is None else max(self.max_abs, diff)
        elif isinstance(old, str) and isinstance(new, str) and self.normal(old) == self.normal(new):
            self.identity += 1
            return
        if len(self.changes) < _MAX_CHANGES:
            self.changes[path or "value"] = (old, new)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def identity_free(old: Any, new: Any, assigned: set[str]) -> tuple[dict[str, Any], int, Any]:
    """``(changes, identity fields set aside, max abs diff)`` between two JSON values:
    ``changes`` maps a path (``trials[0].val_f1``) to (original, new)."""
    walk = _Walk(assigned)
    walk.walk(old, new, "", "")
    return walk.changes, walk.identity, walk.max_abs


def _load(client: Any, run_id: str, described: dict[str, str], folder: Path) -> Any:
    from opsloop.pipelines import materializers

    local = client.download_artifacts(run_id, f"output/{described['file']}", folder)
    return materializers.load(Path(local), described["kind"])


def _numeric_diff(old: Any, new: Any) -> tuple[str, float | None]:
    """Tables and arrays of the same shape: the largest absolute difference and where."""
    import numpy as np
    import pandas as pd

    if isinstance(old, pd.DataFrame) and isinstance(new, pd.DataFrame):
        if list(old.columns) != list(new.columns) or old.shape != new.shape:
            return f"shape {old.shape} → {new.shape}, columns differ", None
        numeric = old.select_dtypes("number").columns
        others = [c for c in old.columns if c not in numeric]
        unequal = [c for c in others if not old[c].reset_index(drop=True).equals(
            new[c].reset_index(drop=True))]  # fmt: skip
        worst = max((float(np.nanmax(np.abs(new[c].to_numpy(float) - old[c].to_numpy(float)),
                                     initial=0.0)) for c in numeric), default=0.0)  # fmt: skip
        note = f"; values differ in {', '.join(map(str, unequal[:5]))}" if unequal else ""
        return f"max abs diff {worst:.3g}{note}", worst
    if isinstance(old, np.ndarray) and isinstance(new, np.ndarray):
        if old.shape != new.shape:
            return f"shape {old.shape} → {new.shape}", None
        if np.issubdtype(old.dtype, np.number) and np.issubdtype(new.dtype, np.number):
            worst = float(np.nanmax(np.abs(new.astype(float) - old.astype(float)), initial=0.0))
            return f"max abs diff {worst:.3g}", worst
    return "", None


def compare_outputs(
    client: Any, original: tuple[str, dict[str, Any]], again: tuple[str, dict[str, Any]],
    assigned: set[str],
) -> tuple[list[OutputComparison], dict[str, tuple[Any, Any]]]:  # fmt: skip
    """Each output of one step: ``original`` and ``again`` are (the run holding the outputs,
    output name -> {file, kind, digest}). Also the JSON changes, by path."""
    (old_run, old_outputs), (new_run, new_outputs) = original, again
    results, changes = [], {}
    for name in sorted({*old_outputs, *new_outputs}):
        old, new = old_outputs.get(name), new_outputs.get(name)
        if old is None or new is None:
            results.append(OutputComparison(
                output=name, verdict="missing",
                how="only in the original" if new is None else "only in the reproduction",
            ))  # fmt: skip
            continue
        found = OutputComparison(
            output=name, kind=new["kind"], verdict="identical",
            original_digest=old["digest"], new_digest=new["digest"],
        )  # fmt: skip
        if old["digest"] == new["digest"]:
            found.how = "same bytes"
            results.append(found)
            continue
        found.verdict, found.how = "differs", f"hash {old['digest'][:12]} → {new['digest'][:12]}"
        if old["kind"] == new["kind"] and old["kind"] in ("json", "parquet", "npy"):
            with tempfile.TemporaryDirectory() as tmp:
                a = _load(client, old_run, old, Path(tmp) / "a")
                b = _load(client, new_run, new, Path(tmp) / "b")
            if old["kind"] == "json":
                moved, identity, worst = identity_free(a, b, assigned)
                found.identity_fields, found.max_abs_diff = identity, worst
                if not moved:
                    found.verdict = "same"
                    found.how = f"same but for {identity} identity field(s)"
                else:
                    keys = ", ".join(list(moved)[:3]) + (" …" if len(moved) > 3 else "")
                    size = f", max abs diff {worst:.3g}" if worst is not None else ""
                    found.how = f"{len(moved)} value(s) moved ({keys}){size}"
                    prefix = "" if name == "output" else f"{name}."
                    changes.update({prefix + k: v for k, v in moved.items()})
            else:
                how, worst = _numeric_diff(a, b)
                found.how, found.max_abs_diff = how or found.how, worst
        results.append(found)
    return results, changes


def outputs_of(tags: dict[str, str]) -> dict[str, Any]:
    from opsloop.pipelines.cache_index import OUTPUTS_TAG

    described: dict[str, Any] = json.loads(tags.get(OUTPUTS_TAG, "{}"))
    return described
