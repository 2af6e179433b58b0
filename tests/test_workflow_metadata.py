"""``formwork validate`` on approvals and workflows: a step that can never be reached, an
editable field nobody can change, a timer a timeout always beats; each reported with its
place, code and hint, all at once, and nothing compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from metadata_project import problem_lines, write_project

from formwork.cli import cli

BASE = {
    "metadata/expense.yaml": """
        kind: entity
        name: expense
        title_field: title
        fields:
          title: {type: string, required: true}
          amount: {type: decimal, digits: [12, 2]}
          tax: {type: decimal, digits: [12, 2], compute: "amount * 0.1"}
          code: {type: string, read_only: true}
          reviewer: {type: link, to: user}
        """,
    "metadata/finance.yaml": "kind: role\nname: finance\n",
}


def approval(steps: str, extra: str = "") -> dict[str, str]:
    return {"metadata/expense_approval.yaml": f"kind: approval\nname: expense_approval\nentity: expense\nsteps:\n{steps}{extra}"}


CASES = [
    pytest.param(
        approval(
            "  - {name: lead, approvers: {role: finance}}\n"
            "  - {name: audit, when: 'False', approvers: {role: finance}}\n"
            "  - {name: board, when: 'amount > 1000 and 1 > 2', approvers: {role: finance}}\n"
            "  - {name: cfo, when: 'not (amount > 5 or True)', approvers: {role: finance}}\n"
        ),
        [
            "metadata/expense_approval.yaml:6: steps[1].when: [FW-E238] step 'audit' can never be reached: its condition 'False' is always false — fix the condition, or remove the step",
            "metadata/expense_approval.yaml:7: steps[2].when: [FW-E238] step 'board' can never be reached: its condition 'amount > 1000 and 1 > 2' is always false — fix the condition, or remove the step",
            "metadata/expense_approval.yaml:8: steps[3].when: [FW-E238] step 'cfo' can never be reached: its condition 'not (amount > 5 or True)' is always false — fix the condition, or remove the step",
        ],
        id="step_never_reached",
    ),
    pytest.param(
        approval("  - {name: lead, when: 'amout > 5', approvers: {role: finance}}\n"),
        [
            "metadata/expense_approval.yaml:5: steps[0].when: [FW-E406] unknown field 'amout' on expense (column 1 of \"amout > 5\") — did you mean 'amount'?",
        ],
        id="condition_names_an_unknown_field",
    ),
    pytest.param(
        approval("  - {name: lead, approvers: {role: finance}, editable: [amount, tax, code, created_at, reviewer], hidden: [reviewer]}\n"),
        [
            "metadata/expense_approval.yaml:5: steps[0].editable[1]: [FW-E239] 'tax' is editable at step 'lead' but nobody can change it there: it is computed — list the fields it is computed from instead",
            "metadata/expense_approval.yaml:5: steps[0].editable[2]: [FW-E239] 'code' is editable at step 'lead' but nobody can change it there: it is read_only — remove it from 'editable', or drop read_only from the field",
            "metadata/expense_approval.yaml:5: steps[0].editable[3]: [FW-E239] 'created_at' is editable at step 'lead' but nobody can change it there: it is set by the system — remove it from 'editable'",
            "metadata/expense_approval.yaml:5: steps[0].editable[4]: [FW-E239] 'reviewer' is editable at step 'lead' but nobody can change it there: it is also hidden — a field the approvers cannot see cannot be edited by them: keep it in one of the two lists",
        ],
        id="editable_field_nobody_can_change",
    ),
    pytest.param(
        {
            "metadata/expense_flow.yaml": """
                kind: workflow
                name: expense_flow
                entity: expense
                states: [{name: draft}, {name: paid, editable: [tax]}]
                transitions: [{name: pay, from: draft, to: paid}]
            """,
        },
        [
            "metadata/expense_flow.yaml:4: states[1].editable[0]: [FW-E239] 'tax' is editable at state 'paid' but nobody can change it there: it is computed — list the fields it is computed from instead",
        ],
        id="workflow_state_editable_computed",
    ),
    pytest.param(
        approval(
            "  - {name: lead, approvers: {role: finance}}\n",
            "remind: {after: 3d, every: 1d}\nescalate: {after: 2d, to: {role: finance}}\ntimeout: {after: 2d, action: approve}\n",
        ),
        [
            "metadata/expense_approval.yaml:6: remind.after: [FW-E240] remind after 3d never happens: the timeout approves the task after 2d — make remind.after shorter than timeout.after, or remove 'remind'",
            "metadata/expense_approval.yaml:7: escalate.after: [FW-E240] escalate after 2d never happens: the timeout approves the task after 2d — make escalate.after shorter than timeout.after, or remove 'escalate'",
        ],
        id="timer_after_the_timeout",
    ),
    pytest.param(
        approval("  - {name: lead, approvers: {role: finance}}\n  - {name: lead, approvers: {role: finance}}\n"),
        [
            "metadata/expense_approval.yaml:6: steps[1].name: [FW-E204] 'lead' appears twice in this list — first written at line 5",
        ],
        id="duplicate_step_names",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_flow_mistakes_are_reported(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    write_project(tmp_path, {**BASE, **files})
    assert problem_lines(tmp_path) == expected


def test_sound_conditions_and_timers_pass(tmp_path: Path) -> None:
    write_project(tmp_path, {**BASE, **approval(
        "  - {name: lead, when: 'amount > 1000 or 1 > 2', approvers: {role: finance}, editable: [amount], hidden: [reviewer]}\n"
        "  - {name: audit, when: 'True', approvers: {role: finance}}\n",
        "remind: {after: 1d}\nescalate: {after: 2d, to: {role: finance}}\ntimeout: {after: 3d, action: reject}\n",
    )})
    assert problem_lines(tmp_path) == []


def test_validate_reports_every_flow_problem_at_once(tmp_path: Path) -> None:
    write_project(tmp_path, {**BASE, **approval(
        "  - {name: lead, when: '1 == 2', approvers: {role: finance}, editable: [tax]}\n",
        "remind: {after: 5d}\ntimeout: {after: 1d, action: reject}\n",
    )})
    result = CliRunner().invoke(cli, ["validate", "--project", str(tmp_path)])
    assert result.exit_code != 0
    codes = re.findall(r"\[(FW-E\d{3})\]", result.output)
    assert codes == ["FW-E238", "FW-E239", "FW-E240"], result.output
    assert "3 problems found." in result.output and "Traceback" not in result.output
