"""hospital.scheduling: clinic days, wall-clock working hours and free time, on ordinary and DST days.

Pure functions, so no database: every zone and instant is fixed by the test itself.
"""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from django.test import SimpleTestCase

from hospital.scheduling import (
    Interval,
    clinic_day,
    clip,
    day_bounds,
    first_overlap,
    format_wall_time,
    merge,
    parse_wall_time,
    subtract,
    wall_time_instant,
    within_one,
    working_intervals,
)

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
SPRING_FORWARD = date(2026, 3, 29)  # Berlin: 02:00 CET -> 03:00 CEST
FALL_BACK = date(2026, 10, 25)  # Berlin: 03:00 CEST -> 02:00 CET


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hours(interval: Interval) -> float:
    return (interval.end - interval.start).total_seconds() / 3600


class ClinicDayTests(SimpleTestCase):
    def test_a_clinic_day_is_24_hours_on_ordinary_days_and_23_or_25_when_the_clocks_change(self):
        self.assertEqual(hours(day_bounds(date(2026, 3, 28), BERLIN)), 24)
        self.assertEqual(hours(day_bounds(SPRING_FORWARD, BERLIN)), 23)
        self.assertEqual(hours(day_bounds(FALL_BACK, BERLIN)), 25)
        self.assertEqual(day_bounds(SPRING_FORWARD, BERLIN), Interval(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)))
        self.assertEqual(day_bounds(FALL_BACK, BERLIN), Interval(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)))

    def test_an_instant_belongs_to_the_clinic_day_its_local_clock_shows(self):
        self.assertEqual(clinic_day(utc(2026, 3, 28, 22, 59), BERLIN), date(2026, 3, 28))
        self.assertEqual(clinic_day(utc(2026, 3, 28, 23, 0), BERLIN), SPRING_FORWARD)
        # 20:00 UTC is 01:30 the next day in India (+05:30).
        self.assertEqual(clinic_day(utc(2026, 6, 1, 20, 0), KOLKATA), date(2026, 6, 2))
        self.assertEqual(clinic_day(datetime.fromisoformat("2026-06-02T01:30:00+05:30"), KOLKATA), date(2026, 6, 2))
        self.assertEqual(clinic_day(datetime.fromisoformat("2026-06-02T01:30:00+05:30"), UTC), date(2026, 6, 1))


class WallTimeTests(SimpleTestCase):
    def test_wall_times_become_instants_in_the_offset_of_the_day(self):
        self.assertEqual(wall_time_instant(date(2026, 1, 5), 9 * 60, BERLIN), utc(2026, 1, 5, 8))
        self.assertEqual(wall_time_instant(date(2026, 7, 6), 9 * 60, BERLIN), utc(2026, 7, 6, 7))
        self.assertEqual(wall_time_instant(date(2026, 7, 6), 24 * 60, BERLIN), utc(2026, 7, 6, 22))

    def test_a_skipped_wall_time_is_the_instant_the_clocks_jumped(self):
        jump = utc(2026, 3, 29, 1)
        for minute in (120, 150, 179):
            with self.subTest(minute=minute):
                self.assertEqual(wall_time_instant(SPRING_FORWARD, minute, BERLIN), jump)
        self.assertEqual(wall_time_instant(SPRING_FORWARD, 180, BERLIN), jump)

    def test_a_repeated_wall_time_means_its_first_occurrence(self):
        self.assertEqual(wall_time_instant(FALL_BACK, 150, BERLIN), utc(2026, 10, 25, 0, 30))

    def test_minutes_outside_the_day_are_refused(self):
        for minute in (-1, 1441):
            with self.subTest(minute=minute), self.assertRaises(ValueError):
                wall_time_instant(date(2026, 1, 5), minute, BERLIN)


class WorkingHoursTests(SimpleTestCase):
    def test_working_hours_across_the_spring_gap_are_an_hour_shorter(self):
        [night] = working_intervals(SPRING_FORWARD, [(60, 240)], BERLIN)  # 01:00-04:00 on the clocks
        self.assertEqual(night, Interval(utc(2026, 3, 29, 0), utc(2026, 3, 29, 2)))
        self.assertEqual(hours(night), 2)

    def test_working_hours_inside_the_spring_gap_vanish_and_those_ending_in_it_stop_at_the_jump(self):
        intervals = working_intervals(SPRING_FORWARD, [(120, 180), (90, 150)], BERLIN)
        self.assertEqual(intervals, [Interval(utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1))])

    def test_working_hours_across_the_autumn_repeat_are_an_hour_longer(self):
        [night] = working_intervals(FALL_BACK, [(60, 240)], BERLIN)
        self.assertEqual(hours(night), 4)

    def test_several_ranges_come_out_in_order(self):
        intervals = working_intervals(date(2026, 1, 5), [(14 * 60, 18 * 60), (9 * 60, 12 * 60 + 30)], BERLIN)
        self.assertEqual(
            intervals,
            [Interval(utc(2026, 1, 5, 8), utc(2026, 1, 5, 11, 30)), Interval(utc(2026, 1, 5, 13), utc(2026, 1, 5, 17))],
        )


class IntervalTests(SimpleTestCase):
    day = Interval(utc(2026, 1, 5, 8), utc(2026, 1, 5, 17))

    def test_free_time_is_working_hours_minus_busy_time(self):
        busy = [
            Interval(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10)),
            Interval(utc(2026, 1, 5, 9, 30), utc(2026, 1, 5, 10, 30)),  # overlaps the one before
            Interval(utc(2026, 1, 5, 16), utc(2026, 1, 5, 18)),  # runs past the end
            Interval(utc(2026, 1, 5, 6), utc(2026, 1, 5, 7)),  # before the hours
        ]
        self.assertEqual(
            subtract([self.day], busy),
            [Interval(utc(2026, 1, 5, 8), utc(2026, 1, 5, 9)), Interval(utc(2026, 1, 5, 10, 30), utc(2026, 1, 5, 16))],
        )
        self.assertEqual(subtract([self.day], []), [self.day])
        self.assertEqual(subtract([self.day], [self.day]), [])

    def test_merge_joins_overlapping_and_touching_intervals(self):
        a = Interval(utc(2026, 1, 5, 8), utc(2026, 1, 5, 9))
        b = Interval(utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))
        c = Interval(utc(2026, 1, 5, 11), utc(2026, 1, 5, 12))
        self.assertEqual(merge([c, b, a]), [Interval(a.start, b.end), c])

    def test_clip_drops_what_is_already_past(self):
        now = utc(2026, 1, 5, 12)
        self.assertEqual(clip([self.day], not_before=now), [Interval(now, self.day.end)])
        self.assertEqual(clip([self.day], not_before=utc(2026, 1, 6)), [])

    def test_within_one_needs_a_single_interval_to_hold_the_whole_span(self):
        morning = Interval(utc(2026, 1, 5, 8), utc(2026, 1, 5, 12))
        afternoon = Interval(utc(2026, 1, 5, 12), utc(2026, 1, 5, 16))
        self.assertTrue(within_one([morning, afternoon], utc(2026, 1, 5, 8), utc(2026, 1, 5, 12)))
        self.assertFalse(within_one([morning], utc(2026, 1, 5, 11, 30), utc(2026, 1, 5, 12, 30)))
        self.assertFalse(within_one([morning, afternoon], utc(2026, 1, 5, 7, 59), utc(2026, 1, 5, 9)))


class WallTimeTextTests(SimpleTestCase):
    def test_it_reads_and_writes_hh_mm(self):
        self.assertEqual(parse_wall_time("09:30"), 570)
        self.assertEqual(parse_wall_time("00:00"), 0)
        self.assertEqual(parse_wall_time("24:00", allow_end_of_day=True), 1440)
        self.assertEqual(format_wall_time(570), "09:30")
        self.assertEqual(format_wall_time(1440), "24:00")

    def test_it_refuses_anything_else(self):
        for text in ("9:30", "09:60", "25:00", "24:00", "0930", "09:3a", "", "09:30:00", "-1:00", "٠٩:٣٠"):
            with self.subTest(text=text), self.assertRaises(ValueError):
                parse_wall_time(text)

    def test_overlapping_ranges_are_found_touching_ones_are_not(self):
        self.assertIsNone(first_overlap([(540, 720), (720, 780)]))
        self.assertEqual(first_overlap([(540, 720), (700, 780)]), ((540, 720), (700, 780)))
        self.assertEqual(first_overlap([(700, 780), (60, 120), (540, 720)]), ((540, 720), (700, 780)))
        self.assertIsNone(first_overlap([]))
