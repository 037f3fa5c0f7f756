"""The LLM gateway's instructions per request, counted in-process under cachegrind (a steady
figure on a shared, noisy machine, where CPU time and latency are not): ``bench/gateway.py
--instructions N`` runs :func:`instructions_per_request`. Compare two trees by running it with
``PYTHONPATH=<worktree>/src``."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gateway

_WARM = 200  # requests before the counted ones: connections, caches, the key's look-up


def instructions_per_request(n: int) -> None:
    """Instructions per request of the gateway's own process: the app driven in-process over
    ASGI (no HTTP server, no load generator) for ``_WARM`` + N requests and for ``_WARM``
    alone, each under cachegrind from the same prepared store; the difference over ``n``. The
    upstream runs in its own process, untraced, as does the span writer."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    home = Path(tempfile.mkdtemp(prefix="opsloop-bench-gateway-"))
    up = gateway.free_port()
    upstream = subprocess.Popen([sys.executable, gateway.__file__, "--serve", "upstream", str(up)])
    try:
        gateway.wait_listening(up, upstream)
        gateway.prepare(home / "template", up)
        counts = {}
        for count in (0, n):
            run = home / f"run-{count}"
            shutil.copytree(home / "template", run)
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            out = run / "cachegrind.out"
            done = subprocess.run(
                ["valgrind", "--tool=cachegrind", "--cache-sim=no",
                 f"--cachegrind-out-file={out}", sys.executable, __file__, str(run),
                 str(count)],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            refs = [line for line in done.stderr.splitlines() if "I   refs:" in line]
            if done.returncode != 0 or not refs:
                raise SystemExit(f"the driven gateway failed: {done.stderr[-2000:]}")
            counts[count] = int(refs[-1].split(":")[1].replace(",", ""))
            said = done.stdout.strip()
            print(f"  {_WARM} + {count} requests: {counts[count]:,} instructions; {said}")
        print(f"instructions per request: {(counts[n] - counts[0]) / n:,.0f} "
              f"(({counts[n]:,} - {counts[0]:,}) / {n})")  # fmt: skip
    finally:
        upstream.terminate()
        upstream.wait(30)
        shutil.rmtree(home, ignore_errors=True)


def _drive(home: Path, count: int) -> None:
    """Send ``_WARM`` + ``count`` requests one after another through the gateway's ASGI app
    and print the CPU the counted ones took. What runs on wall time rather than per request,
    which valgrind's ~50x slowdown would multiply, is left out: the app's lifespan (the rollout
    controller's tick and lease every second; the span writer starts on the first span anyway)
    and the refreshes of the key limits and of the authorizer's resolved keys (both kept an
    hour here, the latter through its constructor's default: the app builds it)."""
    from opsloop.governance.authorizer import UserAuthorizer

    UserAuthorizer.__init__.__kwdefaults__["ttl_s"] = 3600.0
    app = gateway.gateway_app(home, limits_ttl_s=3600.0)
    secret = (home / "key").read_bytes().strip()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": gateway.PATH, "raw_path": gateway.PATH.encode(),
        "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"authorization", b"Bearer " + secret),
                    (b"content-length", b"%d" % len(gateway.BODY))],
    }  # fmt: skip
    message = {"type": "http.request", "body": gateway.BODY, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def one() -> None:
        sent: list[dict[str, Any]] = []

        async def send(event: dict[str, Any]) -> None:
            sent.append(event)

        await app(dict(scope), receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"answered {sent[0]['status']}: {sent[-1].get('body', b'')[:300]!r}")

    async def main() -> tuple[float, float]:
        for _ in range(_WARM):
            await one()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(count):
            await one()
        took = time.process_time() - cpu, time.perf_counter() - wall
        await app.state.gateway.aclose()  # the spans stored, the span writer stopped
        return took

    cpu, wall = asyncio.run(main())
    if count:
        print(f"{cpu / count * 1e6:.0f} µs CPU per request ({wall / count * 1e6:.0f} µs wall)")


if __name__ == "__main__":  # the driven side: python gateway_instructions.py HOME COUNT
    _drive(Path(sys.argv[1]), int(sys.argv[2]))
