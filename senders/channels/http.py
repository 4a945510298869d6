"""Shared HTTP plumbing for the SMS gateways: one client factory, one error classifier.

Every gateway talks HTTP through :func:`make_client` (timeout, proxy and User-Agent from
settings) and turns what went wrong into the :mod:`senders.base` exceptions with
:func:`request` (network trouble → :class:`Transient`) and :func:`classify_http`
(429 → :class:`RateLimited`, 5xx → :class:`Transient`, 401/403 → :class:`AccountProblem`).

Secrets never go into exception messages: anything taken from a provider's answer is
passed through :func:`redact` first.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Iterable
from importlib import metadata
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from schoolcomms.settings import Settings
from senders.base import AccountProblem, RateLimited, Rejected, Transient

try:
    _VERSION = metadata.version("schoolcomms")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    _VERSION = "dev"

USER_AGENT = f"schoolcomms/{_VERSION} (school communications hub; python-httpx)"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MASK = "********"


def make_client(settings: Settings, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An :class:`httpx.Client` for SMS gateways, configured from ``settings``.

    The timeout is ``sms_timeout_seconds`` (for connect, read, write and pool alike); the
    proxy is ``http_proxy`` when set. Proxy variables in the environment are ignored
    (``trust_env=False``) so that a blank ``http_proxy`` really means "connect directly",
    as the setting promises. ``transport`` replaces the network layer in tests.
    """
    proxy = str(settings.http_proxy or "").strip() or None
    return httpx.Client(
        timeout=httpx.Timeout(float(settings.sms_timeout_seconds)),
        proxy=proxy,
        transport=transport,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (raw or URL-encoded) replaced by ``********``."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote_plus(secret), quote(secret, safe="")}:
            text = text.replace(form, MASK)
    return text


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date).

    ``None`` when the header is missing or unreadable; a date in the past gives ``0.0``.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def body_snippet(
    response: httpx.Response, secrets: Iterable[str | None] = (), limit: int = 200
) -> str:
    """The start of a response body, on one line, secrets masked (for error messages)."""
    try:
        text = response.text
    except Exception:  # undecodable body: say so rather than fail while reporting
        return "<unreadable body>"
    text = redact(" ".join(text.split()), secrets)  # mask first: a cut could split a secret
    return text[:limit] + "…" if len(text) > limit else text


def classify_http(
    response: httpx.Response,
    *,
    provider: str = "gateway",
    detail: str | None = None,
    provider_status: str | None = None,
) -> None:
    """Raise the right :class:`~senders.base.ProviderError` for a failing HTTP status.

    429 → :class:`RateLimited` (with ``Retry-After`` in seconds), 5xx → :class:`Transient`,
    401/403 → :class:`AccountProblem`. Any other status returns ``None``: the caller reads
    the body (2xx, or a 4xx the provider explains). ``detail`` (already redacted) is added
    to the message; ``provider_status`` defaults to the HTTP status code.
    """
    code = response.status_code
    status = provider_status or str(code)
    suffix = f": {detail}" if detail else ""
    if code == 429:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        when = f"; retry after {wait:g}s" if wait is not None else ""
        raise RateLimited(
            f"{provider} is rate limiting us (HTTP 429{when}){suffix}",
            retry_after=wait,
            provider_status=status,
        )
    if code >= 500:
        raise Transient(f"{provider} had a server error (HTTP {code}){suffix}", status)
    if code in (401, 403):
        raise AccountProblem(
            f"{provider} refused our credentials (HTTP {code}){suffix}; check the account settings",
            status,
        )


def request(
    client: httpx.Client, method: str, url: str, *, provider: str, **kwargs: Any
) -> httpx.Response:
    """``client.request(...)``, with timeouts and network failures raised as :class:`Transient`.

    The message names the kind of failure only; it never includes the request (whose
    body or headers may hold credentials).
    """
    try:
        return client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise Transient(f"{provider} did not answer in time ({type(exc).__name__})") from exc
    except httpx.ProxyError as exc:
        raise Transient(f"the proxy refused or failed the request to {provider} ({exc})") from exc
    except httpx.TransportError as exc:
        raise Transient(f"could not reach {provider} ({type(exc).__name__}: {exc})") from exc


def check_e164(number: str, provider: str) -> str:
    """``number`` if it is E.164 (``+`` and 7–15 digits); otherwise :class:`Rejected`."""
    cleaned = number.strip()
    if not E164.match(cleaned):
        raise Rejected(
            f"{number!r} is not an international (E.164) mobile number, so {provider} cannot "
            "send to it",
            "invalid-number",
        )
    return cleaned
