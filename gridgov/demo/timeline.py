"""The demo year: its dates, its seasons, and deterministic randomness.

Everything the activity of the demo county does happens in the year before ``today`` (China's
local date): from ``start`` (a year earlier, when the county began to use the system) to
``end`` (today's local midnight). Nothing depends on the clock beyond the date, so two loads on
the same day with the same seed write the same year.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

CST = ZoneInfo("Asia/Shanghai")
YEAR_DAYS = 365


def rng(seed: int, *parts: object) -> random.Random:
    """A generator of its own for one purpose (``parts`` name it), independent of every other:
    adding a draw in one place never changes what another place draws."""
    key = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(key, "big"))


@dataclass(frozen=True)
class Year:
    start: date  # first day of the demo year
    today: date  # the load's local date; the year ends at its midnight
    festival: tuple[date, date] | None  # 春节 holiday (first day, last day), from calendar_days
    holidays: frozenset[date]

    @property
    def end(self) -> datetime:
        """The demo's "now": today's local midnight (as UTC)."""
        return local(self.today, 0)

    @property
    def days(self) -> int:
        return (self.today - self.start).days

    def day(self, offset: int) -> date:
        return self.start + timedelta(days=offset)

    def activity(self, day: date) -> float:
        """How much fieldwork happens on ``day`` (1 = a normal weekday): 春节 and the two
        农忙 seasons of southern Hunan (春插 late April–mid May, 双抢 mid July–early August) are
        dips, weekends and other public holidays a little lower."""
        weight = 1.0
        if self.festival is not None:
            first, last = self.festival
            if first <= day <= last:
                return 0.12
            if first - timedelta(days=7) <= day <= last + timedelta(days=5):
                weight = 0.45
        md = (day.month, day.day)
        if (4, 20) <= md <= (5, 15):
            weight = min(weight, 0.6)
        elif (7, 10) <= md <= (8, 10):
            weight = min(weight, 0.45)
        if day in self.holidays:
            weight = min(weight, 0.6)
        elif day.weekday() >= 5:
            weight *= 0.8
        return weight


def local(day: date, hour: float) -> datetime:
    """``hour`` o'clock (fractions allowed) of a local day, as an aware UTC datetime."""
    at = datetime.combine(day, time(0), CST) + timedelta(hours=hour)
    return at.astimezone(UTC)


def load_year(session: Session, county_code: str, today: date | None = None) -> Year:
    if today is None:
        today = datetime.now(CST).date()
    start = today - timedelta(days=YEAR_DAYS)
    rows = session.execute(
        text(
            "SELECT day, kind, name FROM calendar_days WHERE county_code IN ('000000', :c) "
            "AND day BETWEEN :a AND :b ORDER BY day"
        ),
        {"c": county_code, "a": start, "b": today},
    ).all()
    holidays = frozenset(r.day for r in rows if r.kind == "holiday")
    festival_days = [r.day for r in rows if r.kind == "holiday" and "春节" in r.name]
    festival = (festival_days[0], festival_days[-1]) if festival_days else None
    return Year(start=start, today=today, festival=festival, holidays=holidays)
