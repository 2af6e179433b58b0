"""``formwork tasks`` and ``formwork worker`` as real processes on a migrated deployment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from workflow_deployment import Company

REPO = Path(__file__).resolve().parent.parent


def test_inbox_and_worker_from_the_command_line(tmp_path: Path, db_url: str) -> None:
    company = Company(tmp_path, db_url)
    request = company.create("eve", title="Pens", amount=50)
    company.act("eve", request, "submit")
    company.close()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SMTP_URL")} | {"DATABASE_URL": db_url}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "cli.py"), *args, "--project", str(tmp_path)],
                              env=env, capture_output=True, text=True, timeout=120)

    shown = cli("tasks", "--user", "mary", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert [(i["entity"], i["record_id"], i["title"]) for i in json.loads(shown.stdout)["items"]] == [("purchase_request", request["id"], "Pens")]
    unknown = cli("tasks", "--user", "nobody", "--box", "submitted")
    assert unknown.returncode == 1 and "there is no user 'nobody'" in unknown.stderr and "Traceback" not in unknown.stderr
    once = cli("worker", "--once")
    assert once.returncode == 0, once.stderr
    assert "0 timer job(s), 0 mail(s)." in once.stdout and "SMTP_URL is not set" in once.stderr
