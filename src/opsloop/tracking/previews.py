"""Artifact previews for the web UI: images, the head of a text file, the first rows of a table.

Only the head of a blob is read (``MAX_TEXT_BYTES``, ``MAX_TABLE_ROWS``), so previewing a
multi-gigabyte artifact costs the same as a small one. Parquet is read by row group with
pyarrow; CSV and JSON Lines with pandas, capped at ``MAX_TABLE_ROWS`` rows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from dataclasses import field
from pathlib import PurePosixPath

from opsloop.store.blobs import BlobStore
from opsloop.tracking.entities import Artifact

__all__ = ["IMAGE_TYPES", "Preview", "preview_artifact", "preview_kind"]

MAX_TEXT_BYTES = 256 * 1024
MAX_TABLE_ROWS = 200
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
_TABLE_SUFFIXES = {".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson"}
_BINARY_SUFFIXES = {
    ".skops",
    ".pkl",
    ".pickle",
    ".pt",
    ".bin",
    ".safetensors",
    ".onnx",
    ".zip",
    ".gz",
}


@dataclass
class Preview:
    """What the preview page shows; ``kind`` is image, text, table or binary."""

    kind: str
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int | None = None
    truncated: bool = False


def preview_kind(path: str) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in IMAGE_TYPES:
        return "image"
    if suffix in _TABLE_SUFFIXES:
        return "table"
    if suffix in _BINARY_SUFFIXES:
        return "binary"
    return "text"


def preview_artifact(blobs: BlobStore, artifact: Artifact) -> Preview:
    """Read just enough of ``artifact`` to show it; binary content is reported, not shown."""
    kind = preview_kind(artifact.path)
    if kind in ("image", "binary"):
        return Preview(kind=kind)
    if kind == "table":
        return _table(blobs, artifact)
    with blobs.open(artifact.digest) as handle:
        head = handle.read(MAX_TEXT_BYTES + 1)
    return _text(head)


def _text(head: bytes) -> Preview:
    truncated = len(head) > MAX_TEXT_BYTES
    head = head[:MAX_TEXT_BYTES]
    if b"\x00" in head[:8192]:
        return Preview(kind="binary")
    return Preview(kind="text", text=head.decode("utf-8", "replace"), truncated=truncated)


def _table(blobs: BlobStore, artifact: Artifact) -> Preview:
    suffix = PurePosixPath(artifact.path).suffix.lower()
    with blobs.open(artifact.digest) as handle:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(handle)
            total = parquet.metadata.num_rows
            batch = next(parquet.iter_batches(batch_size=MAX_TABLE_ROWS), None)
            frame = (
                batch.to_pandas()
                if batch is not None
                else parquet.schema_arrow.empty_table().to_pandas()
            )
        else:
            import pandas as pd

            raw = handle.read(MAX_TEXT_BYTES * 8)
            buffer = io.BytesIO(raw)
            if suffix in (".jsonl", ".ndjson"):
                frame = pd.read_json(buffer, lines=True, nrows=MAX_TABLE_ROWS)
            else:
                frame = pd.read_csv(
                    buffer, sep="\t" if suffix == ".tsv" else ",", nrows=MAX_TABLE_ROWS
                )
            total = None
    rows = [[_cell(v) for v in record] for record in frame.itertuples(index=False, name=None)]
    return Preview(
        kind="table",
        columns=[str(c) for c in frame.columns],
        rows=rows,
        total_rows=total,
        truncated=total is None or total > len(rows),
    )


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
