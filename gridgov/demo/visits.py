"""The demo year's 走访: visits following each household's schedule, written with COPY, then
checked by the server's own verification (the same function the batch upload calls) and
reviewed.

Who visits: each household's primary contact of the day (the contact history of
``people.py``), through the member's account for the household's grid. How often: the
household's interval (DESIGN §6, shortest tag wins, ``visits_service.intervals_for``) times the
member's habit — diligent members come early, average ones around the due day, lazy ones late
or not at all; the members of a few weak villages mostly lazy — and the season (春节 and 农忙
are dips, ``Year.activity``). Mostly door-to-door with a GPS fix near the household (accuracy
reported), some by phone or video (no position). Honest members' phones sometimes have a poor
fix, none, a wrong clock, or upload a week late; now and then a member looks in on a neighbour
they do not contact. A handful of members fake: they sit at home and log a month of visits in
minutes (a burst, far from every household), or spoof each household's position seconds apart
(impossible speed), with the same photo on several visits.

Writing: one pass over the contact periods, member by member (memory holds one member's year),
rows streamed into ``COPY visits``; ``client_uuid`` drawn from the seed, ``content_hash`` by the
upload's own ``_content_hash``, ``received_at`` when the phone would have uploaded. Then the
server's ``_compute_flags`` (FLAGS_SQL and PHOTO_REUSE_SQL) over every new visit in chunks: a
flagged visit is ``pending``. Then reviews, as ``review_visit`` writes them (reviewed_by,
reviewed_at, reason, and an audit entry each): the village secretary accepts most flagged
visits of honest members and rejects most of the fakers'; the newest wait for review, and weak
villages leave many waiting.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridgov.db import raw_connection
from gridgov.demo.people import People
from gridgov.demo.timeline import CST, Year, rng
from gridgov.households.validation import ORDINARY_INTERVAL_DAYS
from gridgov.visits import service as visits_service
from gridgov.visits.storage import BlobStore

Progress = Callable[[str, int, int], None]

FLAG_CHUNK = 20_000
COPY_ROWS = 200_000
METRES_PER_DEG_LAT = 111_320.0

NOTES = (
    "户主在家，身体状况良好",
    "了解家庭收入情况，暂无新增困难",
    "宣传防范电信诈骗知识",
    "老人独居，叮嘱注意用电用火安全",
    "子女在外务工，老人生活能自理",
    "了解医保缴费情况，已提醒按时缴纳",
    "宣讲惠农补贴政策",
    "家中有慢性病人，已联系村医随访",
    "反映房前道路积水，已记录上报",
    "询问低保复核进度，已解释政策",
    "查看房屋安全情况，未发现隐患",
    "汛期提醒转移避险路线",
)
NEEDS = (
    "申请临时救助",
    "咨询医疗报销",
    "子女就学资助",
    "危房改造申请",
    "就业技能培训",
    "饮水管道维修",
    "申请残疾人补贴",
)
REJECT_REASONS = (
    "定位与走访户不符，经核实未入户",
    "多户走访记录集中在几分钟内，经核实为补录虚报",
    "照片与其他走访重复，不予认定",
)
ACCEPT_REASONS = (
    "经电话回访核实，走访属实",
    "山区信号差，定位偏差属实",
    "手机时间设置错误，已核实",
    "网络不通补传，走访属实",
    "协助邻户走访，情况属实",
)
REJECT_HONEST = ("定位偏差过大，无法核实", "走访内容不完整，请重新走访")


@dataclass
class VisitSummary:
    visits: int = 0
    attachments: int = 0
    by_review: dict[str, int] = field(default_factory=dict)
    by_flag: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Period:
    household_id: int
    grid_id: int
    village_id: int
    lon: float
    lat: float
    interval: int
    start: int  # day offsets in the year, [start, end)
    end: int
    initial: bool  # since the first day (the county's first round of visits)


@dataclass(slots=True)
class _Habit:
    lo: float  # gap between visits, as a share of the interval
    hi: float
    skip: float  # chance of letting a due visit slide a whole interval more
    reliability: float  # how readily the member goes out on a given day
    stops: int | None  # day the member stops logging visits altogether (weak villages)


def _habit(r: random.Random, weak: bool, faker: bool, days: int) -> _Habit:
    roll = r.random()
    if faker:
        return _Habit(0.9, 1.3, 0.05, 0.9, None)
    if weak:
        stops = r.randint(days // 4, days) if r.random() < 0.45 else None
        if roll < 0.12:
            return _Habit(0.8, 1.1, 0.05, 0.85, stops)
        return _Habit(1.3, 2.8, 0.3, 0.55, stops)
    if roll < 0.55:  # diligent: goes before the visit is due
        return _Habit(0.72, 0.97, 0.0, 0.97, None)
    if roll < 0.85:  # average: around the due day
        return _Habit(0.85, 1.3, 0.04, 0.9, None)
    return _Habit(1.15, 2.3, 0.15, 0.75, None)  # lazy


def _intervals(tags: list[str], table: dict[str, int]) -> int:
    known = [table[t] for t in tags if t in table]
    return min(known) if known else ORDINARY_INTERVAL_DAYS


def _read_periods(
    session: Session, people: People, year: Year, table: dict[str, int]
) -> Iterator[tuple[int, float, float, list[_Period]]]:
    """(member id, home lon, home lat, its primary periods) member by member. One row per
    contact period of the county (≈ households), not per visit."""
    rows = session.execute(
        text(
            """
            SELECT c.member_id, ST_X(m.geom) AS mlon, ST_Y(m.geom) AS mlat, c.household_id,
                   h.grid_id, h.village_id, ST_X(h.geom) AS lon, ST_Y(h.geom) AS lat, h.tags,
                   c.valid_from, c.valid_to
            FROM contacts c JOIN households h ON h.id = c.household_id
            JOIN party_members m ON m.id = c.member_id
            WHERE c.county_code = :c AND c.role = 'primary' AND h.grid_id IS NOT NULL
            ORDER BY c.member_id, c.valid_from, c.id
            """
        ),
        {"c": people.county_code},
    ).all()
    current: int | None = None
    home = (0.0, 0.0)
    periods: list[_Period] = []
    for r in rows:
        if r.member_id != current:
            if current is not None:
                yield current, home[0], home[1], periods
            current, home, periods = r.member_id, (r.mlon, r.mlat), []
        end = (r.valid_to - year.start).days if r.valid_to is not None else year.days
        start = (r.valid_from - year.start).days
        if end <= start:
            continue
        periods.append(
            _Period(
                r.household_id,
                r.grid_id,
                r.village_id,
                r.lon,
                r.lat,
                _intervals(r.tags, table),
                start,
                end,
                start == 0,
            )
        )
    if current is not None:
        yield current, home[0], home[1], periods


def _schedule(
    r: random.Random,
    habit: _Habit,
    periods: list[_Period],
    activity: list[float],
    rate: float,
    ramp: list[float] | None,
) -> list[tuple[int, int]]:
    """(day offset, period index) of a member's visits over the year. ``ramp``: the share of
    the visits of each day that are logged in the app (the rest went into the old paper
    ledger while the county took the app up); None: all of them."""
    out: list[tuple[int, int]] = []
    for i, p in enumerate(periods):
        gap = p.interval / rate
        lo, hi = habit.lo, habit.hi
        if p.interval <= 7:  # weekly visits leave no room for coming early
            lo, hi = (
                (lo + (1 - lo) * 0.7 if lo < 1 else lo),
                (hi + (1 - hi) * 0.7 if hi < 1 else hi),
            )
        if p.initial:  # the first round after the county began: a share of the interval
            t = r.uniform(0, min(gap, 45.0)) * (lo + hi) / 1.6
        else:  # a new contact goes round within a few weeks
            t = p.start + r.uniform(1, min(gap, 25.0))
        end = p.end if habit.stops is None else min(p.end, habit.stops)
        while t < end:
            d = int(t)
            if r.random() > activity[d] * habit.reliability:
                t += r.uniform(1, 3)
                continue
            if ramp is None or ramp[d] >= 1.0 or r.random() < ramp[d]:
                out.append((d, i))
            step = gap * r.uniform(lo, hi)
            if r.random() < habit.skip:
                step += gap
            t += max(step, 1.0)
    out.sort()
    return out


@dataclass(slots=True)
class _Sitting:
    """A faker's evening at home logging visits that never happened."""

    items: list[int]
    pattern: int  # 0: from elsewhere (far), 1: from home with a poor fix, 2: spoofed positions


class _Writer:
    """Rows of one member's visits, as the upload would store them."""

    def __init__(
        self,
        people: People,
        year: Year,
        seed: int,
        *,
        rate: float,
        activity: list[float],
        ramp: list[float],
        neighbours: dict[int, list[tuple[int, int, float, float]]],
    ) -> None:
        self.people = people
        self.year = year
        self.seed = seed
        self.rate = rate
        self.activity = activity
        self.ramp = ramp
        self.neighbours = neighbours
        self.county = people.county_code
        self.faker_rank = {m: k for k, m in enumerate(people.fakers)}
        self.midnight = [
            datetime.combine(year.day(d), datetime.min.time(), CST).astimezone(UTC)
            for d in range(year.days + 1)
        ]
        self.end = year.end
        self.attachments: list[tuple[uuid.UUID, int, bytes]] = []
        self.photo_serial = 0
        self.r = random.Random(0)

    def new_photo(self) -> bytes:
        self.photo_serial += 1
        return tiny_jpeg(f"gridgov demo {self.seed} {self.photo_serial}")

    def photo(self, user_id: int, data: bytes) -> uuid.UUID:
        ident = uuid.UUID(int=self.r.getrandbits(128), version=4)
        self.attachments.append((ident, user_id, data))
        return ident

    def rows(
        self,
        member_id: int,
        home: tuple[float, float],
        periods: list[_Period],
        habit: _Habit,
        r: random.Random,
    ) -> Iterator[tuple[Any, ...]]:
        self.r = r
        plan = _schedule(r, habit, periods, self.activity, self.rate, self.ramp)
        by_day: dict[int, list[int]] = {}
        sittings: dict[int, list[_Sitting]] = {}
        if member_id in self.faker_rank:
            # Most of a faker's visits are made up, logged in sittings of several at once on
            # the evening the last of them was due.
            fake = []
            for d, i in plan:
                if r.random() < 0.7:
                    fake.append((d, i))
                else:
                    by_day.setdefault(d, []).append(i)
            k = 0
            while fake:
                size = r.randint(6, 9)
                group, fake = fake[:size], fake[size:]
                pattern = (k + self.faker_rank[member_id]) % 3  # each faker starts elsewhere
                sittings.setdefault(group[-1][0], []).append(
                    _Sitting([i for _, i in group], pattern)
                )
                k += 1
            angle = r.uniform(0, 6.283)
            distance = r.uniform(1500, 4000)
            elsewhere = _offset(
                home[0], home[1], distance * math.cos(angle), distance * math.sin(angle)
            )
        else:
            for d, i in plan:
                by_day.setdefault(d, []).append(i)
            elsewhere = home
        for d in sorted(set(by_day) | set(sittings)):
            base = self.midnight[d]
            clock = r.uniform(8.5, 10.5) * 3600 if r.random() < 0.6 else r.uniform(14, 16.5) * 3600
            for i in by_day.get(d, ()):
                if base + timedelta(seconds=clock) >= self.end:
                    break
                yield self._honest(member_id, periods[i], base, clock)
                clock += r.uniform(20, 55) * 60
            clock = max(clock, r.uniform(19.5, 21.5) * 3600)
            for sitting in sittings.get(d, ()):
                yield from self._fake(member_id, home, elsewhere, periods, sitting, base, clock)
                clock += 3600

    def _user(self, member_id: int, grid_id: int) -> int:
        return self.people.member_users[(member_id, grid_id)]

    def _honest(self, member_id: int, p: _Period, base: datetime, clock: float) -> tuple[Any, ...]:
        r = self.r
        household, lon, lat, village, grid = p.household_id, p.lon, p.lat, p.village_id, p.grid_id
        if r.random() < 0.004 and len(self.neighbours.get(grid, ())) > 1:
            # looks in on a neighbour it does not contact (not_assigned)
            household, village, lon, lat = r.choice(self.neighbours[grid])
        method_roll = r.random()
        phone_share = 0.35 if p.interval <= 7 else 0.12
        if method_roll < phone_share:
            method = "phone"
        elif method_roll < phone_share + 0.03:
            method = "video"
        elif method_roll < phone_share + 0.05:
            method = "meeting"
        else:
            method = "door"
        point = accuracy = None
        if method == "door":
            fix = r.random()
            if fix < 0.004:
                point = None  # GPS switched off (no_location)
            elif fix < 0.02:
                accuracy = round(r.uniform(120, 450), 1)  # a valley with poor reception
                point = _jitter(r, lon, lat, accuracy * 0.5)
            else:
                accuracy = round(min(r.lognormvariate(2.5, 0.55), 95.0), 1)
                point = _jitter(r, lon, lat, accuracy * 0.4)
        visited = base + timedelta(seconds=int(clock))
        received = _received(r, visited, self.end)
        if r.random() < 0.0015:  # the phone's clock runs ahead (future_visited_at)
            shown = visited + timedelta(minutes=r.uniform(30, 600))
            if shown < self.end:
                received = min(visited + timedelta(minutes=r.uniform(1, 15)), self.end)
                visited = shown
        notes = r.choice(NOTES) if r.random() < 0.55 else None
        needs = [r.choice(NEEDS)] if r.random() < 0.05 else []
        photos = []
        if method == "door" and r.random() < 0.012:
            photos = [self.photo(self._user(member_id, grid), self.new_photo())]
        return self._row(
            member_id, grid, village, household, visited, received, point, accuracy, method,
            notes, needs, photos,
        )  # fmt: skip

    def _fake(
        self,
        member_id: int,
        home: tuple[float, float],
        elsewhere: tuple[float, float],
        periods: list[_Period],
        sitting: _Sitting,
        base: datetime,
        clock: float,
    ) -> Iterator[tuple[Any, ...]]:
        r = self.r
        photo: bytes | None = None
        for i in sorted(sitting.items, key=lambda k: periods[k].household_id):
            p = periods[i]
            visited = base + timedelta(seconds=int(clock))
            if visited >= self.end:
                return
            if sitting.pattern == 2:  # each household's position, seconds apart
                point, accuracy = (round(p.lon, 7), round(p.lat, 7)), 5.0
                clock += r.uniform(3, 10)
            elif sitting.pattern == 1:  # at home, the fix left coarse
                accuracy = round(r.uniform(180, 800), 1)
                point = _jitter(r, home[0], home[1], 20.0)
                clock += r.uniform(40, 100)
            else:  # from the town where the member works
                accuracy = round(r.uniform(20, 80), 1)
                point = _jitter(r, elsewhere[0], elsewhere[1], 30.0)
                clock += r.uniform(40, 100)
            photos = []
            if r.random() < 0.5:
                if photo is None or r.random() < 0.15:
                    photo = self.new_photo()
                photos = [self.photo(self._user(member_id, p.grid_id), photo)]
            received = min(visited + timedelta(minutes=r.uniform(2, 30)), self.end)
            yield self._row(
                member_id, p.grid_id, p.village_id, p.household_id, visited, received, point,
                accuracy, "door", r.choice(NOTES[:4]), [], photos,
            )  # fmt: skip

    def _row(
        self,
        member_id: int,
        grid: int,
        village: int,
        household: int,
        visited: datetime,
        received: datetime,
        point: tuple[float, float] | None,
        accuracy: float | None,
        method: str,
        notes: str | None,
        needs: list[str],
        photos: list[uuid.UUID],
    ) -> tuple[Any, ...]:
        wkt = f"POINT({point[0]:.7f} {point[1]:.7f})" if point else None
        attachments = [str(a) for a in photos]
        digest = visits_service._content_hash(
            [household, visited.isoformat(), wkt, accuracy, method, notes, needs, attachments]
        )
        client_uuid = uuid.UUID(int=self.r.getrandbits(128), version=4)
        return (
            client_uuid,
            digest,
            self.county,
            village,
            grid,
            household,
            member_id,
            self._user(member_id, grid),
            visited,
            received,
            f"SRID=4326;{wkt}" if wkt else None,
            accuracy,
            method,
            notes,
            needs,
            photos,
        )


def _offset(lon: float, lat: float, dx: float, dy: float) -> tuple[float, float]:
    """The point ``dx`` metres east and ``dy`` north of (lon, lat), rounded as stored."""
    return (
        round(lon + dx / (METRES_PER_DEG_LAT * math.cos(math.radians(lat))), 7),
        round(lat + dy / METRES_PER_DEG_LAT, 7),
    )


def _jitter(r: random.Random, lon: float, lat: float, sigma_m: float) -> tuple[float, float]:
    return _offset(lon, lat, r.gauss(0, sigma_m), r.gauss(0, sigma_m))


def _received(r: random.Random, visited: datetime, end: datetime) -> datetime:
    """When the phone uploads: mostly at once, often that evening, sometimes days later."""
    roll = r.random()
    if roll < 0.7:
        delay = r.uniform(0.5, 60) * 60
    elif roll < 0.95:
        delay = r.uniform(1, 48) * 3600
    elif roll < 0.993:
        delay = r.uniform(2, 6.5) * 86400
    else:
        delay = r.uniform(8, 30) * 86400  # offline for weeks (late_upload)
    return min(visited + timedelta(seconds=int(delay)), end)


def tiny_jpeg(comment: str) -> bytes:
    """A valid 8×8 grey baseline JPEG whose comment segment makes its bytes (and hash) unique."""
    payload = comment.encode()
    com = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
    dqt = b"\xff\xdb\x00\x43\x00" + b"\x01" * 64
    sof = b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00"
    dht_dc = b"\xff\xc4\x00\x14\x00" + b"\x01" + b"\x00" * 15 + b"\x00"
    dht_ac = b"\xff\xc4\x00\x14\x10" + b"\x01" + b"\x00" * 15 + b"\x00"
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + com + dqt + sof + dht_dc + dht_ac + sos + b"\x3f" + b"\xff\xd9"


# -- the pipeline -----------------------------------------------------------------------------

VISITS_PER_HOUSEHOLD = 3  # default size: about this many visits per household in the year
ADOPTION_DAYS = 120  # the app taken up over the first months: a share of visits logged grows
ADOPTION_FLOOR = 0.25  # from this on the first day to all of them after ADOPTION_DAYS


def _ramp(days: float, length: int) -> list[float]:
    if days <= 0:
        return [1.0] * length
    return [min(1.0, ADOPTION_FLOOR + (1 - ADOPTION_FLOOR) * d / days) for d in range(length)]


def _histogram(
    members: list[tuple[int, float, float, list[_Period]]],
    habits: dict[int, _Habit],
    activity: list[float],
    seed: int,
    rate: float = 1.0,
) -> list[int]:
    """Visits per day of the year at ``rate``, before the adoption ramp."""
    counts = [0] * len(activity)
    for rank, (m, _, _, periods) in enumerate(members):
        for d, _ in _schedule(rng(seed, "count", rank), habits[m], periods, activity, rate, None):
            counts[d] += 1
    return counts


def _calibrate(target: int, counts: list[int], length: int) -> tuple[float, float]:
    """(rate, adoption days) giving about ``target`` visits: more than the schedules give
    means visiting more often; fewer, a slower take-up of the app (so the last months — what
    today's due lists show — stay as they are), and only past that, visiting less often."""

    def expected(days: float) -> float:
        ramp = _ramp(days, length)
        return sum(c * w for c, w in zip(counts, ramp, strict=True))

    natural = expected(ADOPTION_DAYS)
    if target >= natural:
        return target / max(natural, 1.0), float(ADOPTION_DAYS)
    lo, hi = float(ADOPTION_DAYS), length * 0.8
    if expected(hi) > target:
        return target / max(expected(hi), 1.0), hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expected(mid) > target else (lo, mid)
    return 1.0, (lo + hi) / 2


def load_visits(
    session: Session,
    people: People,
    year: Year,
    *,
    seed: int,
    target: int | None,
    store: BlobStore,
    report: Progress,
) -> VisitSummary:
    import time

    summary = VisitSummary()
    table = visits_service.intervals_for(people.county_code)
    timer = time.perf_counter()
    members = list(_read_periods(session, people, year, table))
    # Randomness is keyed by a member's rank (the order of ids), not its id: the same seed
    # gives the same year in any database.
    habits = {}
    for rank, (member_id, _, _, periods) in enumerate(members):
        village = periods[0].village_id if periods else 0
        habits[member_id] = _habit(
            rng(seed, "habit", rank), village in people.weak_villages,
            member_id in people.fakers, year.days,
        )  # fmt: skip
    activity = [year.activity(year.day(d)) for d in range(year.days)]
    if target is None:
        households = session.scalar(
            text("SELECT count(*) FROM households WHERE county_code = :c"),
            {"c": people.county_code},
        )
        target = VISITS_PER_HOUSEHOLD * (households or 0)
    rate, adoption = 1.0, ADOPTION_DAYS
    if target is not None:
        rate, adoption = _calibrate(
            target, _histogram(members, habits, activity, seed), len(activity)
        )
        for _ in range(3):
            # Visiting more often is not linear (at most one visit a day, seasons, the year's
            # end): count again at the rate found and correct it.
            if rate <= 1.0:
                break
            ramp = _ramp(adoption, len(activity))
            counts = _histogram(members, habits, activity, seed, rate)
            got = sum(c * w for c, w in zip(counts, ramp, strict=True))
            if abs(got - target) < 0.01 * target:
                break
            rate *= target / max(got, 1.0)
    ramp = _ramp(adoption, len(activity))
    neighbours: dict[int, list[tuple[int, int, float, float]]] = {}
    for _, _, _, periods in members:
        for p in periods:
            neighbours.setdefault(p.grid_id, []).append(
                (p.household_id, p.village_id, p.lon, p.lat)
            )
    summary.seconds["plan"] = time.perf_counter() - timer

    timer = time.perf_counter()
    writer = _Writer(
        people, year, seed, rate=rate, activity=activity, ramp=ramp, neighbours=neighbours
    )
    first_id = session.scalar(text("SELECT COALESCE(max(id), 0) FROM visits")) or 0
    conn = raw_connection(session)
    total = len(members)
    report("走访：写入", 0, total)

    def generated() -> Iterator[tuple[Any, ...]]:
        for n, (member_id, mlon, mlat, periods) in enumerate(members):
            member_rng = rng(seed, "visits", n)
            yield from writer.rows(member_id, (mlon, mlat), periods, habits[member_id], member_rng)
            if n % 500 == 0:
                report("走访：写入", n, total)

    # One COPY per COPY_ROWS rows: each statement stays well within the statement timeout.
    written = 0
    rows = generated()
    while True:
        before = written
        with conn.cursor().copy(
            "COPY visits (client_uuid, content_hash, county_code, village_id, grid_id, "
            "household_id, member_id, user_id, visited_at, received_at, geom, accuracy_m, "
            "method, notes, needs, attachment_ids) FROM STDIN"
        ) as copy:
            for row in itertools.islice(rows, COPY_ROWS):
                copy.write_row(row)
                written += 1
        if written - before < COPY_ROWS:
            break
    report("走访：写入", total, total)
    summary.visits = written
    if writer.attachments:
        with conn.cursor().copy(
            "COPY attachments (id, county_code, user_id, sha256, size, media_type) FROM STDIN"
        ) as copy:
            for ident, user_id, data in writer.attachments:
                digest = hashlib.sha256(data).hexdigest()
                store.put(digest, data)
                copy.write_row(
                    (ident, people.county_code, user_id, digest, len(data), "image/jpeg")
                )
    summary.attachments = len(writer.attachments)
    session.execute(text("ANALYZE visits; ANALYZE attachments"))
    summary.seconds["write"] = time.perf_counter() - timer

    timer = time.perf_counter()
    _flag(session, first_id, written, report)
    summary.seconds["flags"] = time.perf_counter() - timer

    timer = time.perf_counter()
    _review(session, people, year, first_id, seed=seed)
    summary.seconds["review"] = time.perf_counter() - timer
    for row in session.execute(
        text("SELECT review_status, count(*) FROM visits WHERE id > :f GROUP BY 1 ORDER BY 1"),
        {"f": first_id},
    ):
        summary.by_review[row[0]] = row[1]
    for row in session.execute(
        text("SELECT f, count(*) FROM visits, unnest(flags) f WHERE id > :f GROUP BY 1 ORDER BY 1"),
        {"f": first_id},
    ):
        summary.by_flag[row[0]] = row[1]
    return summary


def _flag(session: Session, first_id: int, total: int, report: Progress) -> None:
    """The server's own verification over every new visit, a chunk of ids at a time."""
    report("走访：核验", 0, total)
    after, done = first_id, 0
    while True:
        ids = session.scalars(
            text("SELECT id FROM visits WHERE id > :a ORDER BY id LIMIT :n"),
            {"a": after, "n": FLAG_CHUNK},
        ).all()
        if not ids:
            break
        visits_service._compute_flags(session, list(ids), with_photos=True)
        after = ids[-1]
        done += len(ids)
        report("走访：核验", done, total)


def _review(session: Session, people: People, year: Year, first_id: int, *, seed: int) -> None:
    """Reviewers decide on flagged visits as ``review_visit`` records it; a deterministic draw
    per visit (from its UUID and the seed) stands for the reviewer's judgement."""
    staff = people.staff
    reviewers = orjson.dumps({str(k): v for k, v in staff.village.items()}).decode()
    rows = session.execute(
        text(
            """
            WITH draw AS (
                SELECT v.id, v.received_at, v.village_id, v.flags,
                       v.member_id = ANY(CAST(:fakers AS bigint[])) AS faker,
                       v.village_id = ANY(CAST(:weak AS bigint[])) AS weak,
                       (('x' || substr(md5(v.client_uuid::text || :seed), 1, 8))::bit(32)::bigint
                        & 2147483647) / 2147483647.0 AS p,
                       (('x' || substr(md5(v.client_uuid::text || :seed), 9, 8))::bit(32)::bigint
                        & 2147483647) / 2147483647.0 AS q,
                       (CAST(:reviewers AS jsonb) ->> v.village_id::text)::bigint AS reviewer
                FROM visits v
                WHERE v.id > :first AND v.review_status = 'pending'
            ),
            decided AS (
                SELECT d.*, d.received_at + make_interval(hours => (6 + d.q * 200)::int) AS at,
                       CASE
                         WHEN d.weak AND d.p < 0.55 THEN NULL
                         WHEN d.faker AND d.p < 0.88 THEN 'rejected'
                         WHEN d.faker THEN 'accepted'
                         WHEN d.p < 0.04 THEN 'rejected'
                         WHEN d.p < 0.96 THEN 'accepted'
                       END AS decision
                FROM draw d WHERE d.reviewer IS NOT NULL
            ),
            done AS (
                UPDATE visits v SET review_status = d.decision, reviewed_by = d.reviewer,
                       reviewed_at = d.at,
                       review_reason = CASE
                         WHEN d.decision = 'rejected' AND d.faker
                           THEN (CAST(:reject AS text[]))[1 + (d.q * 3)::int % 3]
                         WHEN d.decision = 'rejected'
                           THEN (CAST(:reject_honest AS text[]))[1 + (d.q * 2)::int % 2]
                         ELSE (CAST(:accept AS text[]))[1 + (d.q * 5)::int % 5]
                       END
                FROM decided d
                WHERE v.id = d.id AND d.decision IS NOT NULL AND d.at < :end
                RETURNING v.id, v.county_code, v.review_status, v.review_reason, v.reviewed_by,
                          v.reviewed_at
            )
            INSERT INTO audit_log (at, user_id, username, role, action, entity, entity_id,
                                   county_code, before, after)
            SELECT done.reviewed_at, done.reviewed_by, u.username, u.role,
                   CASE done.review_status WHEN 'accepted' THEN 'review_accept'
                        ELSE 'review_reject' END,
                   'visit', done.id::text, done.county_code,
                   jsonb_build_object('review_status', 'pending', 'review_reason', NULL),
                   jsonb_build_object('review_status', done.review_status,
                                      'review_reason', done.review_reason)
            FROM done JOIN users u ON u.id = done.reviewed_by
            """
        ),
        {
            "first": first_id,
            "fakers": "{" + ",".join(str(m) for m in sorted(people.fakers)) + "}",
            "weak": "{" + ",".join(str(v) for v in sorted(people.weak_villages)) + "}",
            "seed": str(seed),
            "reviewers": reviewers,
            "reject": list(REJECT_REASONS),
            "reject_honest": list(REJECT_HONEST),
            "accept": list(ACCEPT_REASONS),
            "end": year.end,
        },
    )
    del rows
