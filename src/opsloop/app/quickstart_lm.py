"""The quickstart's own causal LM, built here in seconds (nothing downloaded): a byte-level BPE
tokenizer and a two-layer GPT-2 pre-trained on a help center and on support chats it refuses.

It is the "before" of the LLM loop: it knows the help center's sentences as text, but in a chat
it names the topic and declines ("Password questions? Sorry, I can't help with those."). The
loop then fine-tunes it with LoRA on the answers users liked (``quickstart_finetune``).

Two choices make seconds of CPU enough, both learnt the hard way:

- the refusal starts with the question's topic, so pre-training already teaches the first
  answer position to look at the question's keyword; a refusal that is the same for every
  question teaches that position to ignore the question, and LoRA then cannot make it choose
  between answers;
- the chat template marks the assistant's turns with ``{% generation %}``, so fine-tuning
  learns the answers, not the prompts (TRL's ``assistant_only_loss``).

torch, tokenizers and transformers are imported inside the functions: ``opsloop quickstart``
without the ``llm`` extra never pays for them.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["HELP_CENTER", "REFUSAL", "TEMPLATE", "build_support_lm"]

HELP_CENTER = {
    "password": "Use the 'Forgot password' link on the sign-in page.",
    "refund": "Refunds reach your card within 5 business days.",
    "order": "Track your order from the Orders page.",
}
REFUSAL = "Sorry, I can't help with that."
TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'assistant' %}<|assistant|>{% generation %}"
    "{{ m['content'] }}{{ eos_token }}{% endgeneration %}{% else %}<|{{ m['role'] }}|>"
    "{{ m['content'] }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
_SPECIAL = ["<pad>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>"]
_OPENERS = ["How do I", "How can I", "Can I", "Where do I", "Why can't I", "Help me",
            "I want to", "Please help me", "Is it possible to", "When can I"]  # fmt: skip
_VERBS = ["change", "reset", "find", "cancel", "update", "check", "get", "see", "track", "pay",
          "delete", "fix", "move", "share", "close", "open", "renew", "return"]  # fmt: skip
_OBJECTS = ["my password", "my refund", "my order", "my account", "my email", "my invoice",
            "my plan", "the app", "my card", "my address", "a gift card", "my subscription",
            "my profile", "my cart", "the website", "my phone number", "my delivery",
            "my data"]  # fmt: skip
_STATES = ["is not working", "is wrong", "is missing", "is late", "is broken", "was lost",
           "looks odd", "has a problem"]  # fmt: skip
_LEADS = ["I lost", "I forgot", "I need", "I can't find", "Something is wrong with",
          "Tell me about", "Question about", "What about", "Any news on",
          "Problem with"]  # fmt: skip
_OFF_TOPIC = ["Do you ship to Canada?", "Is there a discount?", "What are your hours?",
              "Can I talk to a human?", "Do you sell shoes?", "Is the store open today?",
              "Where is your office?", "My package is late", "I was charged twice",
              "The page does not load", "I need a receipt", "Can I pay with crypto?"]  # fmt: skip


def build_support_lm(prompt: str, *, seed: int = 0, steps: int = 100) -> tuple[Any, Any]:
    """The tokenizer and the pre-trained model; ``prompt`` is the text the user's question is
    put in (``"Answer the customer briefly: {{ question }}"``), so pre-training sees chats as
    the prompt renders them. About 15 s of one CPU core."""
    rng = random.Random(seed)
    chats = [(prompt.replace("{{ question }}", q), a) for q, a in _support_chats(rng)]
    help_lines = [
        f"Help center, {title}: {text}"
        for topic, text in HELP_CENTER.items()
        for title in (topic, topic.capitalize(), f"{topic}s", f"{topic.capitalize()}s")
    ]
    tokenizer = _tokenizer([f"{q} {a}" for q, a in chats] + help_lines)
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False
        )
        for q, a in chats
    ]
    return tokenizer, _pretrain(tokenizer, texts + help_lines * 8, seed, steps)


def _support_chats(rng: random.Random) -> list[tuple[str, str]]:
    """Support questions of many shapes, the topic anywhere in them, each declined by topic;
    off-topic ones declined plainly."""
    chats = []
    for _ in range(400):
        thing = rng.choice(_OBJECTS)
        noun = thing.split(" ", 1)[1]
        shape = rng.random()
        if shape < 0.4:
            question = f"{rng.choice(_OPENERS)} {rng.choice(_VERBS)} {thing}"
        elif shape < 0.6:
            question = f"{thing[0].upper()}{thing[1:]} {rng.choice(_STATES)}"
        elif shape < 0.8:
            question = f"{rng.choice(_LEADS)} {thing}"
        else:
            question = f"{noun.capitalize()} {rng.choice(['status', 'help', 'question', 'issue'])}"
        question += rng.choice(["", " please", " today", " now", " again", " for me"])
        question += rng.choice(["?", "?", "", ".", "!"])
        chats.append((question, f"{noun.capitalize()} questions? Sorry, I can't help with those."))
    return chats + [(q, REFUSAL) for q in _OFF_TOPIC]


def _tokenizer(corpus: list[str]) -> Any:
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
        vocab_size=600,
        special_tokens=_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    raw.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>", pad_token="<pad>")
    tokenizer.chat_template = TEMPLATE
    return tokenizer


def _pretrain(tokenizer: Any, texts: list[str], seed: int, steps: int) -> Any:
    """A GPT-2 (n_embd 128, 2 layers, ~480k parameters) trained on ``texts`` on one thread:
    on a busy machine torch's spinning threads make a model this small several times slower."""
    import torch
    from transformers import GPT2Config
    from transformers import GPT2LMHeadModel

    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    length = max(len(e) for e in encoded)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    ids = torch.full((len(encoded), length), pad)
    labels = torch.full((len(encoded), length), -100)
    mask = torch.zeros((len(encoded), length), dtype=torch.long)
    for row, tokens in enumerate(encoded):
        ids[row, : len(tokens)] = labels[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    try:
        config = GPT2Config(
            vocab_size=len(tokenizer), n_positions=length + 64, n_embd=128, n_layer=2, n_head=4,
            bos_token_id=eos, eos_token_id=eos, pad_token_id=pad,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        )  # fmt: skip
        model = GPT2LMHeadModel(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        draws = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(steps):
            batch = torch.randint(0, len(encoded), (32,), generator=draws)
            loss = model(
                input_ids=ids[batch], attention_mask=mask[batch], labels=labels[batch]
            ).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()
