"""The demo county generator: determinism, formats, and the spatial write rules the loader runs.

Areas are measured the way the PostGIS rules measure them: overlay in lon/lat (planar, as
``ST_Difference``/``ST_Intersection`` on geometry do), then the area of the result in m², here in
a Lambert azimuthal equal-area projection centred on the county.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer

from gridgov.demo.generate import (
    CENTER_LAT,
    CENTER_LON,
    COUNTY_CODE,
    COUNTY_NAME,
    HOUSEHOLD_TAGS,
    REFERENCE_YEAR,
    TAG_NAMES,
    DemoCounty,
    generate_county,
    id_check_digit,
)

SMALL = {"households": 5000, "townships": 3, "villages": 20, "grids": 150}
SMALL_SEED = 11

_LAEA = Transformer.from_crs(
    "EPSG:4326",
    f"+proj=laea +lat_0={CENTER_LAT} +lon_0={CENTER_LON} +ellps=WGS84 +units=m",
    always_xy=True,
)


_GEOD = Geod(ellps="WGS84")


def _to_m(xy: np.ndarray) -> np.ndarray:
    x, y = _LAEA.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def area_m2(geoms: object) -> np.ndarray:
    """Equal-area m² of lon/lat geometries (scalar or array)."""
    return np.asarray(shapely.area(shapely.transform(geoms, _to_m)), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> DemoCounty:
    return generate_county(seed=SMALL_SEED, **SMALL)


@pytest.fixture(scope="module")
def full() -> tuple[DemoCounty, float]:
    t0 = time.perf_counter()
    county = generate_county()
    return county, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# spatial rule checks, shared by the small and the full county
# ---------------------------------------------------------------------------------------------


def check_nesting(
    children: Sequence[shapely.Geometry], parents: Sequence[shapely.Geometry]
) -> None:
    """Each child inside its parent.

    The rule allows 2 m (ST_Covers, else ST_Covers of the parent buffered by 2 m); the
    generator builds every level from one set of noded faces, so even the strict test holds.
    """
    ch = np.array(children, dtype=object)
    pa = np.array(parents, dtype=object)
    assert shapely.covers(pa, ch).all()
    outside = area_m2(shapely.difference(ch, pa))
    assert outside.max() < 0.01, f"child outside parent by {outside.max():.4f} m²"


def check_siblings(geoms: Sequence[shapely.Geometry], parent_keys: Sequence[str]) -> None:
    """Siblings do not overlap, judged as the rule does.

    The rule flags a pair when ``ST_Relate(a, b, '2********')`` and the *geodesic* area of
    ``ST_Intersection(a, b)::geography`` exceeds 1 m². Geodesic area matters: a needle-thin
    planar sliver along a long edge has a geodesic area of many m².
    """
    arr = np.array(geoms, dtype=object)
    keys = np.array(parent_keys, dtype=object)
    tree = shapely.STRtree(arr)
    a, b = tree.query(arr, predicate="intersects")
    sel = (a < b) & (keys[a] == keys[b])
    a, b = a[sel], b[sel]
    if len(set(parent_keys)) == len(parent_keys):
        return  # only children: no siblings
    assert len(a) > 0  # neighbours exist and touch
    interior = shapely.relate_pattern(arr[a], arr[b], "2********")
    worst = 0.0
    for i, j in zip(a[interior], b[interior], strict=True):
        inter = shapely.intersection(arr[i], arr[j])
        worst = max(worst, abs(_GEOD.geometry_area_perimeter(inter)[0]))
    assert worst < 0.01, f"siblings overlap by {worst:.4f} m² (geodesic)"


def check_coverage(children: Sequence[shapely.Geometry], parent: shapely.Geometry) -> None:
    """Children tile their parent: only dropped slivers (< 100 m² each) may be missing.

    Measured in lon/lat, scaled to m² at the county's latitude. Projecting the difference
    would not do: it is full of needle-thin slivers between a long parent edge and the
    children's vertices on it, and a long edge that is straight in lon/lat bows in any
    projection (by metres over tens of kilometres), inflating their area.
    """
    missing_deg2 = shapely.difference(parent, shapely.union_all(list(children))).area
    m2_per_deg2 = (111_320.0 * np.cos(np.radians(CENTER_LAT))) * 110_760.0
    assert missing_deg2 * m2_per_deg2 < 2_000, "part of the parent not covered by its children"


def check_all_rules(c: DemoCounty) -> None:
    everything = [c.county, *c.townships, *c.villages]
    geoms = [u.geom for u in everything] + [g.geom for g in c.grids]
    assert all(isinstance(g, shapely.MultiPolygon) for g in geoms)
    assert shapely.is_valid(np.array(geoms, dtype=object)).all()
    # No sliver parts survive.
    parts = shapely.get_parts(np.array(geoms, dtype=object))
    assert area_m2(parts).min() >= 99.0
    # Inside China, around the nominal centre in southern Hunan.
    minx, miny, maxx, maxy = c.county.geom.bounds
    assert 110.5 < minx < CENTER_LON < maxx < 112.5
    assert 25.5 < miny < CENTER_LAT < maxy < 27.5

    by_code = {u.code: u for u in everything}
    check_nesting([t.geom for t in c.townships], [c.county.geom] * len(c.townships))
    check_nesting([v.geom for v in c.villages], [by_code[v.parent_code].geom for v in c.villages])
    check_nesting([g.geom for g in c.grids], [by_code[g.village_code].geom for g in c.grids])
    check_siblings([t.geom for t in c.townships], [COUNTY_CODE] * len(c.townships))
    check_siblings([v.geom for v in c.villages], [v.parent_code for v in c.villages])
    check_siblings([g.geom for g in c.grids], [g.village_code for g in c.grids])

    check_coverage([t.geom for t in c.townships], c.county.geom)
    for t in c.townships:
        check_coverage([v.geom for v in c.villages if v.parent_code == t.code], t.geom)

    # Every household strictly inside its own grid, which belongs to its village.
    grid_by_code = {g.code: g for g in c.grids}
    hh = c.households
    g_geoms = np.array([grid_by_code[code].geom for code in hh.grid_code], dtype=object)
    shapely.prepare(g_geoms)
    assert shapely.contains_xy(g_geoms, hh.lon, hh.lat).all()
    assert all(g.startswith(v) for g, v in zip(hh.grid_code, hh.village_code, strict=True))
    m = c.members
    m_geoms = np.array([grid_by_code[code].geom for code in m.grid_code], dtype=object)
    shapely.prepare(m_geoms)
    assert shapely.contains_xy(m_geoms, m.lon, m.lat).all()
    assert all(g.startswith(v) for g, v in zip(m.grid_code, m.village_code, strict=True))


# ---------------------------------------------------------------------------------------------
# ID numbers
# ---------------------------------------------------------------------------------------------


def test_id_check_digit_known_examples() -> None:
    # The worked example of GB 11643-1999 and a widely published valid number.
    assert id_check_digit("11010519491231002") == "X"
    assert id_check_digit("44052418800101001") == "4"
    assert id_check_digit("43990119800101001") in "0123456789X"


def test_id_check_digit_rejects_bad_input() -> None:
    for bad in (
        "1234",
        "1101051949123100X",
        "110105194912310021",
        "１１０１０５１９４９１２３１００２",
    ):
        with pytest.raises(ValueError):
            id_check_digit(bad)


def valid_id(s: str, birth_min: int = 1920) -> bool:
    if not re.fullmatch(r"\d{17}[\dX]", s) or not s.startswith(COUNTY_CODE):
        return False
    y, mo, d = int(s[6:10]), int(s[10:12]), int(s[12:14])
    if not (birth_min <= y <= REFERENCE_YEAR and 1 <= mo <= 12):
        return False
    np.datetime64(f"{y:04d}-{mo:02d}-{d:02d}")  # raises on e.g. 02-30
    return id_check_digit(s[:17]) == s[17]


# ---------------------------------------------------------------------------------------------
# small county
# ---------------------------------------------------------------------------------------------


def assert_same(a: DemoCounty, b: DemoCounty) -> None:
    units_a = [a.county, *a.townships, *a.villages]
    units_b = [b.county, *b.townships, *b.villages]
    assert [(u.code, u.name, u.level, u.parent_code) for u in units_a] == [
        (u.code, u.name, u.level, u.parent_code) for u in units_b
    ]
    assert [u.geom.wkb for u in units_a] == [u.geom.wkb for u in units_b]
    assert [(g.code, g.name, g.village_code, g.kind, g.geom.wkb) for g in a.grids] == [
        (g.code, g.name, g.village_code, g.kind, g.geom.wkb) for g in b.grids
    ]
    assert a.party_orgs == b.party_orgs
    for table in ("households", "members"):
        ta, tb = getattr(a, table), getattr(b, table)
        for field in ta.__dataclass_fields__:
            va, vb = getattr(ta, field), getattr(tb, field)
            if isinstance(va, np.ndarray):
                assert va.dtype == vb.dtype and np.array_equal(va, vb), field
            else:
                assert va == vb, field


def test_deterministic(small: DemoCounty) -> None:
    assert_same(small, generate_county(seed=SMALL_SEED, **SMALL))


def test_seed_matters(small: DemoCounty) -> None:
    other = generate_county(seed=SMALL_SEED + 1, **SMALL)
    assert other.county.geom.wkb != small.county.geom.wkb
    assert other.households.head_name != small.households.head_name


def test_counts(small: DemoCounty) -> None:
    assert len(small.townships) == SMALL["townships"]
    assert len(small.villages) == SMALL["villages"]
    assert 0.97 * SMALL["grids"] <= len(small.grids) <= SMALL["grids"]
    assert len(small.households) == SMALL["households"]
    assert len(small.members) == round(0.1 * SMALL["households"])
    assert len(small.party_orgs) == len(small.villages)
    hh = small.households
    n = len(hh)
    for col in ("village_code", "grid_code", "head_name", "phone", "id_number", "address"):
        assert len(getattr(hh, col)) == n
    assert len(hh.tags) == len(hh.hamlet) == len(hh.lon) == len(hh.lat) == len(hh.size) == n
    m = small.members
    for col in ("grid_code", "name", "phone", "id_number", "gender", "status"):
        assert len(getattr(m, col)) == len(m)
    assert len(m.flowing) == len(m.lon) == len(m.lat) == len(m.joined_year) == len(m)
    # Every village has households and at least one general grid.
    assert set(hh.village_code) == {v.code for v in small.villages}
    general_villages = {g.village_code for g in small.grids if g.kind == "general"}
    assert general_villages == {v.code for v in small.villages}


def test_codes_and_names(small: DemoCounty) -> None:
    c = small
    assert (c.county.code, c.county.name, c.county.level) == (COUNTY_CODE, COUNTY_NAME, "county")
    assert c.county.parent_code is None
    for t in c.townships:
        assert re.fullmatch(COUNTY_CODE + r"[12]\d\d", t.code)
        assert t.level == "township" and t.parent_code == COUNTY_CODE
        # 镇 get 100–199, 乡 200–299.
        assert t.name.endswith("镇" if t.code[6] == "1" else "乡")
    for v in c.villages:
        assert re.fullmatch(r"\d{12}", v.code) and v.code[:9] == v.parent_code
        assert 201 <= int(v.code[9:]) <= 399
        assert v.level == "village" and v.name.endswith("村")
    codes = [u.code for u in [c.county, *c.townships, *c.villages]] + [g.code for g in c.grids]
    assert len(codes) == len(set(codes))
    assert len({v.name for v in c.villages}) == len(c.villages)
    village_names = {v.code: v.name for v in c.villages}
    for g in c.grids:
        assert re.fullmatch(r"\d{15}", g.code) and g.code[:12] == g.village_code
        serial = int(g.code[12:])
        if g.kind == "general":
            assert 1 <= serial <= 899
            assert g.name == f"{village_names[g.village_code]}第{serial}网格"
        else:
            assert g.kind == "dedicated" and serial >= 900
            assert g.name.endswith("专属网格")
    # Serials of general grids run 001, 002, … without gaps within a village.
    serials: dict[str, list[int]] = {}
    for g in c.grids:
        if g.kind == "general":
            serials.setdefault(g.village_code, []).append(int(g.code[12:]))
    assert all(s == list(range(1, len(s) + 1)) for s in serials.values())


def test_geometry_rules_small(small: DemoCounty) -> None:
    check_all_rules(small)


def test_county_area(small: DemoCounty) -> None:
    assert 1_800e6 <= float(area_m2(small.county.geom)) <= 2_200e6


def test_dedicated_grids(small: DemoCounty) -> None:
    dedicated = [g for g in small.grids if g.kind == "dedicated"]
    assert len(dedicated) >= 1
    for d in dedicated:
        assert d.code.endswith("900")
        general = [
            g.geom for g in small.grids if g.village_code == d.village_code and g.kind == "general"
        ]
        # The general grids cover the village minus the compound: no overlap with it.
        assert area_m2(shapely.intersection(np.array(general, dtype=object), d.geom)).max() < 0.01
        assert 5_000 < float(area_m2(d.geom)) < 200_000


def test_households(small: DemoCounty) -> None:
    hh = small.households
    assert hh.lon.dtype == np.float64 and hh.lat.dtype == np.float64
    assert hh.size.min() >= 1 and hh.size.max() <= 8
    assert all(re.fullmatch(r"1[3-9]\d{9}", p) for p in hh.phone)
    assert len(set(hh.phone)) == len(hh.phone)
    assert all(valid_id(s) for s in hh.id_number)
    assert len(set(hh.id_number)) == len(hh.id_number)
    assert all(2 <= len(n) <= 4 for n in hh.head_name)
    assert all(re.fullmatch(r"\d+组", h) for h in hh.hamlet)
    village = {v.code: v for v in small.villages}
    township = {t.code: t for t in small.townships}
    for vc, hamlet, addr in zip(hh.village_code, hh.hamlet, hh.address, strict=True):
        v = village[vc]
        prefix = township[v.parent_code].name + v.name + hamlet
        assert addr.startswith(prefix) and re.fullmatch(r"\d+号", addr[len(prefix) :])
    # Addresses are unique; the 组 numbers of a village run 1..n.
    assert len(set(hh.address)) == len(hh.address)
    groups: dict[str, set[int]] = {}
    for vc, h in zip(hh.village_code, hh.hamlet, strict=True):
        groups.setdefault(vc, set()).add(int(h[:-1]))
    assert all(g == set(range(1, len(g) + 1)) for g in groups.values())
    assert all(set(t) <= set(TAG_NAMES) and len(t) <= 2 and len(set(t)) == len(t) for t in hh.tags)
    # Households are grouped by village, in village code order.
    assert hh.village_code == sorted(hh.village_code)


def test_households_cluster_in_hamlets(small: DemoCounty) -> None:
    """Households of one 组 sit within a few hundred metres of each other."""
    hh = small.households
    xy = _to_m(np.column_stack([hh.lon, hh.lat]))
    keys = np.array([f"{v}-{h}" for v, h in zip(hh.village_code, hh.hamlet, strict=True)])
    spreads = []
    for key in np.unique(keys):
        pts = xy[keys == key]
        if len(pts) >= 10:
            spreads.append(np.sqrt(((pts - pts.mean(axis=0)) ** 2).sum(axis=1)).mean())
    assert 80 < np.median(spreads) < 600


def test_members(small: DemoCounty) -> None:
    m = small.members
    hh = small.households
    assert set(m.gender) <= {"M", "F"}
    assert set(m.status) <= {"full", "probationary"}
    assert m.flowing.dtype == np.bool_
    assert all(valid_id(s) for s in m.id_number)
    assert len(set(m.id_number)) == len(m.id_number)
    assert all(re.fullmatch(r"1[3-9]\d{9}", p) for p in m.phone)
    # The 17th digit of the ID number is odd for men, even for women.
    assert all(
        (int(s[16]) % 2 == 1) == (g == "M") for s, g in zip(m.id_number, m.gender, strict=True)
    )
    birth = np.array([int(s[6:10]) for s in m.id_number])
    assert (m.joined_year >= birth + 18).all() and (m.joined_year <= REFERENCE_YEAR).all()
    prob = np.array(m.status) == "probationary"
    assert (m.joined_year[prob] >= REFERENCE_YEAR - 1).all()
    assert (m.joined_year[~prob] <= REFERENCE_YEAR - 1).all()
    # Members that are household heads share the head's ID number; the rest are new people.
    heads = dict(zip(hh.id_number, hh.head_name, strict=True))
    shared = [heads[i] == n for i, n in zip(m.id_number, m.name, strict=True) if i in heads]
    assert shared and all(shared)
    assert 0.2 < len(shared) / len(m) < 0.7
    # Each member's home is within metres of a household of the same grid.
    hh_xy = _to_m(np.column_stack([hh.lon, hh.lat]))
    m_xy = _to_m(np.column_stack([m.lon, m.lat]))
    hh_grid = np.array(hh.grid_code)
    for i in range(0, len(m), 7):
        same = hh_grid == m.grid_code[i]
        assert np.sqrt(((hh_xy[same] - m_xy[i]) ** 2).sum(axis=1)).min() < 20.0


def test_party_orgs(small: DemoCounty) -> None:
    label = {"committee": "党委", "general_branch": "党总支", "branch": "党支部"}
    villages = {v.code: v for v in small.villages}
    members_by_village: dict[str, set[str]] = {}
    for vc, name in zip(small.members.village_code, small.members.name, strict=True):
        members_by_village.setdefault(vc, set()).add(name)
    assert sorted(o.village_code for o in small.party_orgs) == sorted(villages)
    for o in small.party_orgs:
        assert o.name == villages[o.village_code].name + label[o.kind]
        assert o.secretary_name in members_by_village.get(o.village_code, {o.secretary_name})
    kinds = Counter(o.kind for o in small.party_orgs)
    assert kinds["branch"] > len(small.party_orgs) / 2


def test_progress_reported() -> None:
    calls: list[tuple[str, int, int]] = []
    generate_county(
        households=300, townships=1, villages=3, grids=9, seed=3,
        progress=lambda s, d, t: calls.append((s, d, t)),
    )  # fmt: skip
    stages = [s for s, _, _ in calls]
    assert {"county", "townships", "villages", "grids", "households", "members"} <= set(stages)
    assert all(0 <= d <= t for _, d, t in calls)


def test_tiny_county_still_follows_rules() -> None:
    c = generate_county(households=300, townships=1, villages=3, grids=9, seed=5)
    assert len(c.villages) == 3 and len(c.households) == 300
    check_all_rules(c)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"townships": 0},
        {"townships": 5, "villages": 4},
        {"villages": 10, "grids": 9},
        {"villages": 10, "grids": 20, "households": 5},
    ],
)
def test_rejects_impossible_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        generate_county(**kwargs)


# ---------------------------------------------------------------------------------------------
# default size
# ---------------------------------------------------------------------------------------------


def test_full_size_speed_and_counts(full: tuple[DemoCounty, float]) -> None:
    c, seconds = full
    assert seconds < 20.0, f"generation took {seconds:.1f} s"
    assert len(c.townships) == 20 and len(c.villages) == 300
    assert 2900 <= len(c.grids) <= 3000
    assert len(c.households) == 150_000
    assert len(c.members) == 15_000
    general = Counter(g.village_code for g in c.grids if g.kind == "general")
    assert min(general.values()) >= 4 and max(general.values()) <= 20
    assert 8 <= np.mean(list(general.values())) <= 11
    dedicated = [g for g in c.grids if g.kind == "dedicated"]
    assert 5 <= len(dedicated) <= 12
    kinds = Counter(o.kind for o in c.party_orgs)
    assert kinds["committee"] >= 1 and kinds["general_branch"] >= 10
    assert kinds["branch"] > 0.7 * len(c.party_orgs)


def test_full_size_rules(full: tuple[DemoCounty, float]) -> None:
    check_all_rules(full[0])


def test_full_size_proportions(full: tuple[DemoCounty, float]) -> None:
    c = full[0]
    hh = c.households
    n = len(hh)
    assert 3.0 <= hh.size.mean() <= 3.4
    assert np.mean(hh.size <= 2) > 0.3  # many elderly one- and two-person households
    no_tag = np.mean([len(t) == 0 for t in hh.tags])
    assert 0.76 <= no_tag <= 0.84
    counts = Counter(tag for tags in hh.tags for tag in tags)
    for tag, share in HOUSEHOLD_TAGS:
        observed = counts[tag] / n
        # Within 25 % of the target, plus binomial noise for the rare ones.
        slack = 0.25 * share + 4 * np.sqrt(share / n)
        assert abs(observed - share) <= slack, (tag, observed, share)
    assert len(set(hh.id_number)) == n and len(set(hh.phone)) == n
    m = c.members
    assert 0.035 <= np.mean(np.array(m.status) == "probationary") <= 0.065
    assert 0.06 <= m.flowing.mean() <= 0.10
    assert 0.6 <= np.mean(np.array(m.gender) == "M") <= 0.85
    ids = set(hh.id_number) | set(m.id_number)
    heads_in_members = len(set(hh.id_number) & set(m.id_number))
    assert len(ids) == n + len(m) - heads_in_members  # no ID number reused by another person
    surnames = Counter(name[:2] if name.startswith("欧阳") else name[0] for name in hh.head_name)
    assert {"王", "李", "张", "刘", "陈"} <= {s for s, _ in surnames.most_common(12)}
