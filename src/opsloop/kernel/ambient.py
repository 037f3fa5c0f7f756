"""The default client, reached from below without an import that goes up.

The module-level SDK (:mod:`opsloop.fluent`) owns the default client. A few entry points in
the domains are called by users with no client in hand and must still reach a store: a
pipeline's ``run()``, ``opsloop.data.add``, ``@observe``, a data handle sent to a step in
another process, a trial or a scoring task on a Ray worker. They ask here; ``opsloop.fluent``,
imported with the ``opsloop`` package (so in every process that unpickles an opsloop
function), answers. Services, backends, routes and commands never ask: they are handed what
they use.
"""

from __future__ import annotations

from typing import Any
from typing import Protocol

__all__ = [
    "ClientSource",
    "client_for",
    "default_client",
    "default_settings",
    "flush_step_metrics",
    "provide",
]


class ClientSource(Protocol):
    """What the module-level SDK offers the layers below it."""

    def default(self) -> Any:
        """The default client (inside a pipeline step: a client of the step's store)."""

    def for_settings(self, settings: Any) -> Any:
        """A new client for ``settings``; the caller closes it."""

    def settings(self) -> Any:
        """The settings the default client has (or would have), without creating it."""

    def flush_step_metrics(self, run_id: str, settings: Any) -> None:
        """Write what a step queued through the default client for its run."""


_source: ClientSource | None = None


def provide(source: ClientSource) -> None:
    """Install the source of clients (called once, by :mod:`opsloop.fluent`)."""
    global _source
    _source = source


def _installed() -> ClientSource:
    if _source is None:  # `import opsloop` installs it before any domain code can run
        raise RuntimeError("opsloop.fluent has not installed the default client source")
    return _source


def default_client() -> Any:
    """The default client, as ``opsloop.get_client()`` returns it."""
    return _installed().default()


def default_settings() -> Any:
    """The default client's settings, without creating the client."""
    return _installed().settings()


def flush_step_metrics(run_id: str, settings: Any) -> None:
    """Write what a step queued for ``run_id`` through the default client, before its runner
    ends the run."""
    _installed().flush_step_metrics(run_id, settings)


def client_for(settings: Any) -> Any:
    """A new client over ``settings`` (a Ray worker's, a subprocess's); the caller closes it."""
    return _installed().for_settings(settings)
