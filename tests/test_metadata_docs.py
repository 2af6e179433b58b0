"""The consultant-facing reference stays complete: every error code and every metadata key is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

from metadata_project import validate, write_project

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


def yaml_examples() -> list[str]:
    page = (REPO / "docs" / "metadata-reference.md").read_text("utf-8")
    return [block for block in re.findall(r"```yaml\n(.*?)```", page, re.S) if "kind:" in block]


def test_the_reference_examples_validate_over_the_example_deployment(example_project: Path) -> None:
    overlay = example_project / "doc_examples"
    overlay.mkdir()
    written = 0
    for index, block in enumerate(yaml_examples()):
        if block.startswith(("# product/", "# customer/")) or "$remove" in block or "$replace" in block:
            continue
        (overlay / f"example_{index:02d}.yaml").write_text(block, "utf-8")
        written += 1
    project_file = example_project / "formwork.yaml"
    project_file.write_text(project_file.read_text("utf-8").replace("metadata: [metadata]", "metadata: [metadata, doc_examples]"), "utf-8")
    assert written >= 8
    assert [p.format() for p in validate(example_project)[1]] == []


def test_the_layer_example_merges_as_the_reference_says(tmp_path: Path) -> None:
    files = {}
    for block in yaml_examples():
        first = block.splitlines()[0]
        if first.startswith(("# product/", "# customer/")):
            files[first[2:]] = block
    roles = {f"product/metadata/{r}.yaml": f"kind: role\nname: {r}\n" for r in ("finance", "legal")}
    write_project(tmp_path, {**files, **roles}, layers=("product/metadata", "customer/metadata"))
    app, problems = validate(tmp_path)
    assert problems == []
    request = app.entities["purchase_request"]
    assert list(request.fields) == ["title", "amount", "cost_center", "status"]
    assert (request.fields["title"].max_length, request.fields["title"].required) == (200, True)
    steps = app.approvals["purchase_approval"].steps
    assert [s.name for s in steps] == ["manager", "legal", "finance", "ceo"]
    assert (steps[2].when, steps[2].mode) == ("amount > 20000", "all")
