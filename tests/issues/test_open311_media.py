"""Open311 reports with photos (GeoReport v2 media extensions: multipart ``media`` files, or a
``media_url`` naming a photo on this server), discovery at the address clients use, and error
descriptions in Chinese — the route's own and the framework's (validation, routing)."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path
from xml.etree import ElementTree

import pytest

from gridgov.audit.models import AuditEntry
from gridgov.config import get_settings
from gridgov.issues.models import Issue
from gridgov.visits.models import Attachment
from tests.fixtures.world import COUNTY
from tests.visits.conftest import JPEG, PNG, WEBP

BASE = "/open311/v2"
CHINESE = re.compile(r"[\u4e00-\u9fff]")
# 0601 道路破损: public, photo required (10 of the 13 public services are).
FORM = {"jurisdiction_id": COUNTY, "service_code": "0601", "lat": "26.03", "long": "111.02"}


@pytest.fixture(autouse=True)
def blob_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(get_settings(), "data_dir", str(tmp_path))
    return tmp_path / "attachments"


@pytest.fixture
def api_key(session) -> str:
    from gridgov.auth import api_keys

    return api_keys.create_key(session, None, name="Open311 照片", username="grid_a1").secret


def post(client, fmt: str = "json", files=None, **fields: str):
    return client.post(f"{BASE}/requests.{fmt}", data={**FORM, **fields}, files=files)


def error(r, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    (item,) = r.json()
    assert set(item) == {"code", "description"} and item["code"] == status
    assert CHINESE.search(item["description"]), item
    return item["description"]


def test_photo_required_service_without_a_photo_says_how(client, api_key) -> None:
    described = error(post(client, api_key=api_key, description="桥面塌陷"), 400)
    assert described.startswith("该类事件须附照片") and "media" in described
    assert "media_url" in described


def test_multipart_media_files_are_stored_like_a_phones_photos(
    client, session, api_key, blob_dir: Path
) -> None:
    files = [("media", ("a.jpg", JPEG, "image/jpeg")), ("media[]", ("b.png", PNG, "image/png"))]
    r = post(client, files=files, api_key=api_key, description="桥面塌陷")
    assert r.status_code == 201, r.text
    (created,) = r.json()
    issue = session.get(Issue, int(created["service_request_id"]))
    assert issue.category_code == "0601" and len(issue.photo_ids) == 2
    stored = [session.get(Attachment, p) for p in issue.photo_ids]
    assert [a.media_type for a in stored] == ["image/jpeg", "image/png"]
    assert [a.sha256 for a in stored] == [hashlib.sha256(b).hexdigest() for b in (JPEG, PNG)]
    assert {a.size for a in stored} == {len(JPEG), len(PNG)}
    assert all(a.user_id == issue.reporter_id for a in stored)
    for a in stored:  # in the content-addressed store
        blob = blob_dir / a.sha256[:2] / a.sha256[2:4] / a.sha256
        assert blob.read_bytes() in (JPEG, PNG)
    uploads = session.query(AuditEntry).filter(AuditEntry.action == "upload").all()
    assert {str(e.entity_id) for e in uploads} >= {str(p) for p in issue.photo_ids}
    # The API shows the issue with its photos, none missing.
    from tests.conftest import token_for

    headers = {"Authorization": f"Bearer {token_for(issue.reporter_id, 'grid_member')}"}
    got = client.get(f"/api/v1/issues/{issue.id}", headers=headers).json()
    assert got["photo_ids"] == [str(p) for p in issue.photo_ids]
    assert got["missing_attachments"] == []
    # and XML answers the same way
    xml = post(client, "xml", [("media", ("c.webp", WEBP, "image/webp"))], api_key=api_key)
    assert xml.status_code == 201, xml.text
    assert ElementTree.fromstring(xml.content).findtext("request/service_request_id")


def test_media_is_checked_like_any_photo(client, session, api_key, monkeypatch) -> None:
    before = session.query(Issue).count(), session.query(Attachment).count()
    not_image = [("media", ("x.txt", b"just some text, not a photo", "image/jpeg"))]
    described = error(post(client, files=not_image, api_key=api_key), 400)
    assert described == "media 第 1 个文件：照片应为 JPEG、PNG 或 WebP 格式"
    monkeypatch.setattr(get_settings().visits, "attachment_max_bytes", 1024)
    big = [("media", ("big.jpg", JPEG + b"\x00" * 2048, "image/jpeg"))]
    assert (
        error(post(client, files=big, api_key=api_key), 400)
        == "media 第 1 个文件：照片不能超过 1 KB"
    )
    monkeypatch.setattr(get_settings().visits, "attachment_max_bytes", 10 * 1024 * 1024)
    many = [("media", (f"{i}.jpg", JPEG, "image/jpeg")) for i in range(4)]
    assert (
        error(post(client, files=many, api_key=api_key), 400) == "每条诉求最多附 3 张照片（media）"
    )
    # A good photo with a report refused later (outside the account's grid): nothing is kept.
    good = [("media", ("ok.jpg", JPEG, "image/jpeg"))]
    error(post(client, files=good, api_key=api_key, long="111.08"), 400)
    assert (session.query(Issue).count(), session.query(Attachment).count()) == before


def test_media_url_names_a_photo_uploaded_here(client, session, api_key) -> None:
    photo = uuid.uuid4()
    r = client.put(
        f"/api/v1/attachments/{photo}",
        content=PNG,
        headers={"X-API-Key": api_key, "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    here = f"http://testserver/api/v1/attachments/{photo}"
    r = post(client, api_key=api_key, media_url=here, description="路面坑洼")
    assert r.status_code == 201, r.text
    issue = session.get(Issue, int(r.json()[0]["service_request_id"]))
    assert issue.photo_ids == [photo]
    for bad, why in [
        (f"https://elsewhere.example.com/api/v1/attachments/{photo}", "须指向已上传到本服务器"),
        ("https://elsewhere.example.com/photo.jpg", "须指向已上传到本服务器"),
        (f"http://testserver/api/v1/attachments/{uuid.uuid4()}", "不存在"),
        ("http://testserver/dashboard/", "须指向已上传到本服务器"),
    ]:
        assert why in error(post(client, api_key=api_key, media_url=bad), 400), bad


def test_media_url_of_another_accounts_photo_is_refused(client, session, api_key, as_user):
    photo = uuid.uuid4()
    r = client.put(
        f"/api/v1/attachments/{photo}",
        content=JPEG,
        headers={**as_user("village_a"), "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    url = f"http://testserver/api/v1/attachments/{photo}"
    assert "不是该 api_key 的账号上传的" in error(post(client, api_key=api_key, media_url=url), 400)


def test_media_url_under_the_public_url(client, session, api_key, monkeypatch) -> None:
    monkeypatch.setattr(get_settings(), "public_url", "https://grid.example.gov.cn/gg")
    photo = uuid.uuid4()
    r = client.put(
        f"/api/v1/attachments/{photo}",
        content=JPEG,
        headers={"X-API-Key": api_key, "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201
    url = f"https://grid.example.gov.cn/gg/api/v1/attachments/{photo}"
    assert post(client, api_key=api_key, media_url=url).status_code == 201


def test_discovery_points_at_the_public_url(client, monkeypatch) -> None:
    doc = client.get(f"{BASE}/discovery.json").json()
    # Unset: the address the request came to.
    assert doc["endpoints"][0]["url"] == "http://testserver/open311/v2"
    monkeypatch.setattr(get_settings(), "public_url", "https://grid.example.gov.cn")
    doc = client.get(f"{BASE}/discovery.json").json()
    assert doc["endpoints"][0]["url"] == "https://grid.example.gov.cn/open311/v2"
    root = ElementTree.fromstring(client.get(f"{BASE}/discovery.xml").content)
    assert root.findtext("endpoints/endpoint/url") == "https://grid.example.gov.cn/open311/v2"


def test_public_url_is_checked(monkeypatch) -> None:
    from pydantic import ValidationError

    from gridgov.config import Settings

    monkeypatch.setenv("GRIDGOV_PUBLIC_URL", "https://grid.example.gov.cn/")
    assert Settings().public_url == "https://grid.example.gov.cn"
    for bad in ("grid.example.gov.cn", "ftp://grid.example.gov.cn", "https://x.cn/?a=1"):
        monkeypatch.setenv("GRIDGOV_PUBLIC_URL", bad)
        with pytest.raises(ValidationError):
            Settings()
    monkeypatch.setenv("GRIDGOV_PUBLIC_URL", "")
    assert Settings().public_url is None


def test_errors_are_chinese_everywhere(client, api_key) -> None:
    assert (
        error(client.get(f"{BASE}/services/0101.json"), 404) == "service_code 0101 不存在或不公开"
    )
    assert "json 或 xml" in error(client.get(f"{BASE}/services.yaml"), 400)
    assert "县级区划代码" in error(client.get(f"{BASE}/services.json?jurisdiction_id=999999"), 404)
    assert (
        error(client.get(f"{BASE}/requests.json?status=pending"), 400)
        == "status 应为 open 或 closed"
    )
    assert "W3C" in error(client.get(f"{BASE}/requests.json?start_date=yesterday"), 400)
    assert "不存在" in error(client.get(f"{BASE}/requests/123456.json"), 404)
    assert error(client.get(f"{BASE}/tokens/not-a-token.json"), 404) == "token 不存在"
    assert error(client.post(f"{BASE}/requests.json", data=FORM), 400) == "缺少 api_key"
    assert "无效" in error(post(client, api_key="ggk_nope"), 403)
    # The framework's own refusals on Open311 paths are Open311 arrays too.
    too_long = error(post(client, api_key=api_key, description="长" * 4001), 400)
    assert too_long.startswith("请求参数不正确") and "description" in too_long
    assert "不存在" in error(client.get(f"{BASE}/nothing.json"), 404)
    r = client.delete(f"{BASE}/services.json")
    assert "不支持 DELETE" in error(r, 405) and r.headers["allow"] == "GET"
    xml = client.get(f"{BASE}/services/0101.xml")
    root = ElementTree.fromstring(xml.content)
    assert (root.tag, root.findtext("error/code")) == ("errors", "404")
    assert CHINESE.search(root.findtext("error/description"))
