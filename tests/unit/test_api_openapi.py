"""The committed OpenAPI document is the one the route table generates, and it is complete."""

from __future__ import annotations

import json

import jsonschema_rs

from shared import routes
from tools import openapi


def test_the_committed_document_equals_the_generated_one():
    committed = openapi.DOCUMENT.read_text(encoding="utf-8")
    assert committed == openapi.render(routes.router()), "stale: run python -m tools.openapi"
    assert openapi.main(["--check"]) == 0


def test_every_route_is_an_operation_with_its_errors():
    document = json.loads(openapi.DOCUMENT.read_text(encoding="utf-8"))
    for route in routes.router().routes:
        operation = document["paths"][route.template][route.method.lower()]
        responses = operation["responses"]
        assert str(route.status) in responses
        for status in openapi.error_statuses(route):
            schema = responses[str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}
        assert ("401" in responses) == route.authenticated
    assert sum(len(ops) for ops in document["paths"].values()) == len(routes.router().routes)


def test_every_route_that_answers_a_body_declares_its_model():
    bare = [r.operation_id for r in routes.router().routes if r.status != 204 and not r.response]
    assert bare == []


def test_every_schema_is_valid_json_schema_2020_12():
    document = json.loads(openapi.DOCUMENT.read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.1")
    meta = jsonschema_rs.Draft202012Validator(
        {"$ref": "https://json-schema.org/draft/2020-12/schema"}
    )
    for name, schema in document["components"]["schemas"].items():
        assert meta.is_valid(schema), name
