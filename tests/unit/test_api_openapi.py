"""The committed OpenAPI document is the one the route table generates, and it is complete."""

from __future__ import annotations

import json
import re

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


def _properties(document: dict) -> list[tuple[str, str, dict]]:
    """(schema, property, its schema) of every schema in the document."""
    return [
        (name, prop, schema)
        for name, model in document["components"]["schemas"].items()
        for prop, schema in model.get("properties", {}).items()
    ]


def test_every_url_field_is_documented_as_signed_and_until_when():
    document = json.loads(openapi.DOCUMENT.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    url_fields = [
        (name, prop, schema)
        for name, prop, schema in _properties(document)
        if prop == "url" or prop.endswith(("_url", "_urls"))
    ]
    assert {n for n, _, _ in url_fields} >= {"GeneratedImage", "ReferenceImage", "Session", "Job"}
    for name, prop, schema in url_fields:
        assert schema.get("x-signed-url") is True, f"{name}.{prop} is not a signed URL"
        until = re.search(r"until `(\w+)`", schema["description"])
        assert until and until.group(1) in schemas[name]["properties"], f"{name}.{prop}"
    canonical = [f"{n}.{p}" for n, p, _ in _properties(document) if p == "gcp_url"]
    assert canonical == [], "canonical addresses stay in the database"


def test_the_webhook_is_documented_with_its_signature_headers_and_payload():
    document = json.loads(openapi.DOCUMENT.read_text(encoding="utf-8"))
    post = document["webhooks"]["generation-event"]["post"]
    headers = {p["name"]: p["required"] for p in post["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id": True, "webhook-timestamp": True, "webhook-signature": True}
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    payload = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert set(payload["required"]) >= {"type", "timestamp", "sequence", "data"}
    assert payload["properties"]["data"]["$ref"] == "#/components/schemas/Job"
    assert {"2XX", "410"} <= set(post["responses"])


def _strings(document: dict, schema: dict, where: str, seen: frozenset = frozenset()):
    """(where, schema) of every string a request body may hold, through references."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name not in seen:
            model = document["components"]["schemas"][name]
            yield from _strings(document, model, f"{where}>{name}", seen | {name})
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            yield from _strings(document, part, where, seen)
    if schema.get("type") == "string":
        yield where, schema
    for prop, sub in schema.get("properties", {}).items():
        yield from _strings(document, sub, f"{where}.{prop}", seen)
    if "items" in schema:
        yield from _strings(document, schema["items"], f"{where}[]", seen)


def test_no_body_string_is_documented_to_hold_what_the_api_refuses():
    # The api answers 400 to a NUL in any string of a body (shared/web/request.py): a string the
    # document leaves free must say so, or a client (and the fuzzer) takes it as allowed.
    document = json.loads(openapi.DOCUMENT.read_text(encoding="utf-8"))
    strings = [
        (f"{method.upper()} {path}{where}", schema)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for content in operation.get("requestBody", {}).get("content", {}).values()
        for where, schema in _strings(document, content["schema"], "")
    ]
    free = [s for s in strings if not {"enum", "const", "format"} & s[1].keys()]
    assert any(where.endswith(".file_name") for where, _ in free)
    for where, schema in free:
        assert "pattern" in schema, f"{where} admits NUL"
        assert not re.search(schema["pattern"], "a\x00b"), f"{where} admits NUL"
