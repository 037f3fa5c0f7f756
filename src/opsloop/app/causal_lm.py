"""A registered causal LM with its tokenizer, checked the same way wherever one is used (the
gateway serves it, fine-tuning trains it): the ``pytorch`` flavor keeps the tokenizer on the
model it loads, and a model that cannot generate or came without its tokenizer is refused
with a message that says how to register it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from opsloop.errors import InvalidInput

if TYPE_CHECKING:
    from opsloop.registry.sdk import ModelsClient

__all__ = ["load_causal_lm"]


def load_causal_lm(models: ModelsClient, ref: str) -> tuple[Any, Any]:
    """The model and tokenizer of the ``pytorch`` version ``ref`` (callers check the flavor
    first, each with its own message).

    Raises:
        InvalidInput: The model cannot generate, or was registered without a tokenizer.
    """
    model = models.load(ref).raw
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a LoRA's base
    if not (callable(getattr(inner, "can_generate", None)) and inner.can_generate()):
        raise InvalidInput(f"{ref} ({type(model).__name__}) is not a causal LM")
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise InvalidInput(
            f"{ref} was registered without a tokenizer; register it with "
            "flavor_options={'tokenizer': tokenizer}"
        )
    return model, tokenizer
