"""SQL for 联系户 reads: contact rows, coverage aggregates, and the auto-assign inputs.

The auto-assign inputs of a whole county (150 000 households) come back through binary COPY of
fixed-width columns, decoded by numpy in one call: no per-row Python object is created.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any, Unpack

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from gridgov import listing as kit
from gridgov.auth.scope import Scope
from gridgov.config import ContactLimits
from gridgov.contacts.schemas import ContactRead
from gridgov.db import raw_connection
from gridgov.listing import PageResult
from gridgov.wire import select_list

# -- contact rows (lists, history, single reads) ----------------------------------------------

CONTACT_COLUMNS = select_list(ContactRead)
CONTACT_FROM = """
    FROM contacts c JOIN households h ON h.id = c.household_id
    JOIN party_members m ON m.id = c.member_id
    JOIN admin_units v ON v.id = c.village_id
    LEFT JOIN grids g ON g.id = h.grid_id
"""
ACTIVE_ON = "c.valid_from <= :on AND (c.valid_to IS NULL OR c.valid_to > :on)"
# Contacts are seen through their households: the caller's scope is the households'.
CONTACTS = kit.Listing(
    CONTACT_COLUMNS,
    CONTACT_FROM,
    ("household", "h"),
    kit.by_id("c"),
    unit_code="v.code",
    grid_code="g.code",
    personal="contacts",
)
STATUS = {"active": "c.valid_to IS NULL", "ended": "c.valid_to IS NOT NULL", "all": None}


class ContactQuery(kit.PageQuery, kit.PlaceFilter, kit.PersonalQuery):
    member_id: int | None
    household_id: int | None
    role: str | None
    status: str
    on: date | None


def contacts_page(session: Session, scope: Scope, **query: Unpack[ContactQuery]) -> PageResult:
    """Assignments in the caller's scope, keyset on id; ``on`` (a day) overrides ``status``."""
    on, status = query["on"], STATUS.get(query["status"])
    if on is not None:
        period = kit.Clause(ACTIVE_ON, {"on": on})
    else:
        period = kit.Clause(status) if status else None
    return CONTACTS.page(
        session,
        scope,
        query,
        period,
        kit.equal("c.member_id", "member_id", query["member_id"]),
        kit.equal("c.household_id", "household_id", query["household_id"]),
        kit.equal("c.role", "role", query["role"]),
    )


# Households on record without an active primary contact.
UNCOVERED = kit.Listing(
    "h.id, h.head_name, v.code AS village_code, g.code AS grid_code, h.hamlet, h.address",
    "FROM households h JOIN admin_units v ON v.id = h.village_id "
    "LEFT JOIN grids g ON g.id = h.grid_id",
    ("household", "h"),
    kit.by_id("h"),
    unit_code="v.code",
    grid_code="g.code",
    personal="uncovered",
)
NO_PRIMARY = (
    "h.removed_at IS NULL AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.household_id = h.id"
    " AND c.role = 'primary' AND c.valid_to IS NULL)"
)


class UncoveredQuery(kit.PageQuery, kit.PlaceFilter, kit.PersonalQuery):
    pass


def uncovered_page(session: Session, scope: Scope, **query: Unpack[UncoveredQuery]) -> PageResult:
    return UNCOVERED.page(session, scope, query, kit.Clause(NO_PRIMARY))


def capacity_sql(alias: str) -> str:
    """A member's own limit: hard max, lowered by its capacity and the probationary cap."""
    return (
        f"LEAST(:hard_max, COALESCE({alias}.capacity, :hard_max), "
        f"CASE WHEN {alias}.status = 'probationary' THEN :probationary_max ELSE :hard_max END)"
    )


def normal_sql(alias: str) -> str:
    return (
        f"LEAST(CASE WHEN {alias}.is_hub THEN :hub_normal_max ELSE :normal_max END, "
        f"{capacity_sql(alias)})"
    )


def primary_allowed_sql(alias: str) -> str:
    """The county's policy: may this member hold a primary contact?"""
    return (
        f"(NOT {alias}.flowing OR :flowing_primary) "
        f"AND ({alias}.status <> 'probationary' OR :probationary_primary)"
    )


def limit_params(limits: ContactLimits) -> dict[str, Any]:
    return {
        "hard_max": limits.hard_max,
        "normal_max": limits.normal_max,
        "hub_normal_max": limits.hub_normal_max,
        "probationary_max": limits.probationary_max,
        "normal_min": limits.normal_min,
        "flowing_primary": "primary" in limits.flowing_roles,
        "probationary_primary": "primary" in limits.probationary_roles,
    }


# A member may look after a household of its own village, or of any village its Party
# organization's unit covers (a township 党委 over several villages).
COVERS = """
    (m.village_id = h.village_id OR EXISTS (
        SELECT 1 FROM party_orgs o JOIN admin_units hv ON hv.id = h.village_id
        LEFT JOIN admin_units ht ON ht.id = hv.parent_id
        WHERE o.id = m.party_org_id AND o.unit_id IN (hv.id, hv.parent_id, ht.parent_id)))
"""

# Why an active assignment no longer holds (NULL: it does). Shared by reconcile and auto-assign.
STALE_REASON = f"""
    CASE WHEN h.removed_at IS NOT NULL THEN 'household_removed'
         WHEN m.left_at IS NOT NULL THEN 'member_left'
         WHEN h.village_id <> c.village_id AND NOT {COVERS} THEN 'household_moved'
         WHEN NOT {COVERS} THEN 'invalid'
         WHEN c.role = 'primary' AND NOT ({primary_allowed_sql("m")}) THEN 'invalid'
    END
"""


# -- coverage -------------------------------------------------------------------------------------

GROUP_KEYS = {
    # level: (household key 1, household key 2, member key 1, member key 2)
    "grid": ("h.village_id", "COALESCE(h.grid_id, 0)", "m.village_id", "COALESCE(m.grid_id, 0)"),
    "village": ("h.village_id", "0", "m.village_id", "0"),
    "township": ("hv.parent_id", "0", "mv.parent_id", "0"),
}


def coverage_sql(by: str, household_scope: str, member_scope: str) -> str:
    hk1, hk2, mk1, mk2 = GROUP_KEYS[by]
    if by == "grid":
        label = """
            'grid' AS level, g.code AS code, COALESCE(g.name, '未入格') AS name,
            u.code AS village_code, u.code AS sort1, COALESCE(g.code, '') AS sort2
        """
    elif by == "village":
        label = "'village' AS level, u.code, u.name, u.code AS village_code, u.code AS sort1, ''"
    else:
        label = "'township' AS level, u.code, u.name, NULL AS village_code, u.code AS sort1, ''"
    return f"""
    WITH hh AS (
        SELECT {hk1} AS k1, {hk2} AS k2, count(*) AS households,
               count(c.id) AS covered,
               avg(ST_Distance(m.geom::geography, h.geom::geography, false)) AS avg_distance
        FROM households h JOIN admin_units hv ON hv.id = h.village_id
        LEFT JOIN contacts c ON c.household_id = h.id AND c.role = 'primary'
             AND c.valid_to IS NULL
        LEFT JOIN party_members m ON m.id = c.member_id
        WHERE {household_scope} AND h.removed_at IS NULL AND hv.code LIKE :prefix
        GROUP BY 1, 2
    ), load AS (
        SELECT c.member_id, count(*) AS n FROM contacts c
        JOIN households h ON h.id = c.household_id
        WHERE c.valid_to IS NULL AND h.removed_at IS NULL AND h.village_id = ANY(:villages)
        GROUP BY 1
    ), mm AS (
        SELECT {mk1} AS k1, {mk2} AS k2, count(*) AS members,
               count(*) FILTER (WHERE l.n > 0) AS contacting,
               count(*) FILTER (WHERE l.n > {normal_sql("m")}) AS over_normal,
               count(*) FILTER (WHERE l.n > {capacity_sql("m")}) AS over_capacity,
               count(*) FILTER (WHERE l.n > 0 AND l.n < :normal_min) AS under_min,
               count(*) FILTER (WHERE m.is_hub) AS hubs
        FROM party_members m JOIN admin_units mv ON mv.id = m.village_id
        LEFT JOIN load l ON l.member_id = m.id
        WHERE {member_scope} AND m.left_at IS NULL AND mv.code LIKE :prefix
        GROUP BY 1, 2
    )
    SELECT {label},
           COALESCE(hh.households, 0)::int AS households, COALESCE(hh.covered, 0)::int AS covered,
           COALESCE(mm.members, 0)::int AS members,
           COALESCE(mm.contacting, 0)::int AS members_contacting,
           COALESCE(mm.over_normal, 0)::int AS members_over_normal,
           COALESCE(mm.over_capacity, 0)::int AS members_over_capacity,
           COALESCE(mm.under_min, 0)::int AS members_under_min,
           COALESCE(mm.hubs, 0)::int AS hubs,
           round(hh.avg_distance::numeric, 1)::float AS avg_distance_m
    FROM hh FULL JOIN mm ON mm.k1 = hh.k1 AND mm.k2 = hh.k2
    JOIN admin_units u ON u.id = COALESCE(hh.k1, mm.k1)
    LEFT JOIN grids g ON g.id = NULLIF(COALESCE(hh.k2, mm.k2), 0)
    ORDER BY 5, 6
    """


# -- auto-assign inputs --------------------------------------------------------------------------

# One row per household on record in the villages: where it is, its grid and hamlet (as small
# integers, 0 = unknown), its active primary contact and whether that contact still holds.
HOUSEHOLD_INPUT = f"""
    WITH hm AS (
        SELECT village_id, hamlet, row_number() OVER () AS code
        FROM (SELECT DISTINCT village_id, hamlet FROM households
              WHERE village_id = ANY(:villages) AND removed_at IS NULL
                AND hamlet IS NOT NULL) d
    )
    SELECT h.id, h.village_id, COALESCE(h.grid_id, 0), ST_X(h.geom), ST_Y(h.geom),
           COALESCE(hm.code, 0), COALESCE(c.id, 0), COALESCE(c.member_id, 0),
           COALESCE(c.id IS NOT NULL AND {STALE_REASON} IS NULL, false)
    FROM households h
    LEFT JOIN hm ON hm.village_id = h.village_id AND hm.hamlet = h.hamlet
    LEFT JOIN contacts c ON c.household_id = h.id AND c.role = 'primary' AND c.valid_to IS NULL
    LEFT JOIN party_members m ON m.id = c.member_id
    WHERE h.village_id = ANY(:villages) AND h.removed_at IS NULL
    ORDER BY h.village_id, h.id
"""
HOUSEHOLD_FIELDS = [
    ("id", "i8"),
    ("village_id", "i8"),
    ("grid_id", "i8"),
    ("lon", "f8"),
    ("lat", "f8"),
    ("hamlet", "i8"),
    ("contact_id", "i8"),
    ("member_id", "i8"),
    ("contact_valid", "?"),
]

# One row per member on record who may hold a primary contact: home (or, when none is recorded,
# the middle of its grid or village), limits, and how many assignments it holds that still hold.
MEMBER_INPUT = f"""
    WITH load AS (
        SELECT c.member_id, count(*) AS n
        FROM contacts c JOIN households h ON h.id = c.household_id
        JOIN party_members m ON m.id = c.member_id
        WHERE c.valid_to IS NULL AND m.village_id = ANY(:villages) AND {STALE_REASON} IS NULL
        GROUP BY 1
    )
    SELECT m.id, m.village_id, COALESCE(m.grid_id, 0),
           ST_X(pt.p), ST_Y(pt.p), m.geom IS NULL,
           {capacity_sql("m")}, {normal_sql("m")}, COALESCE(load.n, 0)
    FROM party_members m JOIN admin_units v ON v.id = m.village_id
    LEFT JOIN grids g ON g.id = m.grid_id
    CROSS JOIN LATERAL (
        SELECT COALESCE(m.geom, ST_PointOnSurface(g.geom), ST_PointOnSurface(v.geom)) AS p) pt
    LEFT JOIN load ON load.member_id = m.id
    WHERE m.village_id = ANY(:villages) AND m.left_at IS NULL AND {primary_allowed_sql("m")}
    ORDER BY m.village_id, m.id
"""
MEMBER_FIELDS = [
    ("id", "i8"),
    ("village_id", "i8"),
    ("grid_id", "i8"),
    ("lon", "f8"),
    ("lat", "f8"),
    ("estimated", "?"),
    ("capacity", "i4"),
    ("normal", "i4"),
    ("load", "i8"),
]

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def copy_columns(
    session: Session, sql: str, params: dict[str, Any], fields: Sequence[tuple[str, str]]
) -> dict[str, NDArray[Any]]:
    """Run ``sql`` through binary COPY and decode it with numpy, column by column.

    Every column must be fixed-width and never NULL (COALESCE in the query); the decoder checks
    each field's length word, so a NULL or a wider type fails loudly instead of misreading.
    """
    query = _PARAM.sub(r"%(\1)s", sql)
    buffer = bytearray()
    with (
        raw_connection(session)
        .cursor()
        .copy(f"COPY ({query}) TO STDOUT (FORMAT binary)", params) as copy
    ):
        for chunk in copy:
            buffer += chunk
    header = 11 + 4 + 4  # signature, flags, header extension length (0)
    body = memoryview(buffer)[header : len(buffer) - 2]  # trailer: int16 −1
    layout: list[tuple[str, str]] = [("_count", ">i2")]
    for name, kind in fields:
        layout += [(f"_{name}_len", ">i4"), (name, ">" + kind if kind != "?" else "?")]
    dtype = np.dtype(layout)
    records = np.frombuffer(body, dtype=dtype)
    if len(records):
        if (records["_count"] != len(fields)).any():
            raise ValueError("unexpected column count in COPY output")
        for name, kind in fields:
            if (records[f"_{name}_len"] != np.dtype(kind).itemsize).any():
                raise ValueError(f"column {name} is NULL or not {kind}")
    return {name: records[name].astype(kind) for name, kind in fields}
