"""Session routes and service: create, list (with thumbnail and count), read, rename, delete.

A session's thumbnail and count are kept by triggers; deleting a session takes its jobs and
images with it (foreign-key cascades) and hands their bucket objects to shared/purge.py.
"""

from __future__ import annotations

from typing import Any

from shared import db, purge
from shared.errors import NotFound
from shared.queries import sessions
from shared.sessions.models import Session, SessionCreate, SessionPage, SessionUpdate
from shared.web import pagination, resources, waits
from shared.web.pagination import PageQuery
from shared.web.request import ApiRequest
from shared.web.router import Reply, Routes

routes = Routes("sessions", operations="sessions")


def resource(row: dict[str, Any]) -> dict[str, Any]:
    """A session row as the API shows it: the table's fields and a signed thumbnail URL."""
    return resources.sessions([row])[0]


def _not_found() -> NotFound:
    return NotFound("no such session")


@routes.post("/v1/sessions", body=SessionCreate, body_required=False, response=Session, status=201)
def create(request: ApiRequest) -> Reply:
    """Create a session (title defaults to "New Session")"""
    body = request.body(SessionCreate, optional=True)
    with db.transaction() as conn:
        row = sessions.create(conn, user_id=request.user_id, title=body.title)
    return Reply(201, resource(row), {"Location": f"/v1/sessions/{row['id']}"})


@routes.get("/v1/sessions", query=PageQuery, response=SessionPage)
def list_sessions(request: ApiRequest) -> Reply:
    """The caller's sessions, most recently active first, with thumbnail and count"""
    query = request.query_model(PageQuery)
    after = pagination.decode(query.cursor)
    with db.transaction() as conn:
        found = sessions.list_for_user(
            conn, user_id=request.user_id, limit=query.limit + 1, after=after
        )
    body = pagination.page(
        found, query.limit, lambda r: (r["updated_at"], r["id"]), resources.sessions
    )
    return Reply(200, body)


@routes.get("/v1/sessions/{session_id}", response=Session, **waits.BLOCKING_READ)
def get(request: ApiRequest) -> Reply:
    """One session; waits for a change with If-None-Match and Prefer: wait=N

    A blocking read: the count and the thumbnail move as images land.
    """
    conditions = waits.Conditions.of(request)
    session_id = request.params["session_id"]

    def read() -> dict[str, Any]:
        with db.transaction() as conn:
            row = sessions.get_owned(conn, session_id=session_id, user_id=request.user_id)
        if row is None:
            raise _not_found()
        return row

    found = conditions.read(f"session:{session_id}", read, waits.etag)
    if found.not_modified:
        return Reply(304, None, found.headers)
    return Reply(200, resource(found.state), found.headers)


@routes.patch("/v1/sessions/{session_id}", body=SessionUpdate, response=Session)
def rename(request: ApiRequest) -> Reply:
    """Rename a session"""
    body = request.body(SessionUpdate)
    with db.transaction() as conn:
        row = sessions.rename(
            conn,
            session_id=request.params["session_id"],
            user_id=request.user_id,
            title=body.title,
        )
    if row is None:
        raise _not_found()
    return Reply(200, resource(row))


def delete_session(user_id: Any, session_id: Any) -> list[dict[str, Any]]:
    """Delete the user's session with everything in it; returns the committed outbox entries
    naming its objects, for `purge.publish`. NotFound when it is not the user's."""
    with db.transaction() as conn:
        if not sessions.lock_owned(conn, session_id=session_id, user_id=user_id):
            raise _not_found()
        stored = purge.objects(sessions.objects(conn, session_id=session_id))
        entries = purge.enqueue(conn, stored, reason="session_deleted")
        sessions.delete(conn, session_id=session_id)
    return entries


@routes.delete("/v1/sessions/{session_id}", status=204)
def delete(request: ApiRequest) -> Reply:
    """Delete a session with its jobs and images; their bucket objects follow"""
    purge.publish(delete_session(request.user_id, request.params["session_id"]))
    return Reply(204)
