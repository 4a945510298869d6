"""The message bank in a real SQLite ops store: save, update, list, archive, seed, audit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from schoolcomms.ops import db
from schoolcomms.ops.db import open_ops
from schoolcomms.ops.history import recent_audit
from schoolcomms.settings import Settings
from senders.bank import (
    DEFAULT_TEMPLATES,
    archive_template,
    get_template,
    list_templates,
    save_template,
    seed_default_templates,
)
from senders.templates import TemplateProblem, render_message, sample_context, validate


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield open_ops(Settings(tmp_path / "data", env={}))
    db.close_all()


def save(engine: Engine, **changes: object) -> int:
    fields: dict = {
        "name": "Trip",
        "channel": "sms",
        "subject": None,
        "body": "{{ student.forename }} has a trip on {{ today|ukdate('day') }}.",
        "category": "trips",
        "actor": "alice@school.example.com",
    }
    return save_template(engine, **(fields | changes))


def test_save_get_list_update_round_trip(engine: Engine) -> None:
    template_id = save(engine)
    stored = get_template(engine, "Trip")
    assert stored is not None
    assert (stored.id, stored.channel, stored.subject, stored.category) == (
        template_id, "sms", None, "trips",
    )  # fmt: skip
    assert stored.body.startswith("{{ student.forename }}")
    assert stored.created_by == "alice@school.example.com" and not stored.archived
    assert stored.created_at.tzinfo is not None
    assert stored.text.channel == "sms" and stored.text.body == stored.body
    assert get_template(engine, "No such thing") is None

    assert save(engine, body="Trip for {{ student.name }}", actor="bob") == template_id
    updated = get_template(engine, "Trip")
    assert updated is not None and updated.body == "Trip for {{ student.name }}"
    assert updated.created_by == "alice@school.example.com"  # the author is kept

    save(engine, name="Report", channel="email", subject="Report for {{ student.name }}",
         body="Dear {{ contact.name }},\n\nAttached.", category="reports")  # fmt: skip
    frame = list_templates(engine)
    assert list(frame["name"]) == ["Report", "Trip"]  # by channel, category, name
    assert list(frame.columns) == [
        "id", "name", "channel", "category", "subject", "body", "archived", "created_by",
        "created_at", "updated_at",
    ]  # fmt: skip
    assert list(list_templates(engine, channel="sms")["name"]) == ["Trip"]
    assert list_templates(engine, channel="letter").empty


def test_saves_are_audited(engine: Engine) -> None:
    template_id = save(engine)
    save(engine, body="Changed {{ student.name }}", actor="bob")
    rows = recent_audit(engine, action="template.save")
    assert list(rows["actor"]) == ["bob", "alice@school.example.com"]
    assert set(rows["target"]) == {"template:Trip"}
    latest, first = rows["details"].iloc[0], rows["details"].iloc[1]
    assert first["created"] is True and first["id"] == template_id
    assert latest["created"] is False and latest["changed"] == ["body"]
    assert latest["body"] == "Changed {{ student.name }}"


def test_unknown_field_is_refused_at_save_with_the_field_named(engine: Engine) -> None:
    with pytest.raises(TemplateProblem) as caught:
        save(engine, body="Hello\n{{ student.nickname }} and {{ pupil.name }}")
    assert len(caught.value.problems) == 2
    assert "Line 2" in caught.value.problems[0] and "student.nickname" in caught.value.problems[0]
    assert "'pupil'" in caught.value.problems[1]
    assert get_template(engine, "Trip") is None
    assert recent_audit(engine, action="template.save").empty


def test_every_problem_is_listed_at_once(engine: Engine) -> None:
    with pytest.raises(TemplateProblem) as caught:
        save(engine, name=" ", subject="Hi {{ student.nick }}", body="{{ lesson.date }",
             category="")  # fmt: skip
    text = str(caught.value)
    assert "needs a name" in text and "needs a category" in text
    assert "cannot have a subject" in text
    assert "Subject: Line 1: unknown merge field 'student.nick'" in text
    assert "syntax error" in text
    with pytest.raises(TemplateProblem, match="e-mail template needs a subject"):
        save(engine, channel="email", subject=None)
    with pytest.raises(TemplateProblem, match="needs a body"):
        save(engine, body="  ")
    with pytest.raises(TemplateProblem, match="Unknown channel"):
        save(engine, channel="pigeon")
    assert list_templates(engine, include_archived=True).empty


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
    ],
)
def test_sandbox_escapes_are_refused_at_save(engine: Engine, text: str) -> None:
    with pytest.raises(TemplateProblem, match="unsafe"):
        save(engine, body=f"Hi {text}")
    with pytest.raises(TemplateProblem, match="unsafe"):
        save(engine, channel="email", subject=text, body="Hi")
    assert get_template(engine, "Trip") is None


def test_archive_hides_and_saving_again_restores(engine: Engine) -> None:
    save(engine)
    archive_template(engine, "Trip", actor="carol")
    assert list_templates(engine).empty
    archived = list_templates(engine, include_archived=True)
    assert list(archived["name"]) == ["Trip"] and bool(archived["archived"].iloc[0])
    stored = get_template(engine, "Trip")
    assert stored is not None and stored.archived
    archive_template(engine, "Trip", actor="carol")  # already archived: nothing to do
    rows = recent_audit(engine, action="template.archive")
    assert list(rows["actor"]) == ["carol"] and list(rows["target"]) == ["template:Trip"]
    with pytest.raises(LookupError, match="no template called 'Nope'"):
        archive_template(engine, "Nope", actor="carol")
    save(engine, actor="dave")
    assert list(list_templates(engine)["name"]) == ["Trip"]
    assert recent_audit(engine, action="template.save")["details"].iloc[0]["changed"] == [
        "archived"
    ]


def test_seed_is_idempotent_and_leaves_edits_alone(engine: Engine) -> None:
    added = seed_default_templates(engine)
    names = [t["name"] for t in DEFAULT_TEMPLATES]
    assert added == names
    assert {
        "Absence - first day", "Late - reminder", "Detention - notice",
        "Homework - outstanding", "Attendance concern", "Positive news", "Attendance letter",
    } == set(names)  # fmt: skip
    frame = list_templates(engine)
    assert len(frame) == len(names)
    assert dict(zip(frame["name"], frame["channel"], strict=True))["Attendance letter"] == "letter"
    assert len(recent_audit(engine, action="template.save")) == len(names)

    save(engine, name="Late - reminder", body="Edited {{ student.name }}")
    archive_template(engine, "Positive news", actor="carol")
    assert seed_default_templates(engine) == []
    edited = get_template(engine, "Late - reminder")
    assert edited is not None and edited.body == "Edited {{ student.name }}"
    positive = get_template(engine, "Positive news")
    assert positive is not None and positive.archived
    assert len(list_templates(engine, include_archived=True)) == len(names)


def test_every_seed_template_is_valid_and_renders(engine: Engine) -> None:
    seed_default_templates(engine)
    frame = list_templates(engine)
    assert frame["subject"].isna().tolist() == (frame["channel"] == "sms").tolist()
    for name in frame["name"]:
        stored = get_template(engine, name)
        assert stored is not None
        assert validate(stored.body, channel=stored.channel) == [], name
        assert validate(stored.subject or "", channel=stored.channel) == [], name
        assert (stored.channel == "sms") == (stored.subject is None)
        rendered = render_message(stored.text, sample_context())
        assert rendered.text and "{" not in rendered.text and "}" not in rendered.text
        assert "Amelia" in rendered.text or "Millie" in rendered.text, name
        assert (rendered.html is not None) == (stored.channel == "email")
    absence = get_template(engine, "Absence - first day")
    assert absence is not None
    assert "student.forename" in absence.body and "school.name" in absence.body
    text = render_message(absence.text, sample_context()).text
    assert text.startswith("Amelia is not in school today") and "Sample School" in text
    detention = get_template(engine, "Detention - notice")
    assert detention is not None
    text = render_message(detention.text, sample_context()).text
    assert "from 15:10 to 15:40 in Room H4. Reason: Late to lessons." in text


def test_a_blank_actor_is_refused_before_anything_is_written(engine: Engine) -> None:
    with pytest.raises(ValueError, match="actor"):
        save(engine, actor=" ")
    assert get_template(engine, "Trip") is None
    save(engine)
    with pytest.raises(ValueError, match="actor"):
        archive_template(engine, "Trip", actor="")
    stored = get_template(engine, "Trip")
    assert stored is not None and not stored.archived
