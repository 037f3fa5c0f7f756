"""Loading a pipeline or an objective by the name a user gives it (``MODULE:NAME`` or
``FILE.py:NAME``).

The CLI, the SDK, the server's launcher, triggers, reruns and tuning all load what a run names,
so the loader sits below them all rather than in any one of them. Each takes the
:class:`~opsloop.kernel.code_policy.CodePolicy` of the process it runs in: a server hands in its
allow-list, everything else imports what its own user names.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput
from opsloop.kernel.code_policy import ANY_CODE
from opsloop.kernel.code_policy import CodePolicy
from opsloop.pipelines.dsl import Pipeline

__all__ = ["load_pipeline", "load_target"]


def load_pipeline(target: str, code: CodePolicy = ANY_CODE) -> Pipeline:
    """``module:attr`` or ``path/to/file.py:attr`` as the pipeline object it names, if
    ``code`` allows it."""
    found = load_target(target, code)
    if not isinstance(found, Pipeline):
        raise InvalidInput(f"{target} is not a @pipeline")
    return found


def load_target(target: str, code: CodePolicy = ANY_CODE) -> Any:
    """The object ``module:attr`` or ``path/to/file.py:attr`` names, if ``code`` allows it."""
    where, _, attr = target.rpartition(":")
    if not where or not attr:
        raise InvalidInput(f"{target!r}: name the pipeline as MODULE:NAME or FILE.py:NAME")
    code.check(target)
    sys.path.insert(0, str(Path.cwd()))
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise InvalidInput(f"no such file: {path}")
            # importable by name too: the process and Ray executors find its steps that way
            sys.path.insert(0, str(path.resolve().parent))
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as exc:
        raise InvalidInput(f"cannot import {where}: {exc}") from None
    if not hasattr(module, attr):
        raise InvalidInput(f"{where} has no {attr!r}")
    return getattr(module, attr)
