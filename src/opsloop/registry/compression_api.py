"""``POST /api/models/{name}/versions/{selector}/compress``: compress a version on the server,
where the blobs are (see :mod:`opsloop.registry.compression`). The route owns no transaction:
the service reads, measures for seconds, then writes in one short transaction, as a promotion
does."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi import status

from opsloop.kernel.identity import current_user
from opsloop.registry import routes
from opsloop.registry.compression import compress
from opsloop.registry.compression_schemas import CompressionRequest
from opsloop.registry.compression_schemas import CompressionResult
from opsloop.registry.promotion import PromotionContext
from opsloop.web.deps import State

__all__ = ["router"]

router = APIRouter(tags=["registry"])


@router.post(routes.VERSION_COMPRESS.template, status_code=status.HTTP_201_CREATED)
def compress_version(
    name: str, selector: str, body: CompressionRequest, state: State
) -> CompressionResult:
    """Register a compressed copy of the version as the model's next version, measured against
    it (size, latency, quality on ``data``) and judged by the request's gate; with ``alias``,
    the decision is recorded and the alias moves only on a pass."""
    context = PromotionContext(state.store, state.blobs, Path(state.settings.home) / "cache")
    return compress(context, f"{name}@{selector}", body, created_by=current_user())
