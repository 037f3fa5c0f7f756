"""The labelled prompt-injection set shipped in ``data/``, written for opsloop.

Three files, no third-party data and no download:

- ``templates.json``: templates of injections and of benign requests (the benign ones include
  hard negatives: "how do I make git ignore whitespace changes", "pretend you are a tour guide",
  "what is a system prompt"), filled from its slots by a generator seeded with ``SEED``, so every
  process builds the same examples;
- ``handwritten.jsonl``: requests written one by one, for training;
- ``heldout.jsonl``: more written one by one in other words, never trained on.

One in five template examples (chosen by a hash of the text, so the choice does not move when
templates are added) is held out too. The held-out examples are what ``bench/guardrails.py``
reports ROC AUC on: the hand-written ones measure how the classifier does on phrasings it has
not seen, the template ones how it does on the phrasings it was built for.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["SEED", "Example", "heldout_set", "labelled_set", "training_set"]

SEED = 24
_FILLS_PER_TEMPLATE = 10


@dataclass(frozen=True)
class Example:
    """One labelled request: ``label`` 1 for an injection, 0 for a benign request."""

    text: str
    label: int
    source: str  # "template" or "hand"
    split: str  # "train" or "heldout"


def _data(name: str) -> str:
    return resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")


def _fill(template: str, slots: dict[str, list[str]], rng: random.Random) -> str:
    # a literal brace in a template is doubled ({{ }}), as in str.format
    names = [n for _, n, _, _ in string.Formatter().parse(template) if n]
    return template.format(**{n: rng.choice(slots[n]) for n in names})


def _generated(spec: dict[str, Any]) -> list[Example]:
    slots = {**spec["slots"], "persona_rule": spec["persona_rule"]}
    rng = random.Random(SEED)
    out: list[Example] = []
    seen: set[str] = set()
    for label, key in ((1, "injection"), (0, "benign")):
        for template in spec[key]:
            for _ in range(_FILLS_PER_TEMPLATE):
                text = _fill(template, slots, rng)
                if text in seen:
                    continue
                seen.add(text)
                held = hashlib.blake2b(text.encode(), digest_size=2).digest()[0] % 5 == 0
                out.append(Example(text, label, "template", "heldout" if held else "train"))
    return out


def _written(name: str, split: str) -> list[Example]:
    rows = [json.loads(line) for line in _data(name).splitlines() if line.strip()]
    return [Example(r["text"], int(r["label"]), "hand", split) for r in rows]


@lru_cache(maxsize=1)
def labelled_set() -> tuple[Example, ...]:
    """Every example, generated and written, training and held out."""
    spec = json.loads(_data("templates.json"))
    return tuple(
        _generated(spec)
        + _written("handwritten.jsonl", "train")
        + _written("heldout.jsonl", "heldout")
    )


def training_set() -> tuple[list[str], list[int]]:
    """Texts and labels the built-in classifier is trained on."""
    train = [e for e in labelled_set() if e.split == "train"]
    return [e.text for e in train], [e.label for e in train]


def heldout_set() -> list[Example]:
    """The examples kept out of training."""
    return [e for e in labelled_set() if e.split == "heldout"]
