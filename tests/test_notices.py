"""Staff notices: stored once per key, e-mailed with the notice, read and listed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.models import Message, Notice
from schoolcomms.settings import Settings
from senders.notices import StaffNotice, deliver, mark_read, notices_for

# Every test runs on SQLite and on PostgreSQL (tests/postgres.py).
pytestmark = pytest.mark.ops_store


def _notice(key: str = "k1", **kw: object) -> StaffNotice:
    fields: dict = {"title": "Register missing", "body": "10A maths", "source": "test"}
    fields.update(kw)
    if "audience" not in fields:
        fields.setdefault("staff_id", "T1")
    return StaffNotice(key, **fields)


def _count(engine, model) -> int:
    with session_scope(engine, immediate=False) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_key_is_delivered_once_with_one_email(settings: Settings) -> None:
    engine = open_ops(settings)
    first = deliver(engine, settings, [_notice(email="t@school.example.com")])
    again = deliver(engine, settings, [_notice(email="t@school.example.com")])
    assert [n.key for n in first] == ["k1"] and again == []
    assert _count(engine, Notice) == 1
    with session_scope(engine, immediate=False) as s:
        message = s.scalars(select(Message)).one()
        notice = s.scalars(select(Notice)).one()
    assert message.channel == "email" and message.to_address == "t@school.example.com"
    assert message.subject == "Register missing" and notice.message_id == message.id


def test_urgent_subject_and_html_is_escaped(settings: Settings) -> None:
    engine = open_ops(settings)
    deliver(
        engine,
        settings,
        [_notice(urgent=True, body="<script>x</script>", email="t@school.example.com")],
    )
    with session_scope(engine, immediate=False) as s:
        message = s.scalars(select(Message)).one()
    assert message.subject == "[Urgent] Register missing"
    assert "<script>" not in (message.html_body or "") and "&lt;script&gt;" in (
        message.html_body or ""
    )


@pytest.mark.usefixtures("ops_url")  # tmp_path / "data" on either store
def test_no_email_when_alert_emails_is_off(tmp_path) -> None:
    settings = Settings(tmp_path / "data", env={"SCHOOLCOMMS_ALERT_EMAILS": "false"})
    engine = open_ops(settings)
    assert deliver(engine, settings, [_notice(email="t@school.example.com")])
    assert _count(engine, Notice) == 1 and _count(engine, Message) == 0


@pytest.mark.usefixtures("ops_url")  # tmp_path / "data" on either store
def test_data_manager_notices_go_to_the_configured_addresses(tmp_path) -> None:
    settings = Settings(
        tmp_path / "data",
        env={"SCHOOLCOMMS_DATA_MANAGER_EMAILS": "dm1@school.example.com, dm2@school.example.com"},
    )
    engine = open_ops(settings)
    deliver(engine, settings, [_notice(audience="data_manager")])
    with session_scope(engine, immediate=False) as s:
        assert sorted(s.scalars(select(Message.to_address))) == [
            "dm1@school.example.com",
            "dm2@school.example.com",
        ]
    assert [n["to"] for n in notices_for(engine, audiences=["data_manager"])] == ["data_manager"]
    assert notices_for(engine, staff_id="T1") == []


def test_listing_and_marking_read(settings: Settings) -> None:
    engine = open_ops(settings)
    deliver(engine, settings, [_notice("a"), _notice("b"), _notice("c", staff_id="T2")])
    mine = notices_for(engine, staff_id="T1")
    assert sorted(n["key"] for n in mine) == ["a", "b"]
    assert mark_read(engine, [mine[0]["id"]], "tester") == 1
    assert mark_read(engine, [mine[0]["id"]], "tester") == 0
    assert len(notices_for(engine, staff_id="T1", unread_only=True)) == 1
    assert len(notices_for(engine, everyone=True)) == 3


def test_a_notice_needs_exactly_one_addressee() -> None:
    import pytest

    with pytest.raises(ValueError, match="not both"):
        StaffNotice("k", "t", "b", "test")
    with pytest.raises(ValueError, match="Unknown audience"):
        StaffNotice("k", "t", "b", "test", audience="parents")
