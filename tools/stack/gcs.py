"""The local bucket: gcp-storage-emulator, answering CORS as GCS does for the bucket's `cors`.

The emulator stores a bucket's `cors` field (`up` sets it with the JSON API's bucket PATCH, from
infra/cors.py) but answers no preflight and adds no CORS header, so a page could not PUT to a
signed URL nor read an image. This process serves the emulator's own request handler and storage
with CORS added, on the port every client and every signed URL uses (STORAGE_EMULATOR_HOST),
and with object deletes that honour ifGenerationMatch (tools/gcs_emulator.py).

GCS's rules (cloud.google.com/storage/docs/cross-origin and the XML API's CorsConfig):
- a request carrying `Origin` is compared with the bucket's `cors` entries in order; the first
  entry whose `origin` holds the Origin (or `*`) and whose `method` holds the method (or `*`)
  decides: for a preflight the method is the announced one (Access-Control-Request-Method), and
  every header it announces (Access-Control-Request-Headers) must be in the entry's
  `responseHeader` (any case), or the preflight is refused;
- a preflight that matches answers 200 with Access-Control-Allow-Origin (the Origin),
  Access-Control-Allow-Methods (the announced method), Access-Control-Allow-Headers (the
  announced headers) and Access-Control-Max-Age (`maxAgeSeconds`); any other matching request
  gets Access-Control-Allow-Origin and Access-Control-Expose-Headers (`responseHeader`);
- no match: no CORS header at all (a preflight still answers 200), and the browser refuses;
- every answer about a bucket with a CORS configuration carries `Vary: Origin`.
One extension, for local development: an `origin` entry `scheme://host:*` admits that host on
any port (shared/web/dispatch.py's rule for CORS_ORIGINS). A deployed bucket lists exact origins.

    python -m tools.stack.gcs   # the stack starts it on STACK_GCS_PORT
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from functools import partial
from http import HTTPStatus, server
from typing import Any
from urllib.parse import unquote

from gcp_storage_emulator.handlers.buckets import create_bucket
from gcp_storage_emulator.server import RequestHandler
from gcp_storage_emulator.storage import Storage
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from infra import cors, manifest
from shared.web.dispatch import origin_allowed
from tools import gcs_emulator
from tools.stack.config import HOST, StackConfig

Rule = Mapping[str, Any]
# The bucket a request names: JSON API paths (/storage/v1/b/B..., /upload/..., /download/...,
# or without /storage/v1), else the XML API's path style (/B/object) that signed URLs use.
_JSON_PATH = re.compile(r"^(?:/(?:upload|download|batch))?(?:/storage/v1)?/b/(?P<bucket>[^/?]+)")
_XML_PATH = re.compile(r"^/(?P<bucket>[^/?]+)")


def _listed(value: str, entries: Sequence[str]) -> bool:
    return value in entries or "*" in entries


def matching_rule(rules: Sequence[Rule], origin: str, method: str) -> Rule | None:
    """The first entry that admits the origin and the method."""
    for rule in rules:
        if origin_allowed(origin, rule.get("origin") or ()) and _listed(
            method, rule.get("method") or ()
        ):
            return rule
    return None


def preflight_headers(
    rules: Sequence[Rule], origin: str, method: str, requested: str
) -> dict[str, str]:
    """The CORS headers of a preflight's answer; empty when it is refused."""
    rule = matching_rule(rules, origin, method)
    headers = [h.strip() for h in requested.split(",") if h.strip()]
    allowed = {h.lower() for h in (rule or {}).get("responseHeader") or ()}
    if rule is None or any(h.lower() not in allowed for h in headers):
        return {}
    answer = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": method}
    if headers:
        answer["Access-Control-Allow-Headers"] = ",".join(headers)
    if rule.get("maxAgeSeconds") is not None:
        answer["Access-Control-Max-Age"] = str(rule["maxAgeSeconds"])
    return answer


def response_headers(rules: Sequence[Rule], origin: str, method: str) -> dict[str, str]:
    """The CORS headers of an answer to a request that is not a preflight."""
    rule = matching_rule(rules, origin, method)
    if rule is None:
        return {}
    answer = {"Access-Control-Allow-Origin": origin}
    if rule.get("responseHeader"):
        answer["Access-Control-Expose-Headers"] = ",".join(rule["responseHeader"])
    return answer


def bucket_of(path: str) -> str | None:
    """The bucket a request path names."""
    match = _JSON_PATH.match(path) or _XML_PATH.match(path)
    return unquote(match["bucket"]) if match else None


class CorsHandler(RequestHandler):
    """The emulator's handler, with the bucket's CORS rules applied to every answer."""

    def do_OPTIONS(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def end_headers(self) -> None:
        for name, value in self._cors().items():
            self.send_header(name, value)
        super().end_headers()

    def _cors(self) -> dict[str, str]:
        bucket = self.storage.get_bucket(bucket_of(self.path) or "") or {}
        rules = bucket.get("cors") or []
        origin = self.headers.get("Origin")
        if not rules:
            return {}
        if not origin:
            return {"Vary": "Origin"}
        announced = self.headers.get("Access-Control-Request-Method")
        if self.command == "OPTIONS" and announced:
            requested = self.headers.get("Access-Control-Request-Headers", "")
            found = preflight_headers(rules, origin, announced, requested)
        else:
            found = response_headers(rules, origin, self.command)
        return {**found, "Vary": "Origin"}


def configure_bucket(config: StackConfig) -> list[dict[str, Any]]:
    """Set the bucket's `cors` field (a bucket PATCH, as on GCS); return it."""
    client = storage.Client(
        project=config.project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": config.storage_host},
    )
    bucket = client.bucket(config.bucket)
    bucket.cors = cors.bucket_cors(config.cors_origins)
    bucket.patch(timeout=10)
    return list(bucket.cors)


def main() -> None:
    config = StackConfig.from_env(manifest.load())
    logging.getLogger().setLevel(logging.CRITICAL)  # the emulator logs every request otherwise
    gcs_emulator.install()
    store = Storage(data_dir=str(config.gcs_data))
    create_bucket(config.bucket, store)
    httpd = server.HTTPServer((HOST, config.gcs_port), partial(CorsHandler, store))
    httpd.serve_forever()


if __name__ == "__main__":
    main()
