"""Local generation in the gateway: tokens/s with continuous batching vs one request at a time
with plain ``model.generate`` (issue 24; target >= 3x at 8 concurrent requests).

    .venv/bin/python bench/generation.py [--device cuda] [--requests 8] [--max-tokens 64]

The model is a randomly initialised GPT-2 built here (no download): ``--layers 6 --width 512
--vocab 8000`` is ~23M parameters, large enough that a decode step costs more than Python's
per-step overhead. Its tokenizer is a word-level one over the same vocabulary, without an
end-of-sequence token, so every answer is exactly ``--max-tokens`` long on both sides.

1. One at a time: each prompt through ``model.generate(do_sample=False)``, one after another
   (what serving a model with plain transformers does without a batching server).
2. Batched: the same prompts as ``--requests`` concurrent ``complete()`` calls on the gateway's
   ``TransformersGenerator`` (OpenAI bodies in, chat completions out: parsing, the prompt
   template, the worker thread and the asyncio bridge are all inside the timing).

Both run greedy on the same prompt ids and the same device, after one warm-up each; the figure
is generated tokens per second of wall time. Greedy answers are compared as a check (a random
model's top two logits can be close, so float rounding in a batch may flip a rare token).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import torch

from opsloop.llm.gateway.generation import TransformersGenerator
from opsloop.llm.gateway.generation_body import render_prompt


def build(vocab: int, layers: int, width: int) -> tuple[Any, Any]:
    from tokenizers import Tokenizer
    from tokenizers import models
    from tokenizers import pre_tokenizers
    from transformers import GPT2Config
    from transformers import GPT2LMHeadModel
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "<unk>": 1, ":": 2}
    words.update({f"w{i}": i + 3 for i in range(vocab - 3)})
    raw = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=vocab, n_positions=1024, n_embd=width, n_layer=layers, n_head=width // 64,
        bos_token_id=None, eos_token_id=None, pad_token_id=0,
    )  # fmt: skip
    model = GPT2LMHeadModel(config).eval()
    model.generation_config.eos_token_id = None
    return model, tokenizer


def bodies(count: int, max_tokens: int, vocab: int) -> list[dict[str, Any]]:
    rng = random.Random(0)
    out = []
    for _ in range(count):
        words = " ".join(f"w{rng.randrange(vocab - 3)}" for _ in range(rng.randrange(12, 40)))
        out.append(
            {
                "model": "bench",
                "messages": [{"role": "user", "content": words}],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
        )
    return out


def one_at_a_time(
    model: Any, prompts: list[list[int]], max_tokens: int, device: str
) -> tuple[float, list[list[int]]]:
    outputs = []
    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([prompt], device=device)
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=max_tokens,
                pad_token_id=0,
            )
            outputs.append(out[0, len(prompt) :].tolist())
    sync()
    return time.perf_counter() - start, outputs


def batched(generator: TransformersGenerator, requests: list[dict[str, Any]]) -> tuple[float, Any]:
    async def main() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(generator.complete(b) for b in requests)))

    start = time.perf_counter()
    answers = asyncio.run(main())
    return time.perf_counter() - start, answers


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--requests", type=int, default=8, help="concurrent requests")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per answer")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=512, help="hidden size (64 per head)")
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = build(args.vocab, args.layers, args.width)
    model.to(args.device)
    requests = bodies(args.requests, args.max_tokens, args.vocab)
    prompts = [render_prompt(tokenizer, r["messages"]) for r in requests]
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"GPT-2 {args.layers}x{args.width}, vocab {args.vocab}: {params:.1f}M params on "
        f"{args.device}; {args.requests} requests of {args.max_tokens} tokens, prompts "
        f"{min(map(len, prompts))}-{max(map(len, prompts))} tokens, "
        f"{torch.get_num_threads()} CPU threads"
    )
    one_at_a_time(model, prompts[:1], 4, args.device)  # warm-up
    alone_s, alone = one_at_a_time(model, prompts, args.max_tokens, args.device)
    generator = TransformersGenerator(model, tokenizer, name="bench", device=args.device)
    batched(generator, requests[:2])  # warm-up
    together_s, answers = batched(generator, requests)
    generator.close()
    alone_tokens = sum(map(len, alone))
    together_tokens = sum(a["usage"]["completion_tokens"] for a in answers)
    same = sum(
        a["choices"][0]["message"]["content"] == tokenizer.decode(ids, skip_special_tokens=True)
        for a, ids in zip(answers, alone, strict=True)
    )
    alone_rate, together_rate = alone_tokens / alone_s, together_tokens / together_s
    print(f"one at a time (model.generate): {alone_tokens} tokens in {alone_s:.2f} s = "
          f"{alone_rate:.0f} tokens/s")  # fmt: skip
    print(f"batched (TransformersGenerator): {together_tokens} tokens in {together_s:.2f} s = "
          f"{together_rate:.0f} tokens/s (peak batch {generator.engine.peak_batch})")  # fmt: skip
    print(f"ratio: {together_rate / alone_rate:.2f}x (target >= 3x); "
          f"identical greedy answers: {same}/{len(answers)}")  # fmt: skip


if __name__ == "__main__":
    main()
