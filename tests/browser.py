"""A Flask app served on a free loopback port with a page of Debian's Chromium, driven by
Playwright (never a downloaded browser), for the screen tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def served_page(app: flask.Flask) -> Iterator[tuple[Any, str]]:
    """(a new Chromium page, the base URL of ``app``); the server and the browser stop after."""
    from playwright.sync_api import sync_playwright

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    try:
        yield browser.new_page(), f"http://127.0.0.1:{server.server_port}"
    finally:
        browser.close()
        playwright.stop()
        server.shutdown()
        thread.join()
