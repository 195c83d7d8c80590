"""The local bucket's CORS rules (tools/stack/gcs.py), as GCS applies a bucket's `cors` field."""

from __future__ import annotations

from infra.cors import bucket_cors
from tools.stack.gcs import bucket_of, preflight_headers, response_headers

APP = "https://app.example.com"
RULES = [
    {"origin": [APP], "method": ["GET"], "responseHeader": ["x-goog-generation"]},
    {"origin": ["*"], "method": ["PUT", "GET"], "responseHeader": ["Content-Type"]},
]


def test_the_first_entry_matching_origin_and_method_decides():
    assert response_headers(RULES, APP, "GET") == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Expose-Headers": "x-goog-generation",
    }
    assert response_headers(RULES, APP, "PUT")["Access-Control-Expose-Headers"] == "Content-Type"
    assert response_headers(RULES, "http://other.example", "DELETE") == {}


def test_a_preflight_needs_every_announced_header_in_the_entry_in_any_case():
    config = bucket_cors(["http://localhost:*"])
    asked = "content-type,X-Goog-If-Generation-Match"
    assert preflight_headers(config, "http://localhost:5173", "PUT", asked) == {
        "Access-Control-Allow-Origin": "http://localhost:5173",
        "Access-Control-Allow-Methods": "PUT",
        "Access-Control-Allow-Headers": asked,
        "Access-Control-Max-Age": "3600",
    }
    assert preflight_headers(config, "http://localhost:5173", "PUT", "content-type,x-other") == {}
    assert preflight_headers(config, "http://localhost:5173", "DELETE", "") == {}
    assert preflight_headers(config, "http://127.0.0.1:5173", "PUT", "") == {}
    without_age = preflight_headers(RULES, APP, "GET", "")
    assert without_age == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Methods": "GET",
    }


def test_the_bucket_is_read_from_json_and_xml_api_paths():
    for path in (
        "/storage/v1/b/media/o/a%2Fb.png",
        "/upload/storage/v1/b/media/o?uploadType=media",
        "/download/storage/v1/b/media/o/x",
        "/b/media/o/x",
        "/media/uploads/u/1_a.png?X-Goog-Signature=00",
    ):
        assert bucket_of(path) == "media", path
    assert bucket_of("/") is None
