"""Dashboard rollups: figures per grid (and per village in total) and period, kept current by
``gridgov.dashboard.rollups`` from the raw tables, so that a county's dashboard reads a few
hundred rows instead of grouping millions of visits per request.

Rows are derived data, recomputed whole for a (village, period) whenever anything under it
changes: triggers on visits, issues, contacts, households and members mark the village and day
as dirty (``dash_dirty``); the refresher recomputes what is marked. ``grid_id`` 0 holds what is
in no grid, -1 the village's total (distinct counts are exact there, not sums of grids).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from gridgov.columns import created_at_column, id_column
from gridgov.db import Base

VILLAGE_TOTAL = -1  # grid_id of a village's total row
NO_GRID = 0  # grid_id of what lies in no grid


class DashDirty(Base):
    """A note that a village's rollups are out of date for this day (its visits or issues of
    that day changed), or that its current state changed (``day`` = -infinity: contacts,
    households, members). Append-only: writers never wait for each other on a note (a unique
    key would make two uploads to one village queue); the refresher deletes what it handled."""

    __tablename__ = "dash_dirty"

    id: Mapped[int] = id_column()
    village_id: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    marked_at: Mapped[datetime] = created_at_column()


class DashVisitPeriod(Base):
    """Visits of a grid (or village total) in a day / ISO week / month (Asia/Shanghai)."""

    __tablename__ = "dash_visit_periods"

    village_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(5), primary_key=True)  # day, week, month
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(6))
    visits: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int] = mapped_column(Integer)  # clean or accepted (DESIGN §6)
    pending: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    flagged: Mapped[int] = mapped_column(Integer)
    households_visited: Mapped[int] = mapped_column(Integer)  # distinct, counted visits only
    members_visiting: Mapped[int] = mapped_column(Integer)


class DashFlagPeriod(Base):
    """Flagged visits by flag and review state, per grid (or village total) and period."""

    __tablename__ = "dash_flag_periods"

    village_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    flag: Mapped[str] = mapped_column(String(30), primary_key=True)
    pending: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)


class DashIssuePeriod(Base):
    """Issues reported in a period, by category, current level and state, per grid (or village
    total), with the parts of the issue KPIs (README 事件) so that they add up over periods."""

    __tablename__ = "dash_issue_periods"

    village_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    category_code: Mapped[str] = mapped_column(String(4), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    state: Mapped[str] = mapped_column(String(20), primary_key=True)
    issues: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)
    reworked: Mapped[int] = mapped_column(Integer)
    extended: Mapped[int] = mapped_column(Integer)
    in_grid: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)
    rating_sum: Mapped[int] = mapped_column(Integer)


class DashMemberPeriod(Base):
    """A Party member's own figures per week / month: the data its 积分 is computed from."""

    __tablename__ = "dash_member_periods"

    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The village the work was done in (a township 党委's member may serve several).
    village_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(5), primary_key=True)  # week, month
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    visits_counted: Mapped[int] = mapped_column(Integer)
    households_visited: Mapped[int] = mapped_column(Integer)  # distinct, counted visits
    rejected: Mapped[int] = mapped_column(Integer)
    issues_reported: Mapped[int] = mapped_column(Integer)
    issues_closed_on_time: Mapped[int] = mapped_column(Integer)


class DashStatus(Base):
    """Current state of a grid (or village total): contact coverage, households due and
    overdue (by local day: overdue once the due day has passed), members over their limits.
    ``as_of`` is the local day it was computed for; a new day recomputes every village."""

    __tablename__ = "dash_status"

    village_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(6))
    households: Mapped[int] = mapped_column(Integer)
    with_primary: Mapped[int] = mapped_column(Integer)
    overdue: Mapped[int] = mapped_column(Integer)
    due_soon: Mapped[int] = mapped_column(Integer)
    never_visited: Mapped[int] = mapped_column(Integer)
    members: Mapped[int] = mapped_column(Integer)
    members_over_normal: Mapped[int] = mapped_column(Integer)
    members_over_capacity: Mapped[int] = mapped_column(Integer)
    # Issues open now, and how many are past (or near) their deadline: recomputed when a
    # deadline passes (``next_change_at``: the next moment one of them turns due soon or
    # overdue), so they lag the clock by at most one refresh interval.
    open_issues: Mapped[int] = mapped_column(Integer, server_default="0")
    open_overdue: Mapped[int] = mapped_column(Integer, server_default="0")
    open_due_soon: Mapped[int] = mapped_column(Integer, server_default="0")
    next_change_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    as_of: Mapped[date] = mapped_column(Date)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DashMemberStatus(Base):
    """A member's current load: households assigned, how many overdue, over its limits."""

    __tablename__ = "dash_member_status"

    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    village_id: Mapped[int] = mapped_column(BigInteger)
    grid_id: Mapped[int] = mapped_column(BigInteger)
    assigned: Mapped[int] = mapped_column(Integer)
    primaries: Mapped[int] = mapped_column(Integer)
    overdue: Mapped[int] = mapped_column(Integer)
    over_normal: Mapped[bool] = mapped_column(Boolean)
    over_capacity: Mapped[bool] = mapped_column(Boolean)
    as_of: Mapped[date] = mapped_column(Date)


# -- townships and counties: the sums of their villages' total rows ---------------------------


class DashUnitVisitPeriod(Base):
    """A township's or county's visits in a period: its current villages' totals, summed."""

    __tablename__ = "dash_unit_visit_periods"

    unit_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(6))
    visits: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int] = mapped_column(Integer)
    pending: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    flagged: Mapped[int] = mapped_column(Integer)
    households_visited: Mapped[int] = mapped_column(Integer)  # a household is in one village


class DashUnitFlagPeriod(Base):
    __tablename__ = "dash_unit_flag_periods"

    unit_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    flag: Mapped[str] = mapped_column(String(30), primary_key=True)
    pending: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)


class DashUnitIssuePeriod(Base):
    __tablename__ = "dash_unit_issue_periods"

    unit_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    category_code: Mapped[str] = mapped_column(String(4), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    state: Mapped[str] = mapped_column(String(20), primary_key=True)
    issues: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)
    reworked: Mapped[int] = mapped_column(Integer)
    extended: Mapped[int] = mapped_column(Integer)
    in_grid: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)
    rating_sum: Mapped[int] = mapped_column(Integer)


class DashUnitStatus(Base):
    """A township's or county's current state; ``refreshed_at`` is its oldest village's."""

    __tablename__ = "dash_unit_status"

    unit_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    county_code: Mapped[str] = mapped_column(String(6))
    households: Mapped[int] = mapped_column(Integer)
    with_primary: Mapped[int] = mapped_column(Integer)
    overdue: Mapped[int] = mapped_column(Integer)
    due_soon: Mapped[int] = mapped_column(Integer)
    never_visited: Mapped[int] = mapped_column(Integer)
    members: Mapped[int] = mapped_column(Integer)
    members_over_normal: Mapped[int] = mapped_column(Integer)
    members_over_capacity: Mapped[int] = mapped_column(Integer)
    open_issues: Mapped[int] = mapped_column(Integer)
    open_overdue: Mapped[int] = mapped_column(Integer)
    open_due_soon: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[date] = mapped_column(Date)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
