"""The continuous-batching engine, stepped by hand so that who joins and who leaves when is
fixed: every answer must be token for token what transformers' own greedy ``generate`` gives
for that prompt alone."""

from __future__ import annotations

from typing import Any

import pytest

from opsloop.errors import InvalidInput
from opsloop.errors import UpstreamFailed
from opsloop.llm.gateway.generation_body import Sampling
from tests.gateway import chat_lm

torch = pytest.importorskip("torch")
engine_module = pytest.importorskip("opsloop.llm.gateway.generation_engine")


class Answer:
    """What one request received."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events)

    @property
    def last(self) -> Any:
        return self.events[-1]


@pytest.fixture(scope="module")
def lm() -> tuple[Any, Any]:
    return chat_lm.trained()


def _engine(lm: tuple[Any, Any], **kwargs: Any) -> Any:
    tokenizer, model = lm
    return engine_module.BatchEngine(model, tokenizer, device="cpu", **kwargs)


def _submit(engine: Any, question: str, **sampling: Any) -> tuple[Any, Answer]:
    answer = Answer()
    prompt = chat_lm.prompt_ids(engine.tokenizer, question)
    sampling.setdefault("temperature", 0.0)
    sequence = engine.sequence(prompt, Sampling(**sampling), answer)
    engine.submit(sequence)
    return sequence, answer


def _drain(engine: Any) -> None:
    while engine.step():
        pass


def test_requests_join_and_leave_a_running_batch_with_the_same_tokens(lm: Any) -> None:
    tokenizer, model = lm
    engine = _engine(lm)
    story, story_answer = _submit(engine, "tell me a story")
    for _ in range(3):
        engine.step()
    # A longer prompt than the batch so far, and shorter ones, arrive mid-answer.
    joined = [_submit(engine, q) for q in ("count", "ping")]
    engine.step()
    short = _submit(engine, "greet", max_tokens=3)
    engine.step()
    late = _submit(engine, "letters")
    _drain(engine)
    assert engine.joined_running == 4 and engine.peak_batch == 5
    assert engine.rows == [] and engine.step() is False  # all left; cache and mask dropped
    for (sequence, answer), question in zip(
        [(story, story_answer), *joined, short, late],
        ["tell me a story", "count", "ping", "greet", "letters"],
        strict=True,
    ):
        expected = chat_lm.reference(model, sequence.prompt, sequence.max_new)
        assert answer.last.completion_tokens == len(expected)
        assert answer.text == tokenizer.decode(expected, skip_special_tokens=True)
        if question != "greet":
            assert answer.text == chat_lm.ANSWERS[question]
            assert answer.last.finish_reason == "stop"
    assert short[1].last.finish_reason == "length" and short[1].last.completion_tokens == 3


def test_a_cancelled_request_leaves_and_the_others_are_unchanged(lm: Any) -> None:
    engine = _engine(lm)
    gone, gone_answer = _submit(engine, "tell me a story")
    _, kept_answer = _submit(engine, "count")
    engine.step()
    engine.step()
    gone.cancel()
    received = len(gone_answer.events)
    _drain(engine)
    assert len(gone_answer.events) == received  # nothing more was sent to it
    assert kept_answer.text == chat_lm.ANSWERS["count"]


def test_max_batch_makes_the_rest_wait(lm: Any) -> None:
    engine = _engine(lm, max_batch=2)
    answers = [_submit(engine, q)[1] for q in ("ping", "count", "greet", "letters")]
    _drain(engine)
    assert engine.peak_batch == 2
    assert [a.text for a in answers] == [
        chat_lm.ANSWERS[q] for q in ("ping", "count", "greet", "letters")
    ]


def test_seeded_sampling_repeats_and_greedy_ignores_the_seed(lm: Any) -> None:
    engine = _engine(lm)
    runs = []
    for _ in range(2):
        neighbour = _submit(engine, "count", temperature=1.5, seed=3)[1]  # shares the batch
        sampled = _submit(engine, "ping", temperature=2.0, top_p=0.9, seed=11, max_tokens=12)[1]
        _drain(engine)
        runs.append((neighbour.text, sampled.text))
    assert runs[0] == runs[1]
    greedy = _submit(engine, "ping", temperature=0.0, seed=5)[1]
    _drain(engine)
    assert greedy.text == chat_lm.ANSWERS["ping"]


def test_a_prompt_longer_than_the_context_is_refused(lm: Any) -> None:
    engine = _engine(lm)
    window = engine.window
    with pytest.raises(InvalidInput, match=f"context holds {window}"):
        engine.sequence([5] * window, Sampling(), lambda event: None)
    near = engine.sequence([5] * (window - 2), Sampling(max_tokens=50), lambda event: None)
    assert near.max_new == 2  # capped by what the context leaves


def test_a_model_that_is_not_a_causal_lm_is_refused(lm: Any) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16,
    )  # fmt: skip
    classifier = transformers.BertForSequenceClassification(config)
    with pytest.raises(InvalidInput, match="not a transformers causal LM"):
        engine_module.BatchEngine(classifier, lm[0], device="cpu")


def test_a_model_failure_fails_its_batch_and_the_engine_goes_on(lm: Any) -> None:
    engine = _engine(lm)
    running = _submit(engine, "tell me a story")[1]
    engine.step()
    broken = Answer()  # a token id past the model's vocabulary: the embedding lookup raises
    engine.submit(engine.sequence([10_000], Sampling(temperature=0.0), broken))
    engine.step()
    for answer in (running, broken):
        assert isinstance(answer.last.error, UpstreamFailed)
        assert "the local model failed: IndexError" in str(answer.last.error)
    assert engine.rows == []
    after = _submit(engine, "ping")[1]
    _drain(engine)
    assert after.text == chat_lm.ANSWERS["ping"]
