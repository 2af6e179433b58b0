"""Notifications delivered to a real SMTP server on loopback (aiosmtpd), retried with
backoff when the server is away, and marked failed for admins after the last try."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from workflow_deployment import Company

from formwork.workflow.notify import (
    MAX_ATTEMPTS,
    Mailer,
    deliver_mail,
    failed_notifications,
    notifications_of,
)
from formwork.workflow.worker import work


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str, str]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802, ANN001 (aiosmtpd's hook)
        message = message_from_bytes(envelope.content)
        self.messages.append((list(envelope.rcpt_tos), str(message["Subject"]), message.get_payload(decode=True).decode()))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def company(tmp_path: Path, db_url: str) -> Iterator[Company]:
    made = Company(tmp_path, db_url)
    yield made
    made.close()


def test_the_approver_gets_a_mail_and_an_in_app_notification(company: Company, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    done = work(company.flows, Mailer.from_url(f"smtp://127.0.0.1:{port}?from=oa@example.com"))
    assert done.mails == 1
    ((to, subject, body),) = inbox.messages
    assert to == ["mary@example.com"] and subject == "Waiting for your approval: Pens"
    assert f"/admin/purchase_request/edit/?id={request['id']}" in body
    with company.engine.connect() as conn:
        (shown,) = notifications_of(conn, company.tables, company.user_id("mary"), unread_only=True)
    assert shown["subject"] == subject and shown["sent_at"] is not None
    assert work(company.flows, Mailer.from_url(f"smtp://127.0.0.1:{port}")).mails == 0  # never twice

    company.act("mary", request, "approve")
    work(company.flows, Mailer.from_url(f"smtp://127.0.0.1:{port}"))
    subjects = sorted(s for _, s, _ in inbox.messages[1:])
    assert subjects == ["Approved: Pens", "For your information: Pens"]


def test_delivery_is_retried_with_backoff_then_marked_failed(company: Company) -> None:
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    away = Mailer.from_url(f"smtp://127.0.0.1:{free_port()}")
    table = company.tables["fw_notification"]

    def state() -> tuple[int, object, object]:
        with company.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.event == "task")).mappings().one()
        return row["attempts"], row["failed_at"], row["last_error"]

    assert deliver_mail(company.engine, company.tables, away, company.now) == 0
    attempts, failed, error = state()
    assert attempts == 1 and failed is None and "ConnectionRefusedError" in error
    assert deliver_mail(company.engine, company.tables, away, company.now) == 0
    assert state()[0] == 1  # the next try waits a minute
    for _ in range(MAX_ATTEMPTS):
        company.advance(hours=1)
        deliver_mail(company.engine, company.tables, away, company.now)
    attempts, failed, _ = state()
    assert attempts == MAX_ATTEMPTS and failed is not None
    with company.engine.connect() as conn:
        assert [n["subject"] for n in failed_notifications(conn, company.tables)] == ["Waiting for your approval: Pens"]


def test_smtp_url_must_name_smtp() -> None:
    with pytest.raises(ValueError, match="smtp:// or smtps://"):
        Mailer.from_url("http://mail.example.com")
    mailer = Mailer.from_url("smtp://bot:s%40cret@mail.example.com:587?starttls=1&from=oa@example.com")
    assert (mailer.host, mailer.port, mailer.username, mailer.password, mailer.starttls, mailer.sender) == (
        "mail.example.com", 587, "bot", "s@cret", True, "oa@example.com")
