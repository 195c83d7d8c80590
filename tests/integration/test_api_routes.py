"""Every route of the sessions/images/me table through dispatch, on a real PostgreSQL 15.

Each response is also checked against the committed OpenAPI document (tests/apikit.call).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

from shared import db
from shared.queries import generated_images
from tests.apikit import body, call
from tests.integration import factories as make


@pytest.fixture
def api(database, api_env):
    """The database first, then the API's settings pointing at it."""
    return database


@pytest.fixture
def alice(api, issuer):
    return issuer.token("alice")


@pytest.fixture
def bob(api, issuer):
    return issuer.token("bob")


def _user_id(token: str) -> str:
    return body(call("GET", "/v1/me", token=token))["id"]


def _session(token: str, title: str | None = None) -> dict:
    response = call("POST", "/v1/sessions", token=token, json={"title": title} if title else None)
    assert response.status_code == 201, body(response)
    return body(response)


def _owned_session(token: str, title: str | None = None) -> tuple[dict, dict, dict]:
    """A session made through the API: its answer, its owner and its row."""
    session = _session(token, title)
    with db.transaction() as conn:
        row = db.one(conn, "SELECT * FROM sessions WHERE id = :id", {"id": session["id"]})
    return session, {"id": _user_id(token)}, row


def _signed(url: str) -> bool:
    query = parse_qs(urlsplit(url).query)
    return "X-Goog-Signature" in query and query["X-Goog-Expires"] == ["900"]


def test_the_first_call_creates_the_user_and_later_calls_find_it(alice):
    first = call("GET", "/v1/me", token=alice)
    assert first.status_code == 200
    me = body(first)
    assert me["auth_subject"] == "alice" and me["email"] == "alice@example.com"
    assert body(call("GET", "/v1/me", token=alice))["id"] == me["id"]
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM users")["n"] == 1


def test_concurrent_first_calls_make_one_user(api, issuer):
    token = issuer.token("carol")
    with ThreadPoolExecutor(6) as pool:
        ids = set(pool.map(lambda _: _user_id(token), range(12)))
    assert len(ids) == 1


def test_create_defaults_and_titles(alice):
    created = call("POST", "/v1/sessions", token=alice)  # no body at all
    assert created.status_code == 201
    session = body(created)
    assert session["title"] == "New Session" and session["generated_count"] == 0
    assert created.headers["Location"] == f"/v1/sessions/{session['id']}"
    assert session["thumbnail_url"] is None and session["urls_expire_at"] is None
    assert _session(alice, "  Paris, 🌧 at dusk  ")["title"] == "  Paris, 🌧 at dusk  "
    injection = "'); DROP TABLE sessions; --"
    assert _session(alice, injection)["title"] == injection
    assert body(call("POST", "/v1/sessions", token=alice, json={}))["title"] == "New Session"


@pytest.mark.parametrize(
    "payload",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "\t\n"},
        {"title": "x" * 201},
        {"title": 123},
        {"title": ["a"]},
        {"title": "a\u0000b"},
        {"name": "typo"},
    ],
)
def test_invalid_titles_are_400(alice, payload):
    for method, path in [
        ("POST", "/v1/sessions"),
        ("PATCH", f"/v1/sessions/{_session(alice)['id']}"),
    ]:
        response = call(method, path, token=alice, json=payload)
        assert response.status_code == 400, (method, payload, body(response))
        assert body(response)["error"]["details"]


def test_malformed_and_oversize_bodies(alice):
    session = _session(alice)
    path = f"/v1/sessions/{session['id']}"
    assert (
        call("PATCH", path, token=alice, data="{", content_type="application/json").status_code
        == 400
    )
    assert call("PATCH", path, token=alice, data="x", content_type="text/plain").status_code == 415
    big = {"title": "a" * 70_000}
    assert call("PATCH", path, token=alice, json=big).status_code == 413
    assert call("PATCH", path, token=alice, json={}).status_code == 400  # title required


def test_read_rename_delete(alice):
    session = _session(alice, "draft")
    path = f"/v1/sessions/{session['id']}"
    assert body(call("GET", path, token=alice))["title"] == "draft"
    renamed = call("PATCH", path, token=alice, json={"title": "final"})
    assert renamed.status_code == 200 and body(renamed)["title"] == "final"
    assert body(renamed)["updated_at"] > session["updated_at"]
    deleted = call("DELETE", path, token=alice)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert call("GET", path, token=alice).status_code == 404
    assert call("DELETE", path, token=alice).status_code == 404


def test_another_users_resources_answer_404(alice, bob):
    session, owner, row = _owned_session(alice, "private")
    with db.transaction() as conn:
        image = make.image(conn, make.job(conn, owner, row), 1)
    path = f"/v1/sessions/{session['id']}"
    for method, target, payload in [
        ("GET", path, None),
        ("PATCH", path, {"title": "mine now"}),
        ("DELETE", path, None),
        ("GET", f"{path}/images", None),
        ("DELETE", f"/v1/images/{image['id']}", None),
    ]:
        response = call(method, target, token=bob, json=payload)
        assert response.status_code == 404, (method, target)
        assert body(response)["error"]["code"] == "not_found"
    assert body(call("GET", "/v1/sessions", token=bob))["items"] == []
    assert body(call("GET", path, token=alice))["title"] == "private"  # untouched


def test_every_route_wants_a_token(api, issuer):
    expired = issuer.token("alice", exp=int(time.time()) - 100, iat=int(time.time()) - 4000)
    some_id = "00000000-0000-4000-8000-000000000000"
    for method, path in [
        ("GET", "/v1/me"),
        ("POST", "/v1/sessions"),
        ("GET", "/v1/sessions"),
        ("GET", f"/v1/sessions/{some_id}"),
        ("PATCH", f"/v1/sessions/{some_id}"),
        ("DELETE", f"/v1/sessions/{some_id}"),
        ("GET", f"/v1/sessions/{some_id}/images"),
        ("DELETE", f"/v1/images/{some_id}"),
    ]:
        for token in (None, expired, "not.a.token"):
            assert call(method, path, token=token).status_code == 401, (method, path, token)


def test_session_list_pages_newest_activity_first_with_thumbnail_and_count(alice):
    made = [_session(alice, f"s{i}") for i in range(7)]
    with db.transaction() as conn:
        row = db.one(conn, "SELECT * FROM sessions WHERE id = :id", {"id": made[0]["id"]})
        job = make.job(conn, {"id": _user_id(alice)}, row)
        image = make.image(conn, job, 1)
        db.execute(
            conn,
            "UPDATE generated_images SET thumbnail_url = :t WHERE id = :id",
            {
                "t": image["gcp_url"].replace("/generated/", "/thumbnails/generated/"),
                "id": image["id"],
            },
        )
    seen, cursor = [], None
    for _ in range(5):
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = body(call("GET", "/v1/sessions" + query, token=alice))
        seen += page["items"]
        cursor = page["next_cursor"]
        if len(seen) == 3:
            _session(alice, "inserted while paging")  # lands on top, never in a later page
        if cursor is None:
            break
    assert [s["title"] for s in seen] == ["s0", "s6", "s5", "s4", "s3", "s2", "s1"]
    top = seen[0]
    assert top["generated_count"] == 1 and top["thumbnail_image_id"] == str(image["id"])
    # The URL field holds the signed URL of the small version; the canonical address stays in
    # the database.
    assert "/thumbnails/generated/" in top["thumbnail_url"] and _signed(top["thumbnail_url"])
    assert "gcp_url" not in top and "thumbnail_signed_url" not in top


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJ4IiwieSJd", "WyIyMDI2LTAxLTAxIiwieCJd"])
def test_bad_cursors_are_400(alice, cursor):
    session = _session(alice)
    for path in ("/v1/sessions", f"/v1/sessions/{session['id']}/images"):
        response = call("GET", f"{path}?cursor={cursor}", token=alice)
        assert response.status_code == 400 and "cursor" in body(response)["error"]["message"]


def test_gallery_is_newest_job_first_then_by_index_and_pages_across_jobs(alice):
    session, owner, row = _owned_session(alice)
    with db.transaction() as conn:
        older = make.job(conn, owner, row, number_of_shots=3)
    time.sleep(0.01)
    with db.transaction() as conn:
        newer = make.job(conn, owner, row, number_of_shots=2)
        for job, index in [(newer, 2), (older, 3), (older, 1), (newer, 1), (older, 2)]:
            make.image(conn, job, index)
    path = f"/v1/sessions/{session['id']}/images"
    seen, cursor = [], None
    for _ in range(6):  # bounded: a broken keyset must fail, not loop
        page = body(
            call("GET", f"{path}?limit=2" + (f"&cursor={cursor}" if cursor else ""), token=alice)
        )
        seen += page["items"]
        if len(seen) == 2:  # a new job while paging goes on top, not into later pages
            with db.transaction() as conn:
                late = make.job(conn, owner, row, number_of_shots=3)
                for index in (1, 2, 3):
                    make.image(conn, late, index)
        cursor = page["next_cursor"]
        if not cursor:
            break
    order = [(i["generation_job_id"], i["generation_index"]) for i in seen]
    expected = [
        (newer["id"], 1),
        (newer["id"], 2),
        (older["id"], 1),
        (older["id"], 2),
        (older["id"], 3),
    ]
    assert order == [(str(j), n) for j, n in expected]
    assert all(_signed(i["url"]) for i in seen)
    assert "job_created_at" not in seen[0]  # only documented fields leave


def test_signed_urls_are_reused_within_half_their_lifetime(alice):
    session = _session(alice)
    with db.transaction() as conn:
        row = db.one(conn, "SELECT * FROM sessions WHERE id = :id", {"id": session["id"]})
        make.image(conn, make.job(conn, {"id": _user_id(alice)}, row), 1)
    path = f"/v1/sessions/{session['id']}/images"
    first = body(call("GET", path, token=alice))["items"][0]["url"]
    again = body(call("GET", path, token=alice))["items"][0]["url"]
    assert first == again  # the same URL: no second signature, and browsers can cache it


def test_deleting_an_image_updates_count_and_thumbnail_and_queues_its_objects(alice):
    from shared.gallery import routes as gallery

    session, owner, row = _owned_session(alice)
    with db.transaction() as conn:
        job = make.job(conn, owner, row)
        first, second = make.image(conn, job, 1), make.image(conn, job, 2)
        _set_status(conn, job, "completed")
    entries = gallery.delete_image(owner["id"], first["id"])
    assert [list(e["object_names"]) for e in entries] == [
        [f"generated/{job['id']}/1_20261130T000000Z.jpg"]
    ]
    now = body(call("GET", f"/v1/sessions/{session['id']}", token=alice))
    assert now["generated_count"] == 1 and now["thumbnail_image_id"] == str(second["id"])
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM pending_object_deletions")["n"] == 1
        assert (
            generated_images.delete_finished(conn, image_id=first["id"], user_id=owner["id"])
            is None
        )


def _set_status(conn: db.Connection, job: dict, status: str) -> None:
    db.execute(
        conn,
        "UPDATE generation_jobs SET status = :status WHERE id = :id",
        {"status": status, "id": job["id"]},
    )


def test_an_image_of_an_unfinished_job_cannot_be_deleted(alice):
    """A job missing a shot would never complete, and its re-render would be paid again."""
    _, owner, row = _owned_session(alice)
    with db.transaction() as conn:
        job = make.job(conn, owner, row)
        image = make.image(conn, job, 1)
    path = f"/v1/images/{image['id']}"
    for status in ("pending", "processing", "completed"):
        with db.transaction() as conn:
            _set_status(conn, job, status)
        response = call("DELETE", path, token=alice)
        if status == "completed":
            assert response.status_code == 204
        else:
            assert response.status_code == 409, status
            assert body(response)["error"]["code"] == "job_unfinished"
    assert call("DELETE", path, token=alice).status_code == 404


def test_deleting_a_session_takes_everything_and_queues_every_object(alice):
    from shared import purge
    from shared.sessions import routes as sessions

    session, owner, row = _owned_session(alice)
    with db.transaction() as conn:
        reference = make.reference(conn, owner, row)
        jobs = [make.job(conn, owner, row) for _ in range(3)]
        made = [make.image(conn, job, i) for job in jobs for i in (1, 2)]
        db.execute(
            conn,
            "UPDATE generated_images SET thumbnail_url = replace(gcp_url, '/generated/', '/thumbnails/generated/')",
        )
    entries = sessions.delete_session(owner["id"], session["id"])
    names = sorted(n for e in entries for n in e["object_names"])
    expected = sorted(
        [i["gcp_bucket_path"].split("/", 1)[1] for i in made]
        + ["thumbnails/" + i["gcp_bucket_path"].split("/", 1)[1] for i in made]
    )
    assert names == expected and all(e["reason"] == "session_deleted" for e in entries)
    with db.transaction() as conn:
        for table in ("sessions", "generation_jobs", "generated_images"):
            assert db.one(conn, f"SELECT count(*) AS n FROM {table}")["n"] == 0
        kept = db.one(
            conn, "SELECT session_id FROM reference_images WHERE id = :id", {"id": reference["id"]}
        )
        assert kept == {"session_id": None}  # references stay in the user's library
    assert len(names) <= purge.CHUNK


def test_a_session_without_images_is_deleted_without_publishing(alice):
    session = _session(alice)
    assert call("DELETE", f"/v1/sessions/{session['id']}", token=alice).status_code == 204
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM pending_object_deletions")["n"] == 0


def test_readiness_checks_the_database(api):
    ready = call("GET", "/v1/healthz?ready=true")
    assert ready.status_code == 200 and body(ready) == {"status": "ready", "database": "ok"}
