"""Three ``opsloop server`` processes on one store: exactly one leads the scheduler and each
rollout controller (``/healthz`` says which), a SIGKILLed leader is replaced within 15 s, and no
scheduler tick runs twice across the hand-over (every tick is logged with its number)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from opsloop.schema import open_store
from opsloop.store.leases import read_lease
from tests.conftest import free_port

# The real CLI, with the lease log (one line per tick claimed) on stderr.
BOOT = (
    "import logging, sys; logging.basicConfig(stream=sys.stderr, format='%(message)s'); "
    "logging.getLogger('opsloop.leases').setLevel(logging.DEBUG); "
    "from opsloop.app.cli import main; main()"
)
TICK = re.compile(r"lease 'scheduler': tick (\d+) by (\S+) \(epoch (\d+)\)")
JOBS = ("scheduler", "rollouts", "gateway-rollouts")


class ServerProcess:
    def __init__(self, tmp: Path, index: int, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"server-{index}.log"
        env = {**os.environ, "OPSLOOP_HOME": str(tmp / f"home-{index}")}  # homes apart
        self.process = subprocess.Popen(
            [sys.executable, "-c", BOOT, "server", "--port", str(self.port),
             "--database-url", database_url, "--blob-url", str(tmp / "blobs")],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"),
        )  # fmt: skip

    def health(self) -> dict[str, Any] | None:
        try:
            answer = httpx.get(f"{self.url}/healthz", timeout=5)
        except httpx.HTTPError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def leads(self, job: str) -> bool:
        health = self.health()
        return bool(health and health["leases"].get(job, {}).get("leader"))

    def ticks(self) -> list[int]:
        return [int(m.group(1)) for m in TICK.finditer(self.log.read_text(errors="replace"))]


def _wait_up(servers: list[ServerProcess]) -> None:
    deadline = time.monotonic() + 180
    for server in servers:
        while server.health() is None or not server.health()["leases"]:
            assert server.process.poll() is None, server.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the servers did not come up"
            time.sleep(0.3)


def _leaders(servers: list[ServerProcess], job: str) -> list[ServerProcess]:
    return [server for server in servers if server.leads(job)]


def test_one_server_leads_and_a_killed_leader_is_replaced(
    database_url: str, tmp_path: Path
) -> None:
    open_store(database_url).dispose()  # the schema first: three servers need not race for it
    servers = [ServerProcess(tmp_path, i, database_url) for i in range(3)]
    try:
        _wait_up(servers)
        for job in JOBS:
            assert len(_leaders(servers, job)) == 1, job
        leader = _leaders(servers, "scheduler")[0]
        gauge = 'opsloop_leader{lease="scheduler"} '
        for server in servers:
            scraped = httpx.get(f"{server.url}/metrics", timeout=10).text
            assert gauge + ("1.0" if server is leader else "0.0") in scraped
        deadline = time.monotonic() + 60
        while len(leader.ticks()) < 3:  # the scheduler is ticking, on the leader alone
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert [s.ticks() for s in servers if s is not leader] == [[], []]

        leader.process.send_signal(signal.SIGKILL)  # no chance to let the lease go
        killed_at = time.monotonic()
        leader.process.wait(10)
        survivors = [s for s in servers if s is not leader]
        while not (taken := _leaders(survivors, "scheduler")):
            assert time.monotonic() - killed_at < 15, "no server took over within 15 s"
            time.sleep(0.2)
        took_s = time.monotonic() - killed_at
        new_leader = taken[0]
        deadline = time.monotonic() + 60
        while len(new_leader.ticks()) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        for job in JOBS:  # every job has a leader again, one only
            while len(_leaders(survivors, job)) != 1:
                assert time.monotonic() - killed_at < 15, f"{job}: no single leader in 15 s"
                time.sleep(0.2)
        print(f"hand-over took {took_s:.1f} s after the SIGKILL")
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in servers:
            server.process.wait(60)

    ticks = [tick for server in servers for tick in server.ticks()]
    repeated = [tick for tick, n in Counter(ticks).items() if n > 1]
    assert not repeated, f"ticks run twice: {repeated}"
    assert set(leader.ticks()).isdisjoint(new_leader.ticks())
    assert max(leader.ticks()) < min(new_leader.ticks())  # the new leader numbers on
    store = open_store(database_url)
    lease = read_lease(store, "scheduler")
    assert lease is not None and lease.epoch >= 2
    assert lease.expires_at_ms == 0  # the last leader stopped cleanly and let the lease go
    assert lease.ticks - len(ticks) <= 1  # a tick claimed just before the kill may go unlogged
    store.dispose()
