"""A realistic, deterministic demo county: units, Party organisations, grids, households, members.

Pure Python (numpy + shapely 2), no database. The output is meant to be copied into PostGIS by
the demo loader, which then runs the same write rules as every other write path
(``gridgov.hierarchy.rules``), so the generator guarantees them by construction:

* every polygon is a valid ``MultiPolygon`` in EPSG:4326 (lon/lat), without parts < 100 m²;
* townships tile the county, villages tile their township, grids tile their village (the general
  grids cover the village minus its dedicated grid, if any). Children of one parent are first
  the cells of ONE Voronoi diagram clipped by that parent; then all grid edges are noded
  together (snap-rounded to 1 mm) and every unit at every level is rebuilt as a union of the
  resulting faces (see ``_shared_topology``). So a child is covered by its parent exactly
  (strict ``ST_Covers``, no tolerance needed) and siblings meet along identical vertex chains:
  their intersection is a line, never a sliver, in planar and in geodesic terms;
* every household lies strictly inside its grid, at least 1 m from the grid's edge, so a later
  coordinate rounding (e.g. WKT, ``ST_SnapToGrid``) cannot push it out; members live within a few
  metres of a household of their village, in the same grid.

Geometry is built in a local metric frame (metres east/north of the county centre) and mapped to
lon/lat at the very end with an *affine* map (a local equirectangular projection on the WGS-84
ellipsoid). The map works vertex by vertex, so identical vertices stay identical and the exact
topology above survives the conversion. Edges are straight in lon/lat; a township border can
run straight for ~20 km, where a straight lon/lat line and a geodesic part by a few metres;
the rules only ever compare geometries built from the same vertices, so this does not matter.

Determinism: all randomness comes from one ``numpy.random.default_rng(seed)``, drawn in a fixed
order; nothing depends on set or dict iteration order or on the clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgov.demo import names as N

__all__ = [
    "CENTER_LAT",
    "CENTER_LON",
    "COUNTY_CODE",
    "COUNTY_NAME",
    "HOUSEHOLD_TAGS",
    "REFERENCE_YEAR",
    "TAG_NAMES",
    "DemoCounty",
    "DemoGrid",
    "DemoHouseholds",
    "DemoMembers",
    "DemoPartyOrg",
    "DemoUnit",
    "generate_county",
    "id_check_digit",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
Progress = Callable[[str, int, int], None]

COUNTY_CODE = "439901"  # Hunan (43) prefix; 99xx is not used by any real county
COUNTY_NAME = "云岭县（演示）"
COUNTY_ROOT = "云岭"  # the seat town is named after the county
CENTER_LON = 111.45  # hill country of southern Hunan (永州/郴州 area)
CENTER_LAT = 26.40
REFERENCE_YEAR = 2025  # "now" for ages and Party years: fixed so output never depends on the clock

MIN_PART_M2 = 100.0  # polygon parts smaller than this are slivers, dropped
# The shared topology is noded by snap-rounding onto a 1 mm grid (in the metric frame): exact
# and robust, unlike floating noding, which may merge or miss near-coincident edges.
NODING_GRID_M = 1e-3
EDGE_MARGIN_M = 1.0  # households keep this distance from their grid's edge
MEMBER_JITTER_M = 3.0  # a member's home point is a household point moved by about this much

# 重点人群 tags with their target share of households. Exactly these strings are stored.
HOUSEHOLD_TAGS: tuple[tuple[str, float], ...] = (
    ("低保户", 0.04),
    ("脱贫户", 0.07),
    ("防返贫监测户", 0.015),
    ("特困供养", 0.008),
    ("高风险老人", 0.03),
    ("失能失智老人", 0.01),
    ("留守/困境儿童", 0.03),
    ("重度残疾", 0.015),
    ("严重精神障碍", 0.004),
    ("计生特殊家庭", 0.005),
    ("矛盾纠纷户/信访户", 0.003),
    ("社区矫正/刑满释放", 0.002),
)
TAG_NAMES: tuple[str, ...] = tuple(t for t, _ in HOUSEHOLD_TAGS)
MAX_TAGS_PER_HOUSEHOLD = 2

# GB 11643-1999 居民身份证号: weights of the first 17 digits and the ISO 7064 MOD 11-2 check map.
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = "10X98765432"


# ---------------------------------------------------------------------------------------------
# Output types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUnit:
    """An administrative unit: the county, a township (乡镇) or a village (行政村)."""

    code: str
    name: str
    level: str  # "county" | "township" | "village"
    parent_code: str | None
    geom: shapely.MultiPolygon


@dataclass(frozen=True)
class DemoPartyOrg:
    """The Party organisation of one village."""

    village_code: str
    name: str
    kind: str  # "committee" 党委 | "general_branch" 党总支 | "branch" 党支部
    secretary_name: str
    secretary_phone: str | None = None  # extra: the secretary is one of the village's members


@dataclass(frozen=True)
class DemoGrid:
    """A grid (网格) inside one village."""

    code: str
    name: str
    village_code: str
    kind: str  # "general" | "dedicated"
    geom: shapely.MultiPolygon


# Columnar tables: plain dataclasses with eq=False, because == on numpy fields is ambiguous.
@dataclass(eq=False)
class DemoHouseholds:
    """Households, one row per index across all columns (ready for COPY)."""

    village_code: list[str]
    grid_code: list[str]
    head_name: list[str]
    phone: list[str]
    id_number: list[str]
    address: list[str]
    lon: FloatArray
    lat: FloatArray
    size: IntArray
    tags: list[list[str]]
    hamlet: list[str]

    def __len__(self) -> int:
        return len(self.village_code)


@dataclass(eq=False)
class DemoMembers:
    """Party members, one row per index across all columns."""

    village_code: list[str]
    grid_code: list[str]
    name: list[str]
    phone: list[str]
    id_number: list[str]
    gender: list[str]  # "M" | "F" (the party_members check constraint)
    status: list[str]  # "full" | "probationary"
    flowing: BoolArray
    lon: FloatArray
    lat: FloatArray
    joined_year: IntArray

    def __len__(self) -> int:
        return len(self.village_code)


@dataclass(eq=False)
class DemoCounty:
    county: DemoUnit
    townships: list[DemoUnit]
    villages: list[DemoUnit]
    party_orgs: list[DemoPartyOrg]
    grids: list[DemoGrid]
    households: DemoHouseholds
    members: DemoMembers


# ---------------------------------------------------------------------------------------------
# ID numbers
# ---------------------------------------------------------------------------------------------


def id_check_digit(first17: str) -> str:
    """The 18th character of a 居民身份证号 (ISO 7064 MOD 11-2, as in GB 11643-1999)."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"need exactly 17 digits, got {first17!r}")
    total = sum(int(c) * int(w) for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


# ---------------------------------------------------------------------------------------------
# Geometry helpers (all in the local metric frame unless said otherwise)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """Affine local equirectangular frame: metres east/north of (lon0, lat0) on WGS-84."""

    lon0: float
    lat0: float
    m_per_deg_lon: float
    m_per_deg_lat: float

    @classmethod
    def at(cls, lon0: float, lat0: float) -> _Frame:
        a, e2 = 6378137.0, 6.69437999014e-3
        s = math.sin(math.radians(lat0))
        w = 1.0 - e2 * s * s
        meridian = a * (1.0 - e2) / w**1.5  # radius of curvature north-south
        normal = a / math.sqrt(w)  # radius of curvature east-west
        k = math.pi / 180.0
        return cls(lon0, lat0, normal * math.cos(math.radians(lat0)) * k, meridian * k)

    def to_lonlat(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        return self.lon0 + x / self.m_per_deg_lon, self.lat0 + y / self.m_per_deg_lat

    def _coords(self, xy: FloatArray) -> FloatArray:
        lon, lat = self.to_lonlat(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    def geoms_to_lonlat(self, geoms: Sequence[shapely.Geometry]) -> NDArray[np.object_]:
        return shapely.transform(np.asarray(geoms, dtype=object), self._coords)


def _polygon_parts(geom: shapely.Geometry | None) -> list[shapely.Polygon]:
    """All polygons inside a (possibly nested) collection; lines and points are dropped."""
    out: list[shapely.Polygon] = []
    stack = [geom]
    while stack:
        g = stack.pop()
        if g is None or g.is_empty:
            continue
        kind = shapely.get_type_id(g)
        if kind == 3:  # Polygon
            out.append(g)
        elif kind in (6, 7):  # MultiPolygon, GeometryCollection
            stack.extend(shapely.get_parts(g).tolist())
    return out


def _clean(
    geom: shapely.Geometry | None, min_area: float = MIN_PART_M2
) -> shapely.MultiPolygon | None:
    """Valid MultiPolygon without slivers, or None when nothing of substance is left.

    Overlay results may contain degenerate lines/points or tiny parts where a Voronoi edge grazes
    the parent's outline; the loader wants neither.
    """
    if geom is None or geom.is_empty:
        return None
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    parts = [p for p in _polygon_parts(geom) if p.area >= min_area]
    if not parts:
        return None
    # Largest part first: a stable order that also makes "main part" easy for consumers.
    parts.sort(key=lambda p: (-p.area, p.bounds))
    multi = shapely.MultiPolygon(parts)
    if not shapely.is_valid(multi):
        # Parts sharing an edge (possible after make_valid) must be dissolved into one polygon.
        parts = [p for p in _polygon_parts(shapely.union_all(parts)) if p.area >= min_area]
        if not parts:
            return None
        parts.sort(key=lambda p: (-p.area, p.bounds))
        multi = shapely.MultiPolygon(parts)
    return multi


def _dissolve(pieces: Sequence[shapely.Geometry]) -> shapely.MultiPolygon:
    """Union of fully noded pieces, with holes below the sliver size filled.

    A coverage union only removes the shared edges and keeps every vertex of the outline, so
    the outline of a parent is made of exactly the same vertices as its children's edges on it.
    """
    merged = shapely.coverage_union_all(list(pieces))
    if not shapely.is_valid(merged):  # pragma: no cover - faces of one noding form a coverage
        merged = shapely.union_all(list(pieces))
    polygons: list[shapely.Polygon] = []
    for p in _polygon_parts(merged):
        holes = [r for r in p.interiors if shapely.Polygon(r).area >= MIN_PART_M2]
        polygons.append(p if len(holes) == len(p.interiors) else shapely.Polygon(p.exterior, holes))
    out = _clean(shapely.MultiPolygon(polygons)) if polygons else None
    if out is None:  # pragma: no cover - a unit always keeps its non-sliver area
        raise RuntimeError("a unit lost all its area")
    return out


def _shared_topology(
    grids: Sequence[shapely.MultiPolygon],
    grid_village: IntArray,
    village_township: IntArray,
) -> tuple[list[shapely.MultiPolygon], ...]:
    """Rebuild grids, villages, townships and county from ONE noded set of faces.

    Top-down clipping alone leaves two floating-point blemishes, both harmless under the
    rules' tolerances but worth avoiding:

    * a child gets vertices where a Voronoi edge crosses its parent's edge, and such a vertex
      lies a hair (~1e-16°) off that edge, so a strict ``ST_Covers(parent, child)`` fails for
      about half the children and only the 2 m tolerance lets them pass;
    * rebuilding parents as unions of children instead would give neighbouring parents
      different vertex sets along their common border (each gets its own children's vertices),
      and the needle-thin planar slivers between them have a *geodesic* area of many m², so
      ``ST_Area(ST_Intersection(a, b)::geography)`` would report false overlaps.

    Noding all grid edges together and polygonizing gives faces whose shared edges are
    identical; every unit at every level is a union of whole faces, so children are covered
    exactly and siblings meet along identical vertex chains (their intersection is a line).
    """
    arr = np.array(grids, dtype=object)
    noded = shapely.union_all(shapely.boundary(arr), grid_size=NODING_GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    face_idx, grid_idx = shapely.STRtree(arr).query(
        shapely.point_on_surface(faces), predicate="within"
    )
    owner = np.full(len(faces), -1, dtype=np.int64)  # faces in no grid are sliver gaps
    _, first = np.unique(face_idx, return_index=True)
    owner[face_idx[first]] = grid_idx[first]

    def merge(labels: IntArray, n: int) -> list[shapely.MultiPolygon]:
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(n + 1))
        return [_dissolve(faces[order[bounds[k] : bounds[k + 1]]]) for k in range(n)]

    n_villages = len(village_township)
    n_townships = int(village_township.max()) + 1
    f_village = np.where(owner >= 0, grid_village[np.maximum(owner, 0)], -1)
    f_township = np.where(f_village >= 0, village_township[np.maximum(f_village, 0)], -1)
    grid_out = merge(owner, len(arr))
    village_out = merge(f_village, n_villages)
    township_out = merge(f_township, n_townships)
    county_out = [_dissolve(faces[owner >= 0])]
    return grid_out, village_out, township_out, county_out


def _sample_in(rng: np.random.Generator, geom: shapely.Geometry, n: int) -> FloatArray:
    """``n`` uniform random points inside ``geom`` (rejection sampling from its bounding box)."""
    out = np.empty((0, 2))
    if n <= 0:
        return out
    shapely.prepare(geom)
    minx, miny, maxx, maxy = geom.bounds
    fill = max(geom.area / max((maxx - minx) * (maxy - miny), 1e-9), 0.02)
    for _ in range(1000):
        need = n - len(out)
        if need <= 0:
            break
        m = int(need / fill * 1.25) + 8
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(m, 2))
        out = np.vstack([out, xy[shapely.contains_xy(geom, xy[:, 0], xy[:, 1])]])
    if len(out) < n:
        raise RuntimeError("could not sample points inside a polygon")
    return out[:n]


def _distinct(rng: np.random.Generator, xy: FloatArray) -> FloatArray:
    """Nudge coincident seed points apart: Voronoi merges duplicates and loses a cell."""
    xy = xy.copy()
    for _ in range(100):
        _, first = np.unique(np.round(xy, 1), axis=0, return_index=True)
        dup = np.ones(len(xy), dtype=bool)
        dup[first] = False
        if not dup.any():
            return xy
        xy[dup] += rng.normal(0.0, 2.0, size=(int(dup.sum()), 2))
    return xy


def _voronoi_cells(
    seeds: FloatArray, parent: shapely.Geometry
) -> list[shapely.MultiPolygon | None]:
    """Cells of ``seeds`` clipped to ``parent``, in seed order (None where only slivers remain).

    All siblings come from one diagram, so neighbouring cells share identical edge vertices;
    clipping each by the same parent keeps them inside it and free of mutual overlap.
    """
    if len(seeds) == 1:
        return [_clean(parent)]
    points = shapely.multipoints(seeds)
    minx, miny, maxx, maxy = parent.bounds
    pad = max(maxx - minx, maxy - miny)
    frame = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    try:
        cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=frame, ordered=True))
    except (TypeError, shapely.errors.ShapelyError):
        # shapely < 2.1 or GEOS < 3.12 cannot keep input order: match cells to seeds by location.
        cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=frame))
        tree = shapely.STRtree(cells)
        seed_idx, cell_idx = tree.query(shapely.points(seeds), predicate="intersects")
        order = np.full(len(seeds), -1)
        order[seed_idx] = cell_idx
        cells = cells[order]
    if len(cells) != len(seeds):
        raise RuntimeError("Voronoi diagram lost a cell (coincident seeds)")
    return [_clean(c) for c in shapely.intersection(cells, parent)]


def _relaxed_seeds(
    rng: np.random.Generator, parent: shapely.Geometry, n: int, *, iterations: int, step: float
) -> FloatArray:
    """Random seeds moved part-way towards their cell centroids (partial Lloyd relaxation).

    Pure random seeds give a few tiny and a few huge units; full relaxation gives a honeycomb.
    Part-way relaxation keeps real-looking variety.
    """
    seeds = _distinct(rng, _sample_in(rng, parent, n))
    if n == 1:
        return seeds
    shapely.prepare(parent)
    for _ in range(iterations):
        cells = _voronoi_cells(seeds, parent)
        target = seeds.copy()
        for i, cell in enumerate(cells):
            if cell is not None:
                c = cell.centroid
                target[i] = (c.x, c.y)
        moved = seeds + step * (target - seeds)
        # A centroid of a concave cell may fall outside the parent: keep such seeds where they are.
        ok = shapely.contains_xy(parent, moved[:, 0], moved[:, 1])
        seeds = _distinct(rng, np.where(ok[:, None], moved, seeds))
    return seeds


def _allocate(total: int, weights: FloatArray, lo: int, hi: int) -> IntArray:
    """Integers proportional to ``weights``, each in [lo, hi], summing to ``total`` if possible."""
    target = total * weights / weights.sum()
    n = np.clip(np.floor(target).astype(np.int64), lo, hi)
    diff = total - int(n.sum())
    while diff != 0:
        if diff > 0:
            gap = np.where(n < hi, target - n, -np.inf)
            step = 1
        else:
            gap = np.where(n > lo, n - target, -np.inf)
            step = -1
        i = int(np.argmax(gap))
        if not np.isfinite(gap[i]):
            break  # every entry at its bound
        n[i] += step
        diff -= step
    return n


def _reading_order(xy: FloatArray, band_m: float) -> IntArray:
    """Indices sorting points north-to-south in bands, west-to-east within a band (for serials)."""
    band = np.floor(-xy[:, 1] / band_m)
    return np.lexsort((xy[:, 0], band)).astype(np.int64)


def _near_edge(
    boundaries: NDArray[np.object_], x: FloatArray, y: FloatArray, d: float
) -> BoolArray:
    pts = shapely.points(x, y)
    if hasattr(shapely, "dwithin"):  # shapely >= 2.1, uses prepared geometry
        return np.asarray(shapely.dwithin(boundaries, pts, d), dtype=bool)
    return np.asarray(shapely.distance(boundaries, pts) <= d, dtype=bool)


# ---------------------------------------------------------------------------------------------
# County, townships, villages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Valleys:
    """A smooth random "habitability" field: valleys and basins (high) between ridges (low).

    Hamlets prefer high values, so households gather in valleys and leave forested hills
    empty, as in real hill country.
    """

    kx: FloatArray
    ky: FloatArray
    phase: FloatArray
    amp: FloatArray

    @classmethod
    def random(cls, rng: np.random.Generator, modes: int = 16) -> _Valleys:
        wavelength = rng.uniform(2_500.0, 12_000.0, modes)
        direction = rng.uniform(0.0, np.pi, modes)
        k = 2.0 * np.pi / wavelength
        amp = rng.uniform(0.5, 1.0, modes)
        return cls(
            k * np.cos(direction), k * np.sin(direction), rng.uniform(0, 2 * np.pi, modes), amp
        )

    def __call__(self, xy: FloatArray) -> FloatArray:
        arg = xy[:, 0:1] * self.kx + xy[:, 1:2] * self.ky + self.phase
        # Normalised to unit variance so the weighting below has a predictable strength.
        return (np.cos(arg) @ self.amp) / math.sqrt(0.5 * float(self.amp @ self.amp))


def _county_outline(rng: np.random.Generator) -> shapely.MultiPolygon:
    """A noisy star-shaped outline of 1,800–2,200 km² centred on the frame origin.

    ``r(theta) = exp(sum of random harmonics)`` is positive, so the ring never crosses itself;
    amplitudes fall with frequency, giving a lobed outline with a ragged edge like a real
    watershed boundary.
    """
    n = 1200
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    log_r = np.zeros(n)
    for k in range(1, 121):
        amp = 0.2 * k**-1.0 * rng.normal()
        log_r += amp * np.cos(k * theta + rng.uniform(0.0, 2.0 * np.pi))
    r = np.exp(log_r)
    ring = np.column_stack([r * np.sin(theta), r * np.cos(theta)])
    area = shapely.Polygon(ring).area
    target = rng.uniform(1_850e6, 2_150e6)
    geom = _clean(shapely.Polygon(ring * math.sqrt(target / area)))
    assert geom is not None
    return geom


def _unique_names(rng: np.random.Generator, pool: Sequence[str], n: int) -> list[str]:
    """``n`` distinct names, a random draw from ``pool`` (extended with two-root names if short)."""
    pool = list(dict.fromkeys(pool))  # de-duplicate, keeping order
    if len(pool) < n:
        extra = [a + b for a in N.VILLAGE_PREFIXES for b in N.VILLAGE_SUFFIXES]
        known = set(pool)
        pool += [e for e in dict.fromkeys(extra) if e not in known]
    if len(pool) < n:
        extra3 = [
            a + b + c for a in N.VILLAGE_PREFIXES for b in "家子石山" for c in N.VILLAGE_SUFFIXES
        ]
        known = set(pool)
        pool += [e for e in dict.fromkeys(extra3) if e not in known]
    if len(pool) < n:
        raise ValueError(f"cannot name {n} units")
    idx = rng.permutation(len(pool))[:n]
    return [pool[i] for i in idx]


# ---------------------------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------------------------


def _digits(values: IntArray, width: int) -> NDArray[np.int64]:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers[None, :]) % 10


def _duplicated(keys: IntArray) -> BoolArray:
    """True for every occurrence of a key except the first."""
    _, first = np.unique(keys, return_index=True)
    dup = np.ones(len(keys), dtype=bool)
    dup[first] = False
    return dup


def _id_numbers(rng: np.random.Generator, male: BoolArray, birth_year: IntArray) -> list[str]:
    """Unique 18-character ID numbers with the county's area code and a valid check digit."""
    n = len(male)
    if n == 0:
        return []
    start = (birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    end = (birth_year - 1969).astype("datetime64[Y]").astype("datetime64[D]")
    days_in_year = (end - start).astype(np.int64)
    dates = start + (rng.random(n) * days_in_year).astype(np.int64).astype("timedelta64[D]")
    ordinal = dates.astype(np.int64)
    month_start = dates.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12 + 1
    day = (dates - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    # 顺序码: odd for men, even for women (GB 11643); 000 is never issued.
    odd = male.astype(np.int64)
    seq = rng.integers(1, 500, n) * 2 - odd  # 1..997 odd (men) / 2..998 even (women)
    key = ordinal * 1000 + seq
    for _ in range(200):
        dup = _duplicated(key)
        if not dup.any():
            break
        k = int(dup.sum())
        seq[dup] = rng.integers(1, 500, k) * 2 - odd[dup]
        key[dup] = ordinal[dup] * 1000 + seq[dup]
    else:  # pragma: no cover - 1000 numbers per day and gender leave plenty of room
        raise RuntimeError("could not make ID numbers unique")
    digits = np.empty((n, 18), dtype=np.int64)
    digits[:, :6] = [int(c) for c in COUNTY_CODE]
    digits[:, 6:10] = _digits(birth_year.astype(np.int64), 4)
    digits[:, 10:12] = _digits(month, 2)
    digits[:, 12:14] = _digits(day, 2)
    digits[:, 14:17] = _digits(seq, 3)
    check = (digits[:, :17] @ _ID_WEIGHTS) % 11
    chars = (digits + ord("0")).astype(np.uint8)
    chars[:, 17] = np.frombuffer(_ID_CHECK.encode(), dtype=np.uint8)[check]
    return chars.view("S18").ravel().astype("U18").tolist()


def _phones(rng: np.random.Generator, n: int) -> list[str]:
    """Unique 11-digit mobile numbers with real carrier prefixes."""
    prefixes = np.array([int(p) for p, _ in N.PHONE_PREFIXES], dtype=np.int64)
    w = np.array([s for _, s in N.PHONE_PREFIXES], dtype=np.float64)
    number = prefixes[rng.choice(len(prefixes), n, p=w / w.sum())] * 10**8 + rng.integers(
        0, 10**8, n
    )
    for _ in range(100):
        dup = _duplicated(number)
        if not dup.any():
            break
        number[dup] = (number[dup] // 10**8) * 10**8 + rng.integers(0, 10**8, int(dup.sum()))
    return number.astype("U11").tolist()


_SURNAME_TABLE = np.array([s for s, _ in N.SURNAMES], dtype=object)
_SURNAME_P = np.array([w for _, w in N.SURNAMES], dtype=np.float64)
_SURNAME_P /= _SURNAME_P.sum()
_POOLS = tuple(
    np.array(list(p), dtype=object)
    for p in (N.MALE_TRADITIONAL, N.MALE_MODERN, N.FEMALE_TRADITIONAL, N.FEMALE_MODERN)
)


def _surnames(rng: np.random.Generator, n: int) -> NDArray[np.object_]:
    return _SURNAME_TABLE[rng.choice(len(_SURNAME_TABLE), n, p=_SURNAME_P)]


def _given_names(
    rng: np.random.Generator, male: BoolArray, birth_year: IntArray
) -> NDArray[np.object_]:
    """Gender-consistent given names; people born after ~1975 increasingly get "modern" ones."""
    n = len(male)
    modern = rng.random(n) < np.clip((birth_year - 1960) / 35.0, 0.05, 0.95)
    pool_id = np.where(male, 0, 2) + modern.astype(np.int64)
    first = np.empty(n, dtype=object)
    second = np.empty(n, dtype=object)
    u1, u2 = rng.random(n), rng.random(n)
    for k, pool in enumerate(_POOLS):
        sel = pool_id == k
        first[sel] = pool[(u1[sel] * len(pool)).astype(np.int64)]
        second[sel] = pool[(u2[sel] * len(pool)).astype(np.int64)]
    # About a fifth of rural names have a single given character (more common among men).
    single = rng.random(n) < np.where(male, 0.25, 0.15)
    second[single] = ""
    return first + second


# ---------------------------------------------------------------------------------------------
# Villages: dedicated grid, hamlets, households, general grids
# ---------------------------------------------------------------------------------------------


@dataclass
class _VillageResult:
    general: list[shapely.MultiPolygon]  # in serial order 001, 002, …
    dedicated: shapely.MultiPolygon | None
    xy: FloatArray  # household points (metres)
    grid: IntArray  # index into ``general``
    hamlet: IntArray  # 1-based 组 number
    house: IntArray  # 1-based house number within the 组


def _dedicated_site(
    rng: np.random.Generator, village: shapely.MultiPolygon
) -> shapely.MultiPolygon | None:
    """A school or enterprise compound: a rotated rectangle well inside the village."""
    core = village.buffer(-200.0)
    if core.is_empty or core.area < 1e4:
        return None
    shapely.prepare(village)
    for _ in range(40):
        cx, cy = _sample_in(rng, core, 1)[0]
        half_a = rng.uniform(70.0, 170.0)
        half_b = half_a * rng.uniform(0.5, 0.95)
        ang = rng.uniform(0.0, np.pi)
        local = np.array(
            [[-half_a, -half_b], [half_a, -half_b], [half_a, half_b], [-half_a, half_b]]
        )
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        rect = shapely.Polygon(local @ rot.T + (cx, cy))
        if village.contains(rect.buffer(30.0)):
            return shapely.MultiPolygon([rect])
    return None


def _scatter(
    rng: np.random.Generator,
    centre: FloatArray,
    axes: FloatArray,
    angle: FloatArray,
) -> FloatArray:
    """Anisotropic Gaussian scatter: hamlets string out along valleys and roads."""
    z = rng.normal(size=(len(centre), 2)) * axes
    c, s = np.cos(angle), np.sin(angle)
    return centre + np.column_stack([c * z[:, 0] - s * z[:, 1], s * z[:, 0] + c * z[:, 1]])


def _kmeans(
    rng: np.random.Generator, pts: FloatArray, k: int, region: shapely.Geometry
) -> FloatArray:
    """Grid seeds: k-means centres of the households, so grids hold similar household counts."""
    n = len(pts)
    if n >= k:
        centres = pts[rng.choice(n, k, replace=False)].copy()
    else:  # more grids than households: pad with random points of the village
        centres = np.vstack([pts, _sample_in(rng, region, k - n)])
    if n == 0:
        return centres
    for _ in range(8):
        d2 = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        label = d2.argmin(axis=1)
        count = np.bincount(label, minlength=k)
        sums = np.zeros((k, 2))
        np.add.at(sums, label, pts)
        nz = count > 0
        centres[nz] = sums[nz] / count[nz, None]
    # A centre of a cluster wrapped round a bend may lie outside the village: snap it to the
    # cluster's household nearest to it, so every seed is inside the area it partitions.
    outside = ~shapely.contains_xy(region, centres[:, 0], centres[:, 1])
    if outside.any():
        d2 = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        for j in np.flatnonzero(outside):
            centres[j] = pts[int(np.argmin(d2[:, j]))]
    return centres


def _build_village(
    rng: np.random.Generator,
    village: shapely.MultiPolygon,
    n_households: int,
    n_general: int,
    want_dedicated: bool,
    valleys: _Valleys,
) -> _VillageResult:
    dedicated = _dedicated_site(rng, village) if want_dedicated else None
    avail = village
    if dedicated is not None:
        carved = _clean(shapely.difference(village, dedicated))
        if carved is None:  # pragma: no cover - the compound is tiny compared with the village
            dedicated = None
        else:
            avail = carved
    shapely.prepare(avail)

    # Hamlet centres (自然村 / 村民小组), a little inside the village edge so their households
    # are not mostly rejected: best-candidate sampling spreads them out, weighted towards the
    # valleys of the habitability field.
    n_hamlets = int(np.clip(round(n_households / rng.uniform(28.0, 48.0)), 3, 30))
    n_hamlets = max(1, min(n_hamlets, n_households))
    core = avail.buffer(-80.0)
    region = core if (not core.is_empty and core.area > 0.15 * avail.area) else avail
    n_cand = 8
    cand = _sample_in(rng, region, n_hamlets * n_cand)
    appeal = np.exp(1.2 * valleys(cand)).reshape(n_hamlets, n_cand)
    cand = cand.reshape(n_hamlets, n_cand, 2)
    centres = np.empty((n_hamlets, 2))
    centres[0] = cand[0, int(np.argmax(appeal[0]))]
    for i in range(1, n_hamlets):
        d2 = ((cand[i][:, None, :] - centres[None, :i, :]) ** 2).sum(axis=2).min(axis=1)
        centres[i] = cand[i, int(np.argmax(np.sqrt(d2) * appeal[i]))]
    weight = rng.lognormal(0.0, 0.5, n_hamlets)
    counts = rng.multinomial(n_households, weight / weight.sum())
    major = rng.uniform(100.0, 400.0, n_hamlets)
    axes = np.column_stack([major, major * rng.uniform(0.35, 0.85, n_hamlets)])
    angle = rng.uniform(0.0, np.pi, n_hamlets)

    hid = np.repeat(np.arange(n_hamlets), counts)
    xy = _scatter(rng, centres[hid], axes[hid], angle[hid])
    bad = ~shapely.contains_xy(avail, xy[:, 0], xy[:, 1])
    for _ in range(40):  # rejection sampling, vectorised over the village
        if not bad.any():
            break
        idx = np.flatnonzero(bad)
        xy[idx] = _scatter(rng, centres[hid[idx]], axes[hid[idx]], angle[hid[idx]])
        bad[idx] = ~shapely.contains_xy(avail, xy[idx, 0], xy[idx, 1])
    xy[bad] = centres[hid[bad]]  # centres are inside; the grid pass below moves them off edges

    # General grids: Voronoi of household k-means centres, clipped to the village (minus the
    # dedicated grid), numbered in reading order.
    seeds = _distinct(rng, _kmeans(rng, xy, n_general, avail))
    cells = [c for c in _voronoi_cells(seeds, avail) if c is not None]
    if not cells:  # pragma: no cover - a village always keeps at least its own area
        raise RuntimeError("village lost all its grids")
    reps = np.array([[p.x, p.y] for p in shapely.point_on_surface(cells)])
    cells = [cells[i] for i in _reading_order(reps, 600.0)]
    grid_geoms = np.array(cells, dtype=object)
    shapely.prepare(grid_geoms)
    boundaries = shapely.boundary(grid_geoms)
    shapely.prepare(boundaries)

    def locate(pts: FloatArray) -> tuple[IntArray, BoolArray]:
        """Grid of each point, and whether it sits safely inside (not within the edge margin)."""
        g = np.full(len(pts), -1, dtype=np.int64)
        for j, cell in enumerate(cells):
            free = g < 0
            if not free.any():
                break
            hit = shapely.contains_xy(cell, pts[free, 0], pts[free, 1])
            g[np.flatnonzero(free)[hit]] = j
        ok = g >= 0
        ok[ok] = ~_near_edge(boundaries[g[ok]], pts[ok, 0], pts[ok, 1], EDGE_MARGIN_M)
        return g, ok

    grid, ok = locate(xy)
    for _ in range(40):  # resample the few households in slivers or right on a grid edge
        if ok.all():
            break
        idx = np.flatnonzero(~ok)
        xy[idx] = _scatter(rng, centres[hid[idx]], axes[hid[idx]], angle[hid[idx]])
        grid[idx], ok[idx] = locate(xy[idx])
    if not ok.all():  # last resort: a random point well inside the largest grid
        idx = np.flatnonzero(~ok)
        big = int(np.argmax(shapely.area(grid_geoms)))
        inner = cells[big].buffer(-5.0 * EDGE_MARGIN_M)
        xy[idx] = _sample_in(rng, inner if not inner.is_empty else cells[big], len(idx))
        grid[idx] = big

    # 组 numbers in reading order of the hamlet centres, skipping hamlets that got no household;
    # house numbers west to east within a 组.
    used = np.flatnonzero(counts > 0)
    order = used[_reading_order(centres[used], 400.0)]
    number = np.zeros(n_hamlets, dtype=np.int64)
    number[order] = np.arange(1, len(order) + 1)
    hamlet = number[hid]
    sort = np.lexsort((xy[:, 0], hamlet))
    xy, grid, hamlet = xy[sort], grid[sort], hamlet[sort]
    house = np.ones(len(hamlet), dtype=np.int64)
    if len(hamlet):
        start = np.r_[0, np.flatnonzero(np.diff(hamlet)) + 1]
        house = np.arange(len(hamlet)) - np.repeat(start, np.diff(np.r_[start, len(hamlet)])) + 1
    return _VillageResult(cells, dedicated, xy, grid, hamlet, house)


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


def _validate_args(households: int, townships: int, villages: int, grids: int) -> None:
    if townships < 1 or townships > 150:
        raise ValueError("townships must be in 1..150 (codes 100–199 镇, 200–299 乡)")
    if villages < townships or villages > townships * 199:
        raise ValueError("villages must be ≥ townships and ≤ 199 per township (codes 201–399)")
    if grids < villages or grids > villages * 899:
        raise ValueError("grids must be ≥ villages and ≤ 899 per village (serials 001–899)")
    if households < villages:
        raise ValueError("households must be ≥ villages")


def generate_county(
    *,
    households: int = 150_000,
    seed: int = 7,
    townships: int = 20,
    villages: int = 300,
    grids: int = 3000,
    progress: Progress | None = None,
) -> DemoCounty:
    """Generate the demo county 云岭县（演示）; identical output for identical arguments.

    ``grids`` counts general and dedicated grids together; about 3 % of villages get one
    dedicated grid. A grid whose cell is all sliver is dropped, so the grid count can come out a
    few below the target; household and village counts are exact.
    """
    _validate_args(households, townships, villages, grids)
    report: Progress = progress or (lambda stage, done, total: None)
    rng = np.random.default_rng(seed)
    frame = _Frame.at(CENTER_LON, CENTER_LAT)

    # -- county --------------------------------------------------------------------------------
    report("county", 0, 1)
    county_m = _county_outline(rng)
    valleys = _Valleys.random(rng)
    report("county", 1, 1)

    # -- townships -----------------------------------------------------------------------------
    t_seeds = _relaxed_seeds(rng, county_m, townships, iterations=3, step=0.7)
    t_cells = _voronoi_cells(t_seeds, county_m)
    keep = [i for i, c in enumerate(t_cells) if c is not None]
    t_seeds, t_geoms = t_seeds[keep], [t_cells[i] for i in keep]
    # The seat town is the most central one; the others go clockwise from north.
    seat = int(np.argmin((t_seeds**2).sum(axis=1)))
    angle = np.mod(np.arctan2(t_seeds[:, 0], t_seeds[:, 1]), 2 * np.pi)
    angle[seat] = -1.0
    t_order = np.argsort(angle, kind="stable")
    is_town = rng.random(len(t_order)) < 0.55  # about half are 镇, the rest 乡
    is_town[0] = True  # the seat is always a 镇
    is_town[np.cumsum(is_town) > 100] = False  # codes 100–199 hold at most 100 镇
    roots = [COUNTY_ROOT] + _unique_names(
        rng, [r for r in N.TOWNSHIP_ROOTS if r != COUNTY_ROOT], len(t_order) - 1
    )
    town_codes, xiang_codes = iter(range(100, 200)), iter(range(200, 300))
    township_rows: list[tuple[str, str, shapely.MultiPolygon]] = []
    for rank, i in enumerate(t_order):
        town = bool(is_town[rank])
        suffix = next(town_codes) if town else next(xiang_codes)
        name = roots[rank] + ("镇" if town else "乡")
        township_rows.append((f"{COUNTY_CODE}{suffix:03d}", name, t_geoms[int(i)]))
    township_rows.sort(key=lambda r: r[0])
    report("townships", len(township_rows), len(township_rows))

    # -- villages ------------------------------------------------------------------------------
    t_area = np.array([g.area for _, _, g in township_rows])
    v_per_t = _allocate(villages, t_area, 1, 199)
    village_names = _unique_names(
        rng, [a + b for a in N.VILLAGE_PREFIXES for b in N.VILLAGE_SUFFIXES], int(v_per_t.sum())
    )
    # (code, name, township code, township name, geometry)
    village_rows: list[tuple[str, str, str, str, shapely.MultiPolygon]] = []
    for ti, (t_code, t_name, t_geom) in enumerate(township_rows):
        nv = int(v_per_t[ti])
        v_seeds = _relaxed_seeds(rng, t_geom, nv, iterations=2, step=0.5)
        v_cells = _voronoi_cells(v_seeds, t_geom)
        keep = [i for i, c in enumerate(v_cells) if c is not None]
        for serial, i in enumerate(_reading_order(v_seeds[keep], 2500.0)):
            cell = v_cells[keep[int(i)]]
            assert cell is not None
            name = village_names[len(village_rows)] + "村"
            village_rows.append((f"{t_code}{201 + serial:03d}", name, t_code, t_name, cell))
        report("villages", ti + 1, len(township_rows))

    # -- households and grids per village ------------------------------------------------------
    nv = len(village_rows)
    v_area_km2 = np.array([r[4].area for r in village_rows]) / 1e6
    hh_weight = v_area_km2**0.6 * rng.lognormal(0.0, 0.35, nv)
    hh_per_v = _allocate(households, hh_weight, max(1, households // (nv * 4)), households)
    n_dedicated = max(1, round(0.03 * nv)) if grids - nv >= max(1, round(0.03 * nv)) else 0
    big_half = np.argsort(-v_area_km2, kind="stable")[: max(n_dedicated, nv // 2)]
    dedicated_villages = rng.choice(big_half, n_dedicated, replace=False) if n_dedicated else []
    want_dedicated = np.zeros(nv, dtype=bool)
    want_dedicated[np.asarray(dedicated_villages, dtype=np.int64)] = True
    general_total = grids - n_dedicated
    lo = max(1, min(4, general_total // nv))
    hi = min(899, max(20, math.ceil(2.0 * general_total / nv)))
    g_per_v = _allocate(general_total, hh_per_v.astype(np.float64) ** 0.9, lo, hi)

    grid_rows: list[DemoGrid] = []
    grid_geoms_m: list[shapely.MultiPolygon] = []
    hh_xy: list[FloatArray] = []
    hh_grid: list[IntArray] = []  # global index into grid_rows
    hh_village: list[IntArray] = []
    hh_hamlet: list[IntArray] = []
    hh_house: list[IntArray] = []
    v_index = {row[0]: i for i, row in enumerate(village_rows)}
    for vi, (v_code, v_name, _t_code, _t_name, v_geom) in enumerate(village_rows):
        res = _build_village(
            rng, v_geom, int(hh_per_v[vi]), int(g_per_v[vi]), bool(want_dedicated[vi]), valleys
        )
        base = len(grid_rows)
        for serial, cell in enumerate(res.general, start=1):
            grid_rows.append(
                DemoGrid(
                    f"{v_code}{serial:03d}", f"{v_name}第{serial}网格", v_code, "general", cell
                )
            )
            grid_geoms_m.append(cell)
        if res.dedicated is not None:
            template = N.DEDICATED_GRID_NAMES[int(rng.integers(len(N.DEDICATED_GRID_NAMES)))]
            name = template.format(root=v_name.removesuffix("村"))
            grid_rows.append(DemoGrid(f"{v_code}900", name, v_code, "dedicated", res.dedicated))
            grid_geoms_m.append(res.dedicated)
        hh_xy.append(res.xy)
        hh_grid.append(res.grid + base)
        hh_village.append(np.full(len(res.xy), vi, dtype=np.int64))
        hh_hamlet.append(res.hamlet)
        hh_house.append(res.house)
        if (vi + 1) % 10 == 0 or vi + 1 == nv:
            report("grids", vi + 1, nv)

    report("topology", 0, 1)
    t_index = {row[0]: i for i, row in enumerate(township_rows)}
    grid_geoms_m, village_geoms_m, township_geoms_m, county_parts = _shared_topology(
        grid_geoms_m,
        np.array([v_index[g.village_code] for g in grid_rows], dtype=np.int64),
        np.array([t_index[r[2]] for r in village_rows], dtype=np.int64),
    )
    county_m = county_parts[0]
    report("topology", 1, 1)

    xy = np.vstack(hh_xy)
    h_grid = np.concatenate(hh_grid)
    h_village = np.concatenate(hh_village)
    h_hamlet = np.concatenate(hh_hamlet)
    h_house = np.concatenate(hh_house)
    n_hh = len(xy)

    # -- household people ------------------------------------------------------------------------
    report("households", 0, n_hh)
    # Heads of rural households are old: mean age ~60, many elderly couples and widows living
    # alone while the young work in the cities.
    head_age = (24 + 68 * rng.beta(2.3, 2.0, n_hh)).astype(np.int64)
    head_birth = REFERENCE_YEAR - head_age
    head_male = rng.random(n_hh) < np.where(head_age >= 70, 0.68, 0.9)
    size_p = {
        "old": [0.34, 0.44, 0.08, 0.06, 0.05, 0.02, 0.01, 0.0],
        "senior": [0.10, 0.32, 0.18, 0.16, 0.13, 0.07, 0.03, 0.01],
        "adult": [0.06, 0.12, 0.24, 0.27, 0.17, 0.09, 0.03, 0.02],
    }
    group = np.where(head_age >= 70, 0, np.where(head_age >= 60, 1, 2))
    size = np.empty(n_hh, dtype=np.int64)
    for gi, key in enumerate(("old", "senior", "adult")):
        sel = group == gi
        size[sel] = rng.choice(np.arange(1, 9), int(sel.sum()), p=np.array(size_p[key]))
    tags = _household_tags(rng, head_age, size)

    # -- members ---------------------------------------------------------------------------------
    n_mem = int(round(0.10 * n_hh))
    m_hh = np.sort(rng.choice(n_hh, n_mem, replace=False))
    probationary = rng.random(n_mem) < 0.05
    # Nearly half of rural members are the household head themselves; probationary members are
    # young newcomers, never the (old) head.
    is_head = (~probationary) & (rng.random(n_mem) < 0.47)
    extra = np.flatnonzero(~is_head)
    n_extra = len(extra)
    extra_age = np.where(
        probationary[extra],
        (21 + 20 * rng.beta(2.0, 2.5, n_extra)),
        (25 + 62 * rng.beta(2.2, 1.8, n_extra)),
    ).astype(np.int64)
    extra_birth = REFERENCE_YEAR - extra_age
    extra_male = rng.random(n_extra) < 0.6

    # Names, phones and ID numbers for heads and the extra members together, so ID numbers and
    # phones are unique across the whole county.
    all_male = np.concatenate([head_male, extra_male])
    all_birth = np.concatenate([head_birth, extra_birth])
    surname = _surnames(rng, n_hh + n_extra)
    same_family = rng.random(n_extra) < 0.55  # a son/daughter/brother: the head's surname
    surname[n_hh:][same_family] = surname[m_hh[extra]][same_family]
    full_name = (surname + _given_names(rng, all_male, all_birth)).tolist()
    phone = _phones(rng, n_hh + n_extra)
    id_number = _id_numbers(rng, all_male, all_birth)
    report("households", n_hh, n_hh)

    person = np.empty(n_mem, dtype=np.int64)  # member -> index into the person arrays
    person[is_head] = m_hh[is_head]
    person[extra] = n_hh + np.arange(n_extra)
    m_age = REFERENCE_YEAR - all_birth[person]
    joined = _joined_years(rng, all_birth[person], probationary)
    flow_w = np.where(m_age < 55, 3.0, np.where(m_age < 70, 1.0, 0.15))
    flowing = rng.random(n_mem) < np.clip(0.08 * n_mem * flow_w / max(flow_w.sum(), 1e-9), 0, 1)
    jitter = rng.normal(0.0, MEMBER_JITTER_M, size=(n_mem, 2))
    m_xy = xy[m_hh] + jitter
    grid_arr = np.array(grid_geoms_m, dtype=object)
    grid_edges = shapely.boundary(grid_arr)
    shapely.prepare(grid_arr)
    shapely.prepare(grid_edges)
    m_grid = h_grid[m_hh]
    inside = shapely.contains_xy(grid_arr[m_grid], m_xy[:, 0], m_xy[:, 1])
    inside[inside] = ~_near_edge(
        grid_edges[m_grid[inside]], m_xy[inside, 0], m_xy[inside, 1], EDGE_MARGIN_M
    )
    m_xy[~inside] = xy[m_hh][~inside]  # a household point is always safely inside its grid
    report("members", n_mem, n_mem)

    # -- to lon/lat ------------------------------------------------------------------------------
    report("lonlat", 0, 1)
    county_geom = _to_lonlat_multi(frame, [county_m])[0]
    township_geoms = _to_lonlat_multi(frame, township_geoms_m)
    village_geoms = _to_lonlat_multi(frame, village_geoms_m)
    grid_geoms = _to_lonlat_multi(frame, grid_geoms_m)
    lon, lat = frame.to_lonlat(xy[:, 0], xy[:, 1])
    m_lon, m_lat = frame.to_lonlat(m_xy[:, 0], m_xy[:, 1])
    # Belt and braces: re-check every household in the final lon/lat geometry.
    grid_ll = np.array(grid_geoms, dtype=object)
    shapely.prepare(grid_ll)
    lost = ~shapely.contains_xy(grid_ll[h_grid], lon, lat)
    if lost.any():  # pragma: no cover - an affine map keeps points inside; never seen
        rep = shapely.point_on_surface(grid_ll[h_grid[lost]])
        lon[lost], lat[lost] = shapely.get_x(rep), shapely.get_y(rep)
    m_lost = ~shapely.contains_xy(grid_ll[h_grid[m_hh]], m_lon, m_lat)
    m_lon[m_lost], m_lat[m_lost] = lon[m_hh][m_lost], lat[m_hh][m_lost]
    report("lonlat", 1, 1)

    # -- assemble --------------------------------------------------------------------------------
    county = DemoUnit(COUNTY_CODE, COUNTY_NAME, "county", None, county_geom)
    township_units = [
        DemoUnit(code, name, "township", COUNTY_CODE, geom)
        for (code, name, _), geom in zip(township_rows, township_geoms, strict=True)
    ]
    village_units = [
        DemoUnit(r[0], r[1], "village", r[2], geom)
        for r, geom in zip(village_rows, village_geoms, strict=True)
    ]
    grid_units = [
        DemoGrid(g.code, g.name, g.village_code, g.kind, geom)
        for g, geom in zip(grid_rows, grid_geoms, strict=True)
    ]
    v_codes = np.array([r[0] for r in village_rows], dtype=object)
    g_codes = np.array([g.code for g in grid_rows], dtype=object)
    prefix = np.array([r[3] + r[1] for r in village_rows], dtype=object)  # 乡镇 + 村
    address = [
        f"{p}{h}组{k}号"
        for p, h, k in zip(prefix[h_village], h_hamlet.tolist(), h_house.tolist(), strict=True)
    ]
    hh = DemoHouseholds(
        village_code=v_codes[h_village].tolist(),
        grid_code=g_codes[h_grid].tolist(),
        head_name=full_name[:n_hh],
        phone=phone[:n_hh],
        id_number=id_number[:n_hh],
        address=address,
        lon=np.asarray(lon, dtype=np.float64),
        lat=np.asarray(lat, dtype=np.float64),
        size=size,
        tags=tags,
        hamlet=[f"{h}组" for h in h_hamlet.tolist()],
    )
    name_arr = np.array(full_name, dtype=object)
    phone_arr = np.array(phone, dtype=object)
    id_arr = np.array(id_number, dtype=object)
    members = DemoMembers(
        village_code=v_codes[h_village[m_hh]].tolist(),
        grid_code=g_codes[h_grid[m_hh]].tolist(),
        name=name_arr[person].tolist(),
        phone=phone_arr[person].tolist(),
        id_number=id_arr[person].tolist(),
        gender=np.where(all_male[person], "M", "F").tolist(),
        status=np.where(probationary, "probationary", "full").tolist(),
        flowing=np.asarray(flowing, dtype=bool),
        lon=np.asarray(m_lon, dtype=np.float64),
        lat=np.asarray(m_lat, dtype=np.float64),
        joined_year=joined,
    )
    party_orgs = _party_orgs(rng, village_rows, h_village[m_hh], members, m_age)
    return DemoCounty(county, township_units, village_units, party_orgs, grid_units, hh, members)


def _to_lonlat_multi(
    frame: _Frame, geoms: Sequence[shapely.MultiPolygon]
) -> list[shapely.MultiPolygon]:
    out = frame.geoms_to_lonlat(geoms)
    min_deg2 = MIN_PART_M2 / (frame.m_per_deg_lon * frame.m_per_deg_lat)
    result: list[shapely.MultiPolygon] = []
    for g in out.tolist():
        if not shapely.is_valid(g):  # pragma: no cover - an affine map preserves validity
            g = _clean(g, min_deg2)
        result.append(g)
    return result


def _household_tags(
    rng: np.random.Generator, head_age: IntArray, size: IntArray
) -> list[list[str]]:
    """0–2 重点人群 tags per household at the target shares, drawn only where they make sense."""
    n = len(head_age)
    eligible = {
        "高风险老人": head_age >= 60,
        "失能失智老人": head_age >= 60,
        "特困供养": size <= 2,
        "留守/困境儿童": size >= 3,
    }
    hit = np.zeros((n, len(HOUSEHOLD_TAGS)), dtype=bool)
    for j, (tag, share) in enumerate(HOUSEHOLD_TAGS):
        ok = eligible.get(tag, np.ones(n, dtype=bool))
        # Scale up inside the eligible group so the share over all households stays on target.
        p = min(1.0, share * n / max(int(ok.sum()), 1))
        hit[:, j] = ok & (rng.random(n) < p)
    # A household with more than two tags keeps two of them, chosen at random.
    too_many = np.flatnonzero(hit.sum(axis=1) > MAX_TAGS_PER_HOUSEHOLD)
    if len(too_many):
        prio = np.where(hit[too_many], rng.random((len(too_many), hit.shape[1])), -1.0)
        keep = np.argsort(-prio, axis=1)[:, :MAX_TAGS_PER_HOUSEHOLD]
        hit[too_many] = False
        hit[too_many[:, None], keep] = True
    tags: list[list[str]] = [[] for _ in range(n)]
    rows, cols = np.nonzero(hit)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        tags[r].append(TAG_NAMES[c])
    return tags


def _joined_years(
    rng: np.random.Generator, birth_year: IntArray, probationary: BoolArray
) -> IntArray:
    """Year of joining the Party: probationary members this or last year; full members at
    18 or older and at least a year before now (the probation period)."""
    n = len(birth_year)
    latest_full = REFERENCE_YEAR - 2
    age_at_join = 18 + rng.gamma(2.0, 5.0, n).astype(np.int64)
    joined = np.minimum(birth_year + age_at_join, latest_full)
    joined = np.maximum(joined, birth_year + 18)
    recent = REFERENCE_YEAR - (rng.random(n) < 0.5).astype(np.int64)
    return np.where(probationary, recent, joined).astype(np.int64)


def _party_orgs(
    rng: np.random.Generator,
    village_rows: Sequence[tuple[str, str, str, str, shapely.MultiPolygon]],
    member_village: IntArray,
    members: DemoMembers,
    member_age: IntArray,
) -> list[DemoPartyOrg]:
    """One organisation per village: 党支部 for most, 党总支 for the larger ~18 %, 党委 for the
    largest ~2 % (by member count, as the Party's organisation rules scale them)."""
    nv = len(village_rows)
    count = np.bincount(member_village, minlength=nv)
    rank = np.empty(nv, dtype=np.int64)
    rank[np.lexsort((np.arange(nv), -count))] = np.arange(nv)
    n_committee = round(0.02 * nv)
    n_general = round(0.18 * nv)
    eligible = (
        (np.array(members.status) == "full")
        & ~members.flowing
        & (member_age >= 30)
        & (member_age <= 65)
    )
    orgs: list[DemoPartyOrg] = []
    start = np.searchsorted(member_village, np.arange(nv))  # members are grouped by village
    stop = np.searchsorted(member_village, np.arange(nv), side="right")
    for vi, row in enumerate(village_rows):
        if rank[vi] < n_committee:
            kind, label = "committee", "党委"
        elif rank[vi] < n_committee + n_general:
            kind, label = "general_branch", "党总支"
        else:
            kind, label = "branch", "党支部"
        idx = np.arange(start[vi], stop[vi])
        pool = idx[eligible[idx]] if eligible[idx].any() else idx
        men = pool[np.array(members.gender, dtype=object)[pool] == "M"]
        if len(men) and rng.random() < 0.85:  # most village secretaries are men
            pool = men
        if len(pool):
            s = int(pool[int(rng.integers(len(pool)))])
            sec_name, sec_phone = members.name[s], members.phone[s]
        else:  # a village without members (tiny demo): an outside appointee (第一书记)
            male = np.array([True])
            sec_name = str((_surnames(rng, 1) + _given_names(rng, male, np.array([1980])))[0])
            sec_phone = _phones(rng, 1)[0]
        orgs.append(DemoPartyOrg(row[0], f"{row[1]}{label}", kind, sec_name, sec_phone))
    return orgs
