"""Liveness, readiness and Prometheus metrics. Public: load balancers and scrapers call them."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gridgov.ops import service as ops_service
from gridgov.ops.metrics import REGISTRY

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="存活检查")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="就绪检查（数据库可达、迁移为最新）")
def readyz() -> JSONResponse:
    report = ops_service.readiness()
    return JSONResponse(report.as_dict(), status_code=200 if report.ready else 503)


@router.get("/metrics", summary="Prometheus 指标", response_class=Response)
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
