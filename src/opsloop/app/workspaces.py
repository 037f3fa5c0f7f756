"""The server's workspaces besides ``default``: each served from a state of its own.

A workspace keeps its objects in a store of its own (:mod:`opsloop.store.workspaces`), so the
server holds one :class:`~opsloop.web.deps.AppState` per workspace (its store, blob store,
client, serving runtime and trace spool), and runs for each what it runs for the root: a
scheduler, a deployment rollout controller and a launcher, each leading through a lease in that
workspace's own store. A state is built the first time a request names its workspace, and for
every workspace already made when the server starts (so its triggers fire and its rollouts
move with no request at all); making a workspace through the API starts it at once. Another
server process on the same store starts it when it next restarts or is first asked for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from opsloop.governance.workspaces import get_workspace
from opsloop.governance.workspaces import list_workspaces
from opsloop.web.deps import AppState

__all__ = ["WorkspaceStates"]

Stop = Callable[[], None]


class WorkspaceStates:
    """The states of the workspaces other than ``default``, built on demand.

    Args:
        root: The root state (``default``; the list of workspaces is in its store).
        build: Makes a workspace's state (without starting anything).
        start: Starts a state's background work; returns what stops it.
    """

    def __init__(
        self, root: AppState, build: Callable[[str], AppState], start: Callable[[AppState], Stop]
    ) -> None:
        self.root = root
        self._build, self._start = build, start
        self._states: dict[str, AppState] = {}
        self._stops: list[Stop] = []
        self._lock = threading.Lock()
        self._running = False

    def names(self) -> list[str]:
        """Every workspace's name, ``default`` first."""
        with self.root.store.read() as session:
            return [w.name for w in list_workspaces(session)]

    def check(self, name: str) -> None:
        """``NotFound`` (naming the close ones) unless the workspace ``name`` exists."""
        with self.root.store.read() as session:
            get_workspace(session, name)

    def state(self, name: str) -> AppState:
        """The state of workspace ``name``, built (and started, once the server runs) when
        first asked for; ``NotFound`` when there is no such workspace."""
        found = self._states.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._states.get(name)
            if found is None:
                self.check(name)
                found = self._build(name)
                if self._running:
                    self._stops.append(self._start(found))
                self._states[name] = found
            return found

    def built(self) -> list[AppState]:
        """The states built so far (every workspace, once the server has started)."""
        with self._lock:
            return list(self._states.values())

    def start(self) -> None:
        """Start every workspace made so far (the server's start)."""
        with self._lock:
            self._running = True
            for state in self._states.values():
                self._stops.append(self._start(state))
        with self.root.store.read() as session:
            names = [w.name for w in list_workspaces(session)[1:]]
        for name in names:
            self.state(name)

    def stop(self) -> None:
        """Stop what :meth:`start` started, newest first (the server's shutdown)."""
        with self._lock:
            self._running = False
            stops, self._stops = self._stops, []
        for stop in reversed(stops):
            stop()
