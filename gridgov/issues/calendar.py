"""The working calendar: which days are worked (holidays and 调休 make-up days), and deadline
arithmetic in working hours. Pure functions over a ``WorkCalendar``; ``load`` reads the
``calendar_days`` table (national rows, overridden by the county's own).

A working day runs from ``start_hour`` to ``end_hour`` in Asia/Shanghai. "N working hours after
T" counts only time inside working days' working hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridgov.config import get_settings
from gridgov.issues.models import NATIONAL, CalendarDay

CST = ZoneInfo("Asia/Shanghai")
# A deadline search never walks further than this (a calendar that is all holidays is a bug).
_MAX_DAYS = 3660


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # 调休: worked weekend days
    start_hour: int = 9
    end_hour: int = 17

    @property
    def hours_per_day(self) -> int:
        return self.end_hour - self.start_hour

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def _window(self, day: date) -> tuple[datetime, datetime]:
        return (
            datetime.combine(day, time(self.start_hour), CST),
            datetime.combine(day, time(0), CST) + timedelta(hours=self.end_hour),
        )

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` working hours after ``start`` (an aware datetime)."""
        remaining = timedelta(hours=hours)
        current = start.astimezone(CST)
        day = current.date()
        for _ in range(_MAX_DAYS):
            if self.is_workday(day):
                open_, close = self._window(day)
                begin = max(current, open_)
                if begin < close:
                    available = close - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            day += timedelta(days=1)
            current = datetime.combine(day, time(0), CST)
        raise ValueError("no working days within ten years")

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours elapsed from ``start`` to ``end`` (0 if end is not after start)."""
        if end <= start:
            return 0.0
        a, b = start.astimezone(CST), end.astimezone(CST)
        total = timedelta()
        day = a.date()
        while day <= b.date():
            if self.is_workday(day):
                open_, close = self._window(day)
                lo, hi = max(a, open_), min(b, close)
                if lo < hi:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 3600


_REUSE = "gridgov.issues.calendars"


@contextmanager
def reused(session: Session) -> Iterator[None]:
    """Inside this block ``load`` reads each county's calendar once per session: for bulk work
    that does not change ``calendar_days`` meanwhile (the demo loader's year of issues)."""
    session.info[_REUSE] = {}
    try:
        yield
    finally:
        session.info.pop(_REUSE, None)


def load(session: Session, county_code: str) -> WorkCalendar:
    """The county's calendar: national rows, each overridden by the county's row of that day."""
    memo = session.info.get(_REUSE)
    if memo is not None and county_code in memo:
        return memo[county_code]
    rows = session.execute(
        select(CalendarDay.day, CalendarDay.kind, CalendarDay.county_code)
        .where(CalendarDay.county_code.in_([NATIONAL, county_code]))
        .order_by(CalendarDay.county_code == county_code)  # national first, county wins
    ).all()
    kinds: dict[date, str] = {}
    for day, kind, _ in rows:
        kinds[day] = kind
    settings = get_settings().issues
    cal = WorkCalendar(
        holidays=frozenset(d for d, k in kinds.items() if k == "holiday"),
        workdays=frozenset(d for d, k in kinds.items() if k == "workday"),
        start_hour=settings.workday_start_hour,
        end_hour=settings.workday_end_hour,
    )
    if memo is not None:
        memo[county_code] = cal
    return cal
