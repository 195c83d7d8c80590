"""Generated-image routes: a session's gallery and deleting one image.

The gallery is newest job first and, within a job, by generation_index; its cursor is the
keyset (job created_at, job id, index). Deleting an image lets the triggers fix the session's
count and thumbnail, and hands the image's objects to shared/purge.py.
"""

from __future__ import annotations

from typing import Any

from shared import db, purge
from shared.errors import Conflict, NotFound
from shared.queries import generated_images, sessions
from shared.web import pagination, resources
from shared.web.models import Model
from shared.web.pagination import PageQuery
from shared.web.request import ApiRequest
from shared.web.resources import GeneratedImage
from shared.web.router import Reply, Routes

routes = Routes("images", operations="images")


class ImagePage(Model):
    items: list[GeneratedImage]
    next_cursor: str | None


@routes.get(
    "/v1/sessions/{session_id}/images",
    query=PageQuery,
    response=ImagePage,
    tags=("sessions", "images"),
)
def gallery(request: ApiRequest) -> Reply:
    """A session's gallery: newest job first, then by index within a job"""
    query = request.query_model(PageQuery)
    after = pagination.decode_keyset(
        query.cursor, pagination.timestamp, pagination.row_id, pagination.index
    )
    session_id = request.params["session_id"]
    with db.transaction() as conn:
        found = generated_images.gallery_page(
            conn,
            session_id=session_id,
            user_id=request.user_id,
            limit=query.limit + 1,
            after=(after[0], after[1], after[2]) if after else None,
        )
        # An empty page is either the end of a gallery or someone else's session.
        if not found and not sessions.get_owned(
            conn, session_id=session_id, user_id=request.user_id
        ):
            raise NotFound("no such session")
    served = found[: query.limit]
    next_cursor = None
    if len(found) > query.limit:
        last = served[-1]
        next_cursor = pagination.encode(
            last["job_created_at"], last["generation_job_id"], last["generation_index"]
        )
    return Reply(
        200,
        {"items": resources.generated_images(served), "next_cursor": next_cursor},
    )


def delete_image(user_id: Any, image_id: Any) -> list[dict[str, Any]]:
    """Delete the user's image of a finished job (409 while the job runs); returns the
    committed outbox entries naming its objects."""
    with db.transaction() as conn:
        row = generated_images.delete_finished(conn, image_id=image_id, user_id=user_id)
        if row is None:
            if generated_images.exists_owned(conn, image_id=image_id, user_id=user_id):
                raise Conflict(
                    "the image's generation is still running; delete it once it has finished",
                    code="job_unfinished",
                )
            raise NotFound("no such image")
        return purge.enqueue(conn, purge.objects([row]), reason="image_deleted")


@routes.delete("/v1/images/{image_id}", status=204, errors=(409,))
def delete(request: ApiRequest) -> Reply:
    """Delete a generated image of a finished generation (the session's count and thumbnail follow)"""
    purge.publish(delete_image(request.user_id, request.params["image_id"]))
    return Reply(204)
