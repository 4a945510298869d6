"""The dispatcher: claim due messages, hand them to messengers, record what happened.

The loop, per channel: :func:`senders.outbox.claim` a batch of due messages under a
lease, open the channel's messenger (once per run: one kept SMTP connection), send each
message paced by the channel's rate setting (``sms_rate_per_second``,
``email_rate_per_second``; per dispatcher, so the total is workers × rate), record the
outcome with :func:`senders.outbox.record_sent` / :func:`senders.outbox.record_failure`
(the retry policy lives there), and claim again until nothing is due. The messenger is
closed at the end of the run.

Safety rules:

- A messenger exception that is not a :class:`ProviderError` is logged and treated as
  :class:`Transient`; it never ends the loop.
- :class:`RateLimited` and :class:`AccountProblem` stop the channel for this run; the
  rest of the claimed messages are given back untried (due after ``retry_after`` or the
  retry base), so the provider is not hammered.
- A claimed message is not sent once its lease is near expiry (another dispatcher may
  take it); it is given back. The claim size is capped so that a claim can be sent at
  the channel's rate well within the lease.
- Claimed messages of a batch paused or cancelled meanwhile are given back (checked
  after each failure and at least every second).
- Logs never hold message bodies; addresses are masked (:func:`mask_address`).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from schoolcomms.ops.models import utcnow
from schoolcomms.settings import REGISTRY, Settings
from senders import outbox
from senders.base import (
    AccountProblem,
    Messenger,
    OutgoingMessage,
    ProviderError,
    RateLimited,
    Transient,
)
from senders.ratelimit import Pacer

log = logging.getLogger(__name__)

STORE_ATTEMPTS = 3
HALT_CHECK_SECONDS = 1.0
T = TypeVar("T")


def mask_address(address: str) -> str:
    """An address safe to log: a phone number's last 3 digits, an e-mail's first letter."""
    text = (address or "").strip()
    if "@" in text:
        local, _, domain = text.rpartition("@")
        return f"{local[:1]}***@{domain}"
    digits = [c for c in text if c.isdigit()]
    if digits and len(digits) >= len(text.replace(" ", "").lstrip("+")) - 1:
        return "*" * max(0, len(digits) - 3) + "".join(digits[-3:])
    return "***"  # a postal address block


@dataclass
class DispatchStats:
    """What one run (or several, added up) did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0  # queued again after a failure
    failed: int = 0
    cancelled: int = 0
    released: int = 0  # given back untried
    lost: int = 0  # the lease was taken over: the outcome was not recorded
    seconds: float = 0.0

    def add(self, other: DispatchStats) -> None:
        """Add ``other``'s counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def __str__(self) -> str:
        counts = ", ".join(f"{f.name} {getattr(self, f.name)}" for f in fields(self)[:-1])
        return f"{counts} in {self.seconds:.1f} s"


class Dispatcher:
    """Sends what is due in the outbox through ``messengers`` (one per channel).

    ``worker_id`` names this dispatcher in leases (default: host, pid and a random
    suffix, unique per instance). ``clock``/``sleep`` drive pacing (monotonic seconds);
    ``now`` gives the wall-clock UTC time used for leases and retries. All three are
    injectable for tests.
    """

    def __init__(
        self,
        engine: Engine,
        messengers: Mapping[str, Messenger],
        settings: Settings,
        worker_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.messengers = dict(messengers)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock, self._sleep, self._now, self._rng = clock, sleep, now, rng
        self.batch_size = max(1, int(settings["dispatch_batch_size"]))
        self.lease_seconds = max(1, int(settings["dispatch_lease_seconds"]))
        self.policy: dict[str, Any] = {
            "max_attempts": int(settings["dispatch_max_attempts"]),
            "retry_base_seconds": float(settings["dispatch_retry_base_seconds"]),
            "pause_after": int(settings["dispatch_pause_after_errors"]),
        }
        self.pacers = {
            channel: Pacer(self._rate(settings, channel), clock=clock, sleep=sleep)
            for channel in self.messengers
        }

    @staticmethod
    def _rate(settings: Settings, channel: str) -> float:
        name = f"{channel}_rate_per_second"
        return float(settings[name]) if name in REGISTRY else 0.0

    def claim_limit(self, channel: str) -> int:
        """How many messages to claim at once: the batch size, capped so that they can be
        sent at the channel's rate within half the lease."""
        rate = self.pacers[channel].rate
        if rate <= 0:
            return self.batch_size
        return max(1, min(self.batch_size, int(rate * self.lease_seconds * 0.5)))

    def run_once(
        self, channel: str | None = None, stop_event: threading.Event | None = None
    ) -> DispatchStats:
        """Send everything due now on ``channel`` (default: every channel); return the counts."""
        if channel is not None and channel not in self.messengers:
            raise ValueError(
                f"No messenger for channel {channel!r}; have {sorted(self.messengers)}"
            )
        stats, started = DispatchStats(), self._clock()
        for name in [channel] if channel else list(self.messengers):
            self._run_channel(name, stats, stop_event)
        stats.seconds = self._clock() - started
        if stats.claimed:
            log.info("dispatch run: %s", stats, extra={"worker": self.worker_id, **vars(stats)})
        return stats

    def run_forever(self, stop_event: threading.Event, idle_seconds: float = 5.0) -> DispatchStats:
        """Run until ``stop_event`` is set, waiting ``idle_seconds`` when nothing was due.

        A failing run (the ops store unreachable, say) is logged and tried again after
        ``idle_seconds``; it never ends the loop. Returns the counts of all runs.
        """
        total = DispatchStats()
        log.info("dispatcher %s started", self.worker_id)
        while not stop_event.is_set():
            try:
                stats = self.run_once(stop_event=stop_event)
            except Exception:
                log.exception("dispatch run failed; trying again in %s s", idle_seconds)
                stats = DispatchStats()
            total.add(stats)
            if not stats.claimed:
                stop_event.wait(idle_seconds)
        log.info("dispatcher %s stopped: %s", self.worker_id, total)
        return total

    # ---- one channel ---------------------------------------------------------------

    def _run_channel(
        self, channel: str, stats: DispatchStats, stop_event: threading.Event | None
    ) -> None:
        messenger, opened = self.messengers[channel], False
        try:
            while not (stop_event and stop_event.is_set()):
                claimed = self._store(
                    outbox.claim,
                    self.engine,
                    channel=channel,
                    worker=self.worker_id,
                    limit=self.claim_limit(channel),
                    lease_seconds=self.lease_seconds,
                    now=self._now(),
                )
                if not claimed:
                    return
                stats.claimed += len(claimed)
                # Stop sending a claim well before its lease ends (10%, at most 30 s).
                deadline = self._clock() + self.lease_seconds - min(30.0, self.lease_seconds / 10)
                if not opened:
                    try:
                        messenger.open()
                        opened = True
                    except Exception as exc:
                        error = self._as_provider_error(exc, channel, "opening")
                        for message in claimed:
                            self._record_failure(message, error, stats)
                        return
                if self._send_all(channel, messenger, claimed, deadline, stats, stop_event):
                    return
        finally:
            if opened:
                try:
                    messenger.close()
                except Exception:
                    log.exception("closing the %s messenger failed", channel)

    def _send_all(
        self,
        channel: str,
        messenger: Messenger,
        claimed: Sequence[OutgoingMessage],
        deadline: float,
        stats: DispatchStats,
        stop_event: threading.Event | None,
    ) -> bool:
        """Send one claim; True if the channel must stop for this run."""
        pending = list(claimed)
        next_check = self._clock() + HALT_CHECK_SECONDS
        while pending:
            if (stop_event and stop_event.is_set()) or self._clock() > deadline:
                self._release(pending, stats)
                return True
            if self._clock() >= next_check:
                pending = self._drop_halted(pending, stats)
                next_check = self._clock() + HALT_CHECK_SECONDS
                continue
            self.pacers[channel].wait()
            if self._clock() > deadline:  # the lease ran out while waiting our turn
                self._release(pending, stats)
                return True
            message = pending.pop(0)
            try:
                result = messenger.send(message)
            except Exception as exc:
                error = self._as_provider_error(exc, channel, f"sending message {message.id}")
            else:
                if self._store(
                    outbox.record_sent,
                    self.engine,
                    message.id,
                    result,
                    self.worker_id,
                    now=self._now(),
                ):
                    stats.sent += 1
                    log.info(
                        "sent %s message %d to %s", channel, message.id, mask_address(message.to)
                    )
                else:
                    stats.lost += 1
                continue
            self._record_failure(message, error, stats)
            if isinstance(error, (RateLimited, AccountProblem)):
                if isinstance(error, RateLimited) and error.retry_after is not None:
                    wait = error.retry_after
                else:
                    wait = self.policy["retry_base_seconds"]
                self._release(pending, stats, not_before=self._now() + timedelta(seconds=wait))
                return True
            pending = self._drop_halted(pending, stats)
        return False

    # ---- helpers -------------------------------------------------------------------

    def _as_provider_error(self, exc: Exception, channel: str, doing: str) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        log.warning(
            "%s %s raised %s; treated as transient",
            channel,
            doing,
            type(exc).__name__,
            exc_info=True,
        )
        return Transient(f"{type(exc).__name__}: {exc}")

    def _record_failure(
        self, message: OutgoingMessage, error: ProviderError, stats: DispatchStats
    ) -> None:
        status = self._store(
            outbox.record_failure,
            self.engine,
            message.id,
            error,
            self.worker_id,
            now=self._now(),
            rng=self._rng,
            **self.policy,
        )
        detail = str(error).replace(message.to, mask_address(message.to)) if message.to else ""
        log.warning(
            "%s message %d to %s: %s (%s) -> %s",
            message.channel,
            message.id,
            mask_address(message.to),
            type(error).__name__,
            detail[:200],
            status,
        )
        if status is None:
            stats.lost += 1
        elif status == "queued":
            stats.retried += 1
        elif status == "failed":
            stats.failed += 1
        else:
            stats.cancelled += 1

    def _release(
        self,
        messages: Sequence[OutgoingMessage],
        stats: DispatchStats,
        not_before: datetime | None = None,
    ) -> None:
        if messages:
            ids = [m.id for m in messages]
            stats.released += self._store(
                outbox.release,
                self.engine,
                ids,
                self.worker_id,
                not_before=not_before,
                now=self._now(),
            )

    def _drop_halted(
        self, pending: list[OutgoingMessage], stats: DispatchStats
    ) -> list[OutgoingMessage]:
        if not pending:
            return pending
        stopped = self._store(outbox.halted, self.engine, [m.id for m in pending])
        if stopped:
            self._release([m for m in pending if m.id in stopped], stats)
        return [m for m in pending if m.id not in stopped]

    def _store(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call an outbox function, retrying a locked or unreachable store twice."""
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                return function(*args, **kwargs)
            except OperationalError:
                if attempt == STORE_ATTEMPTS:
                    raise
                log.warning("ops store busy in %s; retrying", function.__name__, exc_info=True)
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")
