"""Open311 GeoReport v2: every document checked field by field in JSON and XML, public
categories only, nothing identifying the reporter or a household."""

from __future__ import annotations

import uuid
from xml.etree import ElementTree

import pytest

from gridgov.issues.models import Issue
from tests.fixtures.world import COUNTY, World

BASE = "/open311/v2"
SERVICE_KEYS = {"service_code", "service_name", "description", "metadata", "type", "keywords"}
SERVICE_KEYS |= {"group"}
REQUEST_KEYS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


@pytest.fixture
def issues(session, make_issue, world: World) -> dict[str, Issue]:
    photo = [str(uuid.uuid4())]
    public = make_issue(category_code="0601", photo_ids=photo, address="村口桥头")
    household = make_issue(
        category_code="0602",
        household_id=world.households["A1-1"],
        address="王建国家门口",
        description="自来水管破裂",
    )
    private = make_issue(category_code="0101", description="李秀英与邻居争执")
    closed = make_issue(category_code="0601", photo_ids=photo, lon=111.02)
    closed.state = "CLOSED"
    session.commit()
    return {"public": public, "household": household, "private": private, "closed": closed}


def _xml(r) -> ElementTree.Element:
    assert r.headers["content-type"].startswith("text/xml"), r.headers["content-type"]
    return ElementTree.fromstring(r.content)


def test_discovery(client) -> None:
    doc = client.get(f"{BASE}/discovery.json").json()
    assert set(doc) == {"changeset", "contact", "key_service", "endpoints"}
    (endpoint,) = doc["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and endpoint["type"] == "production"
    assert endpoint["formats"] == ["application/json", "text/xml"]
    root = _xml(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.find("endpoints/endpoint/formats")] == endpoint["formats"]
    assert root.findtext("endpoints/endpoint/specification") == endpoint["specification"]


def test_services_are_the_public_categories(client) -> None:
    services = client.get(f"{BASE}/services.json?jurisdiction_id={COUNTY}").json()
    codes = [s["service_code"] for s in services]
    assert "0601" in codes and "0101" not in codes and "0700" not in codes
    road = next(s for s in services if s["service_code"] == "0601")
    assert set(road) == SERVICE_KEYS
    assert (road["service_name"], road["metadata"], road["type"], road["group"]) == (
        "道路破损",
        False,
        "realtime",
        "06",
    )
    root = _xml(client.get(f"{BASE}/services.xml"))
    assert root.tag == "services"
    first = root.find("service")
    assert {c.tag for c in first} == SERVICE_KEYS
    assert [s.findtext("service_code") for s in root] == codes
    assert first.findtext("metadata") == "false"

    definition = client.get(f"{BASE}/services/0601.json").json()
    assert definition == {"service_code": "0601", "attributes": []}
    root = _xml(client.get(f"{BASE}/services/0601.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "0601"


def test_errors_are_open311_arrays(client) -> None:
    r = client.get(f"{BASE}/services/0101.json")  # not public
    assert r.status_code == 404
    assert r.json() == [{"code": 404, "description": "service_code 0101 不存在或不公开"}]
    root = _xml(client.get(f"{BASE}/services/0101.xml"))
    assert root.tag == "errors" and root.findtext("error/code") == "404"
    r = client.get(f"{BASE}/services.json?jurisdiction_id=999999")
    assert r.status_code == 404 and r.json()[0]["code"] == 404
    r = client.get(f"{BASE}/services.yaml")
    assert r.status_code == 400 and r.json()[0]["code"] == 400
    r = client.get(f"{BASE}/requests.json?status=pending")
    assert r.status_code == 400 and "status" in r.json()[0]["description"]


def test_requests_field_by_field_and_nothing_private(client, issues, world: World) -> None:
    r = client.get(f"{BASE}/requests.json?jurisdiction_id={COUNTY}")
    assert r.status_code == 200
    by_id = {int(x["service_request_id"]): x for x in r.json()}
    assert issues["private"].id not in by_id  # a 矛盾纠纷 is never public
    public = by_id[issues["public"].id]
    assert set(public) == REQUEST_KEYS
    assert public["status"] == "open" and public["status_notes"] == "已上报，待受理"
    assert (public["service_code"], public["service_name"]) == ("0601", "道路破损")
    assert (public["lat"], public["long"]) == (26.01, 111.01)
    assert public["agency_responsible"] == "网格" and public["address"] == "村口桥头"
    assert public["requested_datetime"].endswith("Z") and public["expected_datetime"]
    assert public["media_url"] is None and public["service_notice"] is None
    # A household-linked issue keeps its description but not the household's address.
    household = by_id[issues["household"].id]
    assert household["address"] is None and household["description"] == "自来水管破裂"
    assert by_id[issues["closed"].id]["status"] == "closed"
    for private in ("王建国", "李秀英", "grid_a1", "13912345678", "reporter", "household"):
        assert private not in r.text, private

    closed = client.get(f"{BASE}/requests.json?status=closed").json()
    assert [int(x["service_request_id"]) for x in closed] == [issues["closed"].id]
    by_code = client.get(f"{BASE}/requests.json?service_code=0602").json()
    assert [int(x["service_request_id"]) for x in by_code] == [issues["household"].id]
    old = client.get(f"{BASE}/requests.json?end_date=2020-01-01T00:00:00Z").json()
    assert old == []

    root = _xml(client.get(f"{BASE}/requests.xml?service_code=0601"))
    assert root.tag == "service_requests"
    items = root.findall("request")
    assert {c.tag for c in items[0]} == REQUEST_KEYS
    assert {i.findtext("service_request_id") for i in items} == {
        str(issues["public"].id),
        str(issues["closed"].id),
    }

    one = client.get(f"{BASE}/requests/{issues['public'].id}.json")
    assert one.status_code == 200 and one.json() == [public]
    hidden = client.get(f"{BASE}/requests/{issues['private'].id}.json")
    assert hidden.status_code == 404 and hidden.json()[0]["code"] == 404
    root = _xml(client.get(f"{BASE}/requests/{issues['public'].id}.xml"))
    assert root.findtext("request/service_code") == "0601"


@pytest.fixture
def api_key(session) -> str:
    """A key (gridgov.auth.api_keys) acting as the grid member of 东村-001."""
    from gridgov.auth import api_keys

    return api_keys.create_key(session, None, name="Open311 测试", username="grid_a1").secret


def test_post_with_api_key_and_token(client, session, api_key: str) -> None:
    form = {
        "api_key": api_key,
        "jurisdiction_id": COUNTY,
        "service_code": "0602",
        "lat": "26.03",
        "long": "111.02",
        "description": "水管漏水",
    }
    r = client.post(f"{BASE}/requests.json", data=form)
    assert r.status_code == 201, r.text
    (created,) = r.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    issue = session.get(Issue, int(created["service_request_id"]))
    assert (issue.category_code, issue.description, issue.state) == ("0602", "水管漏水", "REPORTED")

    token = client.get(f"{BASE}/tokens/{issue.client_uuid}.json").json()
    assert token == [{"service_request_id": str(issue.id), "token": str(issue.client_uuid)}]
    root = _xml(client.get(f"{BASE}/tokens/{issue.client_uuid}.xml"))
    assert root.findtext("request/service_request_id") == str(issue.id)

    assert client.post(f"{BASE}/requests.json", data={**form, "api_key": "bad"}).status_code == 403
    missing = client.post(
        f"{BASE}/requests.json", data={k: v for k, v in form.items() if k != "api_key"}
    )
    assert missing.status_code == 400
    private = client.post(f"{BASE}/requests.json", data={**form, "service_code": "0101"})
    assert private.status_code == 404
    elsewhere = client.post(f"{BASE}/requests.xml", data={**form, "long": "111.08"})
    assert elsewhere.status_code == 400  # outside the account's grid
    assert _xml(elsewhere).findtext("error/code") == "400"


def test_post_with_a_revoked_or_foreign_key_is_refused(client, session, api_key: str) -> None:
    from gridgov.auth import api_keys
    from gridgov.auth.models import ApiKey, User

    form = {
        "api_key": api_key,
        "jurisdiction_id": COUNTY,
        "service_code": "0602",
        "lat": "26.03",
        "long": "111.02",
    }
    other = client.post(f"{BASE}/requests.json", data={**form, "jurisdiction_id": "439903"})
    assert other.status_code == 404 and other.json()[0]["code"] == 404  # no such county
    # A key whose account may not report (an auditor) is refused with Open311's 403.
    auditor = api_keys.create_key(session, None, name="只读", username="auditor").secret
    denied = client.post(f"{BASE}/requests.json", data={**form, "api_key": auditor})
    assert denied.status_code == 403
    assert denied.json() == [{"code": 403, "description": "该 api_key 所属账号无权提交诉求"}]

    key = session.query(ApiKey).filter(ApiKey.key_hash == api_keys.hash_key(api_key)).one()
    assert session.get(User, key.user_id).username == "grid_a1"
    api_keys.revoke_key(session, None, key.id)
    session.flush()
    before = session.query(Issue).count()
    revoked = client.post(f"{BASE}/requests.json", data=form)
    assert revoked.status_code == 403, revoked.text
    assert revoked.json() == [{"code": 403, "description": "api_key 无效、已撤销或已过期"}]
    root = _xml(client.post(f"{BASE}/requests.xml", data=form))
    assert (root.tag, root.findtext("error/code")) == ("errors", "403")
    assert session.query(Issue).count() == before


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    import math

    dlat = (a[1] - b[1]) * 111_320
    dlon = (a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1]))
    return math.hypot(dlat, dlon)


def test_household_linked_positions_are_coarsened(client, session, make_issue, world) -> None:
    """The exact point of a household-linked issue is the household's door: published as the
    centre of its 100 m square (GRIDGOV_OPEN311__COORD_PRECISION_M), the same for neighbours."""
    hid = world.households["A1-1"]
    exact = (111.01, 26.01)
    first = make_issue(category_code="0602", household_id=hid, lon=exact[0], lat=exact[1])
    near = make_issue(category_code="0602", household_id=hid, lon=111.01002, lat=26.01001)
    public = make_issue(category_code="0602", lon=exact[0], lat=exact[1])
    session.commit()
    by_id = {int(x["service_request_id"]): x for x in client.get(f"{BASE}/requests.json").json()}
    published = (by_id[first.id]["long"], by_id[first.id]["lat"])
    assert published != exact
    assert _metres(published, exact) <= 100 / 2**0.5  # inside its square
    assert (by_id[near.id]["long"], by_id[near.id]["lat"]) == published
    assert (by_id[public.id]["long"], by_id[public.id]["lat"]) == exact  # not household-linked
    one = client.get(f"{BASE}/requests/{first.id}.json").json()[0]
    assert (one["long"], one["lat"]) == published
    item = _xml(client.get(f"{BASE}/requests/{first.id}.xml")).find("request")
    assert (float(item.findtext("long")), float(item.findtext("lat"))) == published


def test_household_linked_positions_withheld_at_zero(
    client, session, make_issue, world, monkeypatch
):
    from gridgov.config import get_settings

    monkeypatch.setattr(get_settings().open311, "coord_precision_m", 0.0)
    issue = make_issue(category_code="0602", household_id=world.households["A1-1"])
    session.commit()
    (item,) = client.get(f"{BASE}/requests/{issue.id}.json").json()
    assert item["lat"] is None and item["long"] is None
    root = _xml(client.get(f"{BASE}/requests/{issue.id}.xml")).find("request")
    assert root.findtext("lat") == "" and root.findtext("long") == ""
