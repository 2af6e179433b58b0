"""Timers with an injected clock: reminders, their maximum, escalation, timeouts, two
workers sharing the job rows without running one twice; statistics over time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from workflow_deployment import Company

from formwork.workflow.stats import approval_stats
from formwork.workflow.timers import pending_jobs, run_due_jobs


@pytest.fixture
def company(tmp_path: Path, db_url: str) -> Iterator[Company]:
    made = Company(tmp_path, db_url)
    yield made
    made.close()


def notifications(company: Company, username: str, event: str) -> int:
    table = company.tables["fw_notification"]
    with company.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table).where(table.c.user_id == company.user_id(username), table.c.event == event)
        return int(conn.execute(query).scalar_one())


def test_reminder_after_a_day_at_most_twice(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.advance(hours=23)
    assert run_due_jobs(company.flows) == 0
    company.advance(hours=1)
    assert run_due_jobs(company.flows) == 1
    assert notifications(company, "mary", "remind") == 1
    company.advance(hours=24)
    run_due_jobs(company.flows)
    company.advance(hours=24)
    run_due_jobs(company.flows)
    assert notifications(company, "mary", "remind") == 2  # max: 2
    assert [a for a, _ in company.timeline(request)].count("remind") == 2


def test_escalation_hands_the_task_to_the_approvers_manager(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.advance(hours=72)
    run_due_jobs(company.flows)
    assert company.waiting("mary") == [] and company.waiting("chen") == [request["id"]]
    assert ("escalate", "system") in company.timeline(request)
    assert notifications(company, "chen", "escalated") == 1
    company.act("chen", request, "approve")
    assert company.status(request) == "approved"


def test_decided_tasks_are_not_reminded(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.act("mary", request, "approve")
    company.advance(days=10)
    run_due_jobs(company.flows)
    assert notifications(company, "mary", "remind") == 0
    assert pending_jobs(company.flows) == 0


@pytest.mark.parametrize(("action", "status"), [("approve", "approved"), ("reject", "rejected")])
def test_timeout_decides(tmp_path: Path, db_url: str, action: str, status: str) -> None:
    text = f"""
        kind: approval
        name: purchase_approval
        entity: purchase_request
        steps:
          - {{name: manager, approvers: {{manager_of: requester}}}}
        timeout: {{after: 5d, action: {action}}}
        """
    company = Company(tmp_path, db_url, text)
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.advance(days=5)
    run_due_jobs(company.flows)
    assert company.status(request) == status
    assert ("timeout", "system") in company.timeline(request)
    company.close()


def test_two_workers_never_run_a_job_twice(company: Company) -> None:
    if not company.db_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises writers")
    for number in range(12):
        request = company.create("eve", title=f"Pens {number}", amount=50)
        company.act("eve", request, "submit")
    company.advance(hours=24)
    done: list[int] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        done.append(run_due_jobs(company.flows))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(done) == 12
    assert notifications(company, "mary", "remind") == 12


def test_statistics_per_flow_step_and_approver(company: Company) -> None:
    times = (2, 4, 10)
    for number, hours in enumerate(times):
        request = company.create("eve", title=f"Pens {number}", amount=50)
        company.act("eve", request, "submit")
        company.advance(hours=hours)
        company.act("mary", request, "approve" if number else "reject", comment="why not")
    waiting = company.create("eve", title="Desk", amount=20000)
    company.act("eve", waiting, "submit")
    company.act("mary", waiting, "approve")
    company.advance(hours=30)
    with company.engine.connect() as conn:
        stats = approval_stats(conn, company.tables, company.now)
    (flow,) = stats["flows"]
    assert flow["runs"] == {"approved": 2, "rejected": 1, "running": 1}
    manager = next(s for s in stats["steps"] if s["step"] == "manager")
    assert (manager["approved"], manager["rejected"], manager["median_hours"], manager["p90_hours"]) == (3, 1, 3.0, 8.2)
    finance = next(s for s in stats["steps"] if s["step"] == "finance")
    assert (finance["pending"], finance["overdue"], finance["median_hours"]) == (2, 2, None)
    assert {a["approver"]: a["pending"] for a in stats["approvers"]} == {"mary": 0, "fred": 1, "fay": 1}
