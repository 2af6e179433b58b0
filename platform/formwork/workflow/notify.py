"""Notifications: in-app messages and their e-mail, delivered by the worker with retries.

An action queues one ``fw_notification`` row per person in its own transaction (so a
rolled-back action notifies nobody). The row is the in-app notification; when the user
has an e-mail address the worker also mails it over SMTP (``SMTP_URL``, e.g.
``smtp://user:password@mail.example.com:587?starttls=1&from=oa@example.com``), retrying a
failed delivery with growing pauses and, after ``MAX_ATTEMPTS``, marking it failed where
admins see it (``failed_notifications``).
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import sqlalchemy as sa

from formwork.records.coerce import to_utc

MAX_ATTEMPTS = 5
# Pause before the n-th retry: 1, 2, 4, 8 ... minutes.
FIRST_RETRY = timedelta(minutes=1)

# event -> (subject, body) templates; {title}, {step}, {who}, {link}, {comment} are filled in.
TEMPLATES: dict[str, tuple[str, str]] = {
    "task": ("Waiting for your approval: {title}", "{title} waits for your decision at step {step}.\n\n{link}"),
    "remind": ("Reminder: {title} waits for your approval", "{title} still waits for your decision at step {step}.\n\n{link}"),
    "urge": ("Please decide on {title}", "{who} asks you to decide on {title} (step {step}).\n{comment}\n\n{link}"),
    "escalated": ("Escalated to you: {title}", "{title} was not decided in time at step {step} and now waits for you.\n\n{link}"),
    "approved": ("Approved: {title}", "{title} was approved.\n\n{link}"),
    "rejected": ("Rejected: {title}", "{title} was rejected by {who}.\n{comment}\n\n{link}"),
    "returned": ("Returned to you: {title}", "{who} returned {title} to you.\n{comment}\n\n{link}"),
    "cc": ("For your information: {title}", "{who} sent you a copy of {title}.\n\n{link}"),
}


@dataclass(frozen=True)
class Mailer:
    """Where mail goes, read from an ``smtp://`` or ``smtps://`` URL."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    starttls: bool = False

    @classmethod
    def from_url(cls, url: str) -> Mailer:
        """A mailer from ``smtp://[user:password@]host[:port][?from=addr&starttls=1]``."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme or 'nothing'}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        ssl = parts.scheme == "smtps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if ssl else 25),
            sender=query.get("from", "formwork@localhost"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=ssl,
            starttls=query.get("starttls") in ("1", "true", "yes"),
        )

    def send(self, to: str, subject: str, body: str) -> None:
        """Send one plain-text message; raises ``OSError``/``smtplib.SMTPException`` on failure."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        client = smtplib.SMTP_SSL if self.ssl else smtplib.SMTP
        with client(self.host, self.port, timeout=30) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


def queue(
    conn: sa.Connection,
    tables: Mapping[str, sa.Table],
    user_ids: Iterable[int],
    event: str,
    *,
    entity: str,
    record_id: int,
    at: datetime,
    values: Mapping[str, Any],
) -> None:
    """Queue the ``event`` notification for each user (once each), filled from ``values``."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    users = tables["fw_user"]
    emails = {r.id: r.email for r in conn.execute(sa.select(users.c.id, users.c.email).where(users.c.id.in_(ids)))}
    subject_template, body_template = TEMPLATES[event]
    filled = {k: "" if v is None else v for k, v in values.items()}
    link = f"/admin/{entity}/edit/?id={record_id}"
    subject = subject_template.format(link=link, **filled)[:300]
    body = body_template.format(link=link, **filled)
    rows = [
        {
            "user_id": user_id,
            "event": event,
            "entity": entity,
            "record_id": record_id,
            "subject": subject,
            "body": body,
            "link": link,
            "created_at": at,
            "email": emails.get(user_id),
            "next_attempt_at": at if emails.get(user_id) else None,
        }
        for user_id in ids
        if user_id in emails
    ]
    if rows:
        conn.execute(tables["fw_notification"].insert(), rows)


def deliver_mail(engine: sa.Engine, tables: Mapping[str, sa.Table], mailer: Mailer, now: datetime, limit: int = 100) -> int:
    """Mail the notifications that are due, each claimed in its own transaction (``FOR
    UPDATE SKIP LOCKED`` on PostgreSQL, so workers never mail one twice); return how many
    were sent. A failure is retried after 1, 2, 4 ... minutes, then marked failed."""
    table = tables["fw_notification"]
    sent = 0
    for _ in range(limit):
        with engine.connect() as conn:
            conn.execution_options(formwork_begin_immediate=True)
            with conn.begin():
                due = (
                    sa.select(table)
                    .where(table.c.sent_at.is_(None), table.c.failed_at.is_(None), table.c.next_attempt_at.is_not(None), table.c.next_attempt_at <= now)
                    .order_by(table.c.next_attempt_at, table.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                row = conn.execute(due).mappings().first()
                if row is None:
                    return sent
                try:
                    mailer.send(row["email"], row["subject"], row["body"])
                except (OSError, smtplib.SMTPException) as error:
                    conn.execute(table.update().where(table.c.id == row["id"]).values(**_failure(row, now, error)))
                else:
                    conn.execute(table.update().where(table.c.id == row["id"]).values(sent_at=now, attempts=row["attempts"] + 1))
                    sent += 1
    return sent


def _failure(row: Mapping[str, Any], now: datetime, error: Exception) -> dict[str, Any]:
    attempts = row["attempts"] + 1
    values: dict[str, Any] = {"attempts": attempts, "last_error": f"{error.__class__.__name__}: {error}"[:2000]}
    if attempts >= MAX_ATTEMPTS:
        values.update(failed_at=now, next_attempt_at=None)
    else:
        values["next_attempt_at"] = now + FIRST_RETRY * (2 ** (attempts - 1))
    return values


def notifications_of(conn: sa.Connection, tables: Mapping[str, sa.Table], user_id: int, unread_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    """A user's in-app notifications, newest first."""
    table = tables["fw_notification"]
    query = sa.select(table).where(table.c.user_id == user_id)
    if unread_only:
        query = query.where(table.c.read_at.is_(None))
    rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit)).mappings()
    return [_shown(row) for row in rows]


def mark_read(conn: sa.Connection, tables: Mapping[str, sa.Table], user_id: int, now: datetime, ids: Iterable[int] | None = None) -> int:
    """Mark the user's unread notifications (those of ``ids``, or all when None) read at
    ``now``; returns how many changed. Others' notifications are never touched."""
    table = tables["fw_notification"]
    query = sa.update(table).where(table.c.user_id == user_id, table.c.read_at.is_(None)).values(read_at=now)
    if ids is not None:
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        query = query.where(table.c.id.in_(wanted))
    return int(conn.execute(query).rowcount or 0)


def failed_notifications(conn: sa.Connection, tables: Mapping[str, sa.Table], limit: int = 100) -> list[dict[str, Any]]:
    """Mail that could not be delivered after every retry, newest first (for admins)."""
    table = tables["fw_notification"]
    rows = conn.execute(sa.select(table).where(table.c.failed_at.is_not(None)).order_by(table.c.id.desc()).limit(limit)).mappings()
    return [_shown(row) for row in rows]


def _shown(row: Mapping[str, Any]) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return to_utc(value).isoformat() if value is not None else None

    return {
        "id": row["id"],
        "event": row["event"],
        "entity": row["entity"],
        "record_id": row["record_id"],
        "subject": row["subject"],
        "body": row["body"],
        "link": row["link"],
        "created_at": when(row["created_at"]),
        "read_at": when(row["read_at"]),
        "email": row["email"],
        "sent_at": when(row["sent_at"]),
        "attempts": row["attempts"],
        "failed_at": when(row["failed_at"]),
        "last_error": row["last_error"],
    }

