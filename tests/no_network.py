"""Proof that code makes no network call: sockets may connect to loopback only.

``block_sockets`` patches ``socket.socket.connect`` / ``connect_ex`` and ``socket.getaddrinfo``
so that anything beyond loopback (or a Unix socket) is refused and recorded. A library that
swallows the refusal (tldextract falls back to its snapshot, for one) still leaves a record,
so tests assert the record is empty rather than that nothing raised. ``no_network`` does it in
the test process; ``no_network_env`` gives a subprocess (the CLI) the same guard through a
``sitecustomize`` module on its ``PYTHONPATH``, writing its record to a file.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["block_sockets", "network_attempts", "no_network", "no_network_env"]

_LOG_ENV = "OPSLOOP_TEST_NETWORK_LOG"
_REPO = Path(__file__).resolve().parents[1]


def _is_local(host: object) -> bool:
    if host is None or host in ("localhost", "", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def block_sockets(log: str | None = None) -> tuple[list[str], Callable[[], None]]:
    """Refuse non-loopback connections and name lookups from now on; returns the list of
    refused attempts (also appended to the file ``log``) and a function that undoes it."""
    attempts: list[str] = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    getaddrinfo = socket.getaddrinfo

    def refuse(what: str) -> None:
        attempts.append(what)
        if log:
            with open(log, "a") as fh:
                fh.write(what + "\n")
        raise ConnectionRefusedError(f"network blocked in tests: {what}")

    def guarded_connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):  # type: ignore[index]
            refuse(f"connect {address!r}")
        return connect(self, address)  # type: ignore[arg-type]

    def guarded_connect_ex(self: socket.socket, address: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):  # type: ignore[index]
            refuse(f"connect_ex {address!r}")
        return connect_ex(self, address)  # type: ignore[arg-type]

    def guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if not _is_local(host):
            refuse(f"getaddrinfo {host!r}")
        return getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = guarded_getaddrinfo  # type: ignore[assignment]

    def undo() -> None:
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = getaddrinfo

    return attempts, undo


@pytest.fixture
def no_network() -> Iterator[list[str]]:
    """Block the network in this test; yields the refused attempts (assert it stays empty)."""
    attempts, undo = block_sockets()
    try:
        yield attempts
    finally:
        undo()


@pytest.fixture
def no_network_env(tmp_path: Path) -> dict[str, str]:
    """An environment for subprocesses with the network blocked; read the record of refused
    attempts with ``network_attempts(env)``."""
    site = tmp_path / "no-network-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(_REPO)!r})\n"
        "from tests.no_network import block_sockets\n"
        f"block_sockets(os.environ[{_LOG_ENV!r}])\n"
        "del sys.path[0]\n"
    )
    log = tmp_path / "network-attempts.log"
    log.touch()
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, _LOG_ENV: str(log)}


def network_attempts(env: dict[str, str]) -> list[str]:
    return Path(env[_LOG_ENV]).read_text().splitlines()
