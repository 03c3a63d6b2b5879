"""Open311 GeoReport v2 view of issues (http://wiki.open311.org/GeoReport_v2).

Public: only categories marked public, and never who reported an issue or which household it
concerns (no reporter, no household, no address of a household-linked issue and only a coarse
position for it — ``privacy.coarse_position``, ``GRIDGOV_OPEN311__COORD_PRECISION_M`` —, no
notes written by people). ``jurisdiction_id`` is the county code. Reports come in with an
``api_key``: an API key (gridgov.auth.api_keys) a county administrator made for one of the
county's accounts; the report is filed as that account. A report may carry photos as the
GeoReport v2 media extensions do: multipart ``media`` files, stored exactly as the phones'
photos are (``visits_service.put_attachment``: JPEG/PNG/WebP by magic number, size limit,
SHA-256, content-addressed store, audited), or a ``media_url`` naming a photo already uploaded
to this server by the same account (``…/api/v1/attachments/{uuid}``). A ``media_url`` to another
host is refused: the server fetches nothing from elsewhere, and a photo it has not checked
cannot stand for the photo a category requires. Error descriptions are Chinese.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridgov import privacy
from gridgov.auth import api_keys
from gridgov.auth.permissions import Perm
from gridgov.auth.scope import Scope, scope_for
from gridgov.config import get_settings
from gridgov.errors import DomainError, Unauthenticated
from gridgov.hierarchy.models import AdminUnit
from gridgov.issues import service as issues_service
from gridgov.issues.models import Issue, IssueCategory
from gridgov.issues.schemas import IssueCreate
from gridgov.visits import service as visits_service
from gridgov.visits.models import Attachment
from gridgov.visits.storage import get_blob_store

SPEC = "http://wiki.open311.org/GeoReport_v2"
FORMATS = {"json": "application/json", "xml": "text/xml"}
CLOSED_STATES = ("CLOSED", "REJECTED", "MERGED", "CANCELLED")
# What the public reads about progress: the state, in words, never a person's note.
STATUS_NOTES = {
    "REPORTED": "已上报，待受理",
    "ACCEPTED": "已受理",
    "ASSIGNED": "已派遣",
    "IN_PROGRESS": "处置中",
    "ON_HOLD": "已批准延期",
    "RETURNED": "已退回，重新派遣中",
    "REWORK": "返工处置中",
    "RESOLVED": "已处置，待核查",
    "SELF_RESOLVED": "已现场处置，待核查",
    "VERIFIED": "已核查，待结案",
    "CLOSED": "已结案",
    "REJECTED": "不予受理",
    "MERGED": "已与其他事件合并",
    "CANCELLED": "已撤销",
}
LEVEL_AGENCY = {1: "网格", 2: "村", 3: "乡镇", 4: "县"}
MAX_REQUESTS = 1000
DEFAULT_DAYS = 90


@dataclass
class Open311Error(Exception):
    status: int
    description: str


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(400, f"不支持的格式 {fmt[:20]}：请用 json 或 xml")
    return fmt


def discovery(base_url: str) -> dict[str, Any]:
    changeset = "2026-11-25T00:00:00Z"
    return {
        "changeset": changeset,
        "contact": "请联系所在县网格化服务管理中心",
        "key_service": "api_key 由县级管理员创建（POST /api/v1/api-keys 或 gridgov apikey create）",
        "endpoints": [
            {
                "specification": SPEC,
                "url": f"{base_url.rstrip('/')}/open311/v2",
                "changeset": changeset,
                "type": "production",
                "formats": list(FORMATS.values()),
            }
        ],
    }


def _check_jurisdiction(session: Session, jurisdiction_id: str | None) -> None:
    if jurisdiction_id is None:
        return
    if not (jurisdiction_id.isdigit() and len(jurisdiction_id) == 6):
        raise Open311Error(404, _no_jurisdiction(jurisdiction_id))
    exists = session.scalar(
        select(AdminUnit.id).where(
            AdminUnit.code == jurisdiction_id,
            AdminUnit.level == "county",
            AdminUnit.valid_to.is_(None),
        )
    )
    if exists is None:
        raise Open311Error(404, _no_jurisdiction(jurisdiction_id))


def _no_jurisdiction(jurisdiction_id: str) -> str:
    return f"jurisdiction_id {jurisdiction_id[:12]} 不存在（应为 6 位县级区划代码）"


def _public_category(session: Session, service_code: str) -> IssueCategory:
    category = session.get(IssueCategory, service_code)
    if category is None or not category.public:
        raise Open311Error(404, f"service_code {service_code[:10]} 不存在或不公开")
    return category


def _service(category: IssueCategory) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": category.name + ("（须附照片）" if category.photo_required else ""),
        "metadata": False,
        "type": "realtime",
        "keywords": category.name,
        "group": category.code[:2],
    }


def services(session: Session, *, jurisdiction_id: str | None) -> list[dict[str, Any]]:
    _check_jurisdiction(session, jurisdiction_id)
    categories = session.scalars(
        select(IssueCategory).where(IssueCategory.public).order_by(IssueCategory.code)
    )
    return [_service(c) for c in categories]


def service_definition(
    session: Session, service_code: str, *, jurisdiction_id: str | None
) -> dict[str, Any]:
    _check_jurisdiction(session, jurisdiction_id)
    category = _public_category(session, service_code)
    return {"service_code": category.code, "attributes": []}


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _parse_time(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Open311Error(400, f"{name} 应为 W3C 日期时间，如 2026-01-01T08:00:00+08:00") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _request_row(issue: Issue, category: IssueCategory, lon: float, lat: float) -> dict[str, Any]:
    position: tuple[float, float] | None = (round(lon, 6), round(lat, 6))
    if issue.household_id is not None:
        # A household-linked issue's exact point is the household's door: coarsened.
        position = privacy.coarse_position(lon, lat, get_settings().open311.coord_precision_m)
    return {
        "service_request_id": str(issue.id),
        "status": "closed" if issue.state in CLOSED_STATES else "open",
        "status_notes": STATUS_NOTES.get(issue.state),
        "service_name": category.name,
        "service_code": category.code,
        "description": issue.description,
        "agency_responsible": LEVEL_AGENCY[issue.level],
        "service_notice": None,
        "requested_datetime": _iso(issue.created_at),
        "updated_datetime": _iso(issue.updated_at),
        "expected_datetime": _iso(issue.due_at),
        # A household-linked issue's address would point at the household: left out.
        "address": issue.address if issue.household_id is None else None,
        "address_id": None,
        "zipcode": None,
        "lat": position[1] if position else None,
        "long": position[0] if position else None,
        "media_url": None,
    }


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def requests(
    session: Session,
    *,
    jurisdiction_id: str | None,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    _check_jurisdiction(session, jurisdiction_id)
    stmt = (
        select(Issue, IssueCategory, func.ST_X(Issue.geom), func.ST_Y(Issue.geom))
        .join(IssueCategory, IssueCategory.code == Issue.category_code)
        .where(IssueCategory.public)
    )
    if jurisdiction_id is not None:
        stmt = stmt.where(Issue.county_code == jurisdiction_id)
    ids = _split(service_request_id)
    if ids:
        if not all(i.isdigit() and len(i) < 19 for i in ids):
            raise Open311Error(400, "service_request_id 应为数字（多个以逗号分隔）")
        # Asked by id: no default time window (GeoReport v2).
        stmt = stmt.where(Issue.id.in_([int(i) for i in ids]))
    else:
        start = _parse_time("start_date", start_date)
        end = _parse_time("end_date", end_date)
        if start is None:
            start = (end or now or datetime.now(UTC)) - timedelta(days=DEFAULT_DAYS)
        stmt = stmt.where(Issue.created_at >= start)
        if end is not None:
            stmt = stmt.where(Issue.created_at <= end)
        codes = _split(service_code)
        if codes:
            stmt = stmt.where(Issue.category_code.in_(codes))
        statuses = set(_split(status))
        if statuses - {"open", "closed"}:
            raise Open311Error(400, "status 应为 open 或 closed")
        if statuses == {"open"}:
            stmt = stmt.where(Issue.state.notin_(CLOSED_STATES))
        elif statuses == {"closed"}:
            stmt = stmt.where(Issue.state.in_(CLOSED_STATES))
    rows = session.execute(
        stmt.order_by(Issue.created_at.desc(), Issue.id.desc()).limit(MAX_REQUESTS)
    )
    return [_request_row(issue, cat, lon, lat) for issue, cat, lon, lat in rows]


def request(
    session: Session, service_request_id: str, *, jurisdiction_id: str | None
) -> list[dict[str, Any]]:
    if not service_request_id.isdigit() or len(service_request_id) >= 19:
        raise Open311Error(404, f"service_request_id {service_request_id[:20]} 不存在")
    found = requests(
        session, jurisdiction_id=jurisdiction_id, service_request_id=service_request_id
    )
    if not found:
        raise Open311Error(404, f"service_request_id {service_request_id[:20]} 不存在")
    return found


def create_request(
    session: Session,
    *,
    api_key: str | None,
    jurisdiction_id: str | None,
    service_code: str | None,
    lat: str | None,
    long: str | None,
    description: str | None,
    address_string: str | None,
    media: Sequence[bytes] = (),
    media_url: str | None = None,
    here: str | None = None,
) -> list[dict[str, Any]]:
    """A report through Open311, filed as the account the api_key belongs to, with its photos
    (``media`` files, ``media_url``; ``here`` is the address the request came to). All or
    nothing: a refused report keeps none of its photos."""
    if not api_key:
        raise Open311Error(400, "缺少 api_key")
    try:
        user = api_keys.user_for_api_key(session, api_key)
    except Unauthenticated:  # unknown, revoked, expired, or its account deactivated
        raise Open311Error(403, "api_key 无效、已撤销或已过期") from None
    scope = scope_for(session, user)
    if not scope.can(Perm.issues_report):
        raise Open311Error(403, "该 api_key 所属账号无权提交诉求")
    _check_jurisdiction(session, jurisdiction_id)
    if jurisdiction_id is not None and jurisdiction_id != scope.county_code:
        raise Open311Error(403, "该 api_key 不能在此 jurisdiction_id 提交诉求")
    if not service_code:
        raise Open311Error(400, "缺少 service_code")
    category = _public_category(session, service_code)
    try:
        lat_f, lon_f = float(lat or ""), float(long or "")
    except ValueError as exc:
        raise Open311Error(400, "lat、long 为必填的数字（WGS84 纬度、经度）") from exc
    most = get_settings().open311.media_max_files
    if len(media) > most:
        raise Open311Error(400, f"每条诉求最多附 {most} 张照片（media）")
    token = uuid.uuid4()
    try:
        with session.begin_nested():
            photo_ids = [_stored_photo(session, scope, i, data) for i, data in enumerate(media)]
            if media_url:
                photo_ids.append(_uploaded_photo(session, scope, media_url, here))
            body = IssueCreate.model_validate(
                {
                    "client_uuid": token,
                    "category_code": category.code,
                    "description": (description or "").strip() or category.name,
                    "location": {"type": "Point", "coordinates": [lon_f, lat_f]},
                    "address": (address_string or None) and address_string[:200],
                    "photo_ids": photo_ids,
                }
            )
            issue, _ = issues_service.report_issue(session, scope, body)
    except DomainError as exc:
        if any(e.code == "photo_required" for e in exc.errors):
            raise Open311Error(400, PHOTO_REQUIRED) from exc
        first = exc.errors[0].msg if exc.errors else exc.detail or exc.title
        raise Open311Error(400, first) from exc
    except ValueError as exc:  # pydantic: a description too long, a NUL character …
        raise Open311Error(400, "请求字段不正确（如 description 过长或含空字符）") from exc
    return [{"service_request_id": str(issue.id), "service_notice": None, "account_id": None}]


PHOTO_REQUIRED = (
    "该类事件须附照片：以 multipart/form-data 的 media 字段上传照片文件，"
    "或以 media_url 指向已上传到本服务器的照片（PUT /api/v1/attachments/{uuid}）"
)
_ATTACHMENT_PATH = re.compile(r"/api/v1/attachments/([0-9a-fA-F-]{36})$")


def _stored_photo(session: Session, scope: Scope, index: int, data: bytes) -> uuid.UUID:
    """One ``media`` file stored as a photo, the same way as a phone's upload."""
    photo = uuid.uuid4()
    try:
        visits_service.put_attachment(session, scope, photo, data, store=get_blob_store())
    except DomainError as exc:
        raise Open311Error(400, f"media 第 {index + 1} 个文件：{exc.detail or exc.title}") from exc
    return photo


def _uploaded_photo(session: Session, scope: Scope, media_url: str, here: str | None) -> uuid.UUID:
    """The photo a ``media_url`` names: one this account uploaded to this server."""
    bases = [b.rstrip("/") for b in (get_settings().public_url, here) if b]
    path = next((media_url[len(b) :] for b in bases if media_url.startswith(b + "/")), None)
    found = _ATTACHMENT_PATH.match(path) if path is not None else None
    if found is None:
        raise Open311Error(
            400,
            "media_url 须指向已上传到本服务器的照片（…/api/v1/attachments/{uuid}）；"
            "不从其他网站取照片，请以 media 字段直接上传",
        )
    photo = uuid.UUID(found.group(1))
    attachment = session.get(Attachment, photo)
    if attachment is None or attachment.user_id != scope.user_id:
        raise Open311Error(400, "media_url 指向的照片不存在，或不是该 api_key 的账号上传的")
    return photo


def token(session: Session, token_id: str, *, jurisdiction_id: str | None) -> list[dict[str, Any]]:
    """The request made with ``token_id`` (the token is the issue's client UUID)."""
    _check_jurisdiction(session, jurisdiction_id)
    try:
        key = uuid.UUID(token_id)
    except ValueError as exc:
        raise Open311Error(404, "token 不存在") from exc
    issue_id = session.scalar(
        select(Issue.id)
        .join(IssueCategory, IssueCategory.code == Issue.category_code)
        .where(Issue.client_uuid == key, IssueCategory.public)
    )
    if issue_id is None:
        raise Open311Error(404, "token 不存在")
    return [{"service_request_id": str(issue_id), "token": token_id}]


# -- rendering --------------------------------------------------------------------------------

# Root and item element names of each XML document (GeoReport v2 examples).
XML_NAMES = {
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "errors": ("errors", "error"),
}


def _xml_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml_fill(parent: ElementTree.Element, data: dict[str, Any]) -> None:
    for key, value in data.items():
        child = ElementTree.SubElement(parent, key)
        if isinstance(value, dict):
            _xml_fill(child, value)
        elif isinstance(value, list):
            item_name = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute"}
            for item in value:
                sub = ElementTree.SubElement(child, item_name.get(key, "item"))
                if isinstance(item, dict):
                    _xml_fill(sub, item)
                else:
                    sub.text = _xml_value(item)
        else:
            child.text = _xml_value(value)


def to_xml(kind: str, payload: Any) -> bytes:
    """``payload``: a list (services, requests, errors) or one document (discovery, definition)."""
    if isinstance(payload, list):
        root_name, item_name = XML_NAMES[kind]
        root = ElementTree.Element(root_name)
        for item in payload:
            _xml_fill(ElementTree.SubElement(root, item_name), item)
    else:
        root = ElementTree.Element(kind)
        _xml_fill(root, payload)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
