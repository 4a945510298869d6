"""SmtpEmail against a real aiosmtpd server on 127.0.0.1: what arrives, and what fails how.

Every check looks at what the *server* received (envelopes, parsed messages,
connections counted in the server's protocol factory), not at what the client
thinks it sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import socket
import ssl
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import senders.channels.smtp as smtp_channel
from schoolcomms.settings import Settings, SettingsError
from senders.base import (
    AccountProblem,
    Messenger,
    OutgoingMessage,
    ProviderError,
    Rejected,
    Transient,
)
from senders.channels.smtp import MESSAGE_HEADER, SmtpEmail, build_message

USER = "office@school.example.org"
PASSWORD = "s3cret-Pa55word!"  # must never appear in logs or exception text
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CSV = "student_id,name\nS1,Zoë Able\n".encode()


class Recorder:
    """An aiosmtpd handler that keeps what arrived and can misbehave on request."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.ehlos = 0
        self.quits = 0
        self.refuse: dict[str, str] = {}  # recipient -> RCPT reply
        self.drop_on: int | None = None  # drop the connection on this DATA (1-based)
        self.hang_on: int | None = None  # or stall that long before dropping it
        self.datas = 0
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlos += 1
        session.host_name = hostname
        return responses

    async def handle_QUIT(self, server, session, envelope):
        self.quits += 1
        return "221 Bye"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session, envelope):
        self.datas += 1
        if self.datas in (self.drop_on, self.hang_on):
            if self.datas == self.hang_on:
                await asyncio.sleep(5.0)  # far past the client timeout
            server.transport.abort()  # crash without replying; nothing is kept
            return "250 never seen"
        with self.lock:
            self.envelopes.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "content": envelope.original_content,
                    "peer": session.peer,
                    "tls": session.ssl is not None,
                    "authenticated": session.authenticated,
                    "login": getattr(session.auth_data, "login", None),
                }
            )
        return f"250 OK queued as Q{self.datas}"

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(e["content"], policy=email.policy.default)
            for e in self.envelopes
        ]

    def ids(self) -> list[str]:
        return [m[MESSAGE_HEADER].split(";")[0] for m in self.messages()]


class CountingController(Controller):
    """Counts connections by wrapping the server's protocol factory."""

    connections = 0

    def factory(self) -> SMTP:
        self.connections += 1
        return super().factory()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[CountingController, Recorder]]]:
    """Start an SMTP server on 127.0.0.1 with the given aiosmtpd options; stopped after."""
    started: list[CountingController] = []

    def start(**options: Any) -> tuple[CountingController, Recorder]:
        handler = Recorder()
        controller = CountingController(handler, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        controller.connections = 0  # start() makes one probe connection of its own
        started.append(controller)
        return controller, handler

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def trust(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A verifying client context that trusts the test certificate (and nothing else)."""
    return ssl.create_default_context(cafile=str(certificate[0]))


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd itself answers 535 when the password is wrong.
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def make_settings(tmp_path: Path, port: int, **overrides: Any) -> Settings:
    values = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "email_from": USER,
        "email_from_name": "St Mary’s C of E School",
        "email_reply_to": "attendance@school.example.org",
        **overrides,
    }
    return Settings(tmp_path / "data", env={}, overrides=values)


def outgoing(i: int = 1, **fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "id": i,
        "idempotency_key": f"report:S{i}:2026-11-20",
        "channel": "email",
        "to": f"parent{i}@home.example.com",
        "subject": "Zoë’s report",
        "body": f"Dear parent,\nZoë’s report is attached. ({i})",
        "html": f"<p>Dear parent,</p><p>Zoë’s <b>report</b> is attached. ({i})</p>",
        **fields,
    }
    return OutgoingMessage(**values)


def text_of(msg: email.message.EmailMessage, subtype: str) -> str:
    """The decoded text/<subtype> body, with the wire's CRLF line ends made plain."""
    return msg.get_body((subtype,)).get_content().replace("\r\n", "\n").rstrip("\n")


def sent_through(settings: Settings, messages: list[OutgoingMessage], **kwargs: Any) -> list:
    """Send each message in one open/close run; return each result or exception."""
    outcomes: list[Any] = []
    messenger = SmtpEmail(settings, **kwargs)
    with contextlib.suppress(ProviderError):  # each send tries to connect again
        messenger.open()
    try:
        for message in messages:
            try:
                outcomes.append(messenger.send(message))
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                outcomes.append(exc)
    finally:
        messenger.close()
    return outcomes


def test_message_arrives_with_bodies_headers_and_attachments(tmp_path: Path, serve) -> None:
    controller, handler = serve()
    pdf, csv = tmp_path / "report.pdf", tmp_path / "marks 10A.csv"
    pdf.write_bytes(PDF)
    csv.write_bytes(CSV)
    message = outgoing(7, to="Alice Able <alice@home.example.com>", attachments=(pdf, csv))
    [result] = sent_through(make_settings(tmp_path, controller.port), [message])

    [envelope] = handler.envelopes
    assert envelope["mail_from"] == USER
    assert envelope["rcpt_tos"] == ["alice@home.example.com"]
    [msg] = handler.messages()
    assert msg["Subject"] == "Zoë’s report"
    assert msg["From"].addresses[0].display_name == "St Mary’s C of E School"
    assert msg["From"].addresses[0].addr_spec == USER
    assert msg["To"].addresses[0].display_name == "Alice Able"
    assert msg["Reply-To"] == "attendance@school.example.org"
    assert msg[MESSAGE_HEADER] == "7; key=report:S7:2026-11-20"
    assert (
        msg["Message-ID"]
        == result.provider_ref
        == build_message(message, make_settings(tmp_path, 1))["Message-ID"]
    )
    assert result.provider == "smtp" and result.provider_status == "250 OK queued as Q1"
    assert text_of(msg, "plain") == message.body
    assert text_of(msg, "html") == message.html
    attachments = {a.get_filename(): a for a in msg.iter_attachments()}
    assert set(attachments) == {"report.pdf", "marks 10A.csv"}
    assert attachments["report.pdf"].get_content_type() == "application/pdf"
    assert attachments["report.pdf"].get_content() == PDF
    assert attachments["marks 10A.csv"].get_payload(decode=True) == CSV
    assert attachments["marks 10A.csv"].get_content_disposition() == "attachment"


def test_built_message_details(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, 25, email_from_name="", school_name='The "Best" Academy')
    msg = email.message_from_bytes(
        build_message(outgoing(1, html=None), settings).as_bytes(), policy=email.policy.default
    )
    # yagmail alone would send 'The \"Best\" Academy' (it escapes before formataddr).
    assert msg["From"].addresses[0].display_name == 'The "Best" Academy'
    assert text_of(msg, "html") == "<div>Dear parent,<br>Zoë’s report is attached. (1)</div>"
    same = build_message(outgoing(1, body="changed"), settings)
    assert msg["Message-ID"] == same["Message-ID"]  # a resend is recognisable
    assert msg["Message-ID"] != build_message(outgoing(2), settings)["Message-ID"]
    assert "Reply-To" not in build_message(
        outgoing(1), make_settings(tmp_path, 25, email_reply_to="")
    )
    with pytest.raises(Rejected, match="e-mail address"):
        build_message(outgoing(1, to="parent@@home"), settings)
    with pytest.raises(Rejected, match="does not exist"):
        build_message(outgoing(1, attachments=(tmp_path / "missing.pdf",)), settings)


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="smtp_security"):
        SmtpEmail(make_settings(tmp_path, 25, smtp_security="tls"))
    with pytest.raises(SettingsError, match="smtp_host is blank"):
        SmtpEmail(make_settings(tmp_path, 25, smtp_host=""))
    assert isinstance(SmtpEmail(make_settings(tmp_path, 25)), Messenger)


def test_a_batch_of_50_uses_one_connection(tmp_path: Path, serve) -> None:
    controller, handler = serve()
    outcomes = sent_through(
        make_settings(tmp_path, controller.port), [outgoing(i) for i in range(1, 51)]
    )
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert sorted(handler.ids(), key=int) == [str(i) for i in range(1, 51)]
    assert controller.connections == 1
    assert handler.ehlos == 1
    assert len({e["peer"] for e in handler.envelopes}) == 1
    assert handler.quits == 1  # close() said goodbye


@pytest.mark.parametrize("security", ["starttls", "ssl"])
@pytest.mark.parametrize("auth", [False, True])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_tls_with_and_without_auth(tmp_path: Path, serve, server_tls, trust, security, auth):
    if security == "starttls":
        options: dict[str, Any] = {"tls_context": server_tls, "require_starttls": True}
    else:  # aiosmtpd does not count implicit TLS as TLS for auth_require_tls
        options = {"ssl_context": server_tls, "auth_require_tls": False}
    if auth:
        options.update(authenticator=authenticator, auth_required=True)
    controller, handler = serve(**options)
    login = {"smtp_user": USER, "smtp_password": PASSWORD} if auth else {}
    settings = make_settings(tmp_path, controller.port, smtp_security=security, **login)

    outcomes = sent_through(settings, [outgoing(1), outgoing(2)], ssl_context=trust)
    assert [type(o).__name__ for o in outcomes] == ["SendResult", "SendResult"]
    assert handler.ids() == ["1", "2"]
    assert controller.connections == 1
    if security == "starttls":
        assert all(e["tls"] for e in handler.envelopes)
    assert all(bool(e["authenticated"]) == auth for e in handler.envelopes)
    if auth:
        assert handler.envelopes[0]["login"] == USER.encode()
    sentence = smtp_channel.test_connection(settings, ssl_context=trust)
    assert f"127.0.0.1:{controller.port}" in sentence and "certificate verified" in sentence


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_self_signed_certificate_is_refused_by_default(tmp_path, serve, server_tls, security):
    if security == "starttls":
        controller, handler = serve(tls_context=server_tls, require_starttls=True)
    else:
        controller, handler = serve(ssl_context=server_tls)
    settings = make_settings(tmp_path, controller.port, smtp_security=security)
    with pytest.raises(AccountProblem, match="certificate .* is not trusted"):
        SmtpEmail(settings).open()
    with pytest.raises(AccountProblem, match="not trusted"):
        SmtpEmail(settings).send(outgoing(1))
    assert handler.envelopes == []


def test_starttls_required_but_not_configured(tmp_path, serve, server_tls) -> None:
    controller, handler = serve(tls_context=server_tls, require_starttls=True)
    [outcome] = sent_through(make_settings(tmp_path, controller.port), [outgoing(1)])
    assert isinstance(outcome, AccountProblem) and "530" in str(outcome)
    assert handler.envelopes == []


def test_refused_recipients(tmp_path: Path, serve) -> None:
    controller, handler = serve()
    handler.refuse = {
        "gone@home.example.com": "550 5.1.1 <gone@home.example.com>: mailbox unavailable",
        "full@home.example.com": "450 4.2.0 <full@home.example.com>: mailbox busy",
        "far@away.example.com": "554 5.7.1 <far@away.example.com>: Relay access denied",
    }
    messages = [
        outgoing(1, to="gone@home.example.com"),
        outgoing(2, to="full@home.example.com"),
        outgoing(3),
        outgoing(4, to="far@away.example.com"),
        outgoing(5),
    ]
    gone, full, ok, far, ok2 = sent_through(make_settings(tmp_path, controller.port), messages)
    assert type(gone) is Rejected and "mailbox unavailable" in str(gone)
    assert gone.provider_status.startswith("550 5.1.1")
    assert type(full) is Transient and full.provider_status.startswith("450 4.2.0")
    assert type(far) is AccountProblem and "Relay access denied" in str(far)
    assert handler.ids() == ["3", "5"]
    assert controller.connections == 1  # a refusal does not cost the connection


@pytest.mark.parametrize("failure", ["drop", "hang"])
def test_connection_lost_mid_batch(tmp_path: Path, serve, failure: str) -> None:
    controller, handler = serve()
    setattr(handler, f"{failure}_on", 4)
    messages = [outgoing(i) for i in range(1, 11)]
    outcomes = sent_through(make_settings(tmp_path, controller.port), messages, timeout=1.5)
    failed = [m for m, o in zip(messages, outcomes, strict=True) if isinstance(o, Exception)]
    assert [m.id for m in failed] == [4]
    assert type(outcomes[3]) is Transient and "next send reconnects" in str(outcomes[3])
    assert controller.connections == 2  # the 5th message reconnected, once
    retried = sent_through(make_settings(tmp_path, controller.port), failed)  # the dispatcher
    assert type(retried[0]).__name__ == "SendResult"
    assert sorted(handler.ids(), key=int) == [str(i) for i in range(1, 11)]  # no duplicates


def test_server_down_is_transient(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    messenger = SmtpEmail(make_settings(tmp_path, port), timeout=2)
    with pytest.raises(Transient, match=f"127.0.0.1:{port}"):
        messenger.open()
    with pytest.raises(Transient, match="Could not connect"):
        messenger.send(outgoing(1))
    messenger.close()
    with pytest.raises(Transient):
        smtp_channel.test_connection(make_settings(tmp_path, port), timeout=2)


def test_wrong_password_is_an_account_problem_and_never_leaks(
    tmp_path: Path, serve, server_tls, trust, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    controller, handler = serve(
        tls_context=server_tls, require_starttls=True, authenticator=authenticator
    )
    good = {"smtp_user": USER, "smtp_security": "starttls"}
    right = make_settings(tmp_path, controller.port, smtp_password=PASSWORD, **good)
    wrong_password = PASSWORD[::-1]
    wrong = make_settings(tmp_path, controller.port, smtp_password=wrong_password, **good)

    [ok] = sent_through(right, [outgoing(1)], ssl_context=trust)
    [bad] = sent_through(wrong, [outgoing(2)], ssl_context=trust)
    with pytest.raises(AccountProblem) as raised:
        smtp_channel.test_connection(wrong, ssl_context=trust)

    assert type(ok).__name__ == "SendResult" and handler.ids() == ["1"]
    assert type(bad) is AccountProblem and "535" in str(bad) and USER in str(bad)
    for exc in (bad, raised.value):
        text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.provider_status)
        for secret in (PASSWORD, wrong_password):
            assert secret not in text
            assert base64.b64encode(secret.encode()).decode() not in text
    assert PASSWORD not in repr(SmtpEmail(right)) + repr(vars(SmtpEmail(right)))
    assert caplog.records, "expected some logging to check"
    for record in caplog.records:
        assert PASSWORD not in record.getMessage() and wrong_password not in record.getMessage()
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("senders")]
    assert any("SMTP connected" in m for m in ours)


def test_password_is_not_sent_unencrypted_to_another_host(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, 25, smtp_host="smtp.example.invalid", smtp_user=USER, smtp_password=PASSWORD
    )
    with pytest.raises(AccountProblem, match="unencrypted") as raised:
        SmtpEmail(settings).open()
    assert PASSWORD not in str(raised.value)
