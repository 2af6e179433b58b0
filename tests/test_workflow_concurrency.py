"""Approvers acting at the same moment, with real threads on PostgreSQL: on an ``any`` step
exactly one decision wins and the other is told who decided; on an ``all`` step both
approvals count exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from workflow_deployment import Company

from formwork.workflow.errors import ActionConflict


def approval(mode: str) -> str:
    return f"""
        kind: approval
        name: purchase_approval
        entity: purchase_request
        steps:
          - {{name: finance, approvers: {{role: finance}}, mode: {mode}}}
        """


def race(company: Company, request: dict, who: tuple[str, ...]) -> dict[str, object]:
    """Let ``who`` approve at once; each name maps to its result or its conflict."""
    actors = {name: company.actor(name) for name in who}
    barrier = threading.Barrier(len(who))
    outcome: dict[str, object] = {}

    def approve(name: str) -> None:
        barrier.wait()
        try:
            outcome[name] = company.flows.act("purchase_request", request["id"], "approve", actors[name]).status
        except ActionConflict as conflict:
            outcome[name] = conflict

    threads = [threading.Thread(target=approve, args=(name,)) for name in who]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


@pytest.fixture
def pg_url(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("the race is shown on PostgreSQL, where transactions really run side by side")
    return db_url


def test_any_step_exactly_one_decision_wins(tmp_path: Path, pg_url: str) -> None:
    company = Company(tmp_path, pg_url, approval("any"))
    for attempt in range(3):
        request = company.create("eve", title=f"Pens {attempt}", amount=50)
        company.act("eve", request, "submit")
        outcome = race(company, request, ("fred", "fay"))
        winners = [name for name, result in outcome.items() if result == "approved"]
        losers = [result for result in outcome.values() if isinstance(result, ActionConflict)]
        assert len(winners) == 1 and len(losers) == 1
        assert f"already decided by {winners[0]}" in str(losers[0]) and losers[0].status == 409
        tasks = company.tables["fw_task"]
        with company.engine.connect() as conn:
            query = sa.select(tasks.c.state).where(tasks.c.kind == "approve", tasks.c.record_id == request["id"])
            states = sorted(r.state for r in conn.execute(query))
        assert states == ["approved", "cancelled"]
        assert [a for a, _ in company.timeline(request)].count("approve") == 1
    company.close()


def test_all_step_counts_both_approvals_once(tmp_path: Path, pg_url: str) -> None:
    company = Company(tmp_path, pg_url, approval("all"))
    for attempt in range(3):
        request = company.create("eve", title=f"Pens {attempt}", amount=50)
        company.act("eve", request, "submit")
        outcome = race(company, request, ("fred", "fay"))
        assert sorted(str(v) for v in outcome.values()) == ["approved", "pending"]
        assert company.status(request) == "approved"
        assert [a for a, _ in company.timeline(request)].count("approve") == 2
        assert [a for a, _ in company.timeline(request)].count("finish") == 1
    company.close()
