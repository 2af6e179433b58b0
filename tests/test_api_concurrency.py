"""Two people save the same version of a record at the same moment, over real HTTP.

The app runs in a threaded werkzeug server; two client threads start their PATCH
together. Exactly one save wins, the other gets 409 with the winner's version, on
PostgreSQL (row versions checked in the UPDATE) and on SQLite (one writer at a time).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_project import Served, serving
from werkzeug.serving import make_server

ROUNDS = 5


@pytest.fixture
def api(tmp_path: Path, db_url: str) -> Iterator[Served]:
    yield from serving(tmp_path, db_url)


@pytest.fixture
def base_url(api: Served) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/v1"
    server.shutdown()
    thread.join()


def call(method: str, url: str, auth: dict[str, str], body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **auth})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_two_saves_of_the_same_version_one_wins_one_gets_409(api: Served, base_url: str) -> None:
    status, record = call("POST", f"{base_url}/purchase_request", api.auth, {"title": "Chairs"})
    assert status == 201
    url = f"{base_url}/purchase_request/{record['id']}"
    for round_number in range(ROUNDS):
        version = round_number + 1
        start = threading.Barrier(2)
        outcomes: dict[str, tuple[int, dict[str, Any]]] = {}

        def save(title: str, version: int = version, start: threading.Barrier = start, outcomes: dict = outcomes) -> None:
            start.wait()
            outcomes[title] = call("PATCH", url, api.auth, {"version": version, "title": title})

        threads = [threading.Thread(target=save, args=(title,)) for title in (f"Desks {round_number}", f"Lamps {round_number}")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(status for status, _body in outcomes.values())
        assert statuses == [200, 409], outcomes
        [winner] = [title for title, (status, _body) in outcomes.items() if status == 200]
        [loser] = [body for status, body in outcomes.values() if status == 409]
        assert loser["current_version"] == version + 1 and loser["errors"][0]["code"] == "stale"
        _status, stored = call("GET", url, api.auth)
        assert (stored["title"], stored["version"]) == (winner, version + 1)
    assert api.rows("purchase_request") == 1
