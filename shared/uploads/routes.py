"""Routes of reference images: both ways to upload, and the caller's library.

`POST /v1/uploads` takes a multipart body (file in `file`, optional `session_id`), checks it
like the bucket trigger does, stores it under `uploads/{user_id}/` and registers it through the
same code (`registration.record`), so the finalize event that follows finds the row. `POST
/v1/uploads/signed-url` hands out a V4 signed PUT bound to the object name, the content type, a
size range, create-only (`x-goog-if-generation-match: 0`) and the session (object metadata);
`register_upload` registers the object once it lands. Both issue the object's upload ticket
first, which counts against the user's upload limits (shared/limits: 429 past one).
"""

from __future__ import annotations

import re
from typing import IO, Any

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared import config, db, purge, storage
from shared.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from shared.limits import service as limits
from shared.limits.service import RATE_LIMIT_HEADERS
from shared.queries import reference_images, sessions
from shared.uploads import imageinfo, registration
from shared.uploads.filenames import sanitize_filename
from shared.uploads.imageinfo import ImageRejected
from shared.uploads.models import (
    UUID_PATTERN,
    ReferenceImagePage,
    SignedUpload,
    SignedUploadRequest,
    UploadForm,
)
from shared.web import pagination, resources
from shared.web.pagination import PageQuery
from shared.web.request import ApiRequest, reading_body
from shared.web.resources import ReferenceImage
from shared.web.router import Reply, Routes

MULTIPART_OVERHEAD = 16 * 1024  # boundaries, part headers and the session_id field
# Werkzeug applies this to its multipart decoder's buffer too, which takes 64 KiB reads: it must
# exceed that, and bounds what the non-file fields (a session id) can hold in memory.
MAX_FORM_MEMORY_BYTES = 256 * 1024
MAX_FORM_PARTS = 4


routes = Routes("reference images", operations="reference_images")


def _check_size(size: int) -> None:
    limit = config.settings().uploads.max_bytes
    if size > limit:
        raise PayloadTooLarge(
            f"the file is larger than {limit} bytes", details={"max_bytes": limit, "size": size}
        )


def _check_mime_type(mime_type: str) -> None:
    allowed = [imageinfo.MIME_TYPES[f] for f in config.settings().uploads.formats]  # type: ignore[index]
    if mime_type not in allowed:
        raise UnsupportedMediaType(
            f"only {', '.join(allowed)} can be uploaded", details={"allowed": allowed}
        )


def _owned_session(user_id: Any, session_id: str | None) -> str | None:
    """The session id if the caller owns it; another user's session is a 404."""
    if session_id is None:
        return None
    with db.transaction() as conn:
        if sessions.get_owned(conn, session_id=session_id, user_id=user_id) is None:
            raise NotFound("no such session", details={"session_id": session_id})
    return session_id


def _form_problems(raw: Any) -> list[dict[str, str]]:
    """What makes the parsed form differ from UploadForm: other fields, repeated fields."""
    given = [("file", name) for name in raw.files] + [("field", name) for name in raw.form]
    problems = [
        {"field": name, "problem": "Extra inputs are not permitted"}
        for kind, name in given
        if (kind, name) not in (("file", "file"), ("field", "session_id"))
    ]
    for name, values in (("file", raw.files), ("session_id", raw.form)):
        if len(values.getlist(name)) > 1:
            problems.append({"field": name, "problem": "given more than once"})
    return problems


def _multipart(request: ApiRequest) -> tuple[Any, str | None]:
    """The `file` part and the `session_id` field, with every limit checked before reading."""
    raw = request.raw
    if raw.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with the image in the field 'file'")
    limit = config.settings().uploads.max_bytes
    raw.max_content_length = limit + MULTIPART_OVERHEAD
    raw.max_form_memory_size = MAX_FORM_MEMORY_BYTES
    raw.max_form_parts = MAX_FORM_PARTS
    try:  # Werkzeug refuses a Content-Length over max_content_length before reading the body
        with reading_body():
            problems = _form_problems(raw)
    except RequestEntityTooLarge as exc:
        if raw.content_length is not None and raw.content_length <= raw.max_content_length:
            # Not the body's size: more parts than the form has fields, or a field too large.
            raise InvalidInput("the form has too many parts or too large a field") from exc
        raise PayloadTooLarge(
            "the request body is too large", details={"max_bytes": limit}
        ) from exc
    except HTTPException as exc:
        raise InvalidInput("the multipart body is malformed") from exc
    upload, session_field = raw.files.get("file"), raw.form.get("session_id")
    if upload is None:
        problems.append({"field": "file", "problem": "Field required"})
    if session_field is not None and not re.fullmatch(UUID_PATTERN, session_field):
        problems.append({"field": "session_id", "problem": "not a uuid"})
    if problems:
        raise InvalidInput("the form has invalid fields", details=problems)
    return upload, registration.as_uuid(session_field)


def _ticket(user_id: Any, name: str, size: int) -> dict[str, str]:
    """Issue the object's upload ticket (or raise RateLimited); the RateLimit headers."""
    with db.transaction() as conn:
        limits.admit_upload(conn, user_id, storage.bucket_path(name), size)
        return limits.headers(conn, user_id, limits.UPLOADS)


def _identify(stream: IO[bytes], size: int) -> imageinfo.ImageInfo:
    def read_range(start: int, end: int) -> bytes:
        stream.seek(start)
        return stream.read(end - start + 1)

    try:
        return imageinfo.inspect(read_range, size, config.settings().uploads)
    except ImageRejected as rejected:
        if rejected.reason == "unsupported_format":
            raise UnsupportedMediaType(rejected.message, details=rejected.details) from rejected
        raise  # 422 (the size was checked first: 413)


@routes.post(
    "/v1/uploads",
    body=UploadForm,
    body_media_type="multipart/form-data",
    response=ReferenceImage,
    status=201,
    errors=(404, 422, 429),
    limit_headers=RATE_LIMIT_HEADERS,
)
def upload(request: ApiRequest) -> Reply:
    """POST /v1/uploads: validate, store, register; 201 with the reference image."""
    file, session_id = _multipart(request)
    stream = file.stream
    size = stream.seek(0, 2)
    _check_size(size)
    info = _identify(stream, size)
    session_id = _owned_session(request.user_id, session_id)
    name = storage.upload_object_name(request.user_id, sanitize_filename(file.filename or ""))
    rate = _ticket(request.user_id, name, size)
    stream.seek(0)
    data = stream.read()
    copy = registration.store_working_copy(name, data)  # 422 if the pixels are damaged
    metadata = {registration.SESSION_METADATA_KEY: session_id} if session_id else None
    storage.write(name, data, info.mime_type, metadata)
    row = registration.record(
        name,
        size,
        info,
        user_id=str(request.user_id),
        session_id=session_id,
        working_copy_path=copy,
    )
    if row is None:
        raise NotFound("the user no longer exists")
    headers = {"Location": f"/v1/reference-images/{row['id']}", **rate}
    return Reply(201, resources.reference_images([row])[0], headers)


@routes.post(
    "/v1/uploads/signed-url",
    body=SignedUploadRequest,
    response=SignedUpload,
    errors=(404, 429),
    limit_headers=RATE_LIMIT_HEADERS,
)
def signed_upload(request: ApiRequest) -> Reply:
    """POST /v1/uploads/signed-url: a signed PUT and the headers the client must send with it."""
    body = request.body(SignedUploadRequest)
    _check_mime_type(body.mime_type)
    _check_size(body.file_size)
    session_id = _owned_session(request.user_id, registration.as_uuid(body.session_id))
    name = storage.upload_object_name(request.user_id, sanitize_filename(body.file_name))
    rate = _ticket(request.user_id, name, body.file_size)
    return Reply(200, signed_put(name, body, session_id), rate)


def signed_put(name: str, body: SignedUploadRequest, session_id: str | None) -> dict[str, Any]:
    """The signed PUT of a direct upload as `name`, and the headers it signs, which the client
    must send (and the bucket's CORS must allow: tests/infra/test_bucket_cors.py)."""
    headers = {
        "x-goog-content-length-range": f"1,{body.file_size}",
        "x-goog-if-generation-match": "0",  # create only: the URL cannot replace the object
    }
    if session_id:
        headers[f"x-goog-meta-{registration.SESSION_METADATA_KEY}"] = session_id
    url, expires_at = storage.signed_url(  # the signer adds Host to the dict it is given
        name, method="PUT", content_type=body.mime_type, headers=dict(headers)
    )
    return {
        "upload_url": url,
        "method": "PUT",
        "headers": {"Content-Type": body.mime_type, **headers},
        "gcp_bucket_path": storage.bucket_path(name),
        "expires_at": expires_at,
    }


def _image_id(request: ApiRequest) -> str:
    image_id = registration.as_uuid(request.params["image_id"])
    if image_id is None:
        raise NotFound("no such reference image")
    return image_id


@routes.get("/v1/reference-images", query=PageQuery, response=ReferenceImagePage)
def list_images(request: ApiRequest) -> Reply:
    """GET /v1/reference-images: the caller's references, newest first."""
    query = request.query_model(PageQuery)
    size, after = query.limit, pagination.decode(query.cursor)
    with db.transaction() as conn:
        found = reference_images.list_for_user(
            conn, user_id=request.user_id, limit=size + 1, after=after
        )
    body = pagination.page(
        found, size, lambda r: (r["uploaded_at"], r["id"]), resources.reference_images
    )
    return Reply(200, body)


@routes.get("/v1/reference-images/{image_id}", response=ReferenceImage)
def get_image(request: ApiRequest) -> Reply:
    """GET /v1/reference-images/{id}: one of the caller's references (404 for anyone else's)."""
    with db.transaction() as conn:
        row = reference_images.get_owned(conn, image_id=_image_id(request), user_id=request.user_id)
    if row is None:
        raise NotFound("no such reference image")
    return Reply(200, resources.reference_images([row])[0])


@routes.delete("/v1/reference-images/{image_id}", status=204)
def delete_image(request: ApiRequest) -> Reply:
    """DELETE /v1/reference-images/{id}: the row now, the objects through object-deletions.

    The names of the upload and its working copy go into the deletion outbox in the same
    transaction as the row, and are published after commit (or by the republisher if that
    publish fails).
    """
    with db.transaction() as conn:
        row = reference_images.delete_owned(
            conn, image_id=_image_id(request), user_id=request.user_id
        )
        if row is None:
            raise NotFound("no such reference image")
        # Upload names are never reused (a microsecond timestamp, create-only signed PUTs), and
        # a working copy's follows its upload's: the objects go by name, whatever generation.
        entries = purge.enqueue(
            conn,
            [
                (storage.object_name_from_bucket_path(path), None)
                for path in (row["gcp_bucket_path"], row["working_copy_path"])
                if path
            ],
            reason="reference_image_deleted",
        )
    purge.publish(entries)
    return Reply(204)
