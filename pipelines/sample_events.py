"""Events for the synthetic sample: lessons, marks, behaviour, detentions, homework, grades.

Used by :mod:`pipelines.sample`. Everything is vectorised with numpy (one array
operation per rule, never a Python loop per mark), so a trust's marks stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipelines.sample_people import (
    Cols,
    Unit,
    blank,
    cat,
    date_strings,
    expand,
    hhmm,
    istr,
    pick,
    timestamp_strings,
    zpad,
)

if TYPE_CHECKING:
    from pipelines.sample import Calendar

# Whole-day absence reasons; 1 = no reason known (the teacher's N/O stays).
REASONS = np.array(["", "UNX", "I", "M", "C", "G", "R", "E", "J1"], dtype=object)
P_REASON = np.array([0, 0.17, 0.55, 0.06, 0.04, 0.07, 0.03, 0.02, 0.06])
P_REASON_PA = np.array([0, 0.35, 0.33, 0.04, 0.04, 0.15, 0.02, 0.07, 0.0])
SPELL = (np.array([1, 2, 3, 5]), np.array([0.45, 0.3, 0.15, 0.1]))
COMMENTS = {
    "L": (
        0.3,
        [
            "Bus late",
            "Traffic",
            "Overslept",
            "Came from a medical appointment",
            "Signed in at reception",
        ],
    ),
    "I": (
        0.35,
        ["Parent phoned: unwell", "Parent emailed: sickness bug", "Migraine", "High temperature"],
    ),
    "M": (0.6, ["Dentist appointment", "GP appointment", "Hospital appointment", "Orthodontist"]),
    "G": (0.5, ["Term-time holiday not authorised"]),
    "C": (0.5, ["Bereavement", "Family emergency", "Performing in a licensed show"]),
    "R": (0.6, ["Eid", "Diwali", "Religious observance"]),
    "E": (0.8, ["Suspended"]),
    "J1": (0.8, ["University interview", "Job interview"]),
    "P": (0.7, ["Football fixture", "County athletics"]),
    "V": (0.7, ["Field trip", "Theatre visit", "Museum visit"]),
    "K": (0.5, ["LA tuition provision"]),
    "B": (0.5, ["Off-site provision"]),
}


def _ts(cal: Calendar, day: np.ndarray, sec: np.ndarray) -> np.ndarray:
    return timestamp_strings(
        cal.days[day].astype("datetime64[s]")
        + np.asarray(sec, dtype=np.int64).astype("timedelta64[s]")
    )


def _comments(rng: np.random.Generator, mark: np.ndarray) -> np.ndarray:
    out = blank(len(mark))
    r = rng.random(len(mark))
    for code, (p, texts) in COMMENTS.items():
        sel = (mark == code) & (r < p)
        out[sel] = pick(rng, texts, int(sel.sum()))
    return out


def absence_cells(rng: np.random.Generator, unit: Unit, n_days: int) -> dict[str, np.ndarray]:
    """Per (student, day): whole-day absence reason (index into REASONS) and amendments."""
    n = unit.n
    start = rng.random((n, n_days)) < (unit.p_absent / (SPELL[0] @ SPELL[1]))[:, None]
    length = rng.choice(SPELL[0], size=(n, n_days), p=SPELL[1])
    p_reason = P_REASON.copy()
    if unit.kind == "school":  # interviews (J1) are for the over-16s
        p_reason[2] += p_reason[8]
        p_reason[8] = 0
    reason = np.where(
        unit.pa[:, None],
        rng.choice(len(REASONS), size=(n, n_days), p=P_REASON_PA),
        rng.choice(len(REASONS), size=(n, n_days), p=p_reason),
    ).astype(np.int8)
    code = np.zeros((n, n_days), dtype=np.int8)
    for k in range(int(SPELL[0].max())):
        src = start[:, : n_days - k] & (length[:, : n_days - k] > k)
        tgt = code[:, k:]
        fill = src & (tgt == 0)
        tgt[fill] = reason[:, : n_days - k][fill]
    return {
        "code": code,
        "next_day": rng.random((n, n_days)) < 0.45,
        "amend_sec": rng.integers(8 * 3600 + 5 * 60, 14 * 3600 + 30 * 60, (n, n_days)),
        "next_sec": rng.integers(8 * 3600, 10 * 3600 + 30 * 60, (n, n_days)),
        "convert": rng.random((n, n_days)) < 0.6,
    }


def lessons_and_marks(rng: np.random.Generator, unit: Unit, cal: Calendar) -> tuple[Cols, Cols]:
    """Every timetabled lesson/session of the history and a mark per pupil present on roll."""
    n_days = cal.n
    days, meets = [], []
    for w in range(5):
        d_w = np.flatnonzero(cal.weekday == w)
        m_w = np.flatnonzero(unit.mt_weekday == w)
        days.append(np.repeat(d_w, len(m_w)))
        meets.append(np.tile(m_w, len(d_w)))
    l_day = np.concatenate(days)
    l_meet = np.concatenate(meets)
    l_class = unit.mt_class[l_meet]
    l_per = unit.mt_period[l_meet]
    p_start = np.array([p.start for p in unit.periods])
    p_end = np.array([p.end for p in unit.periods])
    order = np.lexsort((l_class, p_start[l_per], l_day))
    l_day, l_class, l_per = l_day[order], l_class[order], l_per[order]
    n_les = len(l_day)
    start, end = p_start[l_per] * 60, p_end[l_per] * 60
    session = np.array([p.kind == "session" for p in unit.periods])[l_per]
    labels = np.array([p.label for p in unit.periods], dtype=object)
    never = rng.random(n_les) < np.where(session, 0.003, 0.015)
    late_reg = ~never & (rng.random(n_les) < np.where(session, 0.01, 0.04))
    window = np.minimum(12 * 60, end - start - 90)  # a session lasts only 10 minutes
    taken = np.where(
        late_reg,
        end + rng.integers(120, 3 * 3600, n_les),
        start + (20 + rng.random(n_les) * (window - 20)).astype(np.int64),
    )
    l_staff = unit.class_staff[l_class]
    lesson_id = cat(cal.compact[l_day], "-", unit.class_id[l_class], "-", labels[l_per])
    lessons = {
        "lesson_id": lesson_id,
        "date": cal.iso[l_day],
        "start_time": np.array([hhmm(p.start) for p in unit.periods], dtype=object)[l_per],
        "end_time": np.array([hhmm(p.end) for p in unit.periods], dtype=object)[l_per],
        "kind": np.where(session, "session", "lesson").astype(object),
        "period": labels[l_per],
        "class_id": unit.class_id[l_class],
        "subject": np.where(session, "", unit.class_subject[l_class]).astype(object),
        "staff_id": unit.staff["staff_id"][l_staff],
        "room": unit.class_room[l_class],
        "register_taken_at": np.where(never, "", _ts(cal, l_day, taken)).astype(object),
    }

    # Marks for the lessons whose register was taken, pupils on roll that day.
    done = np.flatnonzero(~never)
    owner, stu = expand(unit.mem_ptr, unit.mem_st, l_class[done])
    les = done[owner]
    keep = unit.leave_day[stu] >= l_day[les]
    les, stu = les[keep], stu[keep]
    d = l_day[les]
    m = len(les)
    cells = absence_cells(rng, unit, n_days)
    is_sess = session[les]
    teacher = l_staff[les]
    raw_absent = np.where(is_sess, "N", unit.staff_absent_code[teacher]).astype(object)
    mark = np.where(is_sess & (labels[l_per[les]] == "PM"), "\\", "/").astype(object)
    rec_day = d.copy()
    rec_sec = taken[les] + rng.integers(0, 60, m)
    rec_by = teacher.copy()
    minutes = blank(m)
    aos = unit.attendance_officers
    ao = aos[stu % len(aos)]

    code = cells["code"][stu, d]
    unx = code == 1
    mark[unx] = raw_absent[unx]
    convert = unx & (mark == "N") & cells["convert"][stu, d] & (d + 5 <= n_days - 1)
    mark[convert] = "O"
    rec_day[convert] = d[convert] + 5
    rec_sec[convert] = cells["next_sec"][stu[convert], d[convert]] + 3600
    rec_by[convert] = ao[convert]
    known = code > 1
    mark[known] = REASONS[code[known]]
    nxt = known & cells["next_day"][stu, d] & (d < n_days - 1)
    same = known & ~nxt
    rec_day[nxt] = d[nxt] + 1
    rec_sec[nxt] = cells["next_sec"][stu[nxt], d[nxt]]
    rec_sec[same] = cells["amend_sec"][stu[same], d[same]]
    rec_by[known] = ao[known]

    present = code == 0
    mins_of_day = start[les] // 60
    factor = np.where(
        mins_of_day < 9 * 60 + 30, 3.0, np.where(mins_of_day >= 13 * 60 + 30, 1.5, 0.6)
    )
    late = present & (rng.random(m) < unit.p_late[stu] * factor)
    lm = np.minimum(1 + rng.geometric(0.15, m), 29)
    after_close = late & is_sess & (rng.random(m) < 0.12)
    lm = np.where(after_close, rng.integers(31, 56, m), lm)
    mark[late] = "L"
    mark[after_close] = "U"
    minutes[late] = istr(lm[late])
    arrive = start[les] + lm * 60 + rng.integers(0, 60, m)
    rec_sec[late] = np.maximum(rec_sec[late], arrive[late])
    truant = (
        present
        & ~late
        & ~is_sess
        & (rng.random(m) < unit.p_truant[stu] * np.where(mins_of_day >= 12 * 60, 1.6, 0.6))
    )
    mark[truant] = unit.staff_absent_code[teacher[truant]]
    other = present & ~late & ~truant
    r = rng.random(m)
    approved = other & (r < 0.004)
    mark[approved] = pick(rng, ["P", "V", "K", "B"], int(approved.sum()), [0.4, 0.3, 0.1, 0.2])
    rec_sec[approved] = rng.integers(8 * 3600, 8 * 3600 + 40 * 60, int(approved.sum()))
    rec_by[approved] = ao[approved]
    appt = other & (r >= 0.004) & (r < 0.007)
    mark[appt] = "M"
    rec_sec[appt] = rng.integers(8 * 3600, 12 * 3600, int(appt.sum()))
    rec_by[appt] = unit.office[stu[appt] % len(unit.office)]
    comment = _comments(rng, mark)
    comment[truant & (rng.random(m) < 0.1)] = "Seen at lunch, not in lesson"

    recorded_at = _ts(cal, rec_day, rec_sec)
    by_teacher = rec_by == teacher
    recorded_at[by_teacher & (rng.random(m) < 0.002)] = ""  # no timestamp in the MIS
    marks = {
        "lesson_id": lesson_id[les],
        "student_id": unit.students["student_id"][stu],
        "mark": mark,
        "minutes_late": minutes,
        "comment": comment,
        "recorded_at": recorded_at,
        "recorded_by": unit.staff["staff_id"][rec_by],
    }
    return lessons, marks


# --------------------------------------------------------------------------- behaviour
NEGATIVE = (
    (
        "Disruption",
        -1,
        0.28,
        [
            "Talking over the teacher repeatedly.",
            "Refused to settle after several reminders.",
            "Throwing paper across the room.",
        ],
    ),
    (
        "Homework not done",
        -1,
        0.2,
        ["Second missed homework this half term.", "No homework, no reason given."],
    ),
    ("Uniform", -1, 0.12, ["Trainers instead of school shoes.", "No tie."]),
    ("Late to lesson", -1, 0.1, ["Arrived 10 minutes after the bell.", "Late from break."]),
    ("Mobile phone", -2, 0.09, ["Phone out in lesson; confiscated until end of day."]),
    (
        "Defiance",
        -3,
        0.08,
        ["Refused to follow a reasonable instruction.", "Walked out of the lesson."],
    ),
    (
        "Unkind behaviour",
        -2,
        0.06,
        ["Name-calling in the corridor.", "Unkind comments online about a classmate."],
    ),
    ("Fighting", -5, 0.03, ["Fight on the field at lunch."]),
    ("Bullying", -5, 0.02, ["Repeated intimidation of a younger pupil; DSL informed."]),
    ("Truancy", -3, 0.02, ["Missed lesson without permission; found in the toilets."]),
)
POSITIVE = (
    ("Praise", 1, 0.38, ["Great contributions to discussion.", "Really focused today."]),
    (
        "Excellent work",
        2,
        0.25,
        ["Outstanding piece of extended writing.", "Top mark in the class test."],
    ),
    ("Effort", 1, 0.15, ["Kept going with a tricky topic.", "Huge effort in practical."]),
    (
        "Helping others",
        1,
        0.1,
        ["Helped a new student find their way.", "Supported a classmate patiently."],
    ),
    ("Homework excellence", 1, 0.08, ["Homework went well beyond what was asked."]),
    (
        "Representing the school",
        3,
        0.04,
        ["Played in the county cup match.", "Helped at the open evening."],
    ),
)
NEG_OUTCOMES = {
    -1: (["Verbal warning", "Detention", "Parent contacted", ""], [0.45, 0.35, 0.1, 0.1]),
    -2: (
        ["Detention", "Removed from lesson", "Parent contacted", "Referred to head of year"],
        [0.45, 0.2, 0.2, 0.15],
    ),
    -3: (
        ["Detention", "Removed from lesson", "Parent contacted", "Referred to head of year"],
        [0.4, 0.25, 0.15, 0.2],
    ),
    -5: (
        ["Isolation", "Suspension", "Referred to head of year", "Parent contacted"],
        [0.45, 0.15, 0.25, 0.15],
    ),
}
POS_OUTCOMES = (["Merit awarded", "Postcard home", "Phone call home", ""], [0.5, 0.2, 0.1, 0.2])


def _subject_classes(unit: Unit) -> tuple[np.ndarray, np.ndarray]:
    """Student → subject classes (CSR)."""
    mem_class = np.repeat(np.arange(unit.n_classes), np.diff(unit.mem_ptr))
    keep = ~unit.class_is_reg[mem_class]
    stu, cls = unit.mem_st[keep], mem_class[keep]
    order = np.argsort(stu, kind="stable")
    ptr = np.zeros(unit.n + 1, dtype=np.int64)
    np.cumsum(np.bincount(stu, minlength=unit.n), out=ptr[1:])
    return ptr, cls[order]


def behaviour(rng: np.random.Generator, unit: Unit, cal: Calendar) -> tuple[Cols, Cols]:
    """Behaviour incidents (positive and negative) and the detentions they led to."""
    college = unit.kind == "college"
    n_days = cal.n
    last = np.minimum(unit.leave_day, n_days - 1)
    on = last + 1
    n_neg = rng.poisson(unit.neg_rate * on)
    n_pos = rng.poisson(unit.pos_rate * on)
    stu = np.concatenate([np.repeat(np.arange(unit.n), n_neg), np.repeat(np.arange(unit.n), n_pos)])
    neg = np.arange(len(stu)) < n_neg.sum()
    k = len(stu)
    day = np.floor(rng.random(k) * on[stu]).astype(np.int64)
    lo, hi = (9 * 3600, 17 * 3600) if college else (8 * 3600 + 45 * 60, 15 * 3600 + 20 * 60)
    sec = rng.integers(lo, hi, k)
    order = np.lexsort((stu, sec, day))
    stu, neg, day, sec = stu[order], neg[order], day[order], sec[order]
    types = np.empty(k, dtype=object)
    points = np.zeros(k, dtype=np.int64)
    comment = blank(k)
    for pol, table in ((True, NEGATIVE), (False, POSITIVE)):
        sel = np.flatnonzero(neg == pol)
        w = np.array([t[2] for t in table])
        which = rng.choice(len(table), size=len(sel), p=w / w.sum())
        names = np.array([t[0] for t in table], dtype=object)
        if college:
            names[names == "Uniform"] = "No ID badge"
            names[names == "Representing the school"] = "Representing the college"
        types[sel] = names[which]
        points[sel] = np.array([t[1] for t in table])[which]
        for i, t in enumerate(table):
            s = sel[which == i]
            comment[s] = pick(rng, t[3], len(s))
    comment[rng.random(k) < 0.3] = ""
    outcome = blank(k)
    for pts, (vals, p) in NEG_OUTCOMES.items():
        s = neg & (points == pts)
        outcome[s] = pick(rng, vals, int(s.sum()), p)
    outcome[~neg] = pick(rng, POS_OUTCOMES[0], int((~neg).sum()), POS_OUTCOMES[1])
    loc_vals = (
        ["Classroom", "Corridor", "Canteen", "Library", "Online"]
        if college
        else ["Classroom", "Corridor", "Playground", "Canteen", "Field", "Online"]
    )
    loc_p = [0.6, 0.15, 0.1, 0.1, 0.05] if college else [0.6, 0.12, 0.1, 0.08, 0.05, 0.05]
    location = pick(rng, loc_vals, k, loc_p)
    location[~neg & (rng.random(k) < 0.8)] = "Classroom"
    ptr, cls = _subject_classes(unit)
    count = ptr[stu + 1] - ptr[stu]
    nth = np.floor(rng.random(k) * count).astype(np.int64)
    teacher = unit.class_staff[cls[ptr[stu] + nth]]
    ids = cat(f"{unit.pfx}BEH", zpad(np.arange(1, k + 1), 7))
    occurred = _ts(cal, day, sec)
    incidents = {
        "incident_id": ids,
        "student_id": unit.students["student_id"][stu],
        "occurred_at": occurred,
        "type": types,
        "polarity": np.where(neg, "negative", "positive").astype(object),
        "points": istr(points),
        "location": location,
        "outcome": outcome,
        "recorded_by": unit.staff["staff_id"][teacher],
        "comment": comment,
    }

    # Detentions: one for each incident with that outcome, plus some for lateness.
    det = np.flatnonzero(outcome == "Detention")
    n_late = round(unit.n * n_days * 0.0006)
    late_st = rng.choice(unit.n, size=n_late, p=unit.p_late / unit.p_late.sum())
    late_day = np.floor(rng.random(n_late) * on[late_st]).astype(np.int64)
    d_stu = np.concatenate([stu[det], late_st])
    d_from = cal.days[np.concatenate([day[det], late_day])]
    d_date = np.busday_offset(d_from, 1, roll="forward")
    d_inc = np.concatenate([ids[det], blank(n_late)])
    d_reason = np.concatenate(
        [types[det], np.full(n_late, "Lateness" if college else "Late to school", dtype=object)]
    )
    order = np.lexsort((d_stu, d_date))
    d_stu, d_date, d_inc, d_reason = d_stu[order], d_date[order], d_inc[order], d_reason[order]
    nd = len(d_stu)
    today = np.datetime64(cal.date, "D")
    status = np.where(d_date > today, "scheduled", "").astype(object)
    past = d_date < today
    status[past] = pick(
        rng, ["attended", "missed", "cancelled"], int(past.sum()), [0.78, 0.14, 0.08]
    )
    now = d_date == today
    status[now] = pick(rng, ["scheduled", "cancelled"], int(now.sum()), [0.95, 0.05])
    long = d_reason == "Defiance"
    start, stop = ("16:50", "17:20") if college else ("15:05", "15:35")
    detentions = {
        "detention_id": cat(f"{unit.pfx}DET", zpad(np.arange(1, nd + 1), 6)),
        "student_id": unit.students["student_id"][d_stu],
        "date": date_strings(d_date),
        "start_time": np.full(nd, start, dtype=object),
        "end_time": np.where(long & ~college, "16:05", stop).astype(object),
        "location": pick(
            rng, ["Library seminar room"] if college else ["Room H12", "Main hall", "Room S4"], nd
        ),
        "reason": d_reason,
        "status": status,
        "incident_id": d_inc,
    }
    return incidents, detentions


# --------------------------------------------------------------------------- homework
TASKS = np.array(
    [
        "Past paper questions",
        "Revision for end-of-unit test",
        "Worksheet",
        "Reading and notes",
        "Research task",
        "Essay plan",
        "Vocabulary learning",
        "Online quiz",
        "Project work",
        "Exam-style question",
        "Key terms glossary",
        "Practice problems",
    ],
    dtype=object,
)
CORE = {"Maths", "English", "Science"}


def _on_roll_members(unit: Unit, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    owner, stu = expand(unit.mem_ptr, unit.mem_st, classes)
    keep = unit.leave_day[stu] >= 10**6
    return owner[keep], stu[keep]


def homework(rng: np.random.Generator, unit: Unit, cal: Calendar) -> tuple[Cols, Cols]:
    """Weekly homework per class (core subjects weekly, others fortnightly) and statuses."""
    classes = np.flatnonzero(~unit.class_is_reg)
    week = ((cal.days - cal.days[0]).astype(np.int64) + int(cal.weekday[0])) // 7
    n_weeks = int(week.max()) + 1
    w_first = np.searchsorted(week, np.arange(n_weeks))
    w_len = np.bincount(week, minlength=n_weeks)
    if unit.kind == "college":
        freq = np.full(len(classes), 0.8)
    else:
        freq = np.where(np.isin(unit.class_subject[classes], list(CORE)), 1.0, 0.5)
    ci, wi = np.nonzero(rng.random((len(classes), n_weeks)) < freq[:, None])
    set_day = w_first[wi] + np.floor(rng.random(len(ci)) * w_len[wi]).astype(np.int64)
    order = np.lexsort((ci, set_day))
    ci, set_day = ci[order], set_day[order]
    cls = classes[ci]
    a = len(cls)
    set_date = cal.days[set_day]
    due = set_date + np.timedelta64(7, "D")
    ids = cat(f"{unit.pfx}HW", zpad(np.arange(1, a + 1), 6))
    hw = {
        "assignment_id": ids,
        "class_id": unit.class_id[cls],
        "title": cat(unit.class_subject[cls], ": ", pick(rng, TASKS, a)),
        "set_date": date_strings(set_date),
        "due_date": date_strings(due),
        "staff_id": unit.staff["staff_id"][unit.class_staff[cls]],
    }
    owner, stu = _on_roll_members(unit, cls)
    today = np.datetime64(cal.date, "D")
    overdue = due[owner] < today
    elapsed = np.clip((today - set_date[owner]).astype(np.int64) / 7.0, 0, 1)
    r = rng.random(len(owner))
    dil = unit.diligence[stu]
    status = np.where(
        r < np.where(overdue, dil, dil * elapsed * 0.9), "submitted", "outstanding"
    ).astype(object)
    late = overdue & (status == "outstanding") & (rng.random(len(owner)) < 0.45)
    status[late] = "late"
    return hw, {
        "assignment_id": ids[owner],
        "student_id": unit.students["student_id"][stu],
        "status": status,
    }


# --------------------------------------------------------------------------- grades
SCALES = {
    "gcse": (
        np.array([-2.6, -1.9, -1.3, -0.7, -0.2, 0.3, 0.8, 1.3, 1.8]),
        ["U", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    ),
    "ks3": (np.array([-0.9, 0.1, 1.0]), ["Emerging", "Developing", "Secure", "Mastering"]),
    "alevel": (np.array([-2.0, -1.3, -0.6, 0.1, 0.8, 1.5]), ["U", "E", "D", "C", "B", "A", "A*"]),
    "btec": (np.array([-2.0, -0.8, 0.4, 1.4]), ["U", "P", "M", "D", "D*"]),
}
GRADE_COMMENTS = (
    [
        "Needs to complete homework consistently.",
        "Must catch up on missed work.",
        "Please attend the Thursday catch-up sessions.",
        "Attendance is affecting progress; let's talk.",
    ],
    [
        "Good effort; focus on exam technique.",
        "Steady progress. Act on feedback.",
        "Solid work in class; homework needs more care.",
        "On track - keep revising key terms.",
    ],
    [
        "Excellent progress; keep it up.",
        "Consistently high-quality work.",
        "A real strength - well done!",
        "Ready for the extension tasks.",
    ],
)


def grades(rng: np.random.Generator, unit: Unit, cal: Calendar) -> Cols:
    """One or two assessments per class in the history, with grades and comments."""
    classes = np.flatnonzero(~unit.class_is_reg)
    n_days = cal.n
    points = [n_days // 2, n_days - 1] if n_days >= 15 else [n_days - 1]
    nc = len(classes)
    cls = np.tile(classes, len(points))
    which = np.repeat(np.arange(len(points)), nc)
    day = np.clip(np.array(points)[which] - rng.integers(0, 4, len(cls)), 0, n_days - 1)
    sec = rng.integers(15 * 3600 + 30 * 60, 21 * 3600 + 30 * 60, len(cls))
    owner, stu = _on_roll_members(unit, cls)
    z = unit.ability[stu] + rng.normal(0, 0.6, len(stu))
    grade = blank(len(stu))
    scale = unit.class_scale[cls[owner]]
    for name, (cuts, labels) in SCALES.items():
        sel = scale == name
        grade[sel] = np.array(labels, dtype=object)[np.searchsorted(cuts, z[sel])]
    band = np.searchsorted([-0.7, 0.7], z)
    comment = blank(len(stu))
    for b, texts in enumerate(GRADE_COMMENTS):
        sel = band == b
        comment[sel] = pick(rng, texts, int(sel.sum()))
    comment[rng.random(len(stu)) < 0.3] = ""
    entered = _ts(cal, day[owner], sec[owner] + rng.integers(0, 600, len(stu)))
    k = len(stu)
    return {
        "grade_id": cat(f"{unit.pfx}GR", zpad(np.arange(1, k + 1), 7)),
        "student_id": unit.students["student_id"][stu],
        "class_id": unit.class_id[cls[owner]],
        "subject": unit.class_subject[cls[owner]],
        "assessment": cat(f"{cal.term} assessment ", istr(which[owner] + 1)),
        "grade": grade,
        "comment": comment,
        "entered_by": unit.staff["staff_id"][unit.class_staff[cls[owner]]],
        "entered_at": entered,
    }
