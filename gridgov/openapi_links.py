"""OpenAPI links: which answer feeds which next request (create a household → read, change,
remove it; report an issue → read it, move it on). One table, written into the document by
``with_links``, so generated clients and stateful tests (schemathesis) can chain operations.

Every link names its source and target by operation id and fills the target's parameters
(and, if any, part of its body) with runtime expressions (``$response.body#/id``). A link whose
operation or parameter does not exist makes building the document fail: a renamed route or
parameter cannot leave a dead link behind.

Only JSON answers are sources (OGC and Open311 answer HTML/XML too, and are left out), and
pages are not chained by their ``next``: it is a whole URL, not a value a link can carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Link:
    name: str
    target: str  # operation id
    description: str
    parameters: dict[str, str] = field(default_factory=dict)
    body: Any = None  # a requestBody expression or an object of them, merged into the body


def _id(pointer: str, param: str) -> dict[str, str]:
    return {param: f"$response.body#{pointer}"}


def _household_links(pointer: str) -> list[Link]:
    p = _id(pointer, "household_id")
    return [
        Link("GetHousehold", "households-get_household", "查看该户", p),
        Link("UpdateHousehold", "households-update_household", "修改该户", p),
        Link("RemoveHousehold", "households-remove_household", "注销该户", p),
        Link("HouseholdFile", "dashboard-get_household_file", "该户档案", p),
        Link("HouseholdContacts", "contacts-household_contacts", "该户的联系人", p),
        Link("ReleaseHousehold", "contacts-release_household", "结束该户的联系", p),
        Link(
            "HouseholdVisits",
            "visits-list_visits",
            "该户的走访记录",
            {"household_id": f"$response.body#{pointer}"},
        ),
        Link(
            "AssignContact",
            "contacts-create_contact",
            "为该户指定联系党员",
            body={"household_id": f"$response.body#{pointer}"},
        ),
    ]


def _household_issue(prefix: str) -> Link:
    return Link(
        "ReportIssue",
        "issues-report_issue",
        "在该户位置上报事件",
        body={
            "household_id": f"$response.body#{prefix}/id",
            "location": f"$response.body#{prefix}/location",
        },
    )


def _member_links(pointer: str) -> list[Link]:
    p = _id(pointer, "member_id")
    return [
        Link("GetMember", "members-get_member", "查看该党员", p),
        Link("UpdateMember", "members-update_member", "修改该党员", p),
        Link("MemberLeaves", "members-leave", "该党员离开", p),
        Link("ReleaseMember", "contacts-release_member", "结束该党员的联系户", p),
        Link(
            "MemberContacts",
            "contacts-list_contacts",
            "该党员的联系户",
            {"member_id": f"$response.body#{pointer}"},
        ),
        Link(
            "MemberVisits",
            "visits-list_visits",
            "该党员的走访记录",
            {"member_id": f"$response.body#{pointer}"},
        ),
        Link(
            "AssignHousehold",
            "contacts-create_contact",
            "为该党员指定联系户",
            body={"member_id": f"$response.body#{pointer}"},
        ),
    ]


def _party_org_links(pointer: str) -> list[Link]:
    p = _id(pointer, "org_id")
    return [
        Link("GetPartyOrg", "party-orgs-get_party_org", "查看该党组织", p),
        Link("UpdatePartyOrg", "party-orgs-update_party_org", "修改该党组织", p),
        Link("DeletePartyOrg", "party-orgs-delete_party_org", "删除该党组织", p),
        Link(
            "AddMember",
            "members-create_member",
            "在该党组织登记党员",
            body={"party_org_id": f"$response.body#{pointer}"},
        ),
    ]


def _grid_links(prefix: str) -> list[Link]:
    p = _id(f"{prefix}/id", "grid_id")
    code = f"$response.body#{prefix}/code"
    return [
        Link("GetGrid", "grids-get_grid", "查看该网格", p),
        Link("UpdateGrid", "grids-update_grid", "修改该网格", p),
        Link("RetireGrid", "grids-retire_grid", "撤销该网格", p),
        Link("GridHouseholds", "households-list_households", "网格内的户", {"grid_code": code}),
        Link("GridMembers", "members-list_members", "网格内的党员", {"grid_code": code}),
    ]


def _unit_links(prefix: str) -> list[Link]:
    code = f"$response.body#{prefix}/code"
    p = {"code": code}
    u = {"unit_code": code}
    links = [
        Link("GetUnit", "units-get_unit", "查看该行政单位", p),
        Link("UpdateUnit", "units-update_unit", "修改该行政单位", p),
        Link("RetireUnit", "units-retire_unit", "撤销该行政单位", p),
        Link("UnitChildren", "units-list_units", "下级行政单位", {"parent_code": code}),
        Link("UnitGrids", "grids-list_grids", "辖区内的网格", {"unit_code": code}),
        Link("UnitPartyOrgs", "party-orgs-list_party_orgs", "辖区内的党组织", u),
        Link("UnitCoverage", "contacts-get_coverage", "联系户覆盖情况", u),
        Link("UnitIssueKpis", "issues-get_kpis", "事件考核指标", u),
        Link(
            "CreatePartyOrg",
            "party-orgs-create_party_org",
            "在该单位建立党组织",
            body={"unit_code": code},
        ),
    ]
    for view, title in [
        ("summary", "看板概况"),
        ("children", "看板下级对比"),
        ("flags", "走访核查标记"),
        ("issues", "事件统计"),
        ("trend", "趋势"),
        ("scores", "组织评分"),
        ("ledger", "台账"),
    ]:
        links.append(Link(f"Dashboard{view.title()}", f"dashboard-get_{view}", title, u))
    return links


def _contact_links(pointer: str) -> list[Link]:
    p = _id(pointer, "contact_id")
    return [
        Link("GetContact", "contacts-get_contact", "查看该联系", p),
        Link("EndContact", "contacts-end_contact", "结束该联系", p),
    ]


def _visit_links(pointer: str) -> list[Link]:
    p = _id(pointer, "visit_id")
    return [
        Link("GetVisit", "visits-get_visit", "查看该走访", p),
        Link("ReviewVisit", "visits-review_visit", "审核该走访", p),
    ]


def _issue_links(prefix: str) -> list[Link]:
    return [
        Link(
            "GetIssue", "issues-get_issue", "查看该事件及其时间线", _id(f"{prefix}/id", "issue_id")
        ),
        Link(
            "TransitionIssue",
            "issues-transition_issue",
            "办理该事件（带上所见版本号）",
            _id(f"{prefix}/id", "issue_id"),
            body={"version": f"$response.body#{prefix}/version"},
        ),
    ]


_PHOTO = [
    Link(
        "GetAttachment",
        "visits-get_attachment",
        "取回该照片",
        {"attachment_id": "$request.path.attachment_id"},
    )
]
_IMPORT_JOB = [Link("GetImport", "imports-get_import", "导入进度与报告", _id("/job_id", "job_id"))]


# (source operation id, status) → its links.
LINKS: dict[tuple[str, str], list[Link]] = {
    ("households-create_household", "201"): [*_household_links("/id"), _household_issue("")],
    ("households-get_household", "200"): [*_household_links("/id"), _household_issue("")],
    ("households-update_household", "200"): _household_links("/id")[:1],
    ("households-list_households", "200"): [
        *_household_links("/items/0/id"),
        _household_issue("/items/0"),
    ],
    ("contacts-list_uncovered", "200"): _household_links("/items/0/household_id")[:1],
    ("members-create_member", "201"): _member_links("/id"),
    ("members-get_member", "200"): _member_links("/id"),
    ("members-update_member", "200"): _member_links("/id")[:1],
    ("members-list_members", "200"): _member_links("/items/0/id"),
    ("party-orgs-create_party_org", "201"): _party_org_links("/id"),
    ("party-orgs-get_party_org", "200"): _party_org_links("/id"),
    ("party-orgs-update_party_org", "200"): _party_org_links("/id")[:1],
    ("party-orgs-list_party_orgs", "200"): _party_org_links("/items/0/id"),
    ("grids-create_grid", "201"): _grid_links(""),
    ("grids-get_grid", "200"): _grid_links(""),
    ("grids-update_grid", "200"): _grid_links("")[:1],
    ("grids-list_grids", "200"): _grid_links("/items/0"),
    ("units-create_unit", "201"): _unit_links(""),
    ("units-get_unit", "200"): _unit_links(""),
    ("units-update_unit", "200"): _unit_links("")[:1],
    ("units-list_units", "200"): _unit_links("/items/0"),
    ("contacts-create_contact", "201"): _contact_links("/id"),
    ("contacts-get_contact", "200"): _contact_links("/id")[1:],
    ("contacts-end_contact", "200"): _contact_links("/id")[:1],
    ("contacts-list_contacts", "200"): _contact_links("/items/0/id"),
    ("visits-upload_visits", "200"): [
        *_visit_links("/items/0/visit/id"),
        Link(
            "ResubmitVisits",
            "visits-upload_visits",
            "重传同一批走访（已存的记为 duplicate，不会重复保存）",
            body="$request.body",
        ),
    ],
    ("visits-list_visits", "200"): _visit_links("/items/0/id"),
    ("visits-get_visit", "200"): [
        *_visit_links("/id")[1:],
        *_household_links("/household_id")[:1],
    ],
    ("visits-review_visit", "200"): _visit_links("/id")[:1],
    ("issues-report_issue", "201"): [
        *_issue_links(""),
        Link(
            "ResubmitIssue",
            "issues-report_issue",
            "重传同一事件（同一 client_uuid 返回已存的记录）",
            body="$request.body",
        ),
    ],
    ("issues-report_issue", "200"): _issue_links(""),  # a resubmission: the stored issue
    ("issues-get_issue", "200"): _issue_links("")[1:],
    ("issues-transition_issue", "200"): _issue_links(""),
    ("issues-list_issues", "200"): _issue_links("/items/0"),
    ("api-keys-create_key", "201"): [
        Link("RevokeKey", "api-keys-revoke_key", "吊销该密钥", _id("/id", "key_id"))
    ],
    ("users-create_user", "201"): [
        Link(
            "CreateApiKey",
            "api-keys-create_key",
            "为该用户签发 API 密钥",
            body={"user_id": "$response.body#/id"},
        )
    ],
    ("imports-import_boundaries", "201"): _IMPORT_JOB,
    ("imports-import_boundaries", "202"): _IMPORT_JOB,
    ("imports-import_units", "201"): _IMPORT_JOB,
    ("imports-import_units", "202"): _IMPORT_JOB,
    ("imports-import_households", "201"): _IMPORT_JOB,
    ("imports-import_households", "202"): _IMPORT_JOB,
    ("visits-put_attachment", "201"): _PHOTO,
    ("visits-put_attachment", "200"): _PHOTO,
    ("notifications-list_notifications", "200"): [
        Link(
            "ReadNotification",
            "notifications-read_one",
            "标为已读",
            _id("/items/0/id", "notification_id"),
        )
    ],
    ("sync-pull", "200"): [
        Link("NextSyncPage", "sync-pull", "下一页（带上本页的 next 游标）", _id("/next", "cursor"))
    ],
    ("audit-list_audit", "200"): [
        Link("NextAuditPage", "audit-list_audit", "下一页", _id("/next_cursor", "cursor"))
    ],
}


def with_links(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the links of ``LINKS`` in its responses (checked against it)."""
    operations: dict[str, dict[str, Any]] = {}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operations[operation["operationId"]] = operation
    for (source, status), links in LINKS.items():
        response = _operation(operations, source)["responses"].get(status)
        if response is None:
            raise ValueError(f"link source {source} has no {status} response")
        out = response.setdefault("links", {})
        for link in links:
            target = _operation(operations, link.target)
            _check_parameters(link, target)
            if link.body is not None and "requestBody" not in target:
                raise ValueError(f"link {link.name}: {link.target} takes no body")
            definition: dict[str, Any] = {
                "operationId": link.target,
                "description": link.description,
            }
            if link.parameters:
                definition["parameters"] = dict(link.parameters)
            if link.body is not None:
                definition["requestBody"] = link.body
            out[link.name] = definition
    return document


def _operation(operations: dict[str, dict[str, Any]], operation_id: str) -> dict[str, Any]:
    if operation_id not in operations:
        raise ValueError(f"link names an unknown operation {operation_id}")
    return operations[operation_id]


def _check_parameters(link: Link, target: dict[str, Any]) -> None:
    known = {(p["in"], p["name"]) for p in target.get("parameters", [])}
    for name in link.parameters:
        where, _, bare = name.rpartition(".")
        if not any(n == bare and (not where or where == w) for w, n in known):
            raise ValueError(f"link {link.name}: {link.target} has no parameter {name}")
