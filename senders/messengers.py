"""Build each channel's messenger from the settings, and say plainly where messages go.

Embedded defaults: with no SMS provider and no SMTP server configured, SMS are written
as JSON lines under ``<data dir>/outbox/sms`` and e-mails as ``.eml`` files under
``<data dir>/outbox/email``; nothing leaves the machine.
"""

from __future__ import annotations

from schoolcomms.settings import Settings, SettingsError
from senders.base import Messenger, OutgoingMessage, SendResult

SMS_PROVIDERS = ("file", "textanywhere", "twilio")


class LetterPrinter:
    """Letters are merged into one PDF when the batch is queued; 'sending' one records
    that it is ready to print with the batch's PDF."""

    channel = "letter"
    name = "letter"

    def open(self) -> None:
        return None

    def send(self, message: OutgoingMessage) -> SendResult:
        return SendResult(
            provider="letter", provider_ref=f"letter-{message.id}", provider_status="ready to print"
        )

    def close(self) -> None:
        return None


def sms_messenger(settings: Settings) -> Messenger:
    provider = str(settings["sms_provider"]).strip().lower()
    if provider == "file":
        from senders.channels.files import FileSms

        return FileSms(settings.data_dir / "outbox" / "sms")
    if provider == "textanywhere":
        from senders.channels.textanywhere import TextAnywhereSms

        return TextAnywhereSms(settings)
    if provider == "twilio":
        from senders.channels.twilio import TwilioSms

        return TwilioSms(settings)
    raise SettingsError(
        f"The setting sms_provider is {provider!r}; use one of "
        f"{', '.join(SMS_PROVIDERS)}. See docs/settings.md."
    )


def email_messenger(settings: Settings) -> Messenger:
    if settings["smtp_host"]:
        from senders.channels.smtp import SmtpEmail

        return SmtpEmail(settings)
    from senders.channels.files import FileEmail

    return FileEmail(
        settings.data_dir / "outbox" / "email",
        sender=settings["email_from"],
        sender_name=settings["email_from_name"] or settings["school_name"],
        reply_to=settings["email_reply_to"],
    )


def build_messengers(settings: Settings) -> dict[str, Messenger]:
    """One messenger per channel, as configured."""
    return {
        "sms": sms_messenger(settings),
        "email": email_messenger(settings),
        "letter": LetterPrinter(),
    }


def where_messages_go(settings: Settings) -> dict[str, str]:
    """A sentence per channel for the dashboard and the CLI: where messages will go."""
    provider = str(settings["sms_provider"]).strip().lower()
    outbox = settings.data_dir / "outbox"
    sms = (
        f"SMS are written to {outbox / 'sms'} and NOT sent: no SMS provider is configured "
        "(setting sms_provider)."
        if provider == "file"
        else f"SMS are sent through {provider}."
    )
    email = (
        f"E-mails are sent through {settings['smtp_host']}:{settings['smtp_port']}."
        if settings["smtp_host"]
        else f"E-mails are written to {outbox / 'email'} and NOT sent: no SMTP server is "
        "configured (setting smtp_host)."
    )
    return {
        "sms": sms,
        "email": email,
        "letter": "Letters are merged into a PDF with each batch, ready to print.",
    }
