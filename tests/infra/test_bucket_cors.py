"""The bucket's CORS lets a browser send the signed PUT of a direct upload: every header the
signing code signs (read from a signed URL it makes, so a header added there without CORS fails
here) is in the one rule (infra/cors.py), which terraform's bucket (through its generated inputs)
and the gcloud script's both set, for the same origins. The local stack sets the same rule on its
bucket (tests/stack/test_cors.py preflights a signed PUT there)."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from infra import cors, deploy_gcloud, tfvars
from infra.gcloud import storage
from shared.uploads.models import SignedUploadRequest
from shared.uploads.routes import signed_put
from tests.infra.conftest import resources
from tests.infra.test_consistency import TARGET, one

# Headers a browser sets itself: never in a preflight's Access-Control-Request-Headers.
SET_BY_THE_BROWSER = {"host"}


@pytest.fixture
def signed_headers(no_database, api_env) -> set[str]:
    """The request headers the signature of a direct upload covers, with every option on."""
    request = SignedUploadRequest(
        file_name="a photo.png", mime_type="image/png", file_size=1234, session_id=None
    )
    name = f"uploads/{uuid.uuid4()}/20261205T000000000000Z_a_photo.png"
    ticket = signed_put(name, request, session_id=str(uuid.uuid4()))
    signed = parse_qs(urlsplit(ticket["upload_url"]).query)["X-Goog-SignedHeaders"][0]
    names = set(signed.split(";")) - SET_BY_THE_BROWSER
    assert names == {h.lower() for h in ticket["headers"]}, "the client is told every one"
    return names


def _allowed(headers: list[str]) -> set[str]:
    return {h.lower() for h in headers}


def test_the_rule_allows_every_signed_header_for_get_and_put(signed_headers: set[str]) -> None:
    (rule,) = cors.bucket_cors(["https://app.example.com"])
    assert signed_headers <= _allowed(rule["responseHeader"])
    assert {"GET", "PUT"} <= set(rule["method"])
    assert rule["origin"] == ["https://app.example.com"]


def test_terraform_sets_the_rule_from_its_generated_inputs_for_the_configured_origins(
    hcl: dict, signed_headers: set[str]
) -> None:
    generated = json.loads(tfvars.TFVARS.read_text())["bucket_cors"]
    assert generated == cors.terraform_rule(), "run: python -m infra.tfvars"
    assert signed_headers <= _allowed(generated["response_header"])
    bucket = resources(hcl, "google_storage_bucket")["media"]
    assert {key: one(value) for key, value in one(bucket["cors"]).items()} == {
        "origin": "${var.cors_origins}",
        "method": "${var.bucket_cors.method}",
        "response_header": "${var.bucket_cors.response_header}",
        "max_age_seconds": "${var.bucket_cors.max_age_seconds}",
    }


def test_gcloud_sets_the_same_rule_for_the_same_origins(signed_headers: set[str]) -> None:
    rules = storage.bucket_cors(TARGET)
    assert rules == cors.bucket_cors(TARGET.cors_origins)
    assert signed_headers <= _allowed(rules[0]["responseHeader"])
    command = storage.bucket_settings_command(TARGET)
    assert command[:2] == ["bash", "-c"] and f"gs://{TARGET.bucket}" in command[2]
    assert json.dumps(rules) in command[2]
    plan = deploy_gcloud.plan(deploy_gcloud.manifest.load(), TARGET, archive=None)
    assert command in plan


def test_both_deploy_paths_give_the_api_the_same_origins(hcl: dict) -> None:
    from tests.infra.test_consistency import deploy_of, gcloud_env

    plan = deploy_gcloud.plan(deploy_gcloud.manifest.load(), TARGET, archive=None)
    assert gcloud_env(deploy_of(plan, "api"))["CORS_ORIGINS"] == ",".join(TARGET.cors_origins)
    functions = resources(hcl, "google_cloudfunctions2_function")["functions"]
    env = one(one(functions["service_config"])["environment_variables"])
    assert env["CORS_ORIGINS"] == '${join(",",var.cors_origins)}'
