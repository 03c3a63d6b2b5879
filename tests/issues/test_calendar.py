"""The working calendar: the seeded 2025/2026 schedule, 调休 workdays, and SLA arithmetic."""

from __future__ import annotations

import csv
from datetime import date
from importlib import resources

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridgov.issues import calendar
from gridgov.issues.models import NATIONAL, CalendarDay
from tests.fixtures.world import COUNTY
from tests.issues.conftest import cst


def test_seed_holds_every_row_of_the_shipped_schedule(session: Session) -> None:
    text = (resources.files("gridgov") / "seed" / "cn-holidays.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    stored = {
        (d.day.isoformat(), d.kind)
        for d in session.scalars(select(CalendarDay).where(CalendarDay.county_code == NATIONAL))
    }
    assert stored == {(r["date"], r["kind"]) for r in rows}
    assert session.scalar(select(func.count()).select_from(CalendarDay)) == len(rows)


def test_national_day_2025_with_its_make_up_workdays(session: Session) -> None:
    cal = calendar.load(session, COUNTY)
    assert cal.is_workday(date(2025, 9, 28))  # a Sunday, worked (调休)
    assert cal.is_workday(date(2025, 10, 11))  # a Saturday, worked (调休)
    assert not cal.is_workday(date(2025, 10, 8))  # a Wednesday, holiday
    assert not cal.is_workday(date(2025, 9, 27))  # an ordinary Saturday
    assert cal.is_workday(date(2025, 10, 9))

    # Tue 30 Sep 10:00 + 3 working days (24 h of 8): 7 h that day, 1–8 Oct off,
    # Thu 9 Oct 8 h, Fri 10 Oct 8 h, Sat 11 Oct (调休) 1 h → 10:00.
    assert cal.add_working_hours(cst(2025, 9, 30, 10), 24) == cst(2025, 10, 11, 10)
    # Fri 26 Sep 16:00 + 2 h: 1 h on Friday, Saturday off, Sunday 28th is worked → 10:00.
    assert cal.add_working_hours(cst(2025, 9, 26, 16), 2) == cst(2025, 9, 28, 10)
    # Started out of hours: the clock starts at the next opening.
    assert cal.add_working_hours(cst(2025, 9, 30, 20), 1) == cst(2025, 10, 9, 10)
    assert cal.working_hours_between(cst(2025, 9, 30, 9), cst(2025, 10, 9, 9)) == 8.0
    assert cal.working_hours_between(cst(2025, 9, 26, 16), cst(2025, 9, 28, 10)) == 2.0


def test_a_county_row_overrides_the_national_one(session: Session) -> None:
    session.add(CalendarDay(county_code=COUNTY, day=date(2025, 10, 9), kind="holiday", name="县假"))
    session.add(CalendarDay(county_code=COUNTY, day=date(2025, 10, 1), kind="workday", name="值班"))
    session.flush()
    cal = calendar.load(session, COUNTY)
    assert not cal.is_workday(date(2025, 10, 9))
    assert cal.is_workday(date(2025, 10, 1))
    # 30 Sep 10:00: 7 h; 1 Oct worked 8 h (15); 9 Oct off; 10 Oct 8 h (23); 11 Oct 1 h → 10:00.
    assert cal.add_working_hours(cst(2025, 9, 30, 10), 24) == cst(2025, 10, 11, 10)
    # Another county keeps the national calendar.
    assert calendar.load(session, "439903").is_workday(date(2025, 10, 9))
