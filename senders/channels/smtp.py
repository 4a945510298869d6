"""E-mail over SMTP: messages built by yagmail, sent over one kept connection per run.

``yagmail.SMTP.send()`` opens a new connection for every message, so yagmail only
*builds* messages here (``prepare_message``, the builder behind ``prepare_send``) and
``smtplib`` sends them over the one connection :meth:`SmtpEmail.open` made.

TLS certificates are verified (``ssl.create_default_context()``). To trust a private
or self-signed certificate, pass ``ssl_context=ssl.create_default_context(cafile=…)``
to :class:`SmtpEmail` or :func:`test_connection`; no setting turns verification off.
The password is never logged nor put in an exception's text.

Failures::

    recipient refused 5xx                 Rejected, with the server's words
    ... 5xx saying "relay"/"authenticat"  AccountProblem (it relays nothing for us)
    any refusal 4xx                       Transient
    sender refused 5xx                    AccountProblem
    message data refused 5xx              Rejected
    connection lost or timed out          Transient; the next send reconnects once
    cannot connect (refused, DNS, ...)    Transient
    bad login, no STARTTLS/AUTH offered,
    certificate not trusted               AccountProblem
    bad address, missing attachment       Rejected, before anything is sent
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email import charset as email_charset
from email.message import Message
from email.mime.text import MIMEText
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any

from yagmail.error import YagInvalidEmailAddress
from yagmail.headers import resolve_addresses
from yagmail.message import prepare_message
from yagmail.validate import validate_email_with_regex

from schoolcomms.settings import Settings, SettingsError
from senders.base import (
    AccountProblem,
    Channel,
    OutgoingMessage,
    ProviderError,
    Rejected,
    SendResult,
    Transient,
)

log = logging.getLogger(__name__)

MESSAGE_HEADER = "X-Schoolcomms-Message"
SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_TIMEOUT = 30.0
# Quoted-printable rather than yagmail's base64 keeps text parts readable and avoids
# spam-filter rules about base64-encoded text.
_UTF8_QP = email_charset.Charset("utf-8")
_UTF8_QP.body_encoding = email_charset.QP


@dataclass(frozen=True)
class _Config:
    host: str
    port: int
    security: str
    user: str
    password: str = field(repr=False)
    from_addr: str
    from_name: str
    reply_to: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_settings(cls, settings: Settings) -> _Config:
        security = str(settings["smtp_security"]).strip().lower()
        if security not in SECURITY_MODES:
            raise SettingsError(
                f"smtp_security is {security!r}; use starttls (port 587), ssl (port 465) "
                "or none (port 25)."
            )
        from_addr = str(settings["email_from"]).strip()
        try:
            validate_email_with_regex(from_addr)
        except YagInvalidEmailAddress:
            raise SettingsError(f"email_from {from_addr!r} is not an e-mail address.") from None
        return cls(
            host=str(settings["smtp_host"]).strip(),
            port=int(settings["smtp_port"]),
            security=security,
            user=str(settings["smtp_user"]).strip(),
            password=str(settings["smtp_password"]),
            from_addr=from_addr,
            from_name=str(settings["email_from_name"]).strip() or str(settings["school_name"]),
            reply_to=str(settings["email_reply_to"]).strip(),
        )


class _KeepsDataReply:
    """Remembers the server's reply to DATA ("250 2.0.0 Ok: queued as …")."""

    last_data_reply: tuple[int, bytes] | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:
        reply = super().data(msg)  # type: ignore[misc]
        self.last_data_reply = reply
        return reply


class _SMTP(_KeepsDataReply, smtplib.SMTP):
    pass


class _SMTPSSL(_KeepsDataReply, smtplib.SMTP_SSL):
    pass


def _words(code: int, resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return f"{code} {' '.join(text.split())}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _connect(cfg: _Config, context: ssl.SSLContext, timeout: float) -> _SMTP:
    """Connect, secure and log in; raise Transient or AccountProblem with a clear reason."""
    if not cfg.host:
        raise SettingsError("smtp_host is blank: e-mails go to the file outbox instead.")
    if cfg.user and not cfg.password:
        raise AccountProblem(
            f"smtp_user is {cfg.user!r} but smtp_password is blank; set "
            "SCHOOLCOMMS_SMTP_PASSWORD or .streamlit/secrets.toml."
        )
    if cfg.user and cfg.security == "none" and not _is_loopback(cfg.host):
        raise AccountProblem(
            f"Refusing to send the SMTP password to {cfg.where} unencrypted; set "
            "smtp_security to starttls or ssl (or clear smtp_user for a relay without login)."
        )
    step = "connecting"
    conn: _SMTP | None = None
    try:
        if cfg.security == "ssl":
            conn = _SMTPSSL(cfg.host, cfg.port, timeout=timeout, context=context)
        else:
            conn = _SMTP(cfg.host, cfg.port, timeout=timeout)
            if cfg.security == "starttls":
                step = "starting TLS"
                conn.ehlo()
                conn.starttls(context=context)
                conn.ehlo()
        if cfg.user:
            step = "logging in"
            conn.login(cfg.user, cfg.password)
    except Exception as exc:
        if conn is not None:
            conn.close()
        raise _connect_error(cfg, step, exc) from None
    log.info("SMTP connected to %s (%s) as %s", cfg.where, cfg.security, cfg.user or "-")
    return conn


def _connect_error(cfg: _Config, step: str, exc: Exception) -> Exception:
    where = cfg.where
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        offer = "STARTTLS" if step == "starting TLS" else "AUTH on this connection"
        return AccountProblem(f"{where} does not offer {offer}; check smtp_security/port.")
    if isinstance(exc, smtplib.SMTPResponseException):
        status = _words(exc.smtp_code, exc.smtp_error)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            text = f"{where} refused the user name or password for {cfg.user!r}: {status}"
            return AccountProblem(text, status)
        kind = Transient if exc.smtp_code < 500 else AccountProblem
        return kind(f"{where} answered {status} while {step}", status)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return AccountProblem(f"The certificate of {where} is not trusted ({exc.verify_message}).")
    if isinstance(exc, ssl.SSLError):
        return AccountProblem(
            f"TLS failed with {where} while {step} ({exc.reason or exc}); check that "
            "smtp_security fits smtp_port (465 ssl, 587 starttls)."
        )
    if isinstance(exc, OSError):  # refused, DNS, timeout, disconnected
        return Transient(f"Could not connect to the SMTP server {where} while {step}: {exc}")
    return exc


def _refusal(exc: smtplib.SMTPException, addr: str, msg_id: int, where: str) -> ProviderError:
    """Map a refusal during MAIL/RCPT/DATA to what the dispatcher should do."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, resp = next(iter(exc.recipients.values()))
        what, permanent = f"refused the recipient {addr}", Rejected
    else:
        assert isinstance(exc, smtplib.SMTPResponseException)
        code, resp = exc.smtp_code, exc.smtp_error
        what, permanent = {
            smtplib.SMTPSenderRefused: ("refused our sender address", AccountProblem),
            smtplib.SMTPDataError: (f"refused message {msg_id}", Rejected),
        }.get(type(exc), ("answered", AccountProblem))
    status = _words(code, resp)
    if code < 500:
        permanent = Transient
    elif re.search(r"relay|authenticat", status, re.IGNORECASE):
        permanent = AccountProblem  # it will not relay for us at all: not this message
    return permanent(f"{where} {what}: {status}", status)


def _message_id(message: OutgoingMessage, from_addr: str) -> str:
    digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:16]
    return f"<schoolcomms.{message.id}.{digest}@{from_addr.rpartition('@')[2]}>"


def _build(message: OutgoingMessage, cfg: _Config) -> Message:
    name, addr = parseaddr(message.to)
    try:
        validate_email_with_regex(addr)
    except YagInvalidEmailAddress:
        raise Rejected(f"{message.to!r} is not a valid e-mail address.") from None
    for path in message.attachments:
        if not Path(path).is_file():
            raise Rejected(f"The attachment {path} does not exist.")
    key = re.sub(r"[^\x21-\x7e]", "?", message.idempotency_key)
    headers = {MESSAGE_HEADER: f"{message.id}; key={key}"}
    if cfg.reply_to:
        headers["Reply-To"] = cfg.reply_to
    # This is yagmail.SMTP.prepare_send without its last step, msg.as_string(): we fix
    # the message up below, and parsing that string back would triple the build time.
    msg = prepare_message(
        cfg.from_addr,
        cfg.from_name,
        resolve_addresses(cfg.from_addr, cfg.from_name, addr, None, None),
        subject=" ".join((message.subject or "").split()),
        contents=None,  # yagmail would mangle both parts; filled in below
        attachments=[str(p) for p in message.attachments] or None,
        headers=headers,
        encoding="utf-8",
        prettify_html=False,
        message_id=_message_id(message, cfg.from_addr),
    )
    # yagmail pre-escapes quotes before formataddr, so names with " get backslashes.
    del msg["From"]
    msg["From"] = formataddr((cfg.from_name, cfg.from_addr))
    if name:
        del msg["To"]
        msg["To"] = formataddr((name, addr))
    parts = msg.get_payload()
    alternative = parts[0].get_payload()  # [text/plain, multipart/related[text/html]]
    alternative[0] = MIMEText(message.body, "plain", _UTF8_QP)
    page = message.html or f"<div>{html.escape(message.body).replace(chr(10), '<br>')}</div>"
    alternative[1].get_payload()[0] = MIMEText(page, "html", _UTF8_QP)
    for part in parts[1:]:  # yagmail marks only application/* as attachments
        if part.get("Content-Disposition") is None:
            part.add_header("Content-Disposition", "attachment", filename=part.get_filename())
    return msg


def build_message(message: OutgoingMessage, settings: Settings) -> Message:
    """The MIME message :class:`SmtpEmail` would send for ``message``.

    multipart/mixed: a text/plain + text/html alternative (HTML made from the text if
    ``message.html`` is blank), then the attachments. From carries the display name,
    Message-ID is derived from the id and idempotency key (the same on a resend), and
    ``X-Schoolcomms-Message: <id>; key=<idempotency key>`` identifies it. Raises
    Rejected for a bad address or a missing attachment.
    """
    return _build(message, _Config.from_settings(settings))


class SmtpEmail:
    """The e-mail Messenger: one SMTP connection from :meth:`open` to :meth:`close`.

    ``ssl_context`` replaces the default, verifying TLS context (tests pass one that
    trusts their self-signed certificate); ``timeout`` is in seconds per operation.
    """

    channel: Channel = "email"
    name = "smtp"

    def __init__(
        self,
        settings: Settings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._cfg = _Config.from_settings(settings)
        if not self._cfg.host:
            raise SettingsError("smtp_host is blank: e-mails go to the file outbox instead.")
        self._context = ssl_context or ssl.create_default_context()
        self._timeout = timeout
        self._conn: _SMTP | None = None

    def open(self) -> None:
        """Connect (and log in) once; raises Transient or AccountProblem."""
        if self._conn is None:
            self._conn = _connect(self._cfg, self._context, self._timeout)

    def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message over the kept connection, reconnecting once if it was lost."""
        msg = _build(message, self._cfg)
        _, addr = parseaddr(message.to)
        self.open()
        conn = self._conn
        assert conn is not None
        conn.last_data_reply = None
        try:
            conn.sendmail(self._cfg.from_addr, [addr], msg.as_string())
        except UnicodeEncodeError as exc:
            raise Rejected(f"{addr!r} needs SMTPUTF8, which we do not use: {exc}") from None
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
            if conn.sock is None:  # smtplib closes the socket itself after a 421
                self._conn = None
            raise _refusal(exc, addr, message.id, self._cfg.where) from None
        except OSError as exc:  # disconnected, reset, timeout, TLS error mid-stream
            self._conn = None
            conn.close()
            raise Transient(
                f"Lost the connection to {self._cfg.where} while sending message "
                f"{message.id} ({exc.__class__.__name__}: {exc}); the next send reconnects."
            ) from None
        reply = conn.last_data_reply
        return SendResult("smtp", msg["Message-ID"], _words(*reply) if reply else None)

    def close(self) -> None:
        """Say QUIT and close the connection (quietly if it is already gone)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def __enter__(self) -> SmtpEmail:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def test_connection(
    settings: Settings,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 15.0,
) -> str:
    """Connect, secure, log in and QUIT; say what worked in a sentence.

    For the dashboard's "test SMTP" button. Raises SettingsError, Transient or
    AccountProblem whose text says what went wrong (never the password).
    """
    cfg = _Config.from_settings(settings)
    context = ssl_context or ssl.create_default_context()
    conn = _connect(cfg, context, timeout)
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()
    secured = "without encryption"
    if cfg.security != "none":
        checked = "verified" if context.verify_mode == ssl.CERT_REQUIRED else "NOT verified"
        secured = f"with {cfg.security.upper()} (certificate {checked})"
    login = f"logged in as {cfg.user}" if cfg.user else "without logging in (smtp_user is blank)"
    return f"Connected to {cfg.where} {secured} and {login}; e-mail can be sent."


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
