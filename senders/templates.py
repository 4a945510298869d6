"""Message templates: sandboxed rendering of merge fields into messages.

Templates are Jinja2 text rendered in the sandboxed environments of
:mod:`senders.template_check` (plain, or HTML with escaping) and checked there when
they are saved (:func:`validate`). An e-mail body is written as plain text with blank
lines between paragraphs; :func:`render_message` renders it once and builds the HTML
part by escaping that text, so a pupil called ``<script>`` is escaped in HTML and
literal in the text part. The merge fields and context builders are in
:mod:`senders.merge_fields`.

Filters added to Jinja's own (``upper``, ``default``, ``join``, …):

- ``ukdate(style="long")``: a date as ``Friday 20 November 2026``; styles ``day``
  (``Friday 20 November``), ``medium`` (``20 November 2026``), ``short`` (``20/11/2026``).
- ``time``: a time as ``HH:MM`` (24 h), e.g. ``{{ detention.start|time }}``.

Every name that used to live here (merge fields, context builders, :func:`validate`,
the environments) is still importable from this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Template, TemplateSyntaxError
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from markupsafe import escape

from senders.merge_fields import (
    DATE_STYLES,
    LIST_GROUPS,
    MERGE_FIELDS,
    MERGE_GROUPS,
    UKDate,
    as_date,
    build_context,
    contact_fields,
    event_fields,
    hhmm,
    join_names,
    sample_context,
    student_fields,
    ukdate,
)
from senders.template_check import HTML_ENV, PLAIN_ENV, find_problems, validate

__all__ = [
    "DATE_STYLES",
    "FILTERS",
    "HTML_ENV",
    "LIST_GROUPS",
    "MERGE_FIELDS",
    "MERGE_GROUPS",
    "PLAIN_ENV",
    "Rendered",
    "TemplateProblem",
    "TemplateText",
    "UKDate",
    "as_date",
    "build_context",
    "contact_fields",
    "event_fields",
    "find_problems",
    "hhmm",
    "join_names",
    "preview",
    "render",
    "render_message",
    "sample_context",
    "student_fields",
    "text_to_html",
    "ukdate",
    "validate",
]

FILTERS: dict[str, str] = {
    "ukdate": "A date UK style: 'Friday 20 November 2026'; ukdate('day') 'Friday 20 "
    "November', ukdate('medium') '20 November 2026', ukdate('short') '20/11/2026'.",
    "time": "A time as HH:MM (24-hour).",
}
"""Filters the environments add to Jinja's own → help text."""


class TemplateProblem(ValueError):
    """A template that cannot be saved or rendered; ``problems`` are plain-English sentences."""

    def __init__(self, problems: str | Sequence[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class TemplateText:
    """A template as written: the channel, an optional subject and the body."""

    channel: str
    subject: str | None
    body: str


@dataclass
class Rendered:
    """A rendered message: subject (e-mail, letters), plain text and, for e-mail, HTML."""

    subject: str | None
    text: str
    html: str | None


# ---- rendering -------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _compiled(text: str, html: bool) -> Template:
    return (HTML_ENV if html else PLAIN_ENV).from_string(text)


def _prepare(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _prepare(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_prepare(v) for v in value]
    if isinstance(value, date) and not isinstance(value, datetime | UKDate):
        return as_date(value)
    return value


def render(text: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """Render ``text`` with ``context``; any failure is a :class:`TemplateProblem`."""
    try:
        return _compiled(text, html).render(_prepare(context))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"Line {exc.lineno}: syntax error: {exc.message}.") from exc
    except SecurityError as exc:
        raise TemplateProblem(f"The template uses something blocked for safety: {exc}") from exc
    except UndefinedError as exc:
        match = re.search(r"'(\w+)' is undefined|has no attribute '(\w+)'", str(exc))
        name = (match[1] or match[2]) if match else str(exc)
        message = f"This message has no value for '{name}', which the template uses."
        raise TemplateProblem(message) from exc
    except (TemplateError, ValueError, TypeError, ArithmeticError) as exc:
        raise TemplateProblem(f"The template could not be filled in: {exc}") from exc


_URL = re.compile(r"https?://[^\s<>\"']+?(?=[.,;:!?)]*(?:\s|$))")


def text_to_html(text: str) -> str:
    """Plain text as escaped HTML: blank-line paragraphs → ``<p>``, line breaks → ``<br>``."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n[ \t]*\n+", text.strip()) if p.strip()]
    out = []
    for paragraph in paragraphs:
        body = str(escape(paragraph)).replace("\n", "<br>\n")
        out.append("<p>" + _URL.sub(lambda m: f'<a href="{m[0]}">{m[0]}</a>', body) + "</p>")
    return "\n".join(out)


def render_message(template: TemplateText, context: Mapping[str, Any]) -> Rendered:
    """Render a template for one recipient; e-mail gets an HTML part built from the text.

    The subject is one line (runs of white space become one space). SMS has no
    subject; e-mail must have one (both raise :class:`TemplateProblem` otherwise).
    """
    subject = None
    if template.channel == "sms" and template.subject:
        raise TemplateProblem("An SMS has no subject; remove it.")
    if template.channel == "email" and not (template.subject or "").strip():
        raise TemplateProblem("An e-mail needs a subject.")
    if template.subject:
        subject = " ".join(render(template.subject, context).split())
    text = render(template.body, context).replace("\r\n", "\n").strip()
    html = text_to_html(text) if template.channel == "email" else None
    return Rendered(subject=subject, text=text, html=html)


def preview(text: str, context: Mapping[str, Any] | None = None, *, html: bool = False) -> str:
    """Render ``text`` with :func:`sample_context`, overridden group by group by ``context``.

    Problems (unknown fields, syntax, blocked constructs) raise :class:`TemplateProblem`.
    """
    problems = find_problems(text or "", html)
    if problems:
        raise TemplateProblem(problems)
    merged: dict[str, Any] = sample_context()
    for key, value in (context or {}).items():
        both = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
        merged[key] = {**merged[key], **value} if both else value
    return render(text, merged, html=html)
