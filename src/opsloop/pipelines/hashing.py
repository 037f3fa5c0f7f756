"""Cache keys: what a step's result depends on, hashed in parts so a miss can say which part
changed.

- ``code``: the step function's source and, recursively, the source of every function or class
  it references that lives in the same top-level package (the project), so editing a helper
  invalidates the steps that call it; library code is represented by its version instead.
- ``params``: the step's plain arguments, as canonical JSON.
- ``inputs``: the content hashes of the artifacts it receives from upstream steps.
- ``env``: the Python version and the versions of the packages the code imports.
"""

from __future__ import annotations

import inspect
import json
import platform
import sys
import types
from importlib import metadata
from typing import Any

from blake3 import blake3

__all__ = ["code_hash", "combine", "env_hash", "params_hash"]


def _digest(text: str) -> str:
    return blake3(text.encode()).hexdigest()[:32]


def _project(module_name: str) -> str:
    return module_name.split(".", 1)[0]


def _version(top: str) -> str:
    try:
        return metadata.version(top)
    except metadata.PackageNotFoundError:
        module = sys.modules.get(top)
        return str(getattr(module, "__version__", "?"))


def _referenced(fn: Any) -> list[Any]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        names.update(current.co_names)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    scope = getattr(fn, "__globals__", {})
    return [scope[n] for n in sorted(names) if n in scope]


def code_hash(fn: Any) -> tuple[str, set[str]]:
    """Hash of ``fn``'s code and the project code it calls; and the libraries it touches."""
    root = _project(getattr(fn, "__module__", "") or "")
    seen: set[int] = set()
    parts: list[str] = []
    libraries: set[str] = set()
    todo = [getattr(fn, "__wrapped__", fn)]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
        if isinstance(obj, types.ModuleType):
            module = obj.__name__
        top = _project(module) if module else ""
        if top and top != root:
            libraries.add(top)
            continue
        if isinstance(obj, types.FunctionType | type):
            try:
                parts.append(inspect.getsource(obj))
            except (OSError, TypeError):
                parts.append(repr(obj))
            todo.extend(_referenced(getattr(obj, "__wrapped__", obj)))
    return _digest("\n".join(parts)), libraries


def params_hash(params: dict[str, Any]) -> str:
    return _digest(json.dumps(params, sort_keys=True, default=repr))


def env_hash(libraries: set[str]) -> str:
    versions = {
        top: _version(top) for top in sorted(libraries) if top not in sys.builtin_module_names
    }
    return _digest(json.dumps({"python": platform.python_version(), **versions}, sort_keys=True))


def combine(parts: dict[str, str]) -> str:
    return _digest(json.dumps(parts, sort_keys=True))
