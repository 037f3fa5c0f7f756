"""Dataset versions: ``opsloop.data.add``, ``get``, ``diff``, ``push``, ``pull``, ``checkout``.

Module-level functions use the default client (the embedded store, or the server named by
``OPSLOOP_SERVER_URL``), like ``opsloop.log_metric`` does::

    import opsloop

    version = opsloop.data.add("train.csv", name="churn", message="March export").version
    frame = opsloop.data.get("churn@latest").to_pandas()
    print(opsloop.data.diff("churn@1", "churn@2").table)
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from opsloop.data.duplicates.entities import DedupResult
    from opsloop.data.entities import DataDiff
    from opsloop.data.entities import DatasetVersion
    from opsloop.data.sdk import AddResult
    from opsloop.data.sdk import DataClient
    from opsloop.data.sdk import DataVersion
    from opsloop.data.sdk import TransferResult

__all__ = [
    "add",
    "checkout",
    "dedup",
    "diff",
    "get",
    "overlap",
    "profile",
    "pull",
    "push",
    "status",
    "validate",
]


def _data() -> DataClient:
    from opsloop.kernel import ambient

    return ambient.default_client().data


def add(path: Any, name: str, **options: Any) -> AddResult:
    """Version a file, folder or table as the next version of ``name`` (see ``DataClient.add``)."""
    return _data().add(path, name, **options)


def get(ref: str) -> DataVersion:
    """A handle on ``NAME@N`` / ``NAME@ALIAS`` / ``NAME``: ``.to_pandas()``, ``.path()``..."""
    return _data().get(ref)


def diff(old_ref: str, new_ref: str) -> DataDiff:
    """Files, schema and statistics that changed from ``old_ref`` to ``new_ref``."""
    return _data().diff(old_ref, new_ref)


def push(ref: str, **options: Any) -> TransferResult:
    """Upload the version's blobs that the blob store lacks."""
    return _data().push(ref, **options)


def pull(ref: str, **options: Any) -> TransferResult:
    """Download the version's blobs that the local cache lacks."""
    return _data().pull(ref, **options)


def checkout(ref: str, path: Any, **options: Any) -> TransferResult:
    """Write the version's files at ``path``."""
    return _data().checkout(ref, path, **options)


def status(*paths: Any) -> list[Any]:
    """Compare tracked local paths with the versions they came from."""
    return _data().status(*paths)


def validate(ref: str, expectations: Any) -> tuple[DatasetVersion, dict[str, Any]]:
    """Check a table version against expectations and record the verdict."""
    return _data().validate(ref, expectations)


def profile(ref: str, out_dir: Any = ".") -> Any:
    """Write the HTML profile and JSON summary of a table version."""
    return _data().profile(ref, out_dir)


def dedup(ref: str, column: str = "text", **options: Any) -> DedupResult:
    """Drop exact and near-duplicate rows into the next version (see ``DataClient.dedup``)."""
    return _data().dedup(ref, column, **options)


def overlap(train: str, eval: str, column: str = "text", **options: Any) -> dict[str, Any]:
    """Share of ``eval``'s rows duplicated in ``train`` (see ``DataClient.overlap``)."""
    return _data().overlap(train, eval, column, **options)
