"""A real, tiny chat model built here (nothing downloaded): a byte-level BPE tokenizer trained
on a few dialogues, with a chat template, and a two-layer GPT-2 trained until it answers them
as taught. Greedy answers are then known strings, with margins wide enough that batching's
float rounding cannot change a token."""

from __future__ import annotations

import functools
from typing import Any

ANSWERS = {
    "ping": "pong pong pong",
    "count": "one two three four five six seven eight nine ten",
    "greet": "hello there, friend",
    "tell me a story": "once upon a time a tiny model learned to talk and never stopped",
    "letters": "a b c d e f g h",
}
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL = ["<pad>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>"]


def build_tokenizer(*, template: bool = True) -> Any:
    from tokenizers import Tokenizer
    from tokenizers import decoders
    from tokenizers import models
    from tokenizers import pre_tokenizers
    from tokenizers import trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator([f"{q}\n{a}" for q, a in ANSWERS.items()] * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", pad_token="<pad>")
    if template:
        tokenizer.chat_template = TEMPLATE
    return tokenizer


def prompt_ids(tokenizer: Any, question: str) -> list[int]:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@functools.cache
def trained() -> tuple[Any, Any]:
    """The tokenizer and the trained model, built once per test process."""
    tokenizer = build_tokenizer()
    return tokenizer, build_model(tokenizer)


def build_model(tokenizer: Any, steps: int = 120) -> Any:
    """A GPT-2 of ~40k parameters trained on the answers (loss on the answer tokens only), on
    one thread: on a busy machine torch's spinning threads make it several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(tokenizer, steps)
    finally:
        torch.set_num_threads(threads)


def _train(tokenizer: Any, steps: int) -> Any:
    import torch
    from transformers import GPT2Config
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    eos = tokenizer.eos_token_id
    sequences = []
    for question, answer in ANSWERS.items():
        prompt = prompt_ids(tokenizer, question)
        reply = [*tokenizer(answer, add_special_tokens=False)["input_ids"], eos]
        sequences.append((prompt, reply))
    length = max(len(p) + len(r) for p, r in sequences)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=96, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=eos, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    ids = torch.full((len(sequences), length), tokenizer.pad_token_id)
    labels = torch.full((len(sequences), length), -100)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, (prompt, reply) in enumerate(sequences):
        full = prompt + reply
        ids[row, : len(full)] = torch.tensor(full)
        mask[row, : len(full)] = 1
        labels[row, len(prompt) : len(full)] = torch.tensor(reply)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    return model.eval()


def reference(model: Any, prompt: list[int], max_new_tokens: int) -> list[int]:
    """transformers' own greedy ``generate`` for one prompt, without padding: the tokens every
    batched answer must equal."""
    import torch

    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones((1, len(prompt)), dtype=torch.long),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=model.config.pad_token_id,
        )
    return [int(t) for t in out[0, len(prompt) :]]
