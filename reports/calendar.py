"""Staff calendars from ICS (iCalendar) feeds and files: the events of the coming days.

An ICS file (a Google Calendar "secret address in iCal format", an Outlook published
calendar, an exported ``.ics``) is parsed with ``icalendar`` and its recurring events are
expanded with ``recurring-ical-events``: RRULE and RDATE, EXDATE exceptions, moved or
changed occurrences (RECURRENCE-ID), all-day events, TZID time zones (with or without a
VTIMEZONE block) and Google's ``X-WR-TIMEZONE``. Every event comes back in naive UK local
time, like the warehouse, so a weekly 14:15 meeting in Chicago shows at 20:15 most weeks
and at 19:15 in the week between the UK's and the USA's clock changes. Times with no
time zone at all ("floating") are taken as UK local time. Cancelled occurrences are left
out.

Fetching a feed (:func:`fetch_ics`) uses httpx with a short timeout; every problem is a
:class:`CalendarError` whose message says what is wrong and what to do, and never shows
the full address (a calendar's secret address is as good as a password).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pandas as pd
import recurring_ical_events

UK = ZoneInfo("Europe/London")
DEFAULT_DAYS = 8  # today and the next 7 days
MAX_EVENTS = 500  # per calendar and window: a runaway rule must not hang the page
MAX_BYTES = 5_000_000
TIMEOUT_SECONDS = 5.0
EVENT_COLUMNS = ["day", "start", "end", "all_day", "title", "location", "calendar"]
GOOGLE_HINT = (
    "For Google Calendar use Settings → your calendar → “Secret address in iCal format”; "
    "for Outlook, Publish calendar → the ICS link."
)


class CalendarError(ValueError):
    """A calendar that cannot be fetched or read; the message says what to do."""


@dataclass(frozen=True)
class CalendarEvent:
    """One occurrence of an event, in naive UK local time (``end`` is exclusive)."""

    title: str
    start: dt.datetime
    end: dt.datetime
    all_day: bool = False
    location: str = ""
    calendar: str = ""
    uid: str = ""

    def when(self) -> str:
        """The time of day as shown to people: ``All day`` or ``09:00–10:00``."""
        if self.all_day:
            days = (self.end.date() - self.start.date()).days
            return "All day" if days <= 1 else f"All day ({days} days)"
        if self.end.date() != self.start.date():
            return f"{self.start:%H:%M}–{self.end:%a %H:%M}"
        if self.end == self.start:
            return f"{self.start:%H:%M}"
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


def server_name(url: str) -> str:
    """The server named by ``url`` (for messages and the audit log, never the whole address)."""
    try:
        return httpx.URL(url).host or "that address"
    except Exception:  # an address httpx cannot even split: name no part of it
        return "that address"


def normalise_url(url: str) -> str:
    """The feed address to fetch: ``webcal://`` becomes ``https://``; others are refused."""
    text = (url or "").strip()
    if text.lower().startswith("webcal://"):
        text = "https://" + text[len("webcal://") :]
    try:
        parsed = httpx.URL(text)
    except Exception:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise CalendarError(
            "A calendar address starts with https:// (or webcal://) and names a server. "
            + GOOGLE_HINT
        )
    return text


def _decode(data: str | bytes) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8-sig", errors="replace")
    return data.lstrip("\ufeff")


def parse_calendar(data: str | bytes) -> icalendar.Calendar:
    """The calendar in ``data`` (ICS text); :class:`CalendarError` if it is not one."""
    text = _decode(data).strip()
    if not text:
        raise CalendarError("The calendar is empty. " + GOOGLE_HINT)
    if not text[:200].upper().startswith("BEGIN:VCALENDAR"):
        if text[:200].lstrip().startswith("<"):
            raise CalendarError(
                "That address gave a web page, not a calendar (it may need signing in). "
                + GOOGLE_HINT
            )
        raise CalendarError(
            "This is not an iCalendar (.ics) file: it does not start with BEGIN:VCALENDAR. "
            + GOOGLE_HINT
        )
    try:
        return icalendar.Calendar.from_ical(text)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CalendarError(
            f"The calendar file is damaged or cut short and cannot be read ({first}). Export it again."
        ) from exc


def calendar_name(calendar: icalendar.Calendar) -> str:
    """The calendar's own name (``X-WR-CALNAME``), or ''."""
    return str(calendar.get("X-WR-CALNAME", "") or "").strip()


def _local(value: dt.date | dt.datetime) -> dt.datetime:
    """A DTSTART/DTEND value as a naive UK local datetime (dates at midnight)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value  # floating time: the viewer's (UK) local time
        return value.astimezone(UK).replace(tzinfo=None)
    return dt.datetime.combine(value, dt.time())


def _event(component: Any, source: str) -> CalendarEvent | None:
    if str(component.get("STATUS", "")).upper() == "CANCELLED":
        return None
    start_value = component.get("DTSTART")
    if start_value is None:
        return None
    raw_start = start_value.dt
    all_day = not isinstance(raw_start, dt.datetime)
    start = _local(raw_start)
    end_value = component.get("DTEND")
    if end_value is not None:
        end = _local(end_value.dt)
    elif component.get("DURATION") is not None:
        end = _local(raw_start + component["DURATION"].dt)
    else:
        # RFC 5545: no end means one day for a date, the instant itself for a date-time.
        end = start + dt.timedelta(days=1) if all_day else start
    return CalendarEvent(
        title=str(component.get("SUMMARY", "") or "").strip() or "(no title)",
        start=start,
        end=max(end, start),
        all_day=all_day,
        location=str(component.get("LOCATION", "") or "").strip(),
        calendar=source,
        uid=str(component.get("UID", "") or ""),
    )


def _occurrences(calendar: icalendar.Calendar, start: dt.datetime) -> Iterator[Any]:
    query = recurring_ical_events.of(calendar, skip_bad_series=True)
    return iter(query.after(start.replace(tzinfo=UK)))


def events_between(
    data: str | bytes | icalendar.Calendar,
    start: dt.datetime,
    end: dt.datetime,
    *,
    source: str | None = None,
    limit: int = MAX_EVENTS,
) -> list[CalendarEvent]:
    """Occurrences overlapping ``start``..``end`` (naive UK local), in order of start.

    ``source`` names the calendar on each event (default: its ``X-WR-CALNAME``). At most
    ``limit`` events are returned. :class:`CalendarError` if the calendar cannot be read.
    """
    calendar = data if isinstance(data, icalendar.Calendar) else parse_calendar(data)
    name = calendar_name(calendar) if source is None else source
    found: list[CalendarEvent] = []
    # Occurrences come in order of start; a day's slack covers all-day and floating
    # events, which the library orders by their own midnight rather than the UK's.
    stop = end + dt.timedelta(days=1)
    try:
        for component in _occurrences(calendar, start):
            event = _event(component, name)
            if event is None:
                continue
            if event.start >= stop:
                break
            overlaps = event.end > start or (event.end == event.start >= start)
            if event.start < end and overlaps:
                found.append(event)
            if len(found) >= limit:
                break
    except CalendarError:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CalendarError(
            f"The calendar's repeating events cannot be worked out ({first}). "
            "Export it again, or tell your administrator."
        ) from exc
    return sorted(found, key=lambda e: (e.start, not e.all_day, e.end, e.title))


def upcoming_events(
    data: str | bytes | icalendar.Calendar,
    *,
    today: dt.date,
    days: int = DEFAULT_DAYS,
    source: str | None = None,
) -> list[CalendarEvent]:
    """The events of ``today`` and the following ``days - 1`` days (UK local time)."""
    start = dt.datetime.combine(today, dt.time())
    return events_between(data, start, start + dt.timedelta(days=days), source=source)


def events_frame(events: list[CalendarEvent], *, today: dt.date | None = None) -> pd.DataFrame:
    """Events as a table: day (the first day shown, not before ``today``), start, end, …"""
    rows = [
        {
            "day": max(e.start.date(), today) if today else e.start.date(),
            "start": e.start,
            "end": e.end,
            "all_day": e.all_day,
            "title": e.title,
            "location": e.location,
            "calendar": e.calendar,
        }
        for e in events
    ]
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def check_public_host(host: str) -> None:
    """Raise :class:`CalendarError` if ``host`` is, or resolves to, a non-public address."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return  # unresolvable: the fetch itself reports it in words
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            raise CalendarError(
                f"The calendar address points at {host}, inside a private network; only "
                "public calendar addresses can be read (an administrator can allow private "
                "ones with the setting calendar_allow_private_hosts)."
            )


def fetch_ics(
    url: str,
    *,
    timeout: float = TIMEOUT_SECONDS,
    max_bytes: int = MAX_BYTES,
    transport: httpx.BaseTransport | None = None,
    allow_private: bool = False,
) -> str:
    """The ICS text at ``url`` (checked to be a calendar); :class:`CalendarError` if not.

    Redirects are followed; a slow server gives up after ``timeout`` seconds; more than
    ``max_bytes`` is refused. Messages name the server, never the whole (secret) address.
    Unless ``allow_private``, an address (or a redirect) to a loopback, private or
    link-local host is refused, so a user cannot make the server fetch from inside the
    school's network.
    """
    address = normalise_url(url)
    host = server_name(address)
    chunks: list[bytes] = []
    size = 0

    def refuse_private(request: httpx.Request) -> None:
        if not allow_private:
            check_public_host(request.url.host)

    try:
        with (
            httpx.Client(
                timeout=httpx.Timeout(timeout),
                follow_redirects=True,
                transport=transport,
                event_hooks={"request": [refuse_private]},
                headers={"User-Agent": "schoolcomms calendar reader", "Accept": "text/calendar"},
            ) as client,
            client.stream("GET", address) as response,
        ):
            if response.status_code in (401, 403, 404, 410):
                raise CalendarError(
                    f"{host} refused the calendar (HTTP {response.status_code}): the address "
                    "is wrong, was reset, or is not public. " + GOOGLE_HINT
                )
            if response.status_code >= 400:
                raise CalendarError(
                    f"{host} could not give the calendar just now (HTTP "
                    f"{response.status_code}); it will be tried again in a few minutes."
                )
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise CalendarError(
                        f"The calendar at {host} is larger than {max_bytes // 1_000_000} MB; "
                        "share a smaller calendar (for example without years of history)."
                    )
                chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise CalendarError(
            f"{host} did not answer within {timeout:g} seconds; the calendar will be tried "
            "again in a few minutes."
        ) from exc
    except httpx.HTTPError as exc:
        raise CalendarError(
            f"Could not reach {host} to read the calendar ({type(exc).__name__}); check the "
            "address, or try again later."
        ) from exc
    text = _decode(b"".join(chunks))
    parse_calendar(text)
    return text
