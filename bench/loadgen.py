"""A small HTTP load generator for the serving benchmark: N keep-alive connections on raw
asyncio streams send the same POST request for a fixed time and report requests/s, p50 and p99.

    python bench/loadgen.py URL BODY_JSON CONCURRENCY SECONDS

One second of warm-up runs first and is not counted. Each request costs the client ~30 µs, so
on a small machine the server, not the generator, sets the pace.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


def build_request(url: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return str(parts.hostname), int(parts.port or 80), head.encode() + body


async def run(url: str, body: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    host, port, request = build_request(url, body)
    latencies: list[float] = []
    errors = 0

    async def worker(stop: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < stop:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            latencies.append(time.perf_counter() - start)
        writer.close()

    await asyncio.gather(*(worker(time.perf_counter() + 1.0) for _ in range(concurrency)))
    latencies.clear()
    errors = 0
    start = time.perf_counter()
    await asyncio.gather(*(worker(start + seconds) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": errors,
    }


if __name__ == "__main__":
    url, body, concurrency, seconds = sys.argv[1:5]
    print(json.dumps(asyncio.run(run(url, body.encode(), int(concurrency), float(seconds)))))
