"""Building blocks of the synthetic corpora the dedup tests plant copies in."""

from __future__ import annotations

import itertools
from collections.abc import Callable


def variant_maker() -> Callable[..., str]:
    """``variant(source_words, *spots)``: the source as text, with the words at ``spots``
    replaced by words no earlier variant of this maker used (``edit0``, ``edit1``, ...)."""
    edits = itertools.count()

    def variant(source: list[str], *spots: int) -> str:
        out = list(source)
        for spot in spots:
            out[spot] = f"edit{next(edits)}"
        return " ".join(out)

    return variant
