"""Files a command is handed on its command line (``--spec monitor.yaml``, ``--space s.yaml``).

A missing file, a YAML error or a document of the wrong shape is the user's to fix, so each is
an ``InvalidInput`` naming the file, never a traceback from the parser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsloop.errors import InvalidInput

__all__ = ["read_yaml_mapping", "yaml_problem"]


def read_yaml_mapping(path: Path, kind: str, shape: str) -> dict[str, Any]:
    """The mapping the YAML file ``path`` holds.

    Raises:
        InvalidInput: ``no such <kind> file: <path>``, ``<path> is not valid YAML: ...``, or
            ``<path> must <shape>`` when the document is not a mapping.
    """
    if not path.is_file():
        raise InvalidInput(f"no such {kind} file: {path}")
    import yaml  # only commands that take a file pay for the parser

    try:
        found = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(found, dict):
        raise InvalidInput(f"{path} must {shape}")
    return found


def yaml_problem(exc: Any) -> str:
    """PyYAML's error in one line: what is wrong and where (its own message spans lines and
    draws a caret under a copy of the line)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())
