"""Templates: merge fields, validation at save time, sandboxed rendering, UK dates."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from schoolcomms.settings import Settings
from senders.templates import (
    MERGE_FIELDS,
    MERGE_GROUPS,
    TemplateProblem,
    TemplateText,
    build_context,
    join_names,
    preview,
    render,
    render_message,
    sample_context,
    ukdate,
    validate,
)

AMY = {"student_id": "S1", "forename": "Amelia", "preferred_forename": "Amy", "surname": "Able"}
AMY |= {"form": "10A", "year_group": "10"}
BEN = {"student_id": "S2", "forename": "Ben", "surname": "Able", "form": "8B", "year_group": "8"}
CAT = {"student_id": "S3", "forename": "Catherine", "preferred_forename": "Cat", "surname": "Able"}
MUM = {"contact_id": "C1", "title": "Mrs", "forename": "Alice", "surname": "Able"}
MUM |= {"relationship": "Mother"}
FRIDAY = date(2026, 11, 20)

SANDBOX_ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
]


def full_context() -> dict:
    return build_context(
        Settings(Path("/nonexistent"), env={"SCHOOLCOMMS_SCHOOL_NAME": "Hilltop Academy"}),
        student=AMY,
        contact=MUM,
        lesson={"date": "2026-11-20", "start_time": "09:00:00", "end_time": "10:00"}
        | {"subject": "Maths", "period": "1"},
        incident={"occurred_at": datetime(2026, 11, 19, 13, 5), "type": "Praise"}
        | {"location": "Lab 2", "outcome": "Certificate", "points": 3, "comment": "Great"},
        detention={"date": "23/11/2026", "start_time": time(15, 10), "end_time": "15:40"}
        | {"location": "H4", "reason": "Late"},
        homework={"title": "Fractions", "subject": "Maths", "due_date": "2026-11-18"}
        | {"set_date": "2026-11-11"},
        today=FRIDAY,
    )


def test_the_registry_has_every_group_and_field_with_help() -> None:
    assert set(MERGE_FIELDS) == set(MERGE_GROUPS) == {
        "student", "contact", "students", "student_names", "lesson", "incident",
        "detention", "homework", "school", "today",
    }  # fmt: skip
    student = ["id", "forename", "preferred_forename", "name", "surname", "form", "year_group"]
    assert list(MERGE_FIELDS["student"]) == student
    assert list(MERGE_FIELDS["students"]) == student
    assert list(MERGE_FIELDS["contact"]) == ["title", "forename", "surname", "name", "relationship"]
    assert list(MERGE_FIELDS["lesson"]) == ["date", "start", "end", "subject", "period"]
    assert list(MERGE_FIELDS["incident"]) == [
        "date", "type", "location", "outcome", "points", "comment",
    ]  # fmt: skip
    assert list(MERGE_FIELDS["detention"]) == ["date", "start", "end", "location", "reason"]
    assert list(MERGE_FIELDS["homework"]) == ["title", "subject", "due_date", "set_date"]
    assert list(MERGE_FIELDS["school"]) == ["name", "address"]
    assert all(text.strip() for fields in MERGE_FIELDS.values() for text in fields.values())


def test_every_field_group_renders_from_warehouse_rows() -> None:
    context = full_context()
    cases = {
        "{{ student.id }}|{{ student.forename }}|{{ student.preferred_forename }}|"
        "{{ student.name }}|{{ student.surname }}|{{ student.form }}|{{ student.year_group }}": (
            "S1|Amelia|Amy|Amy Able|Able|10A|10"
        ),
        "{{ contact.title }}|{{ contact.forename }}|{{ contact.surname }}|{{ contact.name }}|"
        "{{ contact.relationship }}": "Mrs|Alice|Able|Mrs Able|Mother",
        "{{ lesson.date }}|{{ lesson.start }}|{{ lesson.end }}|{{ lesson.subject }}|"
        "{{ lesson.period }}": "Friday 20 November 2026|09:00|10:00|Maths|1",
        "{{ incident.date }}|{{ incident.type }}|{{ incident.location }}|{{ incident.outcome }}|"
        "{{ incident.points }}|{{ incident.comment }}": (
            "Thursday 19 November 2026|Praise|Lab 2|Certificate|3|Great"
        ),
        "{{ detention.date }}|{{ detention.start }}|{{ detention.end }}|{{ detention.location }}|"
        "{{ detention.reason }}": "Monday 23 November 2026|15:10|15:40|H4|Late",
        "{{ homework.title }}|{{ homework.subject }}|{{ homework.due_date }}|"
        "{{ homework.set_date }}": "Fractions|Maths|Wednesday 18 November 2026|"
        "Wednesday 11 November 2026",
        "{{ school.name }}|{{ school.address }}": "Hilltop Academy|",
        "{{ today }}": "Friday 20 November 2026",
        "{% for s in students %}{{ s.name }} ({{ s.form }}){% endfor %}|{{ student_names }}": (
            "Amy Able (10A)|Amy"
        ),
    }
    for text, expected in cases.items():
        assert validate(text, channel="sms") == [], text
        assert render(text, context) == expected


def test_sample_context_fills_every_merge_field() -> None:
    context = sample_context(today=FRIDAY)
    for group, fields in MERGE_FIELDS.items():
        if group == "students":
            text = "{% for s in students %}" + "".join(f"{{{{ s.{f} }}}}" for f in fields)
            text += "{% endfor %}"
        elif not fields:
            text = f"{{{{ {group} }}}}"
        else:
            text = "".join(f"[{{{{ {group}.{f} }}}}]" for f in fields)
        assert validate(text, channel="email") == [], text
        rendered = render(text, context)
        assert rendered and "[]" not in rendered, (group, rendered)
    assert render("{{ today }}", context) == "Friday 20 November 2026"


def test_names_of_siblings_and_contacts() -> None:
    assert join_names([]) == ""
    assert join_names(["Amy"]) == "Amy"
    assert join_names(["Amy", "Ben"]) == "Amy and Ben"
    assert join_names(["Amy", "", "Ben", "Cat"]) == "Amy, Ben and Cat"
    context = build_context(students=[AMY, BEN, CAT], contact=MUM)
    assert context["student_names"] == "Amy, Ben and Cat"
    assert context["student"]["id"] == "S1"  # the first child, when none is named
    text = "Dear {{ contact.name }}, {% for s in students %}{{ s.forename }}{{ ',' if not loop.last }}{% endfor %}"
    assert validate(text, channel="sms") == []
    assert render(text, context) == "Dear Mrs Able, Amelia,Ben,Catherine"
    no_title = build_context(student=BEN, contact={"forename": "Bill", "surname": "Baker"})
    assert render("{{ contact.name }}/{{ student.name }}", no_title) == "Bill Baker/Ben Able"
    assert render("{{ student_names }}", build_context(students=[AMY, BEN])) == "Amy and Ben"


def test_strict_undefined_names_what_is_missing() -> None:
    context = build_context(student=AMY)
    with pytest.raises(TemplateProblem, match="'detention'"):
        render("Detention on {{ detention.date }}", context)
    with pytest.raises(TemplateProblem, match="'form'"):
        render("{{ student.form }}", {"student": {"name": "Amy"}})
    # A group that is absent can be tested for; blank values render as nothing.
    text = "{% if detention is defined %}D{% else %}none{% endif %}:{{ student.form }}"
    assert render(text, {"student": {"form": None}}) == "none:"


def test_unknown_fields_and_groups_are_refused_with_the_field_named() -> None:
    problems = validate("Hello\n{{ student.nickname }}", channel="sms")
    assert len(problems) == 1
    assert "Line 2" in problems[0] and "student.nickname" in problems[0]
    assert "forename" in problems[0]  # the fields that do exist are listed
    assert "'pupil'" in validate("{{ pupil.name }}", channel="sms")[0]
    loop = "{% for s in students %}{{ s.forename }} {{ s.shoe_size }}{% endfor %}"
    assert ["s.shoe_size" in p for p in validate(loop, channel="sms")] == [True]
    assert "loop over it" in validate("{{ students.forename }}", channel="sms")[0]
    assert "no field" in validate("{{ today.date }}", channel="sms")[0]
    assert "no filter called 'shout'" in validate("{{ student.name|shout }}", channel="sms")[0]
    assert validate("{{ student.name }}", channel="fax")[0].startswith("Unknown channel")
    several = validate("{{ a.b }} {{ student.x }} {{ lesson.room }}", channel="email")
    assert len(several) == 3


def test_allowed_constructs_pass() -> None:
    ok = [
        "{% set pupil = student %}{{ pupil.forename }}",
        "{% if student.form %}Form {{ student.form|upper }}{% endif %}",
        "{{ students|length }} {{ students[0].forename }} {{ lesson.start|time }}",
        "{{ today|ukdate('short') }} {{ student['forename'] }} {{ contact.name|default('Parent') }}",
        "",
    ]
    for text in ok:
        assert validate(text, channel="email") == [], text
    assert "s.nope" in validate("{% for s in students %}{{ s.nope }}{% endfor %}", channel="sms")[0]
    assert "student.nope" in validate("{% set p = student %}{{ p.nope }}", channel="sms")[0]


def test_syntax_errors_give_the_line() -> None:
    problems = validate("Dear {{ contact.name }},\n\nSee you {{ lesson.date }\n", channel="email")
    assert len(problems) == 1
    assert problems[0].startswith("Line 3:") and "syntax error" in problems[0]
    problems = validate("{% for s in students %}\n{{ s.name }}\n", channel="sms")
    assert problems and "syntax error" in problems[0]
    with pytest.raises(TemplateProblem, match="Line 2"):
        render("ok\n{% if %}", {})


@pytest.mark.parametrize("text", SANDBOX_ESCAPES)
def test_sandbox_escapes_are_refused_and_blocked_at_render(text: str) -> None:
    problems = validate(text, channel="sms")
    assert any("blocked" in p and "unsafe" in p for p in problems), problems
    with pytest.raises(TemplateProblem, match="blocked for safety") as caught:
        render(text, sample_context())
    assert isinstance(caught.value.__cause__, SecurityError)
    with pytest.raises(TemplateProblem):
        preview(text)


def test_other_blocked_constructs() -> None:
    blocked = {
        "{% include 'x.txt' %}": "include",
        "{% macro m() %}x{% endmacro %}": "macro",
        "{{ student.name|safe }}": "|safe",
        "{% autoescape false %}{{ student.name }}{% endautoescape %}": "autoescape",
        "{{ student.name.upper() }}": "calling",
        "{{ students|map(attribute='__class__')|join }}": "__class__",
        "{{ student['__dict__'] }}": "__dict__",
    }
    for text, word in blocked.items():
        problems = validate(text, channel="email")
        assert any(word in p for p in problems), (text, problems)


def test_html_is_escaped_while_the_text_part_keeps_the_name() -> None:
    context = build_context(student=AMY | {"preferred_forename": "<script>alert(1)</script>"})
    message = TemplateText(
        "email",
        "News of {{ student.preferred_forename }}",
        "Hi\n\n{{ student.name }} & co\nline two\n\n\nhttps://example.com/a?b=1&c=2.",
    )
    rendered = render_message(message, context)
    assert rendered.subject == "News of <script>alert(1)</script>"
    assert rendered.text.startswith("Hi\n\n<script>alert(1)</script> Able & co")
    assert rendered.html is not None and "<script>" not in rendered.html
    assert rendered.html.split("\n")[0] == "<p>Hi</p>"
    assert (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; Able &amp; co<br>\nline two</p>" in rendered.html
    )
    assert (
        '<a href="https://example.com/a?b=1&amp;c=2">https://example.com/a?b=1&amp;c=2</a>.'
        in rendered.html
    )
    assert (
        render("{{ student.name }}", context, html=True)
        == "&lt;script&gt;alert(1)&lt;/script&gt; Able"
    )
    assert render("{{ student.name }}", context) == "<script>alert(1)</script> Able"


def test_render_message_by_channel() -> None:
    context = full_context()
    sms = render_message(TemplateText("sms", None, "  {{ student.forename }} absent \n"), context)
    assert (sms.subject, sms.text, sms.html) == (None, "Amelia absent", None)
    with pytest.raises(TemplateProblem, match="subject"):
        render_message(TemplateText("sms", "Hi", "x"), context)
    with pytest.raises(TemplateProblem, match="subject"):
        render_message(TemplateText("email", " ", "x"), context)
    context["student"]["name"] = "Amy\r\nBcc: x@example.com"
    email = render_message(TemplateText("email", "About {{ student.name }}", "x"), context)
    assert email.subject == "About Amy Bcc: x@example.com"  # one line, always
    letter = render_message(TemplateText("letter", None, "Dear {{ contact.name }}"), context)
    assert (letter.subject, letter.text, letter.html) == (None, "Dear Mrs Able", None)


def test_ukdate_and_time_filters() -> None:
    assert ukdate(FRIDAY) == "Friday 20 November 2026"
    assert ukdate("2026-11-20") == ukdate("20/11/2026") == ukdate(datetime(2026, 11, 20, 9))
    assert ukdate(FRIDAY, "day") == "Friday 20 November"
    assert ukdate(FRIDAY, "medium") == "20 November 2026"
    assert ukdate(date(2026, 3, 4), "short") == "04/03/2026"
    assert ukdate(None) == ukdate("") == ""
    context = {"today": FRIDAY, "lesson": {"start": "9:05:00"}}
    assert render("{{ today|ukdate('day') }} at {{ lesson.start|time }}", context) == (
        "Friday 20 November at 09:05"
    )
    assert render("{{ today }}", {"today": date(2027, 1, 1)}) == "Friday 1 January 2027"
    assert "bogus" in validate("{{ today|ukdate('bogus') }}", channel="sms")[0]
    with pytest.raises(TemplateProblem, match="ukdate style"):
        render("{{ today|ukdate(style) }}", {"today": FRIDAY, "style": "bogus"})
    with pytest.raises(TemplateProblem, match="not a time"):
        render("{{ x|time }}", {"x": "soon"})


def test_preview_uses_sample_values_and_reports_problems_plainly() -> None:
    text = "Dear {{ contact.name }}, {{ student_names }}: {{ detention.start }}"
    assert preview(text) == "Dear Mrs Jones, Millie and Ollie: 15:10"
    assert preview(text, {"contact": {"name": "Dr Who"}}).startswith("Dear Dr Who, Millie")
    with pytest.raises(TemplateProblem) as caught:
        preview("{{ student.nickname }}\n{{ pupil }}")
    assert len(caught.value.problems) == 2
    assert "student.nickname" in str(caught.value) and "Traceback" not in str(caught.value)
    with pytest.raises(TemplateProblem, match="Line 1: the template has a syntax error"):
        preview("{{ oops")
    assert "&lt;b&gt;" in preview("{{ student.name }}", {"student": {"name": "<b>"}}, html=True)
