"""The consultant-facing reference stays complete: every error code and every metadata key is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CODE = re.compile(r"FW-E\d{3}")


def codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "platform" / "formwork").rglob("*.py"):
        found.update(CODE.findall(path.read_text("utf-8")))
    return found


def test_every_error_code_in_the_source_is_on_the_errors_page() -> None:
    page = (REPO / "docs" / "errors.md").read_text("utf-8")
    assert sorted(codes_in_source() - set(CODE.findall(page))) == []


def test_metadata_codes_each_have_a_row_with_meaning_and_fix() -> None:
    rows = {m.group(1) for m in re.finditer(r"^\| (FW-E[01236]\d\d) \|", (REPO / "docs" / "errors.md").read_text("utf-8"), re.M)}
    own = {c for c in codes_in_source() if c[4] in "01236"}
    assert sorted(own - rows) == []


def schema_keys(node: object) -> set[str]:
    keys: set[str] = set()
    if isinstance(node, dict):
        keys.update(node.get("properties", {}))
        for value in node.values():
            keys |= schema_keys(value)
    elif isinstance(node, list):
        for value in node:
            keys |= schema_keys(value)
    return keys


def test_every_schema_key_is_in_the_metadata_reference() -> None:
    page = (REPO / "docs" / "metadata-reference.md").read_text("utf-8")
    keys: set[str] = set()
    for path in (REPO / "platform" / "formwork" / "metadata" / "schemas").glob("*.json"):
        keys |= schema_keys(json.loads(path.read_text("utf-8")))
    assert sorted(k for k in keys if f"`{k}`" not in page) == []
