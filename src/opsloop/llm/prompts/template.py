"""Rendering prompts in a sandbox: Jinja2's immutable sandbox with strict undefined variables.

A template can read the variables it is given and nothing else (no attribute access to
internals, no mutation); a missing variable is an ``InvalidInput`` that names every missing
one, found before rendering, rather than an empty string in production.

A stored template is someone else's code running in the server (the gateway renders prompts
per request), so its time and memory are bounded too, not only its reach. Jinja's sandbox caps
one ``range`` at 100,000 items but not nested loops, ``'x' * 10**10``, ``9 ** 9 ** 9``, a
``center(10**9)`` filter or a macro that calls itself. Here: all ``range`` loops of one render
share :data:`MAX_ITERATIONS`; ``*``, ``+`` and ``**`` refuse results beyond
:data:`MAX_OUTPUT_CHARS` characters or :data:`MAX_POWER_BITS` bits; width and count arguments
of filters and format strings are capped; the output stops at :data:`MAX_OUTPUT_CHARS`; runaway
recursion is an error. Each breach is an ``InvalidInput`` that says which bound it hit.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
from functools import lru_cache
from typing import Any

from opsloop.errors import InvalidInput

__all__ = ["MAX_ITERATIONS", "MAX_OUTPUT_CHARS", "MAX_POWER_BITS", "render", "variables_of"]

MAX_OUTPUT_CHARS = 1_000_000
MAX_ITERATIONS = 100_000
MAX_POWER_BITS = 4096
MAX_WIDTH = 10_000  # a filter's or format spec's width / count argument
# Filters whose whole-number arguments are widths or counts that size what they allocate.
_WIDTH_FILTERS = ("center", "indent", "wordwrap", "truncate", "batch", "slice")
_FORMAT_NUMBER = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?|\{[^{}]*?:[^{}]*?(\d+)[^{}]*\}")
_iterations: contextvars.ContextVar[list[int]] = contextvars.ContextVar("prompt_iterations")


def _refuse(message: str) -> Exception:
    from jinja2.sandbox import SecurityError

    return SecurityError(message)


def _check_format(text: Any) -> None:
    """Refuse %- and {}-format strings whose widths or precisions allocate without bound."""
    if not isinstance(text, str):
        return
    for match in _FORMAT_NUMBER.finditer(text):
        for number in match.groups():
            if number == "*":
                raise _refuse("'*' widths in format strings are not allowed in prompts")
            if number and int(number) > MAX_WIDTH:
                raise _refuse(f"a format width of {number} is over the limit of {MAX_WIDTH}")


def _budgeted_range(*args: int) -> range:
    """``range`` whose items, over every loop of one render, stay under MAX_ITERATIONS."""
    numbers = range(*args)
    spent = _iterations.get()
    spent[0] += len(numbers)
    if spent[0] > MAX_ITERATIONS:
        raise _refuse(f"the template loops more than {MAX_ITERATIONS:,} times in all")
    return numbers


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        """Jinja's immutable sandbox with the time and memory bounds above."""

        intercepted_binops = frozenset({"*", "+", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(left, int) and isinstance(right, int):
                if right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > MAX_POWER_BITS:
                    raise _refuse(f"{left} ** {right} is over {MAX_POWER_BITS} bits")
            elif operator == "*":
                for seq, times in ((left, right), (right, left)):
                    size = _size(seq)
                    if (
                        size is not None
                        and isinstance(times, int)
                        and size * times > MAX_OUTPUT_CHARS
                    ):
                        raise _refuse(f"repeating {size} items {times} times is over the limit")
            elif operator == "+":
                sizes = (_size(left), _size(right))
                if None not in sizes and sum(sizes) > MAX_OUTPUT_CHARS:  # type: ignore[arg-type]
                    raise _refuse("joining these values is over the output limit")
            return super().call_binop(context, operator, left, right)

        def call(self, context: Any, function: Any, *args: Any, **kwargs: Any) -> Any:
            # Every call a template makes (macros, str methods) passes here: no argument may
            # exceed the output bound (a macro doubling a string on each recursion), and a
            # str method's width or count (``ljust``, ``zfill``, ``center``) stays small.
            values = [*args, *kwargs.values()]
            if any((_size(v) or 0) > MAX_OUTPUT_CHARS for v in values):
                raise _refuse("a value passed to a call is over the output limit")
            if isinstance(getattr(function, "__self__", None), str) and _too_wide(values):
                raise _refuse(f"a width or count over {MAX_WIDTH} in a call")
            return super().call(context, function, *args, **kwargs)

        def wrap_str_format(self, value: Any) -> Any:
            wrapped = super().wrap_str_format(value)
            if wrapped is not None:
                _check_format(value.__self__)
            return wrapped

    environment = BoundedSandbox(undefined=StrictUndefined, autoescape=False)
    environment.globals["range"] = _budgeted_range
    environment.globals["namespace"] = _bounded_namespace()
    # Compiled templates call filters directly (not through the environment), so the filters
    # that size what they allocate are wrapped where they are looked up.
    for name in _WIDTH_FILTERS:
        environment.filters[name] = _bounded_filter(name, environment.filters[name])
    environment.filters["format"] = _format_filter(environment.filters["format"])
    return environment


def _bounded_namespace() -> type:
    """``namespace()`` whose assignments stay under the output bound: ``{% set ns.s = ns.s ~
    ns.s %}`` in a loop doubles a string per iteration without any call or operator to catch."""
    from jinja2.utils import Namespace

    class BoundedNamespace(Namespace):
        def __setitem__(self, name: str, value: Any) -> None:
            if (_size(value) or 0) > MAX_OUTPUT_CHARS:
                raise _refuse(f"namespace value {name!r} is over the output limit")
            super().__setitem__(name, value)

    return BoundedNamespace


def _too_wide(values: list[Any]) -> bool:
    return any(isinstance(v, int) and not isinstance(v, bool) and v > MAX_WIDTH for v in values)


def _bounded_filter(name: str, original: Any) -> Any:
    @functools.wraps(original)  # keeps jinja's pass_environment / pass_context marker
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if _too_wide([*args, *kwargs.values()]):
            raise _refuse(f"the {name} filter's width or count is over {MAX_WIDTH}")
        return original(*args, **kwargs)

    return bounded


def _format_filter(original: Any) -> Any:
    @functools.wraps(original)
    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_format(value)
        return original(value, *args, **kwargs)

    return bounded


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
    token = _iterations.set([0])
    try:
        pieces, size = [], 0
        for piece in _environment().from_string(text).generate(**variables):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise InvalidInput(
                    f"the rendered prompt is over {MAX_OUTPUT_CHARS:,} characters; "
                    "the template or its variables are too large"
                )
            pieces.append(piece)
        return "".join(pieces)
    except InvalidInput:
        raise
    except SecurityError as exc:
        raise InvalidInput(f"the template tried something the sandbox forbids: {exc}") from None
    except TemplateError as exc:
        raise InvalidInput(f"cannot render the template: {exc}") from None
    except RecursionError:
        raise InvalidInput("the template recurses without end (a macro calling itself?)") from None
    except (OverflowError, MemoryError, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot render the template: {type(exc).__name__}: {exc}") from None
    finally:
        _iterations.reset(token)
