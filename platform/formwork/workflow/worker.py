"""The background worker: due timers, then due mail, again and again.

``formwork worker`` runs ``work`` in a loop; ``--once`` runs one round (for cron). Any
number of workers may run against one PostgreSQL database: each job and each mail is
claimed by exactly one of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from formwork.workflow.actions import FlowEngine
from formwork.workflow.notify import Mailer, deliver_mail
from formwork.workflow.timers import run_due_jobs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Round:
    """What one round of the worker did."""

    jobs: int
    mails: int


def work(flows: FlowEngine, mailer: Mailer | None) -> Round:
    """Run the due timers, then mail the due notifications (none without a mailer)."""
    jobs = run_due_jobs(flows)
    mails = deliver_mail(flows.records.engine, flows.tables, mailer, flows.clock()) if mailer is not None else 0
    return Round(jobs, mails)


def work_forever(flows: FlowEngine, mailer: Mailer | None, pause: float = 10.0, keep_going: Callable[[], bool] = lambda: True) -> None:
    """Rounds of ``work`` with ``pause`` seconds between idle rounds, while ``keep_going()``."""
    while keep_going():
        done = work(flows, mailer)
        if done.jobs or done.mails:
            log.info("worker: %d timer job(s), %d mail(s)", done.jobs, done.mails)
            continue
        time.sleep(pause)
