"""Test sends from the Settings page: one e-mail or SMS straight through the configured channel.

A test send does not go through the outbox: it is not a message to a parent, it must
not wait behind a batch, and the person pressing the button wants to see the server's
or gateway's own answer at once. Each one is still in the audit log
(``settings.test_send``: who, when, to where, and what happened).

With the embedded defaults (no SMTP server, the ``file`` SMS gateway) nothing leaves the
machine: the result says so plainly and names the file that was written. Failures come
back as words (:attr:`TestSend.message`), never as an exception, except for a missing
actor or engine, which are programming errors.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine

from pipelines.validate import e164
from schoolcomms.ops.history import audit
from schoolcomms.settings import Settings, SettingsError
from senders.base import BalanceSource, Messenger, OutgoingMessage, ProviderError, SendResult
from senders.channels.files import FileEmail, FileSms, email_file_name
from senders.messengers import email_messenger, sms_messenger

log = logging.getLogger(__name__)

AUDIT_ACTION = "settings.test_send"
# Test messages carry ids far above any ops-store id, so a provider that remembers our
# client reference can never confuse a test with a real message.
TEST_ID_BASE = 9_000_000_000_000_000
PROVIDER_NAMES = {
    "file": "the file outbox",
    "smtp": "SMTP",
    "textanywhere": "Text Anywhere",
    "twilio": "Twilio",
}
_E164 = "+"


@dataclass(frozen=True)
class Balance:
    """The SMS credit left, where the provider reports it (``credit`` None: not reported)."""

    provider: str
    credit: float | None
    message: str


@dataclass(frozen=True)
class TestSend:
    """What happened to one test send, in words for the page."""

    __test__ = False  # not a pytest test class

    ok: bool
    channel: Literal["email", "sms"]
    provider: str  # "smtp", "file", "textanywhere", "twilio" ("" if none could be built)
    to: str
    message: str
    path: Path | None = None  # the file written, with the file gateway
    provider_ref: str | None = None
    balance: Balance | None = None

    @property
    def left_the_machine(self) -> bool:
        """False with the file gateway: the message was only written to a file."""
        return self.ok and self.provider not in ("file", "")


def _test_message(
    channel: Literal["email", "sms"], to: str, body: str, subject: str | None
) -> OutgoingMessage:
    stamp = time.time_ns() // 1_000_000
    return OutgoingMessage(
        id=TEST_ID_BASE + stamp % 10**15,
        idempotency_key=f"test-send:{channel}:{uuid.uuid4().hex}",
        channel=channel,
        to=to,
        body=body,
        subject=subject,
    )


def _send(messenger: Messenger, message: OutgoingMessage) -> SendResult:
    messenger.open()
    try:
        return messenger.send(message)
    finally:
        messenger.close()


def _record(engine: Engine, actor: str, outcome: TestSend) -> TestSend:
    details = {
        "channel": outcome.channel,
        "provider": outcome.provider,
        "to": outcome.to,
        "ok": outcome.ok,
        "result": outcome.message,
    }
    audit(engine, actor, AUDIT_ACTION, f"{outcome.channel}:{outcome.to}", details)
    return outcome


def _stamp() -> str:
    return f"{dt.datetime.now().astimezone():%d %B %Y at %H:%M}"


# ---- e-mail ----------------------------------------------------------------------------------


def send_test_email(
    settings: Settings,
    to: str,
    *,
    engine: Engine,
    actor: str,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 15.0,
) -> TestSend:
    """Send one test e-mail to ``to`` through the configured SMTP server (or file outbox).

    ``ssl_context`` replaces the default, verifying TLS context (for a private
    certificate); ``timeout`` is per SMTP operation, in seconds. Always audited.
    """
    address = (to or "").strip()
    try:
        address = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        outcome = TestSend(
            False, "email", "", address, f"{address or '(blank)'} is not an e-mail address: {exc}"
        )
        return _record(engine, actor, outcome)
    school = str(settings["school_name"])
    body = (
        f"This is a test e-mail from the {school} communications hub, sent from the "
        f"Settings page by {actor} on {_stamp()}.\n\n"
        "If you can read it, e-mail to parents and staff will arrive the same way. "
        "No reply is needed."
    )
    message = _test_message("email", address, body, f"Test e-mail from {school}")
    provider = "smtp" if settings["smtp_host"] else "file"
    try:
        if provider == "smtp":
            from senders.channels.smtp import SmtpEmail

            messenger: Messenger = SmtpEmail(settings, ssl_context=ssl_context, timeout=timeout)
        else:
            messenger = email_messenger(settings)
        result = _send(messenger, message)
    except (ProviderError, SettingsError, OSError) as exc:
        log.warning("Test e-mail to %s failed: %s", address, exc)
        where = (
            f"{settings['smtp_host']}:{settings['smtp_port']}"
            if provider == "smtp"
            else "the file outbox"
        )
        outcome = TestSend(
            False, "email", provider, address, f"The test e-mail was NOT sent via {where}: {exc}"
        )
        return _record(engine, actor, outcome)
    if isinstance(messenger, FileEmail):
        path = messenger.outbox_dir / email_file_name(message)
        outcome = TestSend(
            True,
            "email",
            "file",
            address,
            "Nothing left this machine: no SMTP server is configured (setting smtp_host), so "
            f"the test e-mail was written to {path}. Set smtp_host to send real e-mail.",
            path=path,
            provider_ref=result.provider_ref,
        )
        return _record(engine, actor, outcome)
    answer = f"; the server answered {result.provider_status}" if result.provider_status else ""
    outcome = TestSend(
        True,
        "email",
        "smtp",
        address,
        f"Sent a test e-mail to {address} through {settings['smtp_host']}:"
        f"{settings['smtp_port']}{answer}. Check that it arrived (and is not in spam).",
        provider_ref=result.provider_ref,
    )
    return _record(engine, actor, outcome)


# ---- SMS -------------------------------------------------------------------------------------


def mobile_number(text: str) -> str:
    """``text`` as an E.164 number (UK numbers may be written 07…); ValueError in words."""
    raw = (text or "").strip()
    number = e164(raw) if raw else None
    if number:
        return number
    compact = raw.replace(" ", "")
    if compact.startswith(_E164) and compact[1:].isdigit() and 7 <= len(compact) - 1 <= 15:
        return compact  # a number libphonenumber does not know: the gateway decides
    raise ValueError(
        f"{raw or '(blank)'} is not a mobile number; write it as 07700 900123 or +447700900123."
    )


def sms_balance(settings: Settings, messenger: Messenger | None = None) -> Balance:
    """The credit left on the SMS account, where the provider reports it; never raises."""
    try:
        messenger = messenger or sms_messenger(settings)
    except SettingsError as exc:
        return Balance("", None, f"The SMS gateway is not set up: {exc}")
    name = PROVIDER_NAMES.get(messenger.name, messenger.name)
    if isinstance(messenger, FileSms):
        return Balance(
            "file", None, "The file gateway sends nothing, so there is no credit to count."
        )
    if not isinstance(messenger, BalanceSource):
        return Balance(
            messenger.name,
            None,
            f"{name} does not report the credit balance to us; check it in their web portal.",
        )
    try:
        messenger.open()
        try:
            credit = messenger.balance()
        finally:
            messenger.close()
    except (ProviderError, OSError) as exc:
        return Balance(messenger.name, None, f"Could not ask {name} for the balance: {exc}")
    if credit is None:
        return Balance(
            messenger.name,
            None,
            f"{name} does not report the credit balance through the interface we use; check "
            "it in their web portal.",
        )
    return Balance(messenger.name, credit, f"{name} reports {credit:g} credits left.")


def send_test_sms(
    settings: Settings,
    to: str,
    *,
    engine: Engine,
    actor: str,
    messenger: Messenger | None = None,
) -> TestSend:
    """Send one test SMS to ``to`` through the configured gateway; always audited.

    ``messenger`` replaces the one the settings would build (the same provider with, say,
    a client of its own). The outcome carries the credit balance where the provider
    reports it.
    """
    try:
        number = mobile_number(to)
    except ValueError as exc:
        return _record(engine, actor, TestSend(False, "sms", "", (to or "").strip(), str(exc)))
    body = f"Test SMS from {settings['school_name']}: SMS from the communications hub work."
    message = _test_message("sms", number, body, None)
    try:
        messenger = messenger or sms_messenger(settings)
    except SettingsError as exc:
        outcome = TestSend(False, "sms", "", number, f"The test SMS was NOT sent: {exc}")
        return _record(engine, actor, outcome)
    name = PROVIDER_NAMES.get(messenger.name, messenger.name)
    try:
        result = _send(messenger, message)
    except (ProviderError, SettingsError, OSError) as exc:
        log.warning("Test SMS to %s failed: %s", number, exc)
        outcome = TestSend(
            False,
            "sms",
            messenger.name,
            number,
            f"The test SMS was NOT sent through {name}: {exc}",
            balance=sms_balance(settings, messenger),
        )
        return _record(engine, actor, outcome)
    if isinstance(messenger, FileSms):
        files = sorted(messenger.outbox_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        path = files[-1] if files else messenger.outbox_dir
        outcome = TestSend(
            True,
            "sms",
            "file",
            number,
            "Nothing left this machine: the SMS gateway is the file outbox (setting "
            f"sms_provider is file), so the test SMS was written to {path}. Choose "
            "textanywhere or twilio to send real texts.",
            path=path,
            provider_ref=result.provider_ref,
            balance=sms_balance(settings, messenger),
        )
        return _record(engine, actor, outcome)
    outcome = TestSend(
        True,
        "sms",
        messenger.name,
        number,
        f"{name} accepted a test SMS to {number} (reference {result.provider_ref}); it should "
        "arrive within a minute or two.",
        provider_ref=result.provider_ref,
        balance=sms_balance(settings, messenger),
    )
    return _record(engine, actor, outcome)


__all__ = [
    "AUDIT_ACTION",
    "Balance",
    "TestSend",
    "mobile_number",
    "send_test_email",
    "send_test_sms",
    "sms_balance",
]
