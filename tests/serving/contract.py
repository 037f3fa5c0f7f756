"""Which methods of a backend contract a conformance suite reaches.

Each conformance test names the contract methods it exercises with :func:`covers`. Its fixture
swaps the backend the SDK object holds for a :class:`Recorder`, which forwards everything to the
real backend and notes the contract methods asked for; :meth:`Recorder.missing` then says which
named methods the test never reached, so a test cannot claim what it does not do (checked on
every backend the test runs against). :func:`uncovered` lists the abstract methods that no test
of a module names: a new contract method without a conformance test fails the suite, whichever
pytest-xdist worker runs which test.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

__all__ = ["Recorder", "covers", "uncovered"]

F = TypeVar("F", bound=Callable[..., Any])


def covers(*methods: str) -> Callable[[F], F]:
    """Mark a test as exercising the contract ``methods`` (each one at least once)."""

    def mark(test: F) -> F:
        test.__dict__["covers"] = frozenset(methods)
        return test

    return mark


def uncovered(namespace: Mapping[str, Any], contract: type) -> set[str]:
    """The abstract methods of ``contract`` that no ``test_*`` function in ``namespace`` covers;
    a covered name that is not an abstract method of the contract is an error (a typo)."""
    named: set[str] = set()
    for name, value in namespace.items():
        if name.startswith("test_") and callable(value):
            named |= getattr(value, "covers", frozenset())
    abstract = set(contract.__abstractmethods__)  # type: ignore[attr-defined]
    unknown = named - abstract
    assert not unknown, f"not methods of {contract.__name__}: {sorted(unknown)}"
    return abstract - named


class Recorder:
    """Stands in for a backend: forwards every attribute to ``backend`` and records which
    abstract methods (and abstract properties) of ``contract`` were asked for."""

    def __init__(self, backend: Any, contract: type) -> None:
        self.wrapped = backend
        self.contract_methods = frozenset(contract.__abstractmethods__)  # type: ignore[attr-defined]
        self.reached: set[str] = set()

    def __getattr__(self, name: str) -> Any:  # only for what the recorder itself lacks
        if name in self.contract_methods:
            self.reached.add(name)
        return getattr(self.wrapped, name)

    def missing(self, named: frozenset[str]) -> set[str]:
        """The methods of ``named`` that were never asked for."""
        return set(named) - self.reached
