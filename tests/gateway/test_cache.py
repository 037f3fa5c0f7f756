"""The gateway's exact answer cache: keys, the cacheable-request rule, TTL, LRU bound, configs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from opsloop.errors import InvalidInput
from opsloop.llm.gateway.cache import RouteCache
from opsloop.llm.gateway.cache import build_cache
from opsloop.llm.gateway.cache import is_cacheable
from opsloop.llm.gateway.cache_index import SemanticIndex


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(question: str = "What is the capital of France?", **extra: Any) -> dict[str, Any]:
    return {
        "model": "support",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": question},
        ],
        **extra,
    }


def answer(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }


def exact_cache(clock: Clock, **raw: Any) -> RouteCache:
    cache = build_cache("support", {"exact": True, **raw}, clock=clock)
    assert isinstance(cache, RouteCache)
    return cache


def test_exact_hit_ignores_fields_that_do_not_change_the_answer() -> None:
    async def main() -> None:
        cache = exact_cache(Clock())
        assert await cache.get(request()) is None
        await cache.put(request(), answer("Paris"))
        for same in (
            request(stream=True, stream_options={"include_usage": True}),
            request(user="alice", metadata={"team": "a"}),
            dict(reversed(list(request().items()))),  # the same body, keys in another order
        ):
            hit = await cache.get(same)
            assert hit is not None
            assert (hit.kind, hit.similarity) == ("exact", 1.0)
            assert hit.response["choices"][0]["message"]["content"] == "Paris"

    asyncio.run(main())


def test_exact_misses_when_anything_that_matters_differs() -> None:
    async def main() -> None:
        cache = exact_cache(Clock())
        await cache.put(request(), answer("Paris"))
        different = [
            request("What is the capital of Spain?"),
            {**request(), "model": "other"},
            request(max_tokens=5),
            request(tools=[{"type": "function", "function": {"name": "f"}}]),
            {
                **request(),
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
            },
        ]
        for body in different:
            assert await cache.get(body) is None

    asyncio.run(main())


def test_a_hit_is_a_copy_the_caller_may_change() -> None:
    async def main() -> None:
        cache = exact_cache(Clock())
        stored = answer("Paris")
        await cache.put(request(), stored)
        stored["choices"][0]["message"]["content"] = "changed after put"
        first = await cache.get(request())
        assert first is not None
        first.response["id"] = "changed by the caller"
        second = await cache.get(request())
        assert second is not None
        assert second.response == answer("Paris")

    asyncio.run(main())


def test_only_repeatable_requests_are_cached() -> None:
    assert is_cacheable(request())
    assert is_cacheable(request(temperature=0.0))
    assert not is_cacheable(request(temperature=0.7))
    assert not is_cacheable({"model": "m", "messages": []})  # the default temperature samples
    assert is_cacheable(request(temperature=0.7, cache=True))
    assert not is_cacheable(request(cache=False))

    async def main() -> None:
        cache = exact_cache(Clock())
        await cache.put(request(temperature=0.7), answer("sampled"))
        assert await cache.get(request(temperature=0.7)) is None
        assert await cache.get(request(temperature=0.7, cache=True)) is None  # never stored
        await cache.put(request(temperature=0.7, cache=True), answer("kept"))
        hit = await cache.get(request(temperature=0.7, cache=True))
        assert hit is not None and hit.response == answer("kept")
        assert await cache.get(request(temperature=0.7, cache=False)) is None

    asyncio.run(main())


def test_entries_expire_after_the_ttl() -> None:
    async def main() -> None:
        clock = Clock()
        cache = exact_cache(clock, ttl_s=60)
        await cache.put(request(), answer("Paris"))
        clock.now += 59.9
        assert await cache.get(request()) is not None
        clock.now += 0.1
        assert await cache.get(request()) is None
        await cache.put(request(), answer("Paris again"))  # a new put restarts the TTL
        clock.now += 30
        hit = await cache.get(request())
        assert hit is not None and hit.response == answer("Paris again")

    asyncio.run(main())


def test_the_least_recently_used_answer_is_evicted_first() -> None:
    async def main() -> None:
        cache = exact_cache(Clock(), max_entries=2)
        await cache.put(request("q1"), answer("a1"))
        await cache.put(request("q2"), answer("a2"))
        assert await cache.get(request("q1")) is not None  # q1 is now the most recent
        await cache.put(request("q3"), answer("a3"))
        assert await cache.get(request("q2")) is None
        assert await cache.get(request("q1")) is not None
        assert await cache.get(request("q3")) is not None

    asyncio.run(main())


def test_semantic_index_evicts_and_expires_across_partitions() -> None:
    """The matrix store without the model: swap-removal keeps every remaining row findable."""
    import numpy as np

    clock = Clock()
    index = SemanticIndex(dim=4, threshold=0.99, ttl_s=10, max_entries=3, clock=clock)
    basis = np.eye(4, dtype=np.float32)
    index.add("p", basis[0], answer("0"))
    index.add("p", basis[1], answer("1"))
    index.add("q", basis[2], answer("2"))
    index.add("p", basis[3], answer("3"))  # over the bound: "0" (least recent) goes
    assert len(index) == 3
    assert index.search("p", basis[0]) is None
    found = index.search("p", basis[3])
    assert found is not None and found[0] == answer("3") and found[1] == pytest.approx(1.0)
    assert index.search("q", basis[3]) is None  # another partition never matches
    clock.now += 5
    index.add("p", basis[0], answer("0 again"))  # evicts "1"; "3" moved into freed rows stays
    assert index.search("p", basis[1]) is None
    clock.now += 5  # "2" and "3" expire; "0 again" has 5 s left
    assert index.search("p", basis[3]) is None
    assert index.search("q", basis[2]) is None
    assert len(index) == 1
    found = index.search("p", basis[0])
    assert found is not None and found[0] == answer("0 again")


@pytest.mark.parametrize("raw", [None, False, {"exact": False}])
def test_the_cache_is_off_unless_a_route_turns_it_on(raw: Any) -> None:
    assert build_cache("support", raw) is None


def test_true_means_the_defaults() -> None:
    cache = build_cache("support", True)
    assert isinstance(cache, RouteCache)
    assert (cache.config.exact, cache.config.semantic) == (True, None)
    assert (cache.config.ttl_s, cache.config.max_entries) == (3600, 10_000)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"ttl_s": 0}, "routes.support.cache.ttl_s: Input should be greater than 0"),
        ({"max_entries": "many"}, "routes.support.cache.max_entries: Input should be a valid"),
        ({"semantic": {"threshold": 1.5}}, "routes.support.cache.semantic.threshold: Input"),
        ({"semantic": {"treshold": 0.9}}, "routes.support.cache.semantic.treshold: Extra"),
        ({"exactly": True}, "routes.support.cache.exactly: Extra inputs are not permitted"),
        ("yes", "routes.support.cache: expected a mapping"),
    ],
)
def test_bad_configs_name_the_field(raw: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        build_cache("support", raw)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_route_without_a_cache_section_caches_nothing() -> None:
    """Off is the default: a route read from YAML without ``cache:`` holds ``{}``, and greedy
    calls must reach the model (a canary judged on cached answers never sees its target)."""
    from opsloop.llm.gateway.config import RouteConfig

    fields = RouteConfig.model_fields
    assert build_cache("r", fields["cache"].get_default(call_default_factory=True)) is None
    assert build_cache("r", None) is None and build_cache("r", False) is None
    assert build_cache("r", True) is not None
    assert build_cache("r", {"ttl_s": 60}) is not None  # exact by default once asked for
