"""The synthetic sample generator: canonical format, integrity, safety, realism."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pandas as pd
import pytest

from pipelines.sample import SIZES, generate_sample, history_days

DATE = dt.date(2025, 11, 19)  # a Wednesday in the autumn term
TODAY = DATE.isoformat()

# The canonical headers, as EXTRACTS.md gives them (checked independently of the code).
HEADERS = {
    "students": "student_id upn adno forename surname preferred_forename date_of_birth "
    "year_group form status cohort email mobile",
    "contacts": "student_id contact_id title forename surname relationship priority "
    "parental_responsibility mobile email home_phone address_line1 address_line2 "
    "town postcode sms_consent email_consent",
    "portal_links": "account_id student_id name mobile email registered link_status",
    "staff": "staff_id title forename surname email mobile",
    "responsibilities": "staff_id role scope",
    "classes": "class_id subject year_group staff_id",
    "class_members": "class_id student_id",
    "medical": "student_id condition details severity",
    "lessons": "lesson_id date start_time end_time kind period class_id subject staff_id room "
    "register_taken_at",
    "marks": "lesson_id student_id mark minutes_late comment recorded_at recorded_by",
    "behaviour": "incident_id student_id occurred_at type polarity points location outcome "
    "recorded_by comment",
    "detentions": "detention_id student_id date start_time end_time location reason status "
    "incident_id",
    "homework": "assignment_id class_id title set_date due_date staff_id",
    "homework_status": "assignment_id student_id status",
    "grades": "grade_id student_id class_id subject assessment grade comment entered_by entered_at",
}
KEYS = {
    "students": ["student_id"],
    "contacts": ["student_id", "contact_id"],
    "portal_links": ["account_id", "student_id"],
    "staff": ["staff_id"],
    "responsibilities": ["staff_id", "role", "scope"],
    "classes": ["class_id"],
    "class_members": ["class_id", "student_id"],
    "medical": ["student_id", "condition"],
    "lessons": ["lesson_id"],
    "marks": ["lesson_id", "student_id"],
    "behaviour": ["incident_id"],
    "detentions": ["detention_id"],
    "homework": ["assignment_id"],
    "homework_status": ["assignment_id", "student_id"],
    "grades": ["grade_id"],
}
DFE_CODES = {
    "/",
    "\\",
    "L",
    "K",
    "V",
    "P",
    "W",
    "B",
    "C",
    "C1",
    "C2",
    "E",
    "I",
    "J1",
    "M",
    "R",
    "S",
    "T",
    "G",
    "N",
    "O",
    "U",
    "D",
    "Q",
    "X",
    "Z",
    "#",
} | {f"Y{i}" for i in range(1, 8)}
PRESENT = {"/", "\\", "L", "K", "V", "P", "W", "B"}
PHONE_COLUMNS = [
    ("students", "mobile"),
    ("contacts", "mobile"),
    ("contacts", "home_phone"),
    ("portal_links", "mobile"),
    ("staff", "mobile"),
]
DATE_COLUMNS = [
    ("students", "date_of_birth"),
    ("lessons", "date"),
    ("detentions", "date"),
    ("homework", "set_date"),
    ("homework", "due_date"),
]
TIME_COLUMNS = [
    ("lessons", "start_time"),
    ("lessons", "end_time"),
    ("detentions", "start_time"),
    ("detentions", "end_time"),
]
TIMESTAMP_COLUMNS = [
    ("lessons", "register_taken_at"),
    ("marks", "recorded_at"),
    ("behaviour", "occurred_at"),
    ("grades", "entered_at"),
]
BOOL_COLUMNS = [
    ("contacts", "parental_responsibility"),
    ("contacts", "sms_consent"),
    ("contacts", "email_consent"),
    ("portal_links", "registered"),
]


def read_all(paths: dict[str, Path]) -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        for name, path in paths.items()
    }


@pytest.fixture(scope="module")
def school_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_sample("school", DATE, tmp_path_factory.mktemp("school"))


@pytest.fixture(scope="module")
def school(school_paths: dict[str, Path]) -> dict[str, pd.DataFrame]:
    return read_all(school_paths)


@pytest.fixture(scope="module")
def college(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    # Four weeks of history keep the test quick; the shape is the same as a full term.
    return read_all(generate_sample("college", DATE, tmp_path_factory.mktemp("college"), weeks=4))


@pytest.fixture(scope="module", params=["school", "college"])
def sample(request: pytest.FixtureRequest) -> dict[str, pd.DataFrame]:
    return request.getfixturevalue(request.param)


def national_digits(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return "0" + digits[2:] if digits.startswith("44") else digits


def lesson_marks(data: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return data["marks"].merge(data["lessons"], on="lesson_id", suffixes=("", "_lesson"))


# --------------------------------------------------------------------------- format
def test_files_and_exact_canonical_headers(school_paths: dict[str, Path]) -> None:
    from pipelines.specs import EXTRACTS

    assert set(school_paths) == set(HEADERS)
    for name, path in school_paths.items():
        assert path.name == f"{name}.csv"
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        raw.decode("utf-8")
        header = raw.split(b"\n", 1)[0].decode()
        assert header.split(",") == HEADERS[name].split(), name
        assert header.split(",") == EXTRACTS[name].column_names, name
        assert raw.count(b"\n") > 1, f"{name} has no rows"


def test_deterministic_and_seed_dependent(school_paths: dict[str, Path], tmp_path: Path) -> None:
    again = generate_sample("school", DATE, tmp_path / "again")
    for name, path in school_paths.items():
        assert (
            hashlib.sha256(path.read_bytes()).digest()
            == hashlib.sha256(again[name].read_bytes()).digest()
        ), name
    other = generate_sample("school", DATE, tmp_path / "other", seed=7)
    for name in ("students", "contacts", "marks", "behaviour"):
        assert other[name].read_bytes() != school_paths[name].read_bytes(), name


def test_keys_unique(sample: dict[str, pd.DataFrame]) -> None:
    for name, key in KEYS.items():
        df = sample[name]
        dup = df[df.duplicated(key, keep=False)]
        assert dup.empty, f"{name}: duplicate keys\n{dup.head()}"
        for col in key:
            if col != "scope":
                assert (df[col] != "").all(), f"{name}.{col} blank"


def test_referential_integrity(sample: dict[str, pd.DataFrame]) -> None:
    students = set(sample["students"].student_id)
    staff = set(sample["staff"].staff_id)
    classes = set(sample["classes"].class_id)
    lessons = set(sample["lessons"].lesson_id)
    for name in (
        "contacts",
        "portal_links",
        "class_members",
        "medical",
        "marks",
        "behaviour",
        "detentions",
        "homework_status",
        "grades",
    ):
        assert set(sample[name].student_id) <= students, name
    for name in ("class_members", "homework", "grades"):
        assert set(sample[name].class_id) <= classes, name
    assert set(sample["lessons"].class_id) - {""} <= classes
    assert set(sample["marks"].lesson_id) <= lessons
    assert set(sample["homework_status"].assignment_id) <= set(sample["homework"].assignment_id)
    assert set(sample["detentions"].incident_id) - {""} <= set(sample["behaviour"].incident_id)
    for name, col in [
        ("responsibilities", "staff_id"),
        ("classes", "staff_id"),
        ("lessons", "staff_id"),
        ("marks", "recorded_by"),
        ("behaviour", "recorded_by"),
        ("homework", "staff_id"),
        ("grades", "entered_by"),
    ]:
        assert set(sample[name][col]) - {""} <= staff, f"{name}.{col}"


def test_phone_numbers_only_from_safe_ranges(sample: dict[str, pd.DataFrame]) -> None:
    short = 0
    for name, col in PHONE_COLUMNS:
        for value in sample[name][col]:
            if not value:
                continue
            digits = national_digits(value)
            if len(digits) < 10:  # a deliberately invalid number such as "0123"
                assert (name, col) == ("contacts", "mobile"), value
                short += 1
            elif col == "home_phone":
                assert re.fullmatch(r"(0207946|01[1-6]\d496)0\d{3}", digits), value
            else:
                assert re.fullmatch(r"074001\d{5}", digits), value
    assert 0 < short < 0.02 * len(sample["contacts"])
    mobiles = sample["contacts"].mobile
    assert mobiles.str.startswith("+44").any() and mobiles.str.startswith("07400 ").any()
    assert mobiles.str.fullmatch(r"07400\d{6}").any()


def test_emails_only_on_example_domains(sample: dict[str, pd.DataFrame]) -> None:
    for name in ("students", "contacts", "portal_links", "staff"):
        values = sample[name].email
        values = values[values != ""]
        assert len(values) > 0
        bad = values[~values.str.fullmatch(r"[a-z0-9.]+@example\.(com|org|net)")]
        assert bad.empty, f"{name}: {bad.head().tolist()}"


def test_value_formats(sample: dict[str, pd.DataFrame]) -> None:
    for name, col in DATE_COLUMNS:
        values = sample[name][col]
        values = values[values != ""]
        assert values.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all(), f"{name}.{col}"
        pd.to_datetime(values, format="%Y-%m-%d")
    for name, col in TIME_COLUMNS:
        assert sample[name][col].str.fullmatch(r"([01]\d|2[0-3]):[0-5]\d").all(), f"{name}.{col}"
    for name, col in TIMESTAMP_COLUMNS:
        values = sample[name][col]
        values = values[values != ""]
        assert values.str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all(), f"{name}.{col}"
        pd.to_datetime(values, format="%Y-%m-%d %H:%M:%S")
    for name, col in BOOL_COLUMNS:
        assert set(sample[name][col]) <= {"Y", "N"}, f"{name}.{col}"
    lessons = sample["lessons"]
    assert (lessons.end_time > lessons.start_time).all()
    det = sample["detentions"]
    assert (det.end_time > det.start_time).all()
    assert set(lessons.kind) <= {"lesson", "session"}
    marks = sample["marks"]
    assert set(marks.mark) <= DFE_CODES
    late = marks[marks.mark.isin(["L", "U"])]
    assert late.minutes_late.str.fullmatch(r"\d+").all()
    assert (marks[~marks.mark.isin(["L", "U"])].minutes_late == "").all()
    assert set(sample["portal_links"].link_status) == {"active", "suspended"}
    assert set(sample["behaviour"].polarity) == {"positive", "negative"}
    assert sample["behaviour"].points.str.fullmatch(r"-?\d+").all()
    assert set(sample["detentions"].status) <= {"scheduled", "attended", "missed", "cancelled"}
    assert set(sample["homework_status"].status) == {"submitted", "outstanding", "late"}
    assert sample["contacts"].priority.str.fullmatch(r"[123]").all()
    postcode = r"[A-Z]{1,2}\d{1,2} \d[A-Z]{2}"
    assert sample["contacts"].postcode.str.fullmatch(postcode).all()


def test_upn_check_letters_mostly_right(sample: dict[str, pd.DataFrame]) -> None:
    letters = "ABCDEFGHJKLMNPQRTUVWXYZ"
    upns = sample["students"].upn
    upns = upns[upns != ""]
    good = [
        letters[sum(int(c) * w for w, c in enumerate(u[1:], start=2)) % 23] == u[0] for u in upns
    ]
    assert sum(good) / len(good) > 0.99


# --------------------------------------------------------------------------- attendance
def test_marks_only_for_registers_taken_and_some_never_taken(
    sample: dict[str, pd.DataFrame],
) -> None:
    lessons = sample["lessons"]
    never = lessons[lessons.register_taken_at == ""]
    assert 0 < len(never) < 0.05 * len(lessons)
    assert not set(never.lesson_id) & set(sample["marks"].lesson_id)
    end = lessons.date + " " + lessons.end_time + ":00"
    taken = lessons[lessons.register_taken_at != ""]
    late = taken.register_taken_at > end[taken.index]
    assert 0 < late.sum() < 0.1 * len(taken)
    # Every taken register has marks.
    assert set(taken.lesson_id) <= set(sample["marks"].lesson_id)


def test_recorded_at_mostly_within_the_lesson(sample: dict[str, pd.DataFrame]) -> None:
    m = lesson_marks(sample)
    stamped = m[m.recorded_at != ""]
    within = stamped.recorded_at <= stamped.date + " " + stamped.end_time + ":00"
    assert within.mean() > 0.85
    assert (~within).sum() > 0
    assert (m.recorded_at == "").sum() > 0  # a few marks without a timestamp
    teacher_marked = m[m.recorded_by == m.staff_id]
    assert len(teacher_marked) > 0.9 * len(m)


def test_persistent_absentees_and_realistic_codes(sample: dict[str, pd.DataFrame]) -> None:
    students = sample["students"]
    current = set(students.student_id[students.status.str.fullmatch(r"C..")])
    m = lesson_marks(sample)
    m = m[m.student_id.isin(current)]
    kind = "session" if (m.kind == "session").any() else "lesson"
    m = m[m.kind == kind]
    rate = m.mark.isin(PRESENT).groupby(m.student_id).mean()
    below = (rate < 0.9).mean()
    assert 0.03 < below < 0.18, below
    assert 0.9 < rate.mean() < 0.99
    codes = set(sample["marks"].mark)
    assert {"L", "U" if kind == "session" else "L", "I", "M", "C", "N", "O", "G"} <= codes
    assert {"P", "V"} <= codes


def test_today_has_lessons_with_marks(sample: dict[str, pd.DataFrame]) -> None:
    lessons = sample["lessons"]
    assert lessons.date.max() == TODAY
    today = lessons[lessons.date == TODAY]
    assert len(today) > 0
    marks_today = sample["marks"][sample["marks"].lesson_id.isin(today.lesson_id)]
    assert len(marks_today) > 0
    assert (marks_today.mark == "O").any()


def test_history_is_school_days_up_to_date() -> None:
    days = history_days(DATE)
    assert days[0] == dt.date(2025, 9, 1) and days[-1] == DATE
    assert all(d.weekday() < 5 for d in days)
    assert len(history_days(DATE, weeks=4)) == 20
    saturday = dt.date(2025, 11, 22)
    assert history_days(saturday, weeks=1)[-1] == dt.date(2025, 11, 21)
    early = history_days(dt.date(2026, 1, 7))  # two days into the spring term
    assert len(early) >= 20
    with pytest.raises(ValueError):
        generate_sample("village", DATE, Path("unused"))
    assert SIZES == ("school", "college", "trust")


# --------------------------------------------------------------------------- people
def test_siblings_share_contacts_with_identical_details(sample: dict[str, pd.DataFrame]) -> None:
    contacts = sample["contacts"]
    per_contact = contacts.groupby("contact_id").student_id.nunique()
    shared = per_contact[per_contact >= 2].index
    assert len(shared) > 5
    details = contacts.drop(columns=["student_id"]).drop_duplicates()
    assert details.contact_id.is_unique  # a contact's details agree across its rows
    # Priorities run 1..n for each student.
    prio = contacts.priority.astype(int)
    for _, group in prio.groupby(contacts.student_id):
        assert sorted(group) == list(range(1, len(group) + 1))
    per_student = contacts.groupby("student_id").size()
    assert per_student.max() <= 3
    assert set(contacts.student_id) == set(sample["students"].student_id)
    assert (contacts.mobile == "").any() and (contacts.email == "").any()
    assert (contacts.sms_consent == "N").any()
    assert (contacts.parental_responsibility == "Y").mean() > 0.6
    assert {"Mother", "Father", "Grandparent"} <= set(contacts.relationship)


def test_responsibilities_cover_forms_years_and_roles(sample: dict[str, pd.DataFrame]) -> None:
    resp = sample["responsibilities"]
    students = sample["students"]
    tutors = resp[resp.role == "form_tutor"]
    assert set(students.form) <= set(tutors.scope)
    assert set(students.year_group) <= set(resp[resp.role == "head_of_year"].scope)
    hods = set(resp[resp.role == "head_of_department"].scope)
    assert set(sample["classes"].subject) - {""} <= hods
    for role in ("attendance_officer", "safeguarding_lead", "office", "senior_leader"):
        rows = resp[resp.role == role]
        assert len(rows) > 0 and (rows.scope == "").all(), role


def test_medical_behaviour_detentions_homework_grades(sample: dict[str, pd.DataFrame]) -> None:
    n = len(sample["students"])
    med = sample["medical"]
    assert 0.03 * n < med.student_id.nunique() < 0.08 * n
    assert {"Asthma", "Nut allergy", "Epilepsy"} <= set(med.condition)
    assert (med.severity != "").all()
    beh = sample["behaviour"]
    assert {"Disruption", "Homework not done", "Praise", "Excellent work"} <= set(beh.type)
    points = beh.points.astype(int)
    assert (points[beh.polarity == "negative"] < 0).all()
    assert (points[beh.polarity == "positive"] > 0).all()
    det = sample["detentions"]
    assert (det.incident_id != "").any() and (det.incident_id == "").any()
    assert {"scheduled", "attended", "missed", "cancelled"} <= set(det.status)
    hw = sample["homework"]
    assert (hw.due_date > hw.set_date).all()
    grades = sample["grades"]
    assert (grades.grade != "").all() and (grades.comment != "").mean() > 0.5


def test_school_shape(school: dict[str, pd.DataFrame]) -> None:
    students = school["students"]
    assert 1100 < len(students) < 1300
    assert set(students.year_group) == {"7", "8", "9", "10", "11"}
    assert set(students.cohort) == {"school"}
    assert set(students.status) == {"C01", "L01"}
    assert (students.status == "L01").sum() < 0.03 * len(students)
    assert students.form.str.fullmatch(r"(7|8|9|10|11)[A-H]").all()
    assert 60 <= len(school["staff"]) <= 110
    lessons = school["lessons"]
    sessions = lessons[lessons.kind == "session"]
    assert set(sessions.period) == {"AM", "PM"}
    assert set(lessons[lessons.kind == "lesson"].period) == {"1", "2", "3", "4", "5"}
    assert lessons[lessons.period == "1"].start_time.eq("08:50").all()
    # Each pupil has two sessions and five lessons a day.
    today = lesson_marks(school)
    today = today[today.date == TODAY]
    per_pupil = today.groupby(["student_id", "kind"]).size().unstack()
    assert per_pupil["session"].max() == 2 and per_pupil["lesson"].max() == 5
    assert set(school["marks"].mark) >= {"/", "\\"}
    # No teacher has two lessons at once.
    clash = lessons[lessons.duplicated(["date", "start_time", "staff_id"], keep=False)]
    assert clash.empty


def test_college_shape_and_portal(college: dict[str, pd.DataFrame]) -> None:
    students = college["students"]
    assert 9000 < len(students) < 11000
    assert set(students.cohort) == {"16-19", "adult", "apprentice"}
    assert (students.cohort == "16-19").mean() > 0.75
    assert {"C01", "C02", "L01"} <= set(students.status)
    assert set(students.year_group) <= {"12", "13", "L2", "L3"}
    assert (college["lessons"].kind == "lesson").all()
    m = lesson_marks(college)
    young = set(students.student_id[students.cohort == "16-19"])
    day = m[(m.date == TODAY) & m.student_id.isin(young)]
    assert day.groupby("student_id").size().mean() == pytest.approx(3, abs=0.2)
    links = college["portal_links"]
    assert (links.link_status == "suspended").any()
    assert (links.registered == "N").any()
    assert (links.mobile == "").any()
    per_account = links.groupby("account_id").student_id.nunique()
    assert (per_account == 2).any()  # one account, two siblings
    per_student = links.groupby("student_id").account_id.nunique()
    assert per_student.isin([1, 2]).sum() > 0.6 * len(students)
    clash = college["lessons"].duplicated(["date", "start_time", "staff_id"], keep=False)
    assert not clash.any()


def test_college_exercises_the_absence_text_rule(college: dict[str, pd.DataFrame]) -> None:
    """Today's marks give texts to send and each of the rule's reasons not to."""
    students = college["students"]
    m = lesson_marks(college)
    o = m[(m.date == TODAY) & (m.kind == "lesson") & (m.mark == "O")]
    o = o.sort_values(["student_id", "start_time"])
    first = (
        o.groupby("student_id")
        .head(1)
        .merge(students[["student_id", "status", "cohort"]], on="student_id")
    )
    end = first.date + " " + first.end_time + ":00"
    in_time = (first.recorded_at != "") & (first.recorded_at <= end)
    eligible = first[in_time & first.status.str.fullmatch(r"C..") & (first.cohort == "16-19")]
    links = college["portal_links"]
    textable = links[
        (links.link_status == "active") & (links.registered == "Y") & (links.mobile != "")
    ]
    texts = eligible.merge(textable, on="student_id")
    assert texts.student_id.nunique() > 20
    assert (texts.groupby("student_id").size() > 1).any()  # two parents, two texts
    # Reasons not to text are all present today.
    assert (~in_time).any()  # first O recorded after the lesson ended
    assert (first.cohort != "16-19").any()
    assert (o.groupby("student_id").size() > 1).any()  # later absences the same day
    assert (students.status == "C02").any()
    refused = eligible.merge(links, on="student_id")
    assert (
        (refused.link_status == "suspended") | (refused.registered == "N") | (refused.mobile == "")
    ).any()
    assert (m[(m.date == TODAY)].mark == "N").any()  # some teachers use N, not O


def test_a_weekend_date_can_be_made_a_school_day_on_fridays_timetable(tmp_path: Path) -> None:
    saturday = dt.date(2025, 11, 22)
    plain = generate_sample("school", saturday, tmp_path / "plain", weeks=1)
    made = generate_sample("school", saturday, tmp_path / "made", weeks=1, weekend_today=True)
    plain_lessons = pd.read_csv(plain["lessons"], dtype=str)
    lessons = pd.read_csv(made["lessons"], dtype=str)
    assert "2025-11-22" not in set(plain_lessons["date"])
    today = lessons[lessons["date"] == "2025-11-22"]
    friday = lessons[lessons["date"] == "2025-11-21"]
    assert len(today) == len(friday) > 0
    assert sorted(today["class_id"] + today["period"]) == sorted(
        friday["class_id"] + friday["period"]
    )
    marks = pd.read_csv(made["marks"], dtype=str)
    assert marks["lesson_id"].isin(today["lesson_id"]).any()
