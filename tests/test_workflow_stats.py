"""Approval statistics computed by the database: counts, median and 90th percentile of
the hours people took to decide, overdue tasks by the run's own reminder time, per flow,
step and approver, on both engines."""

from __future__ import annotations

import statistics
from pathlib import Path

from workflow_deployment import Company

from formwork.workflow.stats import approval_stats

APPROVAL = """
    kind: approval
    name: purchase_approval
    entity: purchase_request
    steps:
      - {name: manager, approvers: {manager_of: requester}}
      - {name: finance, when: "amount > 5000", approvers: {user: fred}}
    remind: {after: 10h}
    """


def reference_percentile(values: list[float], share: float) -> float:
    """The linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def test_figures_per_flow_step_and_approver(tmp_path: Path, db_url: str) -> None:
    company = Company(tmp_path, db_url, APPROVAL)
    hours = [1.0, 2.5, 7.0, 30.0, 0.25]
    for number, taken in enumerate(hours):
        request = company.create("eve", title=f"Chairs {number}", amount=9000 if number == 4 else 100)
        company.act("eve", request, "submit")
        company.advance(hours=taken)
        company.act("mary", request, "reject" if number == 1 else "approve", comment="ok")
    company.advance(hours=3)
    company.act("fred", {"id": request["id"]}, "approve")  # 3 hours at finance for the last one
    waiting = [company.create("eve", title=f"Desk {n}", amount=100) for n in range(2)]
    company.act("eve", waiting[0], "submit")
    company.advance(hours=11)  # past the 10h reminder: overdue
    company.act("eve", waiting[1], "submit")
    company.advance(hours=2)

    with company.engine.connect() as conn:
        stats = approval_stats(conn, company.tables, company.now)
        none = approval_stats(conn, company.tables, company.now, flow="other_flow")
    assert none == {"flows": [], "steps": [], "approvers": []}
    manager = next(s for s in stats["steps"] if s["step"] == "manager")
    assert {k: manager[k] for k in ("pending", "approved", "rejected", "overdue", "decisions")} == {
        "pending": 2, "approved": 4, "rejected": 1, "overdue": 1, "decisions": 5
    }
    assert manager["median_hours"] == round(statistics.median(hours), 2) == 2.5
    assert manager["p90_hours"] == round(reference_percentile(hours, 0.9), 2) == 20.8
    finance = next(s for s in stats["steps"] if s["step"] == "finance")
    assert (finance["approved"], finance["decisions"], finance["median_hours"], finance["p90_hours"]) == (1, 1, 3.0, 3.0)
    (flow,) = stats["flows"]
    assert flow["runs"] == {"approved": 4, "rejected": 1, "running": 2}
    assert flow["median_hours"] == round(statistics.median([*hours, 3.0]), 2)
    assert flow["p90_hours"] == round(reference_percentile([*hours, 3.0], 0.9), 2)
    assert [(a["approver"], a["decisions"], a["pending"]) for a in stats["approvers"]] == [("fred", 1, 0), ("mary", 5, 2)]
    company.close()
