"""Pure functions over clinic days, time zones and intervals: no ORM, no settings, no clock.

"A day" is a calendar day in the clinic's zone: 24 hours long on most days, 23 or 25 on the days clocks
change. Working hours are wall-clock minutes of such a day (0 = midnight, 1440 = the next midnight); they
become instants only together with a date and a zone, here, so that every caller gets DST right the same way.
"""

import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60


class Interval(NamedTuple):
    """A half-open span of time [start, end), in aware datetimes."""

    start: datetime
    end: datetime


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone`, in UTC (midnight; where midnight is skipped, the first valid time)."""
    return wall_time_instant(day, 0, zone)


def day_bounds(day: date, zone: ZoneInfo) -> Interval:
    """The whole clinic day as instants in UTC: 23, 24 or 25 hours long."""
    return Interval(day_start(day, zone), day_start(day + timedelta(days=1), zone))


def clinic_day(instant: datetime, zone: ZoneInfo) -> date:
    """The calendar day in `zone` that an aware instant falls on."""
    return instant.astimezone(zone).date()


def wall_time_instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The instant, in UTC, at which clocks in `zone` show `minute` (0..1440) on `day`.

    A wall time that does not exist (skipped when clocks go forward) maps to the instant the clocks jumped
    to, so a range inside the gap comes out empty; one that occurs twice (clocks go back) means its first
    occurrence.
    """
    if not 0 <= minute <= MINUTES_PER_DAY:
        raise ValueError(f"minute must be 0..{MINUTES_PER_DAY}, not {minute}")
    if minute == MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), 0
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return jump_instant(local, zone)
    return instant


def jump_instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant, in UTC, at which the clocks jumped forward over the wall time `local` (which they skipped).

    Python reads a skipped wall time with the offset from before the jump (fold=0) or after it (fold=1); the
    jump lies between the two readings: the first instant whose wall time is past `local`.
    """
    readings = local.replace(fold=0).astimezone(UTC), local.replace(fold=1).astimezone(UTC)
    low, high = min(readings), max(readings)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= local.replace(tzinfo=None):
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def working_intervals(day: date, ranges: Iterable[tuple[int, int]], zone: ZoneInfo) -> list[Interval]:
    """A day's working ranges (wall-clock minutes) as instants, in order; ranges that vanish in a DST gap dropped."""
    intervals = []
    for start_minute, end_minute in sorted(ranges):
        interval = Interval(wall_time_instant(day, start_minute, zone), wall_time_instant(day, end_minute, zone))
        if interval.start < interval.end:
            intervals.append(interval)
    return intervals


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals joined."""
    merged: list[Interval] = []
    for interval in sorted(intervals):
        if merged and interval.start <= merged[-1].end:
            merged[-1] = Interval(merged[-1].start, max(merged[-1].end, interval.end))
        else:
            merged.append(interval)
    return merged


def subtract(available: Iterable[Interval], busy: Iterable[Interval]) -> list[Interval]:
    """`available` minus `busy`: free = hours - busy."""
    busy = merge(busy)
    free = []
    for interval in merge(available):
        cursor = interval.start
        for taken in busy:
            if taken.end <= cursor or taken.start >= interval.end:
                continue
            if taken.start > cursor:
                free.append(Interval(cursor, taken.start))
            cursor = max(cursor, taken.end)
        if cursor < interval.end:
            free.append(Interval(cursor, interval.end))
    return free


def clip(intervals: Iterable[Interval], *, not_before: datetime) -> list[Interval]:
    """The parts of `intervals` at or after `not_before`."""
    return [Interval(max(i.start, not_before), i.end) for i in intervals if i.end > not_before]


def within_one(intervals: Iterable[Interval], start: datetime, end: datetime) -> bool:
    """Whether [start, end) lies inside a single one of `intervals`."""
    return any(interval.start <= start and end <= interval.end for interval in intervals)


def overlaps(a: Interval, b: Interval) -> bool:
    return a.start < b.end and b.start < a.end


def parse_wall_time(text: str, *, allow_end_of_day: bool = False) -> int:
    """ "09:30" -> 570 minutes. "24:00" only where the end of the day is meant. ValueError otherwise."""
    hours, separator, minutes = text.partition(":")
    digits = hours + minutes
    if separator != ":" or len(hours) != 2 or len(minutes) != 2 or not (digits.isascii() and digits.isdigit()):
        raise ValueError("Use HH:MM, e.g. 09:30.")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > MINUTES_PER_DAY or (value == MINUTES_PER_DAY and not allow_end_of_day):
        raise ValueError("Use a time from 00:00 to 23:59 (24:00 as an end only).")
    return value


def format_wall_time(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def first_overlap(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Two wall-clock ranges of one weekday that overlap, if any (touching is fine: 09:00-12:00, 12:00-13:00)."""
    for earlier, later in itertools.pairwise(sorted(ranges)):
        if later[0] < earlier[1]:
            return earlier, later
    return None
