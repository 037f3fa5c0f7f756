"""Rendering prompts in a sandbox: Jinja2's immutable sandbox with strict undefined variables.

A template can read the variables it is given and nothing else (no attribute access to
internals, no mutation); a missing variable is an ``InvalidInput`` that names every missing
one, found before rendering, rather than an empty string in production.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from opsloop.errors import InvalidInput

__all__ = ["render", "variables_of"]


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def _parse(text: str) -> Any:
    from jinja2 import TemplateSyntaxError

    try:
        return _environment().parse(text)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"template syntax error at line {exc.lineno}: {exc.message}") from None


def variables_of(texts: list[str]) -> list[str]:
    """The variables the templates use, sorted (``{{ question }}`` → ``question``)."""
    from jinja2 import meta

    found: set[str] = set()
    for text in texts:
        found |= meta.find_undeclared_variables(_parse(text))
    return sorted(found)


def render(text: str, variables: dict[str, Any]) -> str:
    """``text`` rendered with ``variables``; ``InvalidInput`` naming missing ones or errors."""
    from jinja2 import TemplateError
    from jinja2.sandbox import SecurityError

    missing = [v for v in variables_of([text]) if v not in variables]
    if missing:
        raise InvalidInput(
            f"missing template variable(s): {', '.join(missing)}", details={"missing": missing}
        )
    try:
        return str(_environment().from_string(text).render(**variables))
    except SecurityError as exc:
        raise InvalidInput(f"the template tried something the sandbox forbids: {exc}") from None
    except TemplateError as exc:
        raise InvalidInput(f"cannot render the template: {exc}") from None
