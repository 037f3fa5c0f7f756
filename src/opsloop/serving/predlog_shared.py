"""What the prediction log of a replica shares with the others, from the settings: the sealed
partitions on the shared object store (:mod:`.predlog_seal`) and, optionally, the journal on a
Redis Stream (:mod:`.predlog_stream`). Built once by whoever opens the log, and handed to it.

Which store: ``prediction_store`` when set (``local`` keeps the log on this host alone), else,
when the blob store is an object store (``s3://bucket/blobs``), a ``predictions`` prefix beside
it (``s3://bucket/predictions``), on the same credentials (``storage_options``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from opsloop.errors import InvalidInput
from opsloop.serving.predlog_read import PredictionReader
from opsloop.serving.predlog_seal import SealStore
from opsloop.serving.predlog_stream import PredictionStream

if TYPE_CHECKING:
    from opsloop.config import Settings

__all__ = ["SharedLog", "prediction_reader", "shared_log", "shared_store_url"]


@dataclass(frozen=True)
class SharedLog:
    """The shared parts of one replica's log: the partitions every replica seals into, and
    the stream it journals to (None: its own journal files, lost with its disk until sealed,
    at most one seal interval of rows)."""

    store: SealStore
    stream: PredictionStream | None = None


def shared_store_url(settings: Settings) -> str | None:
    """The URL of the shared prediction store the settings name, or None (a per-host log)."""
    if settings.prediction_store:
        return None if settings.prediction_store == "local" else settings.prediction_store
    blobs = settings.blob_url.rstrip("/")
    protocol, sep, path = blobs.partition("://")
    if not sep or protocol in ("file", "local"):
        return None
    sibling = posixpath.join(posixpath.dirname(path) or path, "predictions")
    return f"{protocol}://{sibling}" if sibling != path else f"{blobs}/predictions"


def shared_log(settings: Settings, folder: Path | None = None) -> SharedLog | None:
    """The shared parts of the log under ``folder`` (default: the settings' prediction
    folder), or None when the settings share nothing.

    Raises:
        InvalidInput: A stream is configured without a shared store to seal it into.
    """
    folder = folder if folder is not None else settings.predictions_folder
    url = shared_store_url(settings)
    if url is None:
        if settings.prediction_stream:
            raise InvalidInput(
                "prediction_stream needs a shared prediction store to seal into: set "
                "prediction_store (or an s3:// blob_url)"
            )
        return None
    store = SealStore(url, dict(settings.storage_options), folder)
    stream = None
    if settings.prediction_stream:
        stream = PredictionStream(
            settings.prediction_stream, settings.prediction_stream_key, store.replica
        )
    return SharedLog(store, stream)


def prediction_reader(settings: Settings) -> PredictionReader:
    """The log a check reads under these settings: the folder's files (every process's
    journals among them) and the shared parts, as the deployments' own log would read them,
    without that client or any journal of its own."""
    return PredictionReader(settings.predictions_folder, shared_log(settings))
