"""The generated OpenAPI document, checked as OpenAPI 3.1 and fuzzed with schemathesis.

schemathesis calls every operation through the app's WSGI interface with generated
requests (valid ones and deliberately broken ones): no response may be a 5xx, and every
response must match the document (status code, content type, body schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from api_project import Served, serve
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from formwork.records import Actor

# Generated requests per operation and mode: enough to find crashes, quick on both engines.
EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def served(tmp_path: Path, db_url: str) -> Iterator[Served]:
    api = serve(tmp_path / "shop", db_url)
    pen = api.product("Pen")
    api.runtime.records.create(
        "purchase_request",
        {"title": "Pens", "amount": "12.50", "lines": [{"product": pen, "quantity": 2, "unit_price": "1.25"}]},
        Actor.system(),
        "seed",
    )
    yield api
    api.engine.dispose()


def test_the_document_is_valid_openapi_3_1(served: Served) -> None:
    response = served.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    line = document["components"]["schemas"]["purchase_request_line_row_create"]
    assert line["required"] == ["product", "quantity", "unit_price"]
    assert line["properties"]["amount"]["readOnly"] is True
    create = document["components"]["schemas"]["purchase_request_create"]
    props = create["properties"]
    assert create["required"] == ["title"] and create["additionalProperties"] is False
    assert (props["title"]["type"], props["title"]["maxLength"]) == (["string", "null"], 40)
    assert props["currency"]["enum"] == ["CNY", "USD", "EUR"]
    assert {k: props["priority"][k] for k in ("type", "format", "minimum", "maximum")} == {"type": ["integer", "null"], "format": "int32", "minimum": 1, "maximum": 5}
    assert props["amount"]["minimum"] == 0 and props["amount"]["maximum"] == 1000000 and props["amount"]["multipleOf"] == 0.01
    assert props["needed_by"]["format"] == "date" and props["contact"]["format"] == "email"
    assert props["department"]["type"] == ["integer", "null"]
    assert props["lines"]["items"] == {"$ref": "#/components/schemas/purchase_request_line_row_create"}
    paths = document["paths"]
    assert set(paths["/api/v1/purchase_request/{id}"]["patch"]["responses"]) >= {"200", "400", "404", "409", "413", "422", "428"}
    assert "/api/v1/purchase_request/{id}/actions/mark_urgent" in paths
    assert "/api/v1/purchase_request_line" not in paths, "child rows live inside their parent"
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearerAuth": []}]
    assert set(paths["/api/v1/purchase_request"]["get"]["responses"]) >= {"401", "403"}
    assert paths["/api/v1/openapi.json"]["get"]["security"] == [], "the document itself is public"
    assert served.app.test_client().get("/api/v1/openapi.json").status_code == 200
    assert served.app.test_client().get("/api/v1/purchase_request").status_code == 401


def _fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, examples: int, auth: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, headers=auth)

    run()


def test_no_server_errors_and_every_response_matches_the_document(served: Served) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", served.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 15
    for operation in operations:
        _fuzz(operation, GenerationMode.POSITIVE, EXAMPLES, served.auth)
        try:
            _fuzz(operation, GenerationMode.NEGATIVE, EXAMPLES, served.auth)
        except Unsatisfiable:
            assert operation.path in ("/api/v1", "/api/v1/openapi.json"), "only operations without inputs have no broken request"
