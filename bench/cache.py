"""The gateway's answer cache: what a lookup costs with 10,000 answers stored (issue 24).

    .venv/bin/python bench/cache.py [--entries 10000] [--embedded 300] [--lookups 2000]

1. Exact: ``RouteCache.get`` for a hit and for a miss, with ``--entries`` answers stored. The
   cost is hashing the request body (canonical JSON + BLAKE3) and one dict lookup.
2. Semantic, in its parts, with ``--entries`` answers in one partition (the worst case: every
   stored question shares the model, system prompt and parameters):
   - the matrix search (``SemanticIndex.search``), beside a per-entry Python loop over the same
     vectors (the peer: a cache that compares one stored question at a time);
   - embedding one question with all-MiniLM-L6-v2 on the CPU (what a miss or a first-seen
     question costs, off the event loop);
   - ``RouteCache.get`` end to end for questions not seen before (embedding + search).
   ``--embedded`` questions are real embeddings of generated support questions; the rest of the
   rows are random unit vectors (the search's cost does not depend on what the rows hold, and
   embedding 10,000 questions would take the 2 shared cores a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from opsloop.llm.evals.metrics import embed
from opsloop.llm.gateway.cache import RouteCache
from opsloop.llm.gateway.cache import build_cache
from opsloop.llm.gateway.cache_index import SemanticIndex

TOPICS = ["password", "invoice", "refund", "delivery", "account", "subscription", "order", "card"]
ASKS = [
    "How do I change my {}?",
    "Where can I find my {}?",
    "Why was my {} rejected?",
    "Can I cancel my {} number {}?",
    "What happens to my {} after {} days?",
]


def question(rng: random.Random) -> str:
    ask = rng.choice(ASKS)
    return ask.format(rng.choice(TOPICS), rng.randint(1, 10_000))


def body(text: str) -> dict[str, Any]:
    return {
        "model": "support",
        "temperature": 0,
        "max_tokens": 256,
        "messages": [
            {"role": "system", "content": "You are a support assistant. Answer in two lines."},
            {"role": "user", "content": text},
        ],
    }


def answer(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "support",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50},
    }


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def time_each(calls: list[Callable[[], Any]]) -> list[float]:
    samples = []
    for call in calls:
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def exact(entries: int, lookups: int, rng: random.Random) -> None:
    cache = build_cache("bench", {"exact": True, "max_entries": entries})
    assert isinstance(cache, RouteCache)
    stored = [body(f"{question(rng)} #{i}") for i in range(entries)]

    async def main() -> tuple[list[float], list[float]]:
        for request in stored:
            await cache.put(request, answer("stored"))
        hits, misses = [], []
        for i in range(lookups):
            hit, miss = stored[rng.randrange(entries)], body(f"never asked #{i}")
            start = time.perf_counter()
            assert await cache.get(hit) is not None
            hits.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert await cache.get(miss) is None
            misses.append(time.perf_counter() - start)
        return hits, misses

    hits, misses = asyncio.run(main())
    print(
        f"exact get, {entries:,} stored: hit {median_us(hits):.1f} µs, "
        f"miss {median_us(misses):.1f} µs (median of {lookups:,})"
    )


def semantic(entries: int, embedded: int, lookups: int, rng: random.Random) -> None:
    texts = [question(rng) for _ in range(embedded)]
    real = embed(texts)
    noise = np.random.default_rng(24).standard_normal((entries - embedded, real.shape[1]))
    noise = (noise / np.linalg.norm(noise, axis=1, keepdims=True)).astype(np.float32)
    vectors = np.concatenate([real, noise])
    cache = build_cache(
        "bench", {"exact": False, "semantic": {"threshold": 0.92}, "max_entries": entries}
    )
    assert isinstance(cache, RouteCache)
    index = SemanticIndex(
        dim=real.shape[1], threshold=0.92, ttl_s=3600, max_entries=entries, clock=time.monotonic
    )
    for i, vector in enumerate(vectors):
        index.add("one partition", vector, answer(f"stored {i}"))
    queries = embed([f"Please tell me: {t.lower()}" for t in texts[: min(lookups, embedded)]])

    searches = time_each([lambda q=q: index.search("one partition", q) for q in queries])
    rows = [v.tolist() for v in vectors]

    def python_loop(query: list[float]) -> int:
        best, best_cosine = -1, -2.0
        for i, row in enumerate(rows):
            cosine = sum(a * b for a, b in zip(row, query, strict=True))
            if cosine > best_cosine:
                best, best_cosine = i, cosine
        return best

    loops = time_each([lambda q=q.tolist(): python_loop(q) for q in queries[:20]])
    ours, peer = median_us(searches), median_us(loops)
    print(
        f"semantic search, {entries:,} rows x {real.shape[1]}: {ours:.1f} µs vs per-entry "
        f"Python loop {peer:,.0f} µs (ratio {peer / ours:,.0f}x)"
    )

    fresh = [f"Could you explain {question(rng).lower()}" for _ in range(min(lookups, 200))]
    embeds = time_each([lambda t=t: embed([t]) for t in fresh[:50]])
    print(f"embedding one question (MiniLM, CPU): {median_us(embeds):,.0f} µs")

    async def end_to_end() -> list[float]:
        for text in texts:  # the cache's own index, filled through put (one embedding each)
            await cache.put(body(text), answer("stored"))
        samples = []
        for text in fresh[50:]:
            start = time.perf_counter()
            await cache.get(body(text))
            samples.append(time.perf_counter() - start)
        return samples

    print(
        f"semantic get of a new question ({embedded} stored, embedding included): "
        f"{median_us(asyncio.run(end_to_end())):,.0f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--embedded", type=int, default=300)
    parser.add_argument("--lookups", type=int, default=2_000)
    args = parser.parse_args()
    rng = random.Random(24)
    exact(args.entries, args.lookups, rng)
    semantic(args.entries, min(args.embedded, args.entries), args.lookups, rng)


if __name__ == "__main__":
    main()
