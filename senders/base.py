"""The messenger interface: the only I/O boundary between the outbox and the world.

A messenger sends one prepared message on one channel and says what happened. The
dispatcher (:mod:`senders.dispatcher`) claims messages from the outbox, hands them to a
messenger and records the outcome; it never talks to SMTP or HTTP itself.

Exceptions (what the dispatcher does with each)::

    ProviderError             base class; never raised itself
    ├── Rejected              this message can never be sent (invalid number, opted out,
    │   │                     recipient refused): mark it failed with the reason
    │   └── OptedOut          the recipient opted out at the provider (e.g. replied STOP):
    │                         also record an opt-out, so nothing more is sent there
    ├── Transient             try again later (timeout, 5xx, connection dropped)
    │   └── RateLimited       try again after ``retry_after`` seconds (429)
    └── AccountProblem        the account cannot send anything (authentication failed,
                              no credit, suspended): keep the message queued, pause the
                              batch and tell a person
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

Channel = Literal["sms", "email", "letter"]


@dataclass(frozen=True)
class OutgoingMessage:
    """A message as the dispatcher hands it to a messenger."""

    id: int  # the ops store id: sent to the provider as our client reference
    idempotency_key: str
    channel: Channel
    to: str  # E.164 for SMS; an e-mail address; the address block for letters
    body: str  # SMS text, or the plain-text part of an e-mail
    subject: str | None = None
    html: str | None = None
    attachments: tuple[Path, ...] = ()
    student_id: str | None = None
    contact_id: str | None = None
    # Which attempt this is (1: the first). Above 1 an earlier attempt may have reached
    # the provider unrecorded (a crash or a timeout before its answer was stored): a
    # messenger that can ask the provider about ``id`` does so before sending again.
    attempt: int = 1


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted a message."""

    provider: str  # "file", "smtp", "textanywhere", "twilio", "letter"
    provider_ref: str | None = None  # the provider's id, for status polling
    provider_status: str | None = None  # the provider's own word, as given
    # "sent" (accepted by the provider) or "delivered" (the provider knows it arrived).
    status: Literal["sent", "delivered"] = "sent"


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status learned later, by polling or from a receipt."""

    provider_ref: str
    status: Literal["sent", "delivered", "failed"]
    provider_status: str
    error: str | None = None


class ProviderError(Exception):
    """A provider did not accept a message; subclasses say what to do about it."""

    def __init__(self, message: str, provider_status: str | None = None) -> None:
        super().__init__(message)
        self.provider_status = provider_status


class Rejected(ProviderError):
    """This message can never be sent as it is; mark it failed with the reason."""


class OptedOut(Rejected):
    """The recipient has opted out at the provider; the address is recorded as opted out."""


class Transient(ProviderError):
    """A passing failure (timeout, server error, dropped connection): retry later."""


class RateLimited(Transient):
    """The provider asked us to slow down; retry after ``retry_after`` seconds if given."""

    def __init__(
        self, message: str, retry_after: float | None = None, provider_status: str | None = None
    ) -> None:
        super().__init__(message, provider_status)
        self.retry_after = retry_after


class AccountProblem(ProviderError):
    """The account cannot send (bad credentials, no credit, suspended): pause, keep queued."""


@runtime_checkable
class Messenger(Protocol):
    """Sends messages on one channel. ``open``/``close`` bracket a dispatch run so that a
    connection (e.g. SMTP) can be kept for the whole run."""

    channel: Channel
    name: str

    def open(self) -> None: ...

    def send(self, message: OutgoingMessage) -> SendResult: ...

    def close(self) -> None: ...


@runtime_checkable
class StatusSource(Protocol):
    """A messenger that can be asked later what became of messages it sent."""

    def poll_status(self, provider_refs: list[str]) -> list[StatusUpdate]: ...


@runtime_checkable
class BalanceSource(Protocol):
    """A messenger whose provider reports the credit left on the account."""

    def balance(self) -> float | None: ...
