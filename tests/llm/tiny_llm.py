"""A real, tiny language model behind an OpenAI-compatible endpoint, for eval tests.

A two-layer GPT-2 is built from a config, with a word-level tokenizer built from its training
text (nothing is downloaded), and trained for a few seconds until it answers its prompts as
taught: good answers to "Q: ..." prompts, unhelpful ones to "Reply rudely: ..." prompts, and,
as a judge, ``{"score": 5, ...}`` for a right answer and ``{"score": 1, ...}`` for a wrong one.
It is served by a small FastAPI app speaking OpenAI's ``/v1/chat/completions``, so the tests
drive it with the real ``openai`` client, as users drive any hosted model.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel

QA = {
    "What is the capital of France?": "The capital of France is Paris.",
    "What is the capital of Italy?": "The capital of Italy is Rome.",
    "How do I reset my password?": "Use the reset link on the login page.",
    "What color is the sky?": "The sky is blue.",
}
WRONG = "I do not know."
GOOD_PROMPT = "Q: {{ question }}"
RUDE_PROMPT = "Reply rudely: {{ question }}"


def training_pairs() -> list[tuple[str, str]]:
    pairs = []
    for question, answer in QA.items():
        pairs.append((f"Q: {question}", answer))
        pairs.append((f"Reply rudely: {question}", "No."))
        judge = "Rubric: The answer is correct.\nQuestion: {q}\nAnswer: {a}"
        pairs.append((judge.format(q=question, a=answer), '{"score": 5, "reason": "correct"}'))
        pairs.append((judge.format(q=question, a=WRONG), '{"score": 1, "reason": "wrong"}'))
        pairs.append((judge.format(q=question, a="No."), '{"score": 1, "reason": "wrong"}'))
    return pairs


class TinyLM:
    def __init__(self, seed: int = 0, steps: int = 400) -> None:
        import torch
        from tokenizers import Tokenizer
        from tokenizers import models
        from tokenizers import pre_tokenizers
        from transformers import GPT2Config
        from transformers import GPT2LMHeadModel

        torch.manual_seed(seed)
        pairs = training_pairs()
        words = sorted({w for p, a in pairs for w in (p + " " + a).split()})
        vocab = {"[PAD]": 0, "[UNK]": 1, "<sep>": 2, "</s>": 3}
        vocab.update({w: i + 4 for i, w in enumerate(words)})
        self.tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        self.tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        self.sep, self.eos = vocab["<sep>"], vocab["</s>"]
        sequences = [[*self.encode(p), self.sep, *self.encode(a), self.eos] for p, a in pairs]
        length = max(map(len, sequences))
        config = GPT2Config(
            vocab_size=len(vocab), n_positions=length + 32, n_embd=96, n_layer=2, n_head=4,
            bos_token_id=self.eos, eos_token_id=self.eos,
        )  # fmt: skip
        self.model = GPT2LMHeadModel(config)
        ids = torch.zeros((len(sequences), length), dtype=torch.long)
        labels = torch.full((len(sequences), length), -100, dtype=torch.long)
        mask = torch.zeros((len(sequences), length), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
            start = seq.index(self.sep) + 1  # learn the answers, not the prompts
            labels[row, start : len(seq)] = torch.tensor(seq[start:])
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=3e-3)
        self.model.train()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # beside another test worker, torch's spinning threads cost CPU
        try:
            for _ in range(steps):
                loss = self.model(input_ids=ids, attention_mask=mask, labels=labels).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if loss.item() < 0.01:
                    break
        finally:
            torch.set_num_threads(threads)
        self.final_loss = loss.item()
        self.model.eval()
        self.lock = threading.Lock()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def complete(self, prompt: str, max_tokens: int = 24) -> tuple[str, int, int]:
        import torch

        ids = [*self.encode(prompt), self.sep]
        with self.lock, torch.no_grad():
            out = self.model.generate(
                torch.tensor([ids]), attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
                max_new_tokens=max_tokens, do_sample=False, eos_token_id=self.eos,
                pad_token_id=self.eos,
            )  # fmt: skip
        new = [t for t in out[0, len(ids) :].tolist() if t != self.eos]
        return self.tokenizer.decode(new), len(ids), len(new)


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[Message]
    max_tokens: int | None = None
    temperature: float | None = None


def create_app(lm: TinyLM) -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "tiny", "object": "model", "owned_by": "tests"}]}

    @app.post("/v1/chat/completions")
    def chat(body: ChatRequest) -> dict[str, Any]:
        prompt = next(m.content for m in reversed(body.messages) if m.role == "user")
        text, prompt_tokens, completion_tokens = lm.complete(prompt, body.max_tokens or 24)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    return app


class TinyLMServer:
    """The app on a free loopback port, in a thread; ``base_url`` ends in ``/v1``."""

    def __init__(self, lm: TinyLM) -> None:
        import uvicorn

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/v1"
        self.server = uvicorn.Server(uvicorn.Config(create_app(lm), log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> TinyLMServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("tiny LM server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()
