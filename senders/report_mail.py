"""A weekly report as an e-mail: an HTML table body, a CSV attachment and the chart as PNG.

:func:`render_report_email` is pure: it turns a :class:`reports.weekly.ReportContent`
into a subject, a plain-text body, an HTML body and the attachments' bytes. Every value
put into the HTML is escaped (pupils' and staff names come from MIS extracts). The CSV
is :func:`reports.export.csv_bytes` (spreadsheet formulas escaped, UTF-8 with a BOM so
Excel reads it); the chart is rendered to PNG with vl-convert.

The outbox sends attachments as files, so :func:`write_attachments` writes them under
``<data dir>/reports/<yyyy-mm-dd>/<tag>/`` (the send date, and a folder per send so
that two sends never overwrite each other's files), each file written whole before
it is renamed into place.

The chart is attached, not shown inline: the SMTP channel attaches files without a
Content-ID, so an ``<img src="cid:…">`` cannot point at it, and many mail programs
block ``data:`` images. :func:`render_report_page` (for ``schoolcomms report --out``)
shows it inline, as a file opened in a browser can.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from reports.export import csv_bytes
from reports.weekly import ReportContent, week_label
from schoolcomms.settings import Settings
from senders.outbox import NewMessage

log = logging.getLogger(__name__)

MAX_ROWS = 50
_CELL = "padding:4px 8px;border:1px solid #d0d7de;"
_HEAD = _CELL + "background:#f3f5f7;text-align:left;"
_NUMBER = _CELL + "text-align:right;"


@dataclass(frozen=True)
class Attachment:
    """A file to attach: its name as the recipient sees it, its bytes and MIME type."""

    name: str
    data: bytes
    mime: str


class RenderedReport(NamedTuple):
    """An e-mail ready to queue (see :func:`render_report_email`)."""

    subject: str
    text: str
    html: str
    attachments: list[Attachment]


def chart_png(chart: Any, scale: float = 2.0) -> bytes | None:
    """The Altair ``chart`` as PNG bytes, or None when there is no chart or it fails."""
    if chart is None:
        return None
    import vl_convert

    try:
        return bytes(vl_convert.vegalite_to_png(chart.to_json(), scale=scale))
    except Exception:  # a chart that cannot be drawn must not stop the report
        log.exception("Could not draw the report chart")
        return None


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def format_cell(value: Any, column: str = "") -> str:
    """A cell as text: blank for missing, 1 decimal place (2 for £), thousands commas."""
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if "£" in column else f"{value:,.1f}"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return f"{value:%H:%M}"
    return str(value)


def _values(frame: pd.DataFrame, column: str) -> list[str]:
    return [format_cell(v.item() if hasattr(v, "item") else v, column) for v in frame[column]]


def html_table(frame: pd.DataFrame, max_rows: int = MAX_ROWS) -> str:
    """``frame`` as an HTML table with inline styles (mail programs drop style sheets).

    Headers and cells are escaped; numeric columns are right-aligned. At most
    ``max_rows`` rows, then a line saying how many more the CSV attachment holds.
    """
    if frame.empty:
        return '<p style="color:#555"><em>None.</em></p>'
    shown = frame.head(max_rows)
    numeric = {c: _is_number(frame[c]) for c in frame.columns}
    head = "".join(f'<th style="{_HEAD}">{html.escape(str(c))}</th>' for c in frame.columns)
    columns = {c: _values(shown, c) for c in frame.columns}
    rows = []
    for i in range(len(shown)):
        cells = "".join(
            f'<td style="{_NUMBER if numeric[c] else _CELL}">{html.escape(columns[c][i])}</td>'
            for c in frame.columns
        )
        rows.append(f"<tr>{cells}</tr>")
    table = (
        '<table style="border-collapse:collapse;font-size:13px;margin-bottom:6px">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    more = len(frame) - len(shown)
    if more > 0:
        table += f'<p style="color:#555"><small>… and {more:,} more (see the CSV).</small></p>'
    return table


def text_table(frame: pd.DataFrame, max_rows: int = MAX_ROWS) -> str:
    """``frame`` as fixed-width plain text, with the same row limit as :func:`html_table`."""
    if frame.empty:
        return "  None."
    shown = frame.head(max_rows)
    text = pd.DataFrame({c: _values(shown, c) for c in frame.columns}).to_string(index=False)
    more = len(frame) - len(shown)
    return text + (f"\n  … and {more:,} more (see the CSV)." if more > 0 else "")


def subject_line(content: ReportContent, school_name: str) -> str:
    """``<school>: <title>, week of 16–22 November 2026`` on one line."""
    text = f"{school_name}: {content.title}, week {week_label(content.week_start)}"
    return " ".join(text.split())


def png_name(content: ReportContent) -> str:
    """The chart's file name, next to the CSV's."""
    return re.sub(r"\.csv$", "", content.csv_name) + ".png"


def _document(content: ReportContent, school_name: str, chart_html: str) -> tuple[str, str]:
    esc = html.escape
    parts = [
        f'<h2 style="margin:0 0 4px 0">{esc(content.title)}</h2>',
        f'<p style="margin:0 0 12px 0;color:#555">{esc(school_name)} · week '
        f"{esc(week_label(content.week_start))}</p>",
        f"<p>{esc(content.intro)}</p>",
        chart_html,
    ]
    texts = [
        content.title,
        f"{school_name}, week {week_label(content.week_start)}",
        "",
        content.intro,
        "",
    ]
    for heading, frame in content.tables:
        parts.append(f'<h3 style="margin:16px 0 6px 0">{esc(heading)}</h3>')
        parts.append(html_table(frame))
        texts += [heading, text_table(frame), ""]
    for note in content.notes:
        parts.append(f'<p style="color:#555"><small>{esc(note)}</small></p>')
        texts.append(note)
    return "\n".join(parts), "\n".join(texts)


def _wrap(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        '<body style="font-family:Arial,Helvetica,sans-serif;color:#222;font-size:14px">'
        f"{body}</body></html>"
    )


def render_report_email(content: ReportContent, school_name: str) -> RenderedReport:
    """The e-mail of a report: ``(subject, text, html, attachments)``.

    Attachments: the CSV (``content.csv_name``) and, when the chart can be drawn, the
    chart as PNG (same name, ``.png``). The result is a named 4-tuple.
    """
    png = chart_png(content.chart)
    attachments = [Attachment(content.csv_name, csv_bytes(content.csv), "text/csv")]
    if png is not None:
        attachments.append(Attachment(png_name(content), png, "image/png"))
    names = " and ".join(a.name for a in attachments)
    body, text = _document(content, school_name, "")
    footer = f"Attached: {names}. The CSV opens in Excel" + (
        "; the PNG is the chart." if png is not None else "."
    )
    body += f'\n<p style="color:#555"><small>{html.escape(footer)}</small></p>'
    text += f"\n{footer}\n\n— schoolcomms weekly reports"
    subject = subject_line(content, school_name)
    return RenderedReport(subject, text, _wrap(subject, body), attachments)


def render_report_page(content: ReportContent, school_name: str) -> str:
    """The report as a stand-alone HTML page with the chart inline (for ``--out``)."""
    png = chart_png(content.chart)
    chart = ""
    if png is not None:
        encoded = base64.b64encode(png).decode("ascii")
        chart = (
            f'<p><img alt="{html.escape(content.title)} chart" style="max-width:100%" '
            f'src="data:image/png;base64,{encoded}"></p>'
        )
    body, _ = _document(content, school_name, chart)
    return _wrap(subject_line(content, school_name), body)


def report_folder(data_dir: Path, day: dt.date, tag: str) -> Path:
    """``<data dir>/reports/<yyyy-mm-dd>/<tag>``: where one send's attachments go."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", tag).strip("-.") or "report"
    return Path(data_dir) / "reports" / day.isoformat() / safe


def write_attachments(attachments: list[Attachment], folder: Path) -> list[Path]:
    """Write each attachment into ``folder`` (created); return the paths, in order.

    Each file is written to a temporary name, synced and renamed, so a file the outbox
    points at is always complete.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for attachment in attachments:
        path = folder / attachment.name
        tmp = folder / f".{attachment.name}.{uuid.uuid4().hex}.tmp"  # unique per writer
        with tmp.open("wb") as handle:
            handle.write(attachment.data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        paths.append(path)
    return paths


def report_messages(
    settings: Settings, content: ReportContent, recipients: Sequence[str], key: str, folder: Path
) -> tuple[list[NewMessage], list[Path]]:
    """The outbox e-mails of a report, one per recipient, and the attachment files.

    The attachments are written into ``folder`` first; each message's idempotency key
    is ``<key>:<address in lower case>``.
    """
    subject, text, html_body, attachments = render_report_email(
        content, str(settings["school_name"])
    )
    paths = write_attachments(attachments, folder)
    messages = [
        NewMessage(
            "email",
            to,
            text,
            subject=subject,
            html=html_body,
            attachments=tuple(paths),
            template_name=f"report:{content.name}",
            idempotency_key=f"{key}:{to.lower()}",
        )
        for to in recipients
    ]
    return messages, paths


__all__ = [
    "MAX_ROWS",
    "Attachment",
    "RenderedReport",
    "chart_png",
    "format_cell",
    "html_table",
    "png_name",
    "render_report_email",
    "render_report_page",
    "report_folder",
    "report_messages",
    "subject_line",
    "text_table",
    "write_attachments",
]
