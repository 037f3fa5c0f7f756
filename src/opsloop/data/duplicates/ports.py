"""What semantic deduplication needs from above the data floor: an embedding model.

The data domain sits below ``llm`` and may not import it; the MiniLM sentence embedder lives
there (``opsloop.llm.evals.metrics.embed``). ``opsloop.client`` hands it to the local data
backend, and ``opsloop.app`` to the REST route (as ``app.state.embedder``), so ``--semantic``
works wherever the ``llm`` extra is installed and says what to install where it is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Protocol

if TYPE_CHECKING:  # naming the port must not load numpy (the CLI imports it)
    import numpy as np

__all__ = ["Embedder"]


class Embedder(Protocol):
    """Texts to a (rows x dimensions) float32 matrix of sentence embeddings, one row per
    text, in order (unit length or not: SemDeDup normalises them)."""

    def __call__(self, texts: list[str], /) -> np.ndarray: ...
