"""Demo doctors' weeks and appointments for `manage.py seed_demo`: pure functions, no ORM.

The appointments satisfy the booking rules by construction, so that the database's own checks (the exclusion
constraints and the daily-limit trigger), which still run on every row, never refuse one:

- within working hours: each appointment is one slot cut from a doctor's working range on a clinic day;
- no overlap for a doctor: a doctor's slots of a day are cut one after another from ranges that do not overlap,
  each slot is used at most once, and clinic days do not overlap;
- no overlap for a patient: a patient has at most one appointment per clinic day;
- the daily limit: a doctor gets at most `max_appointments_per_day` appointments on a clinic day, cancelled
  ones included (which the limit would not even count).
"""

import bisect
import itertools
import random
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from hospital.models import AppointmentStatus, Specialization
from hospital.scheduling import Interval, working_intervals

# Minutes per appointment, by specialization: a GP sees more people an hour than a psychiatrist.
SLOT_MINUTES = {
    Specialization.GENERAL_PRACTICE: 15,
    Specialization.PEDIATRICS: 15,
    Specialization.DERMATOLOGY: 15,
    Specialization.ENT: 20,
    Specialization.CARDIOLOGY: 20,
    Specialization.ORTHOPEDICS: 20,
    Specialization.RADIOLOGY: 20,
    Specialization.NEUROLOGY: 30,
    Specialization.ONCOLOGY: 30,
    Specialization.PSYCHIATRY: 30,
}
REASONS = {
    Specialization.GENERAL_PRACTICE: ["Check-up", "Persistent cough", "Blood test results", "Vaccination", "Back pain"],
    Specialization.PEDIATRICS: ["Well-child visit", "Vaccination", "Fever", "Ear pain", "Growth check"],
    Specialization.DERMATOLOGY: ["Skin rash", "Mole check", "Acne follow-up", "Eczema"],
    Specialization.ENT: ["Sore throat", "Hearing test", "Sinusitis", "Tinnitus"],
    Specialization.CARDIOLOGY: ["Chest pain", "Blood pressure review", "ECG follow-up", "Palpitations"],
    Specialization.ORTHOPEDICS: ["Knee pain", "Shoulder injury", "Post-surgery check", "Fracture follow-up"],
    Specialization.RADIOLOGY: ["X-ray", "Ultrasound", "MRI scan", "CT scan"],
    Specialization.NEUROLOGY: ["Migraine", "Dizziness", "Numbness in hands", "Follow-up after MRI"],
    Specialization.ONCOLOGY: ["Treatment review", "Scan results", "Chemotherapy consultation"],
    Specialization.PSYCHIATRY: ["Initial assessment", "Therapy session", "Medication review"],
}
REASONLESS_SHARE = 0.2
# Wall-clock minutes: a morning from 07:30-09:00, a lunch break, an afternoon ending 16:00-18:00.
MORNING_STARTS = [450, 480, 480, 480, 510, 540]
LUNCH_BREAKS = [(720, 780), (750, 810), (750, 810), (780, 840)]
DAY_ENDS = [960, 990, 1020, 1020, 1050, 1080]
SATURDAY_MORNING = (540, 780)
# Bookings are made from an hour to this long ahead, most of them in the last days.
LONGEST_LEAD = timedelta(days=30)
SHORTEST_LEAD = timedelta(hours=1)
# Of past appointments: fulfilled, then no-show, the rest cancelled. Of future ones: cancelled already.
PAST_FULFILLED, PAST_NOSHOW = 0.84, 0.08
FUTURE_CANCELLED = 0.06
PICK_TRIES = 10


def working_week(rng: random.Random) -> list[tuple[int, int, int]]:
    """A doctor's week as (weekday, start minute, end minute): Monday to Friday, two ranges a day, with some
    variation: part-timers, a free afternoon, Saturday mornings."""
    start, (lunch_start, lunch_end), end = rng.choice(MORNING_STARTS), rng.choice(LUNCH_BREAKS), rng.choice(DAY_ENDS)
    weekdays = list(range(5))
    if rng.random() < 0.15:  # part time
        for weekday in rng.sample(weekdays, rng.randint(1, 2)):
            weekdays.remove(weekday)
    free_afternoon = rng.choice(weekdays) if rng.random() < 0.25 else None
    ranges = []
    for weekday in weekdays:
        ranges.append((weekday, start, lunch_start))
        if weekday != free_afternoon:
            ranges.append((weekday, lunch_end, end))
    if rng.random() < 0.1:
        ranges.append((5, *SATURDAY_MORNING))
    return ranges


def day_slots(day: date, ranges: Iterable[tuple[int, int]], minutes: int, zone: ZoneInfo) -> list[Interval]:
    """The `minutes`-long slots of a clinic day's working ranges, as instants, in order (DST handled by
    hospital.scheduling: a slot is that many real minutes)."""
    length = timedelta(minutes=minutes)
    slots = []
    for interval in working_intervals(day, ranges, zone):
        start = interval.start
        while start + length <= interval.end:
            slots.append(Interval(start, start + length))
            start += length
    return slots


class DemoDoctor(NamedTuple):
    id: int
    daily_limit: int
    slot_minutes: int
    week: dict[int, tuple[tuple[int, int], ...]]  # weekday -> its working ranges


class Candidate(NamedTuple):
    """A patient assigned to the doctor, and since when: a patient is booked only after being assigned."""

    patient_id: int
    assigned_at: datetime


class Placement(NamedTuple):
    patient_id: int
    doctor_id: int
    day: date
    slot: Interval
    assigned_at: datetime


class TooFew(Exception):
    """Fewer appointments fit than were asked for; `fit` is how many do (an upper bound when `exact` is False)."""

    def __init__(self, fit: int, *, exact: bool):
        super().__init__(fit)
        self.fit, self.exact = fit, exact


class Cell(NamedTuple):
    """One doctor's clinic day: its slots, and how many of them the daily limit lets us fill."""

    doctor: DemoDoctor
    day: date
    slots: list[Interval]
    capacity: int


def place_appointments(
    rng: random.Random,
    number: int,
    doctors: list[DemoDoctor],
    candidates: dict[int, list[Candidate]],
    days: list[date],
    zone: ZoneInfo,
) -> list[Placement]:
    """`number` appointments over `days`, each between a doctor and one of its `candidates`, every invariant of
    the module docstring kept. Raises TooFew when they do not fit."""
    cells = []
    slot_cache: dict[tuple, list[Interval]] = {}  # weeks repeat: most doctor-days share their slots with others
    for doctor in doctors:
        if not candidates.get(doctor.id):
            continue
        for day in days:
            ranges = doctor.week.get(day.weekday())
            if not ranges:
                continue
            key = (day, ranges, doctor.slot_minutes)
            if key not in slot_cache:
                slot_cache[key] = day_slots(day, ranges, doctor.slot_minutes, zone)
            slots = slot_cache[key]
            if capacity := min(doctor.daily_limit, len(slots)):
                cells.append(Cell(doctor, day, slots, capacity))
    total = sum(cell.capacity for cell in cells)
    if number > total:
        raise TooFew(total, exact=False)
    # Each unit of capacity equally likely: every doctor-day is filled to about the same share of its limit.
    ends = list(itertools.accumulate(cell.capacity for cell in cells))
    wanted = Counter(bisect.bisect_right(ends, unit) for unit in rng.sample(range(total), number))
    busy: set[tuple[int, date]] = set()  # (patient, day): one appointment a patient a day
    placed: list[Placement] = []
    used: dict[int, set[int]] = {}  # cell index -> slot indexes taken
    for index in sorted(wanted):
        fill(rng, cells[index], wanted[index], used.setdefault(index, set()), candidates, busy, placed)
    if len(placed) < number:
        # A few cells lacked a free patient (small data sets): top up elsewhere, still within each limit.
        order = list(range(len(cells)))
        rng.shuffle(order)
        for index in order:
            taken = used.setdefault(index, set())
            room = min(cells[index].capacity - len(taken), number - len(placed))
            if room > 0:
                fill(rng, cells[index], room, taken, candidates, busy, placed)
            if len(placed) == number:
                break
        else:
            raise TooFew(len(placed), exact=True)
    return placed


def fill(rng, cell: Cell, number: int, taken: set[int], candidates, busy, placed: list[Placement]) -> None:
    """Up to `number` appointments in free slots of `cell`, in random slots, each with a patient free that day."""
    patients = candidates[cell.doctor.id]
    goal = len(taken) + number
    for slot_index in rng.sample(range(len(cell.slots)), len(cell.slots)):
        if len(taken) == goal:
            return
        if slot_index in taken:
            continue
        slot = cell.slots[slot_index]
        candidate = pick_patient(rng, patients, cell.day, slot, busy)
        if candidate is not None:
            taken.add(slot_index)
            busy.add((candidate.patient_id, cell.day))
            placed.append(Placement(candidate.patient_id, cell.doctor.id, cell.day, slot, candidate.assigned_at))


def pick_patient(rng, patients: list[Candidate], day: date, slot: Interval, busy) -> Candidate | None:
    """A random patient free on `day` and assigned before the slot starts: a few random tries, then a scan."""

    def free(candidate: Candidate) -> bool:
        return (candidate.patient_id, day) not in busy and candidate.assigned_at < slot.start

    for _ in range(min(PICK_TRIES, len(patients))):
        candidate = rng.choice(patients)
        if free(candidate):
            return candidate
    offset = rng.randrange(len(patients))
    return next((candidate for candidate in patients[offset:] + patients[:offset] if free(candidate)), None)


def appointment_story(
    rng: random.Random, slot: Interval, assigned_at: datetime, now: datetime
) -> list[tuple[datetime, str]]:
    """When the appointment was booked and each status it went through, as (moment, status), oldest first, by the
    rules of the API: booked ahead of time (after the assignment); past ones fulfilled (through arrived), a no-show
    or cancelled; one under way arrived; future ones booked or cancelled."""
    start, end = slot
    latest = min(now, start)
    booked = start - (SHORTEST_LEAD + (LONGEST_LEAD - SHORTEST_LEAD) * rng.random() ** 2)
    if not assigned_at < booked < latest:
        booked = assigned_at + (latest - assigned_at) * rng.random()
    story = [(booked, AppointmentStatus.BOOKED)]
    arrived = max(booked, start - timedelta(minutes=10) * rng.random())
    if end <= now:
        draw = rng.random()
        if draw < PAST_FULFILLED:
            fulfilled = min(end + timedelta(minutes=5) * rng.random(), now)
            story += [(arrived, AppointmentStatus.ARRIVED), (fulfilled, AppointmentStatus.FULFILLED)]
        elif draw < PAST_FULFILLED + PAST_NOSHOW:
            story.append((min(start + timedelta(minutes=15 + 30 * rng.random()), now), AppointmentStatus.NOSHOW))
        else:
            story.append((booked + (start - booked) * rng.random(), AppointmentStatus.CANCELLED))
    elif start <= now:
        story.append((arrived, AppointmentStatus.ARRIVED))
    elif rng.random() < FUTURE_CANCELLED:
        story.append((booked + (now - booked) * rng.random(), AppointmentStatus.CANCELLED))
    return story


def reason(rng: random.Random, specialization: str) -> str:
    return "" if rng.random() < REASONLESS_SHARE else rng.choice(REASONS[specialization])
