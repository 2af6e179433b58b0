"""Timers: reminders, escalations and timeouts, kept as ``fw_job`` rows and run by workers.

A task that starts waiting for its approver gets its jobs (remind after, escalate after,
time out after, from the flow's definition). ``run_due_jobs`` claims one due job at a
time with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of workers on
any number of machines share the rows and never run one job twice; on SQLite the write
lock taken at BEGIN does the same. The job and its effects commit together.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from formwork.records.coerce import to_utc
from formwork.workflow.actions import FlowEngine

log = logging.getLogger(__name__)


def run_due_jobs(flows: FlowEngine, now: datetime | None = None, limit: int = 1000) -> int:
    """Run every job due at ``now`` (the engine's clock by default), at most ``limit``;
    return how many were run."""
    moment = to_utc(now or flows.clock())
    jobs = flows.tables["fw_job"]
    done = 0
    while done < limit:
        claimed: int | None = None
        try:
            with flows.records.transaction() as conn:
                claim = (
                    sa.select(jobs.c.id, jobs.c.kind, jobs.c.task_id)
                    .where(jobs.c.done_at.is_(None), jobs.c.due_at <= moment)
                    .order_by(jobs.c.due_at, jobs.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                job = conn.execute(claim).first()
                if job is None:
                    return done
                claimed = job.id
                outcome = flows.run_timer(job.kind, job.task_id, moment)
                conn.execute(jobs.update().where(jobs.c.id == job.id).values(done_at=moment, outcome=outcome))
        except Exception as error:
            # One job that cannot run (a plugin refusing the save, a bug) must not stop the
            # others: it is closed with its error for admins to see, and the worker goes on.
            if claimed is None:
                raise
            log.exception("timer job %s failed", claimed)
            with flows.records.transaction() as conn:
                failed = f"failed: {error.__class__.__name__}: {error}"[:300]
                conn.execute(jobs.update().where(jobs.c.id == claimed, jobs.c.done_at.is_(None)).values(done_at=moment, outcome=failed))
        done += 1
    return done


def pending_jobs(flows: FlowEngine) -> int:
    """How many jobs are waiting to run (due or not)."""
    jobs = flows.tables["fw_job"]
    with flows.records.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(jobs).where(jobs.c.done_at.is_(None))).scalar_one())
