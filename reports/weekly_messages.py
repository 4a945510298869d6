"""The weekly messages report: messages by channel, status and sender, and SMS cost."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
from sqlalchemy import Engine

from reports import messages as message_reports
from reports.weekly_content import ReportContent, base_chart, week_label
from schoolcomms.settings import Settings
from schoolcomms.warehouse import Warehouse

UK = ZoneInfo("Europe/London")


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=UK).astimezone(dt.UTC)


def build_messages(
    settings: Settings,
    warehouse: Warehouse | None,
    engine: Engine,
    week_start: dt.date,
    at: dt.datetime,
) -> ReportContent:
    """Messages created in the week by channel and status, by sender, and what SMS cost.

    SMS cost counts texts that were sent or delivered (what a provider charges for).
    """
    activity = message_reports.message_activity(
        engine, since=_utc(week_start), until=_utc(week_start + dt.timedelta(days=7))
    )
    by_status = message_reports.messages_by(activity, "channel", "status").rename(
        columns={"channel": "Channel", "status": "Status", "messages": "Messages"}
    )
    by_sender = message_reports.messages_by(activity, "created_by").rename(
        columns={"created_by": "Sent by", "messages": "Messages"}
    )
    charged = activity[
        (activity["channel"] == "sms") & activity["status"].isin(message_reports.CHARGED_STATUSES)
    ]
    cost_pence = round(float(charged["cost_pence"].fillna(0).sum()), 2)
    segments = int(charged["segments"].fillna(0).sum())
    cost = pd.DataFrame(
        {
            "Texts sent": [len(charged)],
            "Segments": [segments],
            "Cost (£)": [round(cost_pence / 100, 2)],
        }
    )
    days = activity.assign(
        day=activity["created_at"].dt.tz_convert(UK).dt.strftime("%Y-%m-%d"),
        segments=activity["segments"].fillna(0).astype("int64"),
        cost_pence=activity["cost_pence"].fillna(0.0),
    )
    per_day = (
        days.groupby(["day", "channel", "status"], as_index=False)
        .agg(messages=("status", "size"), segments=("segments", "sum"), cost=("cost_pence", "sum"))
        .rename(
            columns={
                "day": "Date",
                "channel": "Channel",
                "status": "Status",
                "messages": "Messages",
                "segments": "Segments",
                "cost": "Cost (p)",
            }
        )
    )
    per_day["Cost (p)"] = per_day["Cost (p)"].round(2)
    label = week_label(week_start)
    counts = activity["channel"].value_counts()
    if len(activity):
        parts = [
            f"{int(counts.get(c, 0)):,} {w}"
            for c, w in (("sms", "text(s)"), ("email", "e-mail(s)"), ("letter", "letter(s)"))
        ]
        intro = (
            f"{len(activity):,} message(s) were created in the week {label}: "
            f"{', '.join(parts)}. Texts sent cost £{cost_pence / 100:,.2f} "
            f"({segments:,} segment(s))."
        )
    else:
        intro = f"No messages were created in the week {label}."
    chart_data = per_day.groupby(["Date", "Channel"], as_index=False)["Messages"].sum()
    chart = (
        base_chart(chart_data, f"Messages per day, {label}")
        .mark_bar()
        .encode(
            x=alt.X("Date:O", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("Messages:Q"),
            color="Channel:N",
            tooltip=["Date:O", "Channel:N", "Messages:Q"],
        )
    )
    return ReportContent(
        name="messages",
        title="Messages sent and SMS cost",
        intro=intro,
        week_start=week_start,
        tables=[
            ("By channel and status", by_status),
            ("SMS cost", cost),
            ("By sender", by_sender),
        ],
        chart=chart,
        csv_name=f"messages-{week_start.isoformat()}.csv",
        csv=per_day,
        notes=["Days are UK dates; SMS cost counts texts sent or delivered."],
    )


__all__ = ["build_messages"]
