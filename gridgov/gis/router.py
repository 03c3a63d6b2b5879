"""OGC API – Features over HTTP (/ogc). One set of routes serves every layer of the registry."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response, Security
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.datastructures import URL

from gridgov import wire
from gridgov.deps import API_KEY_QUERY, ReadScope, SessionDep, api_key_query, query_api_key
from gridgov.gis import exports as exports_service
from gridgov.gis import files as files_service
from gridgov.gis import html
from gridgov.gis import qa as qa_service
from gridgov.gis import service as gis_service
from gridgov.gis import tiles as tiles_service
from gridgov.gis.layers import COLLECTION_IDS, LAYER_IDS
from gridgov.openapi_problems import problems

# Map clients may carry an API key in the URL (read by gridgov.deps.get_current_user).
KEY_IN_URL = [Security(api_key_query)]
# OGC API answers a bad query parameter with 400 (gis.service.bad_parameter), as do the exports
# and QA reads built on it: declared once per router.
BAD_PARAMETER = problems(400)

router = APIRouter(prefix="/ogc", tags=["ogc"], dependencies=KEY_IN_URL, responses=BAD_PARAMETER)

CollectionId = Annotated[Literal[COLLECTION_IDS], Path(description="图层编号")]  # type: ignore[valid-type]
FeatureId = Annotated[str, Path(max_length=30, description="要素编号")]
Format = Annotated[
    Literal["json", "html"] | None,
    Query(description="返回格式；不填时按 Accept 头（浏览器得到 HTML）"),
]


async def check_plain(request: Request) -> None:  # a check in hand: no thread-pool hop
    """Landing, conformance and collection documents take no parameter but ``f`` (and the
    caller's ``api_key``, see gridgov.deps.query_api_key)."""
    gis_service.check_parameters(request.query_params.multi_items(), {"f", API_KEY_QUERY})


PlainParams = Annotated[None, Depends(check_plain)]


def wants_html(request: Request, f: str | None) -> bool:
    if f is not None:
        return f == "html"
    return "text/html" in request.headers.get("accept", "")


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def with_key(request: Request, url: str) -> str:
    """``url`` (one of ours) carrying the caller's ``api_key`` if the request came with one:
    a client that can only put the key in the URL must be able to follow every link."""
    key = query_api_key(request)
    if key is None or not url.startswith(base_url(request)):
        return url
    return str(URL(url).include_query_params(**{API_KEY_QUERY: key}))


def _keep_key(request: Request, doc: dict[str, Any]) -> None:
    for link in doc.get("links", []):
        link["href"] = with_key(request, link["href"])
    for collection in doc.get("collections", []):
        _keep_key(request, collection)


def document(request: Request, f: str | None, title: str, doc: dict[str, Any]) -> Response:
    _keep_key(request, doc)
    if wants_html(request, f):
        return HTMLResponse(html.document(title, doc))
    return Response(wire.dumps(doc), media_type="application/json")


# JSON documents that a browser (or f=html) gets as an HTML page.
JSON_OR_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/html": {}}}
}


@router.get("", summary="OGC API 入口", responses=JSON_OR_HTML)
def get_landing(request: Request, scope: ReadScope, _: PlainParams, f: Format = None) -> Response:
    return document(request, f, "gridgov 地图服务", gis_service.landing(base_url(request)))


@router.get("/conformance", summary="符合的标准", responses=JSON_OR_HTML)
def get_conformance(
    request: Request, scope: ReadScope, _: PlainParams, f: Format = None
) -> Response:
    return document(request, f, "符合的标准", gis_service.conformance())


@router.get("/collections", summary="图层列表", responses=JSON_OR_HTML)
def list_collections(
    request: Request, session: SessionDep, scope: ReadScope, _: PlainParams, f: Format = None
) -> Response:
    doc = gis_service.collections(session, scope, base_url(request))
    return document(request, f, "图层列表", doc)


@router.get("/collections/{collection_id}", summary="图层说明", responses=JSON_OR_HTML)
def get_collection(
    request: Request,
    collection_id: CollectionId,
    session: SessionDep,
    scope: ReadScope,
    _: PlainParams,
    f: Format = None,
) -> Response:
    doc = gis_service.collection(session, scope, collection_id, base_url(request))
    return document(request, f, doc["title"], doc)


@router.get(
    "/collections/{collection_id}/items",
    summary="图层要素（分页，GeoJSON 或 HTML）",
    description="除下列参数外，还可按图层属性筛选（见图层说明），如 `village_code=…`；"
    "未知参数返回 400。",
    response_class=StreamingResponse,
    responses={200: {"content": {gis_service.GEOJSON: {}, "text/html": {}}}},
)
def list_items(
    request: Request,
    collection_id: CollectionId,
    session: SessionDep,
    scope: ReadScope,
    f: Format = None,
    limit: Annotated[
        int | None, Query(ge=1, le=gis_service.LIMIT_MAX, description="每页要素数（默认 100）")
    ] = None,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minLon,minLat,maxLon,maxLat（WGS84）")
    ] = None,
    datetime: Annotated[
        str | None,
        Query(max_length=100, description="按最后修改时间筛选：时刻或区间 a/b、../b、a/.."),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=500, description="下一页游标")] = None,
) -> Response:
    as_html = wants_html(request, f)
    # The request's own URL: self and next keep every parameter, api_key included.
    key = query_api_key(request)
    links = gis_service.PageLinks(
        self_url=str(request.url),
        next_url=lambda c: str(request.url.include_query_params(cursor=c)),
        html_base=f"{base_url(request)}/ogc/collections/{collection_id}/items/",
        html_query="?f=html" + (f"&amp;{urlencode({API_KEY_QUERY: key})}" if key else ""),
    )
    chunks = gis_service.stream_items(
        session,
        scope,
        collection_id,
        request.query_params.multi_items(),
        links=links,
        html=as_html,
    )
    media = "text/html; charset=utf-8" if as_html else gis_service.GEOJSON
    return StreamingResponse(chunks, media_type=media)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="单个要素",
    responses={200: {"content": {gis_service.GEOJSON: {}, "text/html": {}}}},
)
def get_item(
    request: Request,
    collection_id: CollectionId,
    feature_id: FeatureId,
    session: SessionDep,
    scope: ReadScope,
    _: PlainParams,
    f: Format = None,
) -> Response:
    feature = gis_service.item(session, scope, collection_id, feature_id)
    if wants_html(request, f):
        doc = orjson.loads(feature)
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in doc["properties"].items()
        )
        body = f"{html.page_start(f'要素 {feature_id}')}<table>{rows}</table>{html.page_end()}"
        return HTMLResponse(body)
    return Response(feature, media_type=gis_service.GEOJSON)


# -- vector tiles ------------------------------------------------------------------------------

tiles_router = APIRouter(
    prefix="/tiles", tags=["tiles"], dependencies=KEY_IN_URL, responses=BAD_PARAMETER
)
LayerId = Annotated[Literal[LAYER_IDS], Path(description="图层编号")]  # type: ignore[valid-type]
MVT = "application/vnd.mapbox-vector-tile"


@tiles_router.get("/{layer}/tilejson.json", summary="图层的 TileJSON")
def get_tilejson(
    request: Request, layer: LayerId, session: SessionDep, scope: ReadScope, _: PlainParams
) -> Response:
    doc = tiles_service.tilejson(session, scope, layer, base_url(request))
    key = query_api_key(request)
    if key is not None:  # tile URLs must carry the key the TileJSON was fetched with
        doc["tiles"] = [f"{t}?{urlencode({API_KEY_QUERY: key})}" for t in doc["tiles"]]
    return Response(wire.dumps(doc), media_type="application/json")


@tiles_router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    summary="矢量瓦片（MVT）",
    description="ETag + If-None-Match → 304；空瓦片 204。"
    "住户在聚合级别以下按格网聚合（带 count）。",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 204: {"description": "空瓦片"}, 304: {}},
)
async def get_tile(
    request: Request,
    layer: LayerId,
    z: Annotated[int, Path(ge=0, le=tiles_service.MAX_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    session: SessionDep,
    scope: ReadScope,
    _: PlainParams,
) -> Response:
    # async: a cached tile is answered on the event loop; rendering goes to a worker thread.
    result = await tiles_service.serve(
        session, scope, layer, z, x, y, if_none_match=request.headers.get("if-none-match")
    )
    # private: the tile depends on who asks (their scope); revalidate so edits show at once.
    headers = {"ETag": result.etag, "Cache-Control": "private, no-cache"}
    if result.cache is not None:  # which answers came from the tile cache (benchmarks count it)
        headers["X-Tile-Cache"] = result.cache
    if result.status == 200:
        return Response(result.body, media_type=MVT, headers=headers)
    return Response(status_code=result.status, headers=headers)


# -- exports -----------------------------------------------------------------------------------

exports_router = APIRouter(prefix="/api/v1/exports", tags=["exports"], responses=BAD_PARAMETER)


ExportBBox = Annotated[
    str | None, Query(max_length=200, description="minLon,minLat,maxLon,maxLat（WGS84）")
]
ExportPII = Annotated[
    bool | None, Query(description="住户含户主姓名和电话（仅限有个人信息权限的角色；审计）")
]
ExportDatetime = Annotated[
    str | None, Query(max_length=100, description="按最后修改时间筛选：时刻或区间")
]


def _export_response(result: exports_service.Export) -> Response:
    return StreamingResponse(
        result.chunks,
        media_type=result.media_type,
        headers={"Content-Disposition": f'attachment; filename="{result.filename}"'},
    )


def _export_route(fmt: str) -> None:
    def export_layer(
        request: Request,
        layer: LayerId,
        session: SessionDep,
        scope: ReadScope,
        bbox: ExportBBox = None,
        datetime: ExportDatetime = None,
        pii: ExportPII = None,
    ) -> Response:
        return _export_response(
            exports_service.export(session, scope, layer, fmt, request.query_params.multi_items())
        )

    def export_file(
        request: Request,
        layer: LayerId,
        session: SessionDep,
        scope: ReadScope,
        bbox: ExportBBox = None,
        datetime: ExportDatetime = None,
        pii: ExportPII = None,
        crs: Annotated[
            Literal["EPSG:4326", "EPSG:4490"] | None,
            Query(
                description="坐标参照系：EPSG:4326（默认）或 EPSG:4490（CGCS2000，数值同 WGS84）"
            ),
        ] = None,
        coord_sys: Annotated[
            Literal["wgs84", "gcj02", "bd09"] | None,
            Query(description="坐标偏移：gcj02（高德/腾讯底图）、bd09（百度底图）"),
        ] = None,
        encoding: Annotated[
            Literal["utf-8", "gbk"] | None,
            Query(description="Shapefile 属性编码：utf-8（默认，带 .cpg）或 gbk"),
        ] = None,
    ) -> Response:
        return _export_response(
            exports_service.export(session, scope, layer, fmt, request.query_params.multi_items())
        )

    is_file = fmt in files_service.FILE_FORMATS
    exports_router.add_api_route(
        f"/{{layer}}.{fmt}",
        export_file if is_file else export_layer,
        methods=["GET"],
        name=f"export_{fmt.replace('.', '_')}",
        summary=f"导出图层（{fmt}，流式）",
        description="可按图层属性筛选（见 /ogc/collections/{id}），未知参数返回 400。"
        "住户默认不含姓名、电话、身份证号和地址；pii=true 且角色有个人信息权限时含户主姓名和电话"
        "（审计）。"
        + (
            "Shapefile 打包为 zip，内含 .cpg 和字段名对照表 fields.csv。"
            if fmt == "shp.zip"
            else ""
        ),
        response_class=StreamingResponse,
        responses={200: {"content": {exports_service.MEDIA_TYPES[fmt]: {}}}},
    )


for _fmt in exports_service.MEDIA_TYPES:
    _export_route(_fmt)


# -- spatial QA --------------------------------------------------------------------------------

qa_router = APIRouter(prefix="/api/v1/qa", tags=["qa"], responses=BAD_PARAMETER)
CheckId = Annotated[Literal[qa_service.CHECK_IDS], Path(description="质检项")]  # type: ignore[valid-type]


@qa_router.get(
    "/{check}",
    summary="空间质检",
    description="grid_overlaps 网格重叠、grid_gaps 网格空白、grids_outside_village 网格超出本村、"
    "households_outside_grids 住户不在任何网格内、households_far_from_grid 住户远离所属网格、"
    "members_far_from_households 党员远离联系户。返回 GeoJSON 要素集（按面积/距离从大到小），"
    "附 total 与各村计数 by_unit。",
    responses={200: {"content": {gis_service.GEOJSON: {}}}},
)
def get_qa(
    check: CheckId,
    session: SessionDep,
    scope: ReadScope,
    min_area: Annotated[
        float | None, Query(ge=0, le=1e9, description="最小面积（平方米；面积类质检）")
    ] = None,
    max_distance: Annotated[
        float | None, Query(ge=0, le=1e9, description="最大距离（米；距离类质检）")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=qa_service.LIMIT_MAX, description="最多返回的要素数")
    ] = qa_service.LIMIT_DEFAULT,
) -> Response:
    body = qa_service.run_check(
        session, scope, check, min_area=min_area, max_distance=max_distance, limit=limit
    )
    return Response(body, media_type=gis_service.GEOJSON)
