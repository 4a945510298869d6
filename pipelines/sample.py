"""Deterministic synthetic sample data in the canonical extract format.

``generate_sample(size, date, out_dir, seed)`` writes one UTF-8 CSV per extract
(``students.csv``, ``marks.csv``, …) with the canonical headers of
:mod:`pipelines.specs`, ready for ``schoolcomms load``. The same (size, date, seed)
always gives byte-identical files; no real person, phone number or address appears:
names come from small built-in lists, mobiles from ``+44 7400 1xxxxx``, home phones from
Ofcom's drama ranges (``020 7946 0xxx``, ``0113 496 0xxx`` …), e-mails from ``example.com/.org/.net``.

Sizes
-----
``school``
    An 11–16 school of about 1,200 pupils: years 7–11, eight forms a year (``7A`` …
    ``11H``) of 27–33, cohort ``school``, status ``C01`` and about 1% ``L01`` leavers
    (with marks up to the day they left). Statutory AM and PM registration sessions
    (``kind=session``, periods ``AM``/``PM``, taken by the form tutor on the form's
    registration class ``<form>-REG``) and five one-hour lessons a day (periods 1–5,
    08:50–15:00) from a one-week timetable of twelve subjects taught to forms
    (``7A-MA``). About 80 staff: senior leaders, teachers (each form has a tutor, each
    year a head of year, each subject a head of department), an attendance officer,
    office staff, a pastoral manager, teaching assistants.
``college``
    A 16–19 college of about 10,000 students: cohort ``16-19`` (years ``12``/``13``)
    with some ``adult`` and ``apprentice`` students (``L2``/``L3``), statuses
    ``C01``/``C02``/``L01``. Lesson registers only (no sessions): five option blocks
    A–E, each meeting once a day in one of five 75-minute periods; a 16–19 student
    takes three blocks (three lessons a day), adults one or two, apprentices one.
    Tutor groups (``12-07``, ``ADL3-02``) and about 400 staff. Portal links: most
    students have one or two parent accounts, siblings share an account, some links
    are ``suspended``, some accounts not ``registered``, some have no mobile.
``trust``
    About 50,000 pupils in forty-two school-like sites (each like ``school``; ids, forms
    and classes carry a site prefix such as ``S07-``). To keep generation well under a
    minute the trust gets a shorter history by default: the last **4 weeks** (set
    ``weeks`` to change it).

History
-------
School days (Monday–Friday; no bank holidays or half-terms) from the start of the
term containing ``date`` (1 September, 5 January or 14 April) or the last 12 weeks,
whichever is shorter, and never less than 4 weeks (early in a term the history reaches
back into the holiday), up to and including ``date`` when it is a weekday. ``weeks``
overrides this with exactly the last ``weeks`` weeks. The whole of ``date`` is there,
every lesson with its marks, so the absence-text rule (first ``O`` of the day,
recorded before the lesson ended) can be demonstrated at any time of that day.

Realism
-------
About 8% of pupils are persistent absentees (below 90%); absences come in spells
with authorised (``I``, ``M``, ``C``, ``R``, ``E``) and unauthorised (``G``, ``O``)
reasons set later by the attendance officer, or stay as the teacher's ``N``/``O``;
lateness (``L`` with minutes, ``U`` after registers close), truancy (``O`` in a lesson
after being present earlier), approved activities (``K``, ``P``, ``V``, ``B``); some
registers taken late, some never taken (no marks); mark timestamps mostly within the
lesson; behaviour (signed points: negative incidents have negative points),
detentions, homework with statuses, grades with comments, medical notes for about 5%.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import sample_events as ev
from pipelines.sample_people import (
    AREAS,
    COLLEGE_PERIODS,
    SCHOOL_LESSON_PERIODS,
    SCHOOL_PERIODS,
    SLUG,
    Cols,
    PhonePool,
    Unit,
    academic_year_of,
    blank,
    cat,
    contacts_and_portal,
    date_strings,
    finish_students,
    make_staff,
    medical,
    pick,
    responsibility_rows,
    sequential_ids,
    student_basics,
    traits,
    upns,
    zpad,
)
from pipelines.specs import EXTRACTS

SIZES = ("school", "college", "trust")
SAMPLE_EXTRACTS = (
    "students",
    "contacts",
    "portal_links",
    "staff",
    "responsibilities",
    "classes",
    "class_members",
    "medical",
    "lessons",
    "marks",
    "behaviour",
    "detentions",
    "homework",
    "homework_status",
    "grades",
)
TRUST_SITES = 42
TRUST_WEEKS = 4
TERM_STARTS = ((1, 5), (4, 14), (9, 1))  # (month, day)
NOT_ON_ROLL = 10**6


# --------------------------------------------------------------------------- calendar
@dataclass
class Calendar:
    """The school days of the history; the last one is ``date`` if it is a weekday."""

    date: dt.date
    days: np.ndarray  # datetime64[D]
    weekday: np.ndarray
    iso: np.ndarray  # YYYY-MM-DD
    compact: np.ndarray  # YYYYMMDD
    today: int  # index of ``date`` in days, or -1 at a weekend
    term: str

    @property
    def n(self) -> int:
        return len(self.days)


def history_days(date: dt.date, weeks: int | None = None) -> list[dt.date]:
    """The school days (Mon–Fri) of the sample's history, ending at ``date``."""
    if weeks is not None:
        if weeks < 1:
            raise ValueError("weeks must be at least 1")
        start = date - dt.timedelta(days=7 * weeks - 1)
    else:
        starts = [
            dt.date(y, m, d)
            for y in (date.year - 1, date.year)
            for m, d in TERM_STARTS
            if dt.date(y, m, d) <= date
        ]
        start = max(max(starts), date - dt.timedelta(days=83))
        start = min(start, date - dt.timedelta(days=27))
    out = []
    day = start
    while day <= date:
        if day.weekday() < 5:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def term_name(date: dt.date) -> str:
    """The name of the term ``date`` falls in (for assessment names)."""
    if date.month >= 9:
        return "Autumn"
    if date < dt.date(date.year, 4, 14):
        return "Spring"
    return "Summer"


def make_calendar(date: dt.date, weeks: int | None, weekend_today: bool = False) -> Calendar:
    """The history's school days as arrays.

    With ``weekend_today``, a ``date`` at a weekend is a school day too, on Friday's
    timetable (so a demo on a Saturday still has a day of lessons to work with).
    """
    school_days = history_days(date, weeks)
    if weekend_today and date.weekday() >= 5:
        school_days.append(date)
    days = np.array(school_days, dtype="datetime64[D]")
    iso = date_strings(days)
    weekday = ((days.astype(np.int64) + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday
    if weekend_today and date.weekday() >= 5:
        weekday[-1] = 4
    today = len(days) - 1 if date.weekday() < 5 or weekend_today else -1
    return Calendar(
        date,
        days,
        weekday,
        iso,
        np.array([s.replace("-", "") for s in iso.tolist()], dtype=object),
        today,
        term_name(date),
    )


# --------------------------------------------------------------------------- output
class CsvSink:
    """One CSV per extract, header first; rows appended unit by unit.

    Rows are joined with pyarrow compute (no Python loop per row) and quoted exactly as
    :mod:`csv` does with ``QUOTE_MINIMAL``: only fields holding a comma, a double quote
    or a line break are quoted, inner quotes doubled.
    """

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.paths: dict[str, Path] = {}
        self._files: dict[str, IO[bytes]] = {}
        self.rows: dict[str, int] = {}
        for name in SAMPLE_EXTRACTS:
            path = out_dir / f"{name}.csv"
            handle = path.open("wb")
            header = io.StringIO()
            csv.writer(header, lineterminator="\n").writerow(EXTRACTS[name].column_names)
            handle.write(header.getvalue().encode("utf-8"))
            self.paths[name], self._files[name] = path, handle
            self.rows[name] = 0

    def write(self, name: str, data: Cols) -> None:
        """Append rows given as columns (missing canonical columns are left blank)."""
        columns = EXTRACTS[name].column_names
        unknown = set(data) - set(columns)
        if unknown:
            raise KeyError(f"{name}: not canonical columns: {sorted(unknown)}")
        n = len(next(iter(data.values())))
        if n == 0:
            return
        arrays = []
        for col in columns:
            if col in data:
                if len(data[col]) != n:
                    raise ValueError(f"{name}.{col}: {len(data[col])} values, expected {n}")
                arrays.append(csv_field(data[col]))
            else:
                arrays.append(pa.repeat("", n).cast(pa.large_string()))
        arrays[-1] = pc.binary_join_element_wise(arrays[-1], _text("\n"), _text(""))
        lines = pc.binary_join_element_wise(*arrays, _text(","))
        if lines.null_count:
            raise ValueError(f"{name}: a value is missing (None)")
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
        first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
        self._files[name].write(memoryview(lines.buffers()[2])[first:last])
        self.rows[name] += n

    def close(self) -> None:
        """Close every file."""
        for handle in self._files.values():
            handle.close()


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, type=pa.large_string())


def csv_field(values: Any) -> pa.Array:
    """A column as an Arrow string array, CSV-quoted where needed."""
    arr = pa.array(np.asarray(values, dtype=object), type=pa.large_string())
    needs = pc.match_substring_regex(arr, '[,"\r\n]')
    if pc.any(needs).as_py():
        escaped = pc.replace_substring(arr, '"', '""')
        quoted = pc.binary_join_element_wise(_text('"'), escaped, _text('"'), _text(""))
        arr = pc.if_else(needs, quoted, arr)
    return arr


# --------------------------------------------------------------------------- school
SCHOOL_SUBJECTS = (
    ("MA", "Maths", 4),
    ("EN", "English", 4),
    ("SC", "Science", 4),
    ("HI", "History", 2),
    ("GE", "Geography", 2),
    ("FR", "French", 2),
    ("PE", "PE", 2),
    ("CO", "Computing", 1),
    ("AR", "Art", 1),
    ("MU", "Music", 1),
    ("RE", "Religious Education", 1),
    ("DT", "Design and Technology", 1),
)
MAX_TEACHING_PERIODS = 20


def build_school(
    rng: np.random.Generator,
    cal: Calendar,
    phones: PhonePool,
    *,
    pfx: str = "",
    area: int = 0,
    forms_per_year: int = 8,
) -> Unit:
    """An 11–16 school site: pupils in forms, a one-week timetable, staff, roles."""
    years = list(range(7, 12))
    letters = "ABCDEFGHJK"[:forms_per_year]
    form_year = np.repeat(years, forms_per_year)
    forms = np.array([f"{pfx}{y}{ch}" for y in years for ch in letters], dtype=object)
    nf = len(forms)
    sizes = rng.integers(27, 34, nf)
    n = int(sizes.sum())
    st_form = np.repeat(np.arange(nf), sizes)
    year = np.array([str(y) for y in form_year], dtype=object)[st_form]
    ay = academic_year_of(cal.date)
    basics = student_basics(rng, n, year, ay)
    sid = sequential_ids(rng, n, f"{pfx}STE", 8, 4_000_000 + 1_000_000 * area)
    adno = zpad(1000 + np.cumsum(rng.integers(1, 4, n)), 6)
    leave_day = np.full(n, NOT_ON_ROLL)
    leavers = rng.choice(n, size=max(2, round(0.01 * n)), replace=False)
    leave_day[leavers] = rng.integers(0, cal.n, len(leavers))
    status = np.full(n, "C01", dtype=object)
    status[leavers] = "L01"
    st = {
        "student_id": sid,
        "upn": upns(rng, n, basics["_birth_year"]),
        "adno": adno,
        "forename": basics["forename"],
        "surname": basics["surname"],
        "preferred_forename": basics["preferred_forename"],
        "date_of_birth": basics["date_of_birth"],
        "year_group": year,
        "form": forms[st_form],
        "status": status,
        "cohort": np.full(n, "school", dtype=object),
    }
    finish_students(
        rng,
        st,
        phones,
        np.where(form_year[st_form] >= 9, 0.35, 0.1),
        cat(SLUG(basics["forename"]), ".", SLUG(basics["surname"]), adno, "@example.org"),
    )

    # Timetable: a week of 25 slots per year group (no subject twice a day); each form
    # of the year has it rotated by one period (and a day), so one teacher can take a
    # subject to several forms of a year without a clash.
    S = len(SCHOOL_SUBJECTS)
    tt = np.zeros((nf, 25), dtype=np.int64)
    for yi in range(len(years)):
        seq = np.repeat(rng.permutation(S), 1)
        seq = np.repeat(seq, np.array([s[2] for s in SCHOOL_SUBJECTS])[seq])
        grid = np.zeros((5, 5), dtype=np.int64)
        for w in range(5):
            grid[w, rng.permutation(5)] = seq[w::5]
        for j in range(forms_per_year):
            shifted = np.roll(np.roll(grid, j % 5, axis=1), j // 5, axis=0)
            tt[yi * forms_per_year + j] = shifted.ravel()
    per_form = S + 1  # the registration class, then one class per subject
    nc = nf * per_form
    class_form = np.arange(nc) // per_form
    class_subj = np.arange(nc) % per_form - 1  # -1 = registration
    # Teachers: greedy, never two classes at once, at most MAX_TEACHING_PERIODS a week.
    t_subject: list[int] = []
    t_mask: list[int] = []
    t_load: list[int] = []
    class_teacher = np.full(nc, -1)
    for s in range(S):
        mine: list[int] = []
        for f in range(nf):
            slots = np.flatnonzero(tt[f] == s)
            mask = sum(1 << int(x) for x in slots)
            free = [
                t
                for t in mine
                if not t_mask[t] & mask and t_load[t] + len(slots) <= MAX_TEACHING_PERIODS
            ]
            if free:
                t = min(free, key=lambda t: (-t_load[t], t))
            else:
                t = len(t_subject)
                t_subject.append(s)
                t_mask.append(0)
                t_load.append(0)
                mine.append(t)
            t_mask[t] |= mask
            t_load[t] += len(slots)
            class_teacher[f * per_form + 1 + s] = t
    n_teachers = len(t_subject)
    n_slt, n_support, n_ta = 4, 5, 6
    n_staff = n_slt + n_teachers + n_support + n_ta
    staff = make_staff(rng, n_staff, pfx, phones)
    teacher_staff = n_slt + np.arange(n_teachers)
    rank = np.zeros(n_teachers, dtype=int)
    counts: dict[int, int] = {}
    for t, s in enumerate(t_subject):
        counts[s] = counts.get(s, 0) + 1
        rank[t] = counts[s]
    t_room = np.array(
        [f"{SCHOOL_SUBJECTS[s][0]}{rank[t]}" for t, s in enumerate(t_subject)], dtype=object
    )
    by_load = sorted(range(n_teachers), key=lambda t: (t_load[t], t))
    tutors = [by_load[i % n_teachers] for i in range(nf)]
    rest = [t for t in by_load if t not in set(tutors)] or by_load
    heads_of_year = [rest[i % len(rest)] for i in range(len(years))]
    class_teacher[class_subj == -1] = tutors
    ao, office = n_slt + n_teachers, n_slt + n_teachers + 1 + np.arange(3)
    pastoral = n_slt + n_teachers + 4
    rows: list[tuple[int, str, str]] = [(i, "senior_leader", "") for i in range(n_slt)]
    rows += [
        (1, "safeguarding_lead", ""),
        (pastoral, "safeguarding_lead", ""),
        (ao, "attendance_officer", ""),
    ]
    rows += [(int(o), "office", "") for o in office]
    first_of = {}
    for t, s in enumerate(t_subject):
        first_of.setdefault(s, t)
    rows += [(n_slt + t, "head_of_department", SCHOOL_SUBJECTS[s][1]) for s, t in first_of.items()]
    rows += [(n_slt + t, "head_of_year", str(y)) for t, y in zip(heads_of_year, years, strict=True)]
    rows += [(n_slt + t, "form_tutor", forms[f]) for f, t in enumerate(tutors)]

    codes = np.array(["REG"] + [s[0] for s in SCHOOL_SUBJECTS], dtype=object)
    subj_names = np.array([""] + [s[1] for s in SCHOOL_SUBJECTS], dtype=object)
    class_id = cat(forms[class_form], "-", codes[class_subj + 1])
    class_year = np.array([str(y) for y in form_year], dtype=object)[class_form]
    scale = np.where(form_year[class_form] >= 10, "gcse", "ks3").astype(object)
    scale[class_subj == -1] = ""
    form_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    lens = sizes[class_form]
    mem_ptr = np.concatenate([[0], np.cumsum(lens)])
    mem_st = np.repeat(form_start[class_form], lens) + (
        np.arange(lens.sum()) - np.repeat(mem_ptr[:-1], lens)
    )

    # Weekly meetings: registration AM and PM daily, then the 25 lesson slots.
    reg = np.flatnonzero(class_subj == -1)
    mt_class = [np.repeat(reg, 10)]
    mt_weekday = [np.tile(np.repeat(np.arange(5), 2), nf)]
    mt_period = [np.tile([0, 5], 5 * nf)]
    slot = np.arange(25)
    for f in range(nf):
        mt_class.append(f * per_form + 1 + tt[f])
        mt_weekday.append(slot // 5)
        mt_period.append(np.array(SCHOOL_LESSON_PERIODS)[slot % 5])
    tr = traits(rng, n, "school")
    absent_code = np.where(rng.random(n_staff) < 0.7, "O", "N").astype(object)
    return Unit(
        kind="school",
        pfx=pfx,
        area=area,
        students=st,
        n=n,
        leave_day=leave_day,
        year_group=year,
        staff=staff,
        staff_absent_code=absent_code,
        attendance_officers=np.array([ao]),
        office=office,
        responsibilities=responsibility_rows(rows, staff["staff_id"]),
        class_id=class_id,
        class_subject=subj_names[class_subj + 1],
        class_year=class_year,
        class_staff=teacher_staff[class_teacher],
        class_room=t_room[class_teacher],
        class_is_reg=class_subj == -1,
        class_scale=scale,
        mem_ptr=mem_ptr,
        mem_st=mem_st,
        mt_class=np.concatenate(mt_class),
        mt_weekday=np.concatenate(mt_weekday),
        mt_period=np.concatenate(mt_period),
        periods=SCHOOL_PERIODS,
        **tr,
    )


# --------------------------------------------------------------------------- college
COLLEGE_SUBJECTS = (
    ("MA", "Maths", 8, "alevel"),
    ("FM", "Further Maths", 2, "alevel"),
    ("BI", "Biology", 7, "alevel"),
    ("CH", "Chemistry", 6, "alevel"),
    ("PH", "Physics", 5, "alevel"),
    ("PS", "Psychology", 8, "alevel"),
    ("SO", "Sociology", 5, "alevel"),
    ("EL", "English Literature", 4, "alevel"),
    ("EG", "English Language", 3, "alevel"),
    ("HI", "History", 5, "alevel"),
    ("GE", "Geography", 3, "alevel"),
    ("PO", "Politics", 2, "alevel"),
    ("LA", "Law", 4, "alevel"),
    ("EC", "Economics", 4, "alevel"),
    ("BU", "Business", 6, "alevel"),
    ("CS", "Computer Science", 4, "alevel"),
    ("AR", "Fine Art", 3, "alevel"),
    ("PG", "Photography", 3, "alevel"),
    ("MS", "Media Studies", 3, "alevel"),
    ("FR", "French", 2, "alevel"),
    ("SP", "Spanish", 2, "alevel"),
    ("SPT", "BTEC Sport", 5, "btec"),
    ("HSC", "BTEC Health and Social Care", 5, "btec"),
    ("IT", "BTEC IT", 4, "btec"),
    ("ENG", "BTEC Engineering", 4, "btec"),
    ("ASC", "BTEC Applied Science", 3, "btec"),
)
BLOCKS = "ABCDE"


def largest_remainder(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Split ``total`` in proportion to ``weights``, at least ``minimum`` each."""
    raw = total * weights / weights.sum()
    out = np.maximum(np.floor(raw).astype(int), minimum)
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    i = 0
    while out.sum() < total:
        out[order[i % len(out)]] += 1
        i += 1
    return out


def build_college(
    rng: np.random.Generator,
    cal: Calendar,
    phones: PhonePool,
    *,
    pfx: str = "",
    area: int = 3,
    n: int = 10_000,
) -> Unit:
    """A 16–19 college: option blocks, tutor groups, three lessons a day."""
    cohort = pick(rng, ["16-19", "adult", "apprentice"], n, [0.86, 0.09, 0.05])
    year = np.where(rng.random(n) < 0.52, "12", "13").astype(object)
    other = cohort != "16-19"
    year[other] = np.where(rng.random(int(other.sum())) < 0.6, "L3", "L2")
    ay = academic_year_of(cal.date)
    adult = cohort == "adult"
    basics = student_basics(rng, n, np.where(other, "13", year), ay, adult)
    sid = sequential_ids(rng, n, f"{pfx}STE", 8, 10_000_000)
    status = pick(rng, ["C01", "C02", "L01"], n, [0.88, 0.08, 0.04])
    leave_day = np.full(n, NOT_ON_ROLL)
    left = status == "L01"
    leave_day[left] = rng.integers(0, cal.n, int(left.sum()))
    leave_day[left & (rng.random(n) < 0.1)] = cal.n - 1  # status already L01 on their last day
    upn = upns(rng, n, basics["_birth_year"])
    upn[rng.random(n) >= np.where(other, 0.2, 0.88)] = ""
    st = {
        "student_id": sid,
        "upn": upn,
        "adno": zpad(np.arange(n) + 240001, 6),
        "forename": basics["forename"],
        "surname": basics["surname"],
        "preferred_forename": basics["preferred_forename"],
        "date_of_birth": basics["date_of_birth"],
        "year_group": year,
        "status": status,
        "cohort": cohort,
    }
    finish_students(
        rng,
        st,
        phones,
        np.where(other, 0.95, 0.85),
        cat(np.array([s.lower() for s in sid.tolist()], dtype=object), "@example.org"),
    )
    # Tutor groups of about 22 within (year group, cohort).
    form = blank(n)
    prefix = {"16-19": "", "adult": "AD", "apprentice": "AP"}
    group_keys: list[str] = []
    for coh in ("16-19", "adult", "apprentice"):
        for yg in ("12", "13", "L2", "L3"):
            idx = np.flatnonzero((cohort == coh) & (year == yg))
            if not len(idx):
                continue
            idx = rng.permutation(idx)
            k = max(1, round(len(idx) / 22))
            for g, chunk in enumerate(np.array_split(idx, k)):
                code = f"{pfx}{prefix[coh]}{yg}-{g + 1:02d}"
                form[chunk] = code
                group_keys.append(code)
    st["form"] = form

    # Classes: the same subject mix in each of the five option blocks.
    weights = np.array([s[2] for s in COLLEGE_SUBJECTS], dtype=float)
    per_block = largest_remainder(max(len(weights) * 2, round(0.03 * n)), weights, 2)
    c_block, c_subj, c_k = [], [], []
    for b in range(5):
        for s, cnt in enumerate(per_block):
            c_block += [b] * cnt
            c_subj += [s] * cnt
            c_k += list(range(cnt))
    c_block, c_subj, c_k = np.array(c_block), np.array(c_subj), np.array(c_k)
    nc = len(c_block)
    class_year = np.where(c_k % 2 == 0, "12", "13").astype(object)
    codes = np.array([s[0] for s in COLLEGE_SUBJECTS], dtype=object)
    class_id = cat(
        pfx,
        codes[c_subj],
        "-",
        np.array(list(BLOCKS), dtype=object)[c_block],
        np.array([str(k + 1) for k in c_k.tolist()], dtype=object),
    )
    # Students choose blocks, then a class of their year in each block.
    n_blocks = np.where(cohort == "16-19", 3, np.where(adult, rng.integers(1, 3, n), 1))
    order = np.argsort(rng.random((n, 5)), axis=1)
    take = np.arange(5)[None, :] < n_blocks[:, None]
    p_st = np.repeat(np.arange(n), n_blocks)
    p_block = order[take]
    p_group = np.where(year == "12", 0, np.where(year == "13", 1, 2))[p_st]
    cand = {}
    for b in range(5):
        for g, label in enumerate(("12", "13", None)):
            mask = (c_block == b) & ((class_year == label) if label else True)
            cand[(b, g)] = np.flatnonzero(mask)
    p_class = np.zeros(len(p_st), dtype=np.int64)

    def draw(which: np.ndarray) -> None:
        for (b, g), options in cand.items():
            sel = which[(p_block[which] == b) & (p_group[which] == g)]
            p_class[sel] = options[rng.integers(0, len(options), len(sel))]

    draw(np.arange(len(p_st)))
    for _ in range(30):  # no subject twice
        key = p_st * 100 + c_subj[p_class]
        order2 = np.argsort(key, kind="stable")
        dup = order2[1:][key[order2[1:]] == key[order2[:-1]]]
        if not len(dup):
            break
        draw(dup)
    mem_ptr, mem_st = csr_members(p_class, p_st, nc)

    # Teachers: a subject's classes dealt round-robin, at most four (distinct blocks) each.
    class_teacher = np.zeros(nc, dtype=np.int64)
    t_subject: list[int] = []
    for s, cnt in enumerate(per_block):
        n_t = math.ceil(5 * cnt / 4)
        mine = np.flatnonzero(c_subj == s)  # ordered by block then k
        class_teacher[mine] = len(t_subject) + np.arange(len(mine)) % n_t
        t_subject += [s] * n_t
    n_teachers = len(t_subject)
    building = np.array(list("ABCDEFGH"), dtype=object)[np.array(t_subject) % 8]
    t_room = cat(
        building,
        np.array([str(v) for v in rng.integers(0, 4, n_teachers)], dtype=object),
        ".",
        zpad(rng.integers(1, 40, n_teachers), 2),
    )
    n_slt, n_ao, n_office, n_dsl, n_other = 6, 4, 6, 2, 10
    n_staff = n_slt + n_teachers + n_ao + n_office + n_dsl + n_other
    staff = make_staff(rng, n_staff, pfx, phones)
    base = n_slt + n_teachers
    aos = base + np.arange(n_ao)
    office = base + n_ao + np.arange(n_office)
    dsl = base + n_ao + n_office + np.arange(n_dsl)
    shuffled = rng.permutation(n_teachers)
    rows: list[tuple[int, str, str]] = [(i, "senior_leader", "") for i in range(n_slt)]
    rows += [(1, "safeguarding_lead", "")] + [(int(d), "safeguarding_lead", "") for d in dsl]
    rows += [(int(a), "attendance_officer", "") for a in aos]
    rows += [(int(o), "office", "") for o in office]
    first_of: dict[int, int] = {}
    for t, s in enumerate(t_subject):
        first_of.setdefault(s, t)
    rows += [(n_slt + t, "head_of_department", COLLEGE_SUBJECTS[s][1]) for s, t in first_of.items()]
    for i, yg in enumerate(("12", "13", "L2", "L3")):
        rows.append((n_slt + int(shuffled[-1 - i]), "head_of_year", yg))
    for g, code in enumerate(group_keys):
        rows.append((n_slt + int(shuffled[g % (n_teachers - 4)]), "form_tutor", code))

    meet_class = np.repeat(np.arange(nc), 5)
    meet_day = np.tile(np.arange(5), nc)
    tr = traits(rng, n, "college")
    tr["pa"][left] = True  # students who withdraw have usually stopped coming
    tr["p_absent"][left] = rng.uniform(0.2, 0.5, int(left.sum()))
    absent_code = np.where(rng.random(n_staff) < 0.85, "O", "N").astype(object)
    return Unit(
        kind="college",
        pfx=pfx,
        area=area,
        students=st,
        n=n,
        leave_day=leave_day,
        year_group=year,
        staff=staff,
        staff_absent_code=absent_code,
        attendance_officers=aos,
        office=office,
        responsibilities=responsibility_rows(rows, staff["staff_id"]),
        class_id=class_id,
        class_subject=np.array([s[1] for s in COLLEGE_SUBJECTS], dtype=object)[c_subj],
        class_year=class_year,
        class_staff=n_slt + class_teacher,
        class_room=t_room[class_teacher],
        class_is_reg=np.zeros(nc, dtype=bool),
        class_scale=np.array([s[3] for s in COLLEGE_SUBJECTS], dtype=object)[c_subj],
        mem_ptr=mem_ptr,
        mem_st=mem_st,
        mt_class=meet_class,
        mt_weekday=meet_day,
        mt_period=(c_block[meet_class] + meet_day) % 5,
        periods=COLLEGE_PERIODS,
        **tr,
    )


def csr_members(
    groups: np.ndarray, members: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Group → members index (members sorted) as (ptr, members)."""
    order = np.lexsort((members, groups))
    ptr = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(groups, minlength=n_groups), out=ptr[1:])
    return ptr, members[order]


# --------------------------------------------------------------------------- per unit
def write_unit(
    rng: np.random.Generator, unit: Unit, cal: Calendar, phones: PhonePool, sink: CsvSink
) -> None:
    """People, classes and all events of one school site or college."""
    contacts, portal = contacts_and_portal(rng, unit, phones)
    sink.write("students", unit.students)
    sink.write("contacts", contacts)
    sink.write("portal_links", portal)
    sink.write("staff", unit.staff)
    sink.write("responsibilities", unit.responsibilities)
    sink.write("medical", medical(rng, unit))
    sink.write(
        "classes",
        {
            "class_id": unit.class_id,
            "subject": unit.class_subject,
            "year_group": unit.class_year,
            "staff_id": unit.staff["staff_id"][unit.class_staff],
        },
    )
    on_roll = unit.leave_day >= NOT_ON_ROLL
    mem_class = np.repeat(np.arange(unit.n_classes), np.diff(unit.mem_ptr))
    keep = on_roll[unit.mem_st]
    sink.write(
        "class_members",
        {
            "class_id": unit.class_id[mem_class[keep]],
            "student_id": unit.students["student_id"][unit.mem_st[keep]],
        },
    )
    lessons, marks = ev.lessons_and_marks(rng, unit, cal)
    sink.write("lessons", lessons)
    sink.write("marks", marks)
    behaviour, detentions = ev.behaviour(rng, unit, cal)
    sink.write("behaviour", behaviour)
    sink.write("detentions", detentions)
    homework, status = ev.homework(rng, unit, cal)
    sink.write("homework", homework)
    sink.write("homework_status", status)
    sink.write("grades", ev.grades(rng, unit, cal))


def generate_sample(
    size: str,
    date: dt.date,
    out_dir: Path,
    seed: int = 42,
    weeks: int | None = None,
    weekend_today: bool = False,
) -> dict[str, Path]:
    """Write canonical CSV extracts for a sample ``size`` as of ``date`` into ``out_dir``.

    UTF-8, a header row of canonical column names, one file per extract named
    ``<extract>.csv``; returns ``{extract: path}``. Same (size, date, seed, weeks) →
    byte-identical files. ``weeks`` limits the history to the last ``weeks`` weeks
    (default: the term so far, at most 12 weeks; the trust defaults to 4 weeks).
    ``weekend_today`` makes a weekend ``date`` a school day on Friday's timetable.
    """
    if size not in SIZES:
        raise ValueError(f"unknown sample size {size!r}; choose one of {', '.join(SIZES)}")
    if isinstance(date, str):
        date = dt.date.fromisoformat(date)
    if isinstance(date, dt.datetime):
        date = date.date()
    if weeks is None and size == "trust":
        weeks = TRUST_WEEKS
    cal = make_calendar(date, weeks, weekend_today)
    rng = np.random.default_rng(seed)
    phones = PhonePool(rng)
    sink = CsvSink(Path(out_dir))
    try:
        if size == "school":
            write_unit(rng, build_school(rng, cal, phones), cal, phones, sink)
        elif size == "college":
            write_unit(rng, build_college(rng, cal, phones), cal, phones, sink)
        else:
            for site in range(TRUST_SITES):
                unit = build_school(
                    rng, cal, phones, pfx=f"S{site + 1:02d}-", area=site % len(AREAS)
                )
                write_unit(rng, unit, cal, phones, sink)
    finally:
        sink.close()
    return dict(sink.paths)


def main(argv: list[str] | None = None) -> None:
    """``python -m pipelines.sample SIZE DATE OUT [SEED]`` — generate and print row counts."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", choices=SIZES)
    parser.add_argument("date", type=dt.date.fromisoformat)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--weeks", type=int)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    paths = generate_sample(args.size, args.date, args.out, args.seed, args.weeks)
    elapsed = time.perf_counter() - started
    for name, path in paths.items():
        with path.open(encoding="utf-8") as handle:
            print(f"{name:18} {sum(1 for _ in handle) - 1:>10,}")
    print(f"{args.size} generated in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
