"""gcp-storage-emulator, with the one Cloud Storage precondition the product relies on and the
emulator lacks: `ifGenerationMatch` on an object delete. Cloud Storage deletes only that
generation and answers 412 when the object has another (and 404 when it is gone); the emulator
ignores the parameter and deletes whatever is there, which would hide the very race the
precondition closes (a purge removing a shot re-rendered under the same name).

    python -m tools.gcs_emulator start --host 127.0.0.1 --port 9023 ...   # the emulator's CLI

Everything else is the emulator's own (the version pinned in constraints.txt).
"""

from __future__ import annotations

import sys
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server
from gcp_storage_emulator.__main__ import main
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects


def delete(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> None:
    """objects.delete, refusing with 412 when ifGenerationMatch names another generation."""
    wanted = request.query.get("ifGenerationMatch")
    if wanted:
        try:
            found = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
        except NotFound:
            response.status = HTTPStatus.NOT_FOUND
            return
        if str(found["generation"]) != wanted[0]:
            response.status = HTTPStatus.PRECONDITION_FAILED
            response.json({"error": {"code": 412, "message": "conditionNotMet"}})
            return
    objects.delete(request, response, storage, *args, **kwargs)


def install() -> None:
    """Route the JSON API's object deletes through `delete`."""
    for _, handlers in server.HANDLERS:
        if handlers.get(server.DELETE) is objects.delete:
            handlers[server.DELETE] = delete


if __name__ == "__main__":
    install()
    main(sys.argv[1:])
