"""``GET /metrics``: Prometheus text (of every worker process with ``serve --workers N``)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..dependencies import ServiceDep

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def prometheus(svc: ServiceDep) -> Response:
    return Response(svc.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
