"""A registered chat model served in-process through the registry: the model and its tokenizer
are registered with the SDK, loaded by ``RegistryLocalModels``, and answer OpenAI chat bodies,
many at once, with the network blocked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opsloop.errors import InvalidInput
from opsloop.errors import NotFound
from tests.gateway import chat_lm
from tests.no_network import no_network  # noqa: F401  (a fixture)

pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("no_network")


def _body(question: str, **extra: Any) -> dict[str, Any]:
    """A chat body, greedy unless it says otherwise: OpenAI's default temperature is 1, and
    these tests compare exact answers (two samples of one prompt need not agree)."""
    return {
        "model": "chat-bot", "messages": [{"role": "user", "content": question}],
        "temperature": 0, **extra,
    }  # fmt: skip


@pytest.fixture
def client(sqlite_url: str, tmp_path: Path) -> Any:
    from opsloop import Client

    c = Client(database_url=sqlite_url, blob_url=str(tmp_path / "blobs"))
    yield c
    c.close()


@pytest.fixture
def local(client: Any) -> Any:
    from opsloop.registry.causal_lm import RegistryLocalModels

    tokenizer, model = chat_lm.trained()
    client.models.register(
        "chat-bot",
        model,
        input_example=np.array([[1, 2, 3]]),
        flavor_options={"tokenizer": tokenizer},
    )
    client.models.set_alias("chat-bot@1", "champion")
    models = RegistryLocalModels(client.models, device="cpu")
    yield models
    models.close()


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _streamed(generator: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    return [chunk async for chunk in generator.stream(body)]


def test_the_package_keeps_the_tokenizer_and_its_template(client: Any, local: Any) -> None:
    loaded = client.models.load("chat-bot@champion")
    assert loaded.raw.tokenizer.chat_template == chat_lm.TEMPLATE
    generator = local.generator("chat-bot@champion")
    assert local.generator("chat-bot@1") is generator  # one version, loaded once
    assert generator.name == "chat-bot@1"


def test_a_completion_is_an_openai_chat_completion(local: Any) -> None:
    tokenizer, _ = chat_lm.trained()
    answer = _run(local.generator("chat-bot@champion").complete(_body("ping")))
    assert answer["object"] == "chat.completion" and answer["model"] == "chat-bot@1"
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "pong pong pong"}
    assert choice["finish_reason"] == "stop"
    completion = len(tokenizer("pong pong pong")["input_ids"]) + 1  # and the end token
    assert answer["usage"] == {
        "prompt_tokens": len(chat_lm.prompt_ids(tokenizer, "ping")),
        "completion_tokens": completion,
        "total_tokens": len(chat_lm.prompt_ids(tokenizer, "ping")) + completion,
    }


def test_concurrent_requests_get_the_answers_they_get_alone(local: Any) -> None:
    generator = local.generator("chat-bot@champion")
    bodies = [
        _body(question, temperature=0, max_tokens=limit)
        for question in chat_lm.ANSWERS
        for limit in (None, 5)
    ][:8]

    async def together() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(generator.complete(b) for b in bodies)))

    async def one_at_a_time() -> list[dict[str, Any]]:
        return [await generator.complete(b) for b in bodies]

    batched, alone = _run(together()), _run(one_at_a_time())
    for a, b, body in zip(batched, alone, bodies, strict=True):
        assert a["choices"][0] == b["choices"][0] and a["usage"] == b["usage"]
        if body["max_tokens"] is None:
            assert (
                a["choices"][0]["message"]["content"]
                == chat_lm.ANSWERS[body["messages"][0]["content"]]
            )


def test_stream_chunks_add_up_to_the_completion(local: Any) -> None:
    generator = local.generator("chat-bot@champion")
    body = _body("tell me a story", stream_options={"include_usage": True})
    chunks = _run(_streamed(generator, body))
    answer = _run(generator.complete(body))
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert len([p for p in pieces if p]) > 5  # token by token, not one block
    assert "".join(pieces) == answer["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == answer["usage"]
    assert len({c["id"] for c in chunks}) == 1


def test_stop_sequences_end_the_answer_before_them(local: Any) -> None:
    generator = local.generator("chat-bot@champion")
    body = _body("count", stop=["four", "nine"])
    answer = _run(generator.complete(body))
    assert answer["choices"][0]["message"]["content"] == "one two three "
    assert answer["choices"][0]["finish_reason"] == "stop"
    chunks = _run(_streamed(generator, body))
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks]
    assert "".join(pieces) == "one two three " and not any("f" in p for p in pieces)


def test_max_tokens_cuts_the_answer(local: Any) -> None:
    answer = _run(local.generator("chat-bot@1").complete(_body("count", max_tokens=3)))
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 3
    assert chat_lm.ANSWERS["count"].startswith(answer["choices"][0]["message"]["content"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": []}, "messages must be a non-empty list"),
        ({"messages": [{"content": "hi"}]}, "must be an object with a role"),
        (_body("hi", n=2), "n must be 1"),
        (_body("hi", tools=[{"type": "function"}]), "tools is not supported"),
        (_body("hi", max_tokens=0), "max_tokens must be a positive integer"),
        (_body("hi", temperature=3), "temperature must be a number from 0 to 2"),
        (_body("hi", stop=["a", "b", "c", "d", "e"]), "at most 4 strings"),
        (_body("x " * 200), "the model's context holds 96"),
    ],
)
def test_bad_bodies_are_refused_before_generating(
    local: Any, body: dict[str, Any], message: str
) -> None:
    generator = local.generator("chat-bot@champion")
    with pytest.raises(InvalidInput, match=message):
        _run(generator.complete(body))

    async def stream() -> None:
        generator.stream(body)  # refused when called, before any chunk

    with pytest.raises(InvalidInput, match=message):
        _run(stream())


def test_versions_that_are_not_causal_lms_are_refused(client: Any, local: Any) -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    client.models.register("churn", LogisticRegression().fit(X, [0, 0, 1, 1]), input_example=X)
    with pytest.raises(InvalidInput, match="churn@1 is a sklearn model"):
        local.generator("churn@1")
    _, model = chat_lm.trained()
    client.models.register("no-tokenizer", model, input_example=np.array([[1, 2]]))
    with pytest.raises(InvalidInput, match="registered without a tokenizer"):
        local.generator("no-tokenizer@1")


@pytest.mark.parametrize("ref", ["nobody@1", "chat-bot@7", "chat-bot@staging"])
def test_unknown_models_versions_and_aliases_are_not_found(local: Any, ref: str) -> None:
    with pytest.raises(NotFound):
        local.generator(ref)


def test_without_a_chat_template_messages_are_role_lines() -> None:
    from opsloop.llm.gateway.generation_body import render_prompt

    tokenizer = chat_lm.build_tokenizer(template=False)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    ids = render_prompt(tokenizer, messages)
    assert tokenizer.decode(ids) == "system: be brief\nuser: hi\nassistant:"
