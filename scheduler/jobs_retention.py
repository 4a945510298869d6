"""The scheduler's message_retention job: delete old message bodies, once a day.

Runs :func:`senders.retention.purge_bodies` with the scheduler's clock. The job table
entry (``scheduler/jobs.py``) is::

    JobSpec(
        "message_retention",
        dt.timedelta(days=1),
        message_retention_job,
        catch_up_rule="always: a missed day is made up at once (the purge covers every "
        "message older than the retention period)",
    )

A missed run needs no catching up beyond one run: each purge covers every message older
than the retention period, however long the scheduler was down.
"""

from __future__ import annotations

from scheduler.jobs import JobContext, JobResult

JOB_NAME = "message_retention"


def message_retention_job(ctx: JobContext) -> JobResult:
    """Purge message bodies past ``message_body_retention_days`` (skipped when it is 0).

    Counts: messages (bodies blanked), attachment_files, letter_batches, outbox_files.
    """
    from senders.retention import SETTING, purge_bodies

    result = purge_bodies(ctx.engine, ctx.settings, ctx.now(), actor="scheduler")
    if not result.enabled:
        return JobResult("skipped", {}, f"{SETTING} is 0: message bodies are kept for ever")
    counts = result.counts()
    assert result.cutoff is not None
    detail = (
        f"purged {result.messages} message bod(ies) finished before "
        f"{result.cutoff:%Y-%m-%d %H:%M} UTC"
        if any(counts.values())
        else ""
    )
    return JobResult(counts=counts, detail=detail)
