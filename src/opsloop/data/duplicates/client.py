"""The dedup half of ``client.data``: :class:`DuplicatesMixin`, mixed into ``DataClient``."""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from opsloop.data.duplicates.entities import DedupRequest
from opsloop.data.duplicates.entities import DedupResult
from opsloop.data.duplicates.entities import OverlapRequest
from opsloop.data.progress import progress_bar
from opsloop.errors import InvalidInput

if TYPE_CHECKING:  # the backend module names this package's shapes: no import back at run time
    from opsloop.data.backend import DataBackend
    from opsloop.data.backend import DedupBackend

__all__ = ["DuplicatesMixin"]


class DuplicatesMixin:
    """``dedup``, ``dedup_report`` and ``overlap`` over the client's backend."""

    _backend: DataBackend  # DataClient's

    @property
    def _dedup(self) -> DedupBackend:
        """The backend's dedup half (the held wrapper hands it on)."""
        backend: DedupBackend = self._backend  # type: ignore[assignment]
        return backend

    def dedup(
        self,
        ref: str,
        column: str = "text",
        *,
        exact: bool = True,
        near: bool = True,
        semantic: bool = False,
        eps: float = 0.05,
        substring: bool = False,
        min_length: int = 100,
        threshold: float = 0.8,
        ngram: int = 5,
        num_perm: int = 128,
        verify: str = "exact",
        keep: str = "first",
        score_column: str | None = None,
        name: str | None = None,
        message: str | None = None,
        executor: str = "local",
        partitions: int | None = None,
        progress: bool = False,
    ) -> DedupResult:
        """Drop exact and near-duplicate rows of a table version's text ``column`` into the
        next version of its dataset (or of ``name``), linked to it in the lineage graph, with
        the report (rows removed per method, clusters: row kept, rows dropped, similarity).

        Near duplicates share ``threshold`` of their word ``ngram``-grams (Jaccard): MinHash
        (``num_perm`` permutations) finds candidates, each checked on its shingle sets
        (``verify="estimate"``: on the signatures, faster, a few points less recall).
        Semantic duplicates (``semantic=True``, SemDeDup) have sentence embeddings
        (all-MiniLM-L6-v2, the ``llm`` extra) whose cosine similarity is above ``1 - eps``
        within one k-means cluster. Each cluster keeps its first row, its longest,
        or its best by ``score_column`` (``keep``). ``substring=True`` then cuts, from the
        rows kept, every span of ``min_length`` bytes (UTF-8) or more that occurred earlier
        in the column (ExactSubstr, a suffix array: ``pydivsufsort``, the ``llm`` extra);
        rows it leaves empty are dropped (``exact=False, near=False`` for the cut alone).
        No version is made when nothing is removed.

        ``executor="ray"`` finds the exact and near duplicates with Ray tasks (the cluster at
        ``RAY_ADDRESS``, else a local Ray; where the blobs are, so the server's for a remote
        client): the table cut into ``partitions`` parts (default: one per cluster CPU),
        sketched per part, bands shuffled by key, clusters merged. The version and report
        are the local run's; the report adds ``executor`` and ``partitions``.

        Example:
            >>> result = client.data.dedup("corpus@1", "text", threshold=0.7)
            >>> result.version.ref, result.report["removed"]
            ('corpus@2', {'exact': 120, 'near': 48})
        """
        from opsloop.kernel.step_context import current_rehearsal

        if current_rehearsal() is not None:  # it would write a version the wrapper cannot hold
            raise InvalidInput("a reproduction cannot hold a deduplicated version yet")
        request = DedupRequest(
            ref=ref, column=column, exact=exact, near=near, semantic=semantic, eps=eps,
            substring=substring, min_length=min_length, threshold=threshold, ngram=ngram,
            num_perm=num_perm, verify=verify, keep=keep, score_column=score_column, name=name,
            message=message, executor=executor,
            partitions=partitions,
        )  # fmt: skip
        rows = self._backend.get_version(ref).table
        hashed_here = near and executor == "local"  # Ray's tasks report no rows
        total = rows.rows if rows is not None and hashed_here else 0
        with progress_bar(f"hashing {ref}", total, unit="rows", enabled=progress) as advance:
            return self._dedup.dedup(request, advance)

    def dedup_report(self, ref: str) -> dict[str, Any]:
        """The report stored with a version :meth:`dedup` made (``NotFound`` for others)."""
        return self._dedup.dedup_report(ref)

    def overlap(
        self,
        train: str,
        eval: str,
        column: str = "text",
        *,
        eval_column: str | None = None,
        exact: bool = True,
        near: bool = True,
        threshold: float = 0.8,
        ngram: int = 5,
        num_perm: int = 128,
        verify: str = "exact",
        max_rate: float | None = None,
        executor: str = "local",
        partitions: int | None = None,
    ) -> dict[str, Any]:
        """Share of ``eval``'s rows with an exact or near duplicate in ``train`` (test-set
        contamination). ``passed`` is False when the share is above ``max_rate``.

        ``executor="ray"`` runs the search as Ray tasks, as :meth:`dedup` does: the train
        rows followed by the eval rows cut into ``partitions`` parts, sketched per part, band
        keys shuffled and joined between the two sides, candidates verified by tasks. The
        report is the local run's, plus ``partitions``; it says its ``executor``.

        Example:
            >>> report = client.data.overlap("corpus@2", "benchmark@1", max_rate=0.01)
            >>> report["rate"], report["passed"]
            (0.004, True)
        """
        request = OverlapRequest(
            train=train, eval=eval, column=column, eval_column=eval_column, exact=exact,
            near=near, threshold=threshold, ngram=ngram, num_perm=num_perm, verify=verify,
            max_rate=max_rate, executor=executor, partitions=partitions,
        )  # fmt: skip
        return self._dedup.overlap(request)
