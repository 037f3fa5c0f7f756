"""The LLM gateway's added latency and CPU per request, beside LiteLLM's proxy, over the same
loopback upstream (issue 24's benchmark).

    .venv/bin/python bench/gateway.py [--rates 100,500] [--seconds 10] [--rounds 2] [--profile]
    .venv/bin/python bench/gateway.py --memory [--requests 200000]
    .venv/bin/python bench/gateway.py --instructions 400

Four processes, so none shares a GIL with another: the upstream (a raw ASGI app answering one
fixed chat completion), ``opsloop gateway``'s app (``auth: keys`` with an opsloop API key that
carries rpm, tpm and a daily budget, the in-process limiter, every call traced into a SQLite
store), LiteLLM's proxy from its own venv (``$LITELLM_BIN``, else ``.venv-litellm/bin/litellm``:
``openai/`` provider pointed at the same upstream, a master key, no database), and this one,
the load generator. Load is open-loop: request *i* is sent at ``start + i/rate`` whatever came
back before it, and its latency counts from that scheduled moment, so queueing shows as latency
instead of as fewer requests. Each rate runs ``--rounds`` rounds of direct, ours, LiteLLM back
to back, so all three see the same minute of a shared machine.

Printed per rate: p50/p99 direct and through each proxy, the added latency (through - direct),
each proxy's CPU per request (user + system, all threads: robust to a busy machine, unlike wall
time), and LiteLLM's added latency over ours. ``--profile``: our functions by CPU per request
(cProfile). ``--memory``: ``--requests`` through our gateway, 32 at a time; its RSS after the
first 10,000, at the end, and once every span is stored (target: < 5% growth).

``--instructions N`` (``bench/gateway_instructions.py``): the gateway's own work per request as
instructions (valgrind's cachegrind), which a loaded, shared machine does not change as it
changes CPU time: the app is driven in-process over ASGI (no HTTP server, no load generator) for
200 + N requests and for the 200 alone, each in a fresh interpreter from the same prepared
store, and the difference is divided by N; the upstream and the span writer run untraced in
their own processes. Run with ``PYTHONPATH=<a worktree>/src`` to compare commits; cache bytecode
first (``unset PYTHONDONTWRITEBYTECODE``) so both runs import alike. The keys' and the limits'
caches, which expire on wall time (2 s), are kept an hour there: valgrind's slowdown, which the
machine's load changes 5x, would otherwise decide how many look-ups land in the counted requests
(±10%)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

_ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "The answer is 42."}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26},
}).encode()  # fmt: skip
BODY = json.dumps(
    {"model": "bench", "messages": [{"role": "user", "content": "What is the answer?"}]}
).encode()
PATH = "/v1/chat/completions"
_LITELLM_KEY = "sk-bench-litellm-master"


async def upstream_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_ANSWER))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _ANSWER})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listened on port {port} within {seconds:g} s")


class Load:
    """Open-loop POSTs to one port over keep-alive connections (a new one only when every open
    one is busy); ``run`` returns the sorted latencies (s) and the non-200 answers."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.request = (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def one(self, scheduled: float, out: list[float], errors: list[bytes]) -> None:
        conn = (
            self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
        )
        reader, writer = conn
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        answer = await reader.readexactly(length)
        out.append(time.perf_counter() - scheduled)
        if not head.startswith(b"HTTP/1.1 200"):
            errors.append(head.split(b"\r\n")[0] + b" " + answer[:200])
        self.idle.append(conn)

    async def run(self, rate: float, count: int) -> tuple[list[float], list[bytes]]:
        out: list[float] = []
        errors: list[bytes] = []
        tasks = []
        start = time.perf_counter() + 0.02
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(self.one(scheduled, out, errors)))
        done = await asyncio.gather(*tasks, return_exceptions=True)
        errors += [repr(e).encode() for e in done if isinstance(e, BaseException)]
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
        return sorted(out), errors


def _measure(port: int, key: str, rate: float, count: int, pid: int | None) -> dict[str, Any]:
    """Latencies at ``rate`` and the CPU seconds process ``pid`` spent meanwhile."""
    proc = psutil.Process(pid) if pid else None
    before = sum(proc.cpu_times()[:2]) if proc else 0.0
    latencies, errors = _loop_run(Load(port, key).run(rate, count))
    cpu = (sum(proc.cpu_times()[:2]) - before) if proc else 0.0
    return {"lat": latencies, "errors": errors, "cpu_s": cpu, "count": count}


def _loop_run(coro: Any) -> Any:
    return asyncio.run(coro)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] * 1000 if values else float("nan")


def _gateway_config(home: Path, up_port: int) -> Path:
    target = {"name": "loopback", "base_url": f"http://127.0.0.1:{up_port}/v1",
              "model": "gpt-4o-mini"}  # fmt: skip
    config = {"auth": "keys", "routes": [{"name": "bench", "targets": [target]}]}
    path = home / "gateway.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _litellm(home: Path, up_port: int) -> tuple[list[str], dict[str, str]] | str:
    """LiteLLM's command and environment, or why it cannot run."""
    binary = os.environ.get("LITELLM_BIN") or str(Path(".venv-litellm/bin/litellm").resolve())
    if not Path(binary).is_file():
        return f"{binary} is missing (./dev bench bench/gateway.py installs it)"
    config = {
        "model_list": [{"model_name": "bench", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": f"http://127.0.0.1:{up_port}/v1",
            "api_key": "sk-upstream"}}],
        "general_settings": {"master_key": _LITELLM_KEY},
        "litellm_settings": {"telemetry": False},
    }  # fmt: skip
    path = home / "litellm.yaml"
    path.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", NO_DOCS="True")
    return [binary, "--config", str(path), "--host", "127.0.0.1", "--num_workers", "1"], env


def _start(home: Path, args: argparse.Namespace, started: dict[str, Any]) -> None:
    """Start the upstream, our gateway and LiteLLM into ``started`` (its ``procs`` are stopped
    by the caller even when one fails to start): what each listens on, its key and pid."""
    up, ours, peer = free_port(), free_port(), free_port()
    me = [sys.executable, __file__, "--serve"]
    env = dict(os.environ)
    if args.profile:
        env["OPSLOOP_BENCH_PROFILE"] = str(home / "gateway.prof")
    if args.plain_server:
        env["OPSLOOP_BENCH_PLAIN"] = "1"
    procs = started["procs"]
    procs["upstream"] = subprocess.Popen([*me, "upstream", str(up)])
    procs["ours"] = subprocess.Popen([*me, "gateway", str(ours), str(home), str(up)], env=env)
    started["ports"] = {"direct": up, "ours": ours}
    wait_listening(up, procs["upstream"])
    wait_listening(ours, procs["ours"])
    started["keys"] = {"direct": "x", "ours": (home / "key").read_text()}
    started["pids"] = {"direct": procs["upstream"].pid, "ours": procs["ours"].pid}
    litellm = _litellm(home, up) if not args.memory else "not asked for in --memory mode"
    if isinstance(litellm, str):
        started["skipped"] = litellm
        return
    command, lenv = litellm
    log = open(home / "litellm.log", "wb")  # noqa: SIM115  (closed with the process)
    procs["litellm"] = subprocess.Popen([*command, "--port", str(peer)], env=lenv, stdout=log,
                                        stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_listening(peer, procs["litellm"], 120)
        probe = _measure(peer, _LITELLM_KEY, 10, 3, None)
        if probe["errors"]:
            raise RuntimeError(f"answered {probe['errors'][0][:200]!r}")
    except RuntimeError as exc:
        tail = (home / "litellm.log").read_bytes()[-300:].decode("utf-8", "replace")
        started["skipped"] = f"it did not start: {exc}; its log ends: {tail!r}"
        procs.pop("litellm").kill()
        return
    started["ports"]["litellm"], started["keys"]["litellm"] = peer, _LITELLM_KEY
    started["pids"]["litellm"] = procs["litellm"].pid


def _latency(started: dict[str, Any], args: argparse.Namespace) -> None:
    names = list(started["ports"])
    ports, keys, pids = started["ports"], started["keys"], started["pids"]
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f} (1 min); "
          f"{args.seconds:g} s per rate in {args.rounds} round(s); keys, limits, budget and "
          "tracing on (SQLite store)")  # fmt: skip
    if "skipped" in started:
        print(f"LiteLLM skipped: {started['skipped']}")
    for rate in (float(r) for r in args.rates.split(",")):
        per = max(1, int(rate * args.seconds / args.rounds))
        for name in names:  # warm-up: connections, caches, the key's look-up
            _measure(ports[name], keys[name], rate, int(rate), None)
        runs: dict[str, dict[str, Any]] = {n: {"lat": [], "errors": [], "cpu_s": 0.0,
                                               "count": 0} for n in names}  # fmt: skip
        for _ in range(args.rounds):
            for name in names:
                got = _measure(ports[name], keys[name], rate, per, pids[name])
                for field in ("lat", "errors"):
                    runs[name][field] += got[field]
                runs[name]["cpu_s"] += got["cpu_s"]
                runs[name]["count"] += got["count"]
        for run in runs.values():
            run["lat"].sort()
        _print_rate(rate, runs)


def _print_rate(rate: float, runs: dict[str, dict[str, Any]]) -> None:
    d50, d99 = _pct(runs["direct"]["lat"], 0.5), _pct(runs["direct"]["lat"], 0.99)
    print(f"\n{rate:.0f} req/s ({runs['direct']['count']} requests each)")
    print(f"  {'':8} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10} "
          f"{'CPU µs/req':>11} {'non-200':>8}")  # fmt: skip
    added = {}
    for name, run in runs.items():
        p50, p99 = _pct(run["lat"], 0.5), _pct(run["lat"], 0.99)
        cpu = run["cpu_s"] / max(1, run["count"]) * 1e6
        extra = ("", "") if name == "direct" else (f"{p50 - d50:.2f}", f"{p99 - d99:.2f}")
        added[name] = (p50 - d50, p99 - d99)
        print(f"  {name:8} {p50:8.2f} {p99:8.2f} {extra[0]:>10} {extra[1]:>10} {cpu:11.0f} "
              f"{len(run['errors']):8d}")  # fmt: skip
        if run["errors"]:
            print(f"    first: {run['errors'][0][:200]!r}")
    if "litellm" in added:
        (o50, o99), (l50, l99) = added["ours"], added["litellm"]
        print(f"  LiteLLM adds {l50 / max(o50, 0.01):.1f}x our p50 and {l99 / max(o99, 0.01):.1f}x "
              "our p99 (added latency under 0.01 ms counts as 0.01)")  # fmt: skip


def _memory(started: dict[str, Any], requests: int, home: Path) -> None:
    port, key, pid = started["ports"]["ours"], started["keys"]["ours"], started["pids"]["ours"]
    proc = psutil.Process(pid)

    series: list[str] = []  # RSS at each tenth of the run: a leak climbs, a warm-up levels off

    async def closed(count: int, concurrency: int = 32) -> int:
        load, left, errors = Load(port, key), [count], []
        tenth = max(1, count // 10)

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                if left[0] % tenth == 0:
                    series.append(f"{proc.memory_info().rss / 2**20:.1f}")
                await load.one(time.perf_counter(), [], errors)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(errors)

    warm = min(10_000, requests // 10)
    _loop_run(closed(warm))
    series.clear()
    start_rss, t0, stored0 = proc.memory_info().rss, time.perf_counter(), _count_spans(home)
    errors = _loop_run(closed(requests - warm))
    end_rss, seconds, stored = proc.memory_info().rss, time.perf_counter() - t0, _count_spans(home)
    print(f"memory: {requests} requests through our gateway ({errors} non-200) in {seconds:.0f} s "
          f"({(requests - warm) / seconds:.0f} req/s); RSS {start_rss / 2**20:.1f} MiB after "
          f"{warm} -> {end_rss / 2**20:.1f} MiB at the end: "
          f"{(end_rss - start_rss) / start_rss * 100:+.1f}% (target < 5%); spans stored by then: "
          f"{stored} ({(stored - stored0) / seconds:.0f} spans/s){_writers(proc)}")  # fmt: skip
    print(f"  RSS (MiB) at each tenth of the run: {' '.join(series)}")
    deadline = time.monotonic() + 120
    while stored < requests and time.monotonic() < deadline:
        time.sleep(1)
        stored = _count_spans(home)
    rss = proc.memory_info().rss
    print(f"  once {stored} spans were stored: RSS {rss / 2**20:.1f} MiB "
          f"({(rss - start_rss) / start_rss * 100:+.1f}%)")  # fmt: skip


def _writers(proc: psutil.Process) -> str:
    """The RSS of the gateway's child processes (its span writer), if it has any."""
    children = proc.children(recursive=True)
    rss = sum(child.memory_info().rss for child in children)
    return f"; its span writer's RSS {rss / 2**20:.1f} MiB" if children else ""


def _print_profile(path: Path, requests: int) -> None:
    stats = pstats.Stats(str(path))
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    total = sum(v[2] for _, v in rows)
    print(f"\nour gateway under cProfile (serving thread CPU): {total / requests * 1e6:.0f} µs per "
          f"request in {requests} requests; top functions by own time:")  # fmt: skip
    for (file, line, func), (_cc, calls, own, cum, _callers) in rows[:25]:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}"
        print(f"  {own / requests * 1e6:7.1f} µs own {cum / requests * 1e6:8.1f} µs cum  "
              f"{calls / requests:5.1f}/req  {func} ({where})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,500")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate and process")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="cProfile our gateway")
    parser.add_argument("--memory", action="store_true", help="RSS over --requests instead")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--plain-server", action="store_true", help="ours on asyncio + h11")
    parser.add_argument(
        "--instructions",
        type=int,
        metavar="N",
        help="instructions per request over N in-process requests (cachegrind)",
    )
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.serve:
        return _serve(args.serve)
    if args.instructions:
        from gateway_instructions import instructions_per_request

        return instructions_per_request(args.instructions)
    home = Path(tempfile.mkdtemp(prefix="opsloop-bench-gateway-"))
    started: dict[str, Any] = {"procs": {}}
    try:
        _start(home, args, started)
        if args.memory:
            _memory(started, args.requests, home)
        else:
            _latency(started, args)
    finally:
        for proc in started["procs"].values():
            proc.terminate()
            proc.wait(30)
    if args.profile:  # one span per request served
        _print_profile(home / "gateway.prof", max(1, _count_spans(home)))
        return print(f"(the whole profile: {home / 'gateway.prof'}, for pstats or snakeviz)")
    shutil.rmtree(home, ignore_errors=True)


def _count_spans(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "opsloop.db") as db:
        return int(db.execute("select count(*) from spans").fetchone()[0])


def _serve(what: list[str]) -> None:
    import uvicorn

    if what[0] == "upstream":
        uvicorn.run(upstream_app, host="127.0.0.1", port=int(what[1]), log_level="warning",
                    interface="asgi3")  # fmt: skip
        return
    home, up = Path(what[2]), int(what[3])
    prepare(home, up)
    app = gateway_app(home)
    profile = os.environ.get("OPSLOOP_BENCH_PROFILE")
    plain = {"loop": "asyncio", "http": "h11"} if os.environ.get("OPSLOOP_BENCH_PLAIN") else {}
    if not profile:
        uvicorn.run(app, host="127.0.0.1", port=int(what[1]), log_level="warning", **plain)
        return
    import cProfile
    import signal

    def stop(*_: Any) -> None:  # uvicorn re-raises the SIGTERM it caught once it has shut down
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    profiler = cProfile.Profile(time.thread_time)  # the serving thread's CPU, not wall time
    profiler.enable()
    try:
        uvicorn.run(app, host="127.0.0.1", port=int(what[1]), log_level="warning", **plain)
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def _settings(home: Path) -> Any:
    from opsloop.config import load_settings

    return load_settings(home=str(home), database_url=f"sqlite:///{home / 'opsloop.db'}",
                         blob_url=str(home / "blobs"))  # fmt: skip


def prepare(home: Path, up: int) -> None:
    """The store in ``home`` with a user and a key carrying every limit, far above the load
    (its secret in ``home``/key), and the gateway's config over the upstream on port ``up``."""
    from opsloop.client import Client

    with Client(settings=_settings(home)) as client:
        client.governance.create_user("bench", role="viewer")
        key = client.governance.create_key("bench", user="bench")
        client.governance.set_key_limits(key.key.id, rpm=10**7, tpm=10**9, budget_usd=10**6,
                                         budget_period="day")  # fmt: skip
    _gateway_config(home, up)
    (home / "key").write_text(key.secret)


def gateway_app(home: Path, limits_ttl_s: float | None = None) -> Any:
    """``opsloop gateway``'s app over ``home`` as :func:`prepare` left it (keys' limits kept
    ``limits_ttl_s`` seconds; None: the gateway's own default)."""
    from opsloop.app.gateway import create_gateway_app
    from opsloop.client import shared_stores
    from opsloop.llm.gateway.limits import build_limiter
    from opsloop.llm.gateway.limits_store import KeyLimitsLookup
    from opsloop.llm.gateway.limits_store import store_spend

    settings = _settings(home)
    store, _ = shared_stores(settings)
    lookup = (
        KeyLimitsLookup(store)
        if limits_ttl_s is None
        else KeyLimitsLookup(store, ttl_s=limits_ttl_s)
    )
    return create_gateway_app(
        str(home / "gateway.yaml"), settings, limits_for=lookup,
        limiter_factory=lambda limits: build_limiter(limits, spent_since=store_spend(store)),
    )  # fmt: skip


if __name__ == "__main__":
    main()
