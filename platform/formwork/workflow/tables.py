"""The workflow's tables: flow instances, tasks, the timeline, timer jobs and notifications.

Everything the workflow knows lives in these rows (DESIGN.md principle 5): a web process
or worker that starts fresh finds every approval in flight, every reminder due and every
mail not yet sent here. ``add_workflow_tables`` adds them to the schema the storage stage
builds, so ``formwork migrate`` creates them like any other system table.
"""

from __future__ import annotations

import sqlalchemy as sa

WORKFLOW_TABLES = ("fw_flow_instance", "fw_task", "fw_timeline", "fw_job", "fw_notification")


def add_workflow_tables(metadata: sa.MetaData, user_table: str = "fw_user") -> None:
    """Define the workflow's system tables in ``metadata`` (user ids refer to ``user_table``)."""
    now = sa.func.current_timestamp()
    user_fk = f"{user_table}.id"
    sa.Table(
        # One run of a flow on one record. ``definition`` is the flow as it was when the run
        # started: a record in flight keeps it whatever the metadata says later.
        "fw_flow_instance",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(60), nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("title", sa.String(300), nullable=True),  # the record's title at submission
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),  # running | approved | rejected | withdrawn | returned
        sa.Column("step_index", sa.Integer, nullable=True),
        sa.Column("step_name", sa.String(100), nullable=True),
        # Raised each time a step is entered, so a step entered again (returned to) starts afresh.
        sa.Column("step_round", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("initiator_id", sa.Integer, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_urged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["initiator_id"], [user_fk], ondelete="SET NULL", name="fk_fw_flow_instance_initiator_id"),
        sa.Index("ix_fw_flow_instance_entity_record_id", "entity", "record_id"),
        sa.Index("ix_fw_flow_instance_initiator_id", "initiator_id"),
    )
    sa.Table(
        # One person's part in one step: an approval to give (kind approve) or a copy to read
        # (kind cc). ``group`` tasks follow the step's mode; added and delegated ones do not.
        "fw_task",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.Integer, nullable=False),
        sa.Column("entity", sa.String(60), nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
        sa.Column("flow", sa.String(100), nullable=False),
        # The record's title when the task was made: the inbox is one indexed query.
        sa.Column("title", sa.String(300), nullable=True),
        sa.Column("step_name", sa.String(100), nullable=True),
        sa.Column("step_index", sa.Integer, nullable=True),
        sa.Column("step_round", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("kind", sa.String(10), nullable=False),  # approve | cc
        sa.Column("role", sa.String(10), nullable=False),  # group | added | delegate
        sa.Column("assignee_id", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("follows_id", sa.Integer, nullable=True),  # waits for this task's approval
        sa.Column("origin_id", sa.Integer, nullable=True),  # transferred / delegated / added from
        sa.Column("added_by", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Integer, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("remind_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["fw_flow_instance.id"], ondelete="CASCADE", name="fk_fw_task_instance_id"),
        sa.ForeignKeyConstraint(["assignee_id"], [user_fk], ondelete="CASCADE", name="fk_fw_task_assignee_id"),
        # "waiting for me", newest first: a backward scan of this index, no sort
        sa.Index("ix_fw_task_assignee_id_state_id", "assignee_id", "state", "id"),
        sa.Index("ix_fw_task_decided_by", "decided_by"),
        sa.Index("ix_fw_task_instance_id", "instance_id"),
    )
    sa.Table(
        # What happened to a record's flow, in order: who, what, when, comment, for whom.
        "fw_timeline",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(60), nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
        sa.Column("instance_id", sa.Integer, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("on_behalf_of", sa.Integer, nullable=True),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("step_name", sa.String(100), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("details", sa.JSON, nullable=True),
        sa.Index("ix_fw_timeline_entity_record_id", "entity", "record_id"),
    )
    sa.Table(
        # A timer: remind, escalate or time out one task when ``due_at`` has come.
        "fw_job",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),  # remind | escalate | timeout
        sa.Column("task_id", sa.Integer, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(300), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["fw_task.id"], ondelete="CASCADE", name="fk_fw_job_task_id"),
        sa.Index("ix_fw_job_done_at_due_at", "done_at", "due_at"),
    )
    sa.Table(
        # A message for one user: shown in the app, and mailed when the user has an address.
        "fw_notification",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("entity", sa.String(60), nullable=True),
        sa.Column("record_id", sa.Integer, nullable=True),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("link", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], [user_fk], ondelete="CASCADE", name="fk_fw_notification_user_id"),
        sa.Index("ix_fw_notification_user_id_read_at", "user_id", "read_at"),
        sa.Index("ix_fw_notification_next_attempt_at", "next_attempt_at"),
    )
