"""gcp-storage-emulator, with the one Cloud Storage precondition the product relies on and the
emulator lacks: `ifGenerationMatch` on an object delete. Cloud Storage deletes only that
generation and answers 412 when the object has another (and 404 when it is gone); the emulator
ignores the parameter and deletes whatever is there, which would hide the very race the
precondition closes (a purge removing a shot re-rendered under the same name). And two fixes
for bursts of writes: a deep listen backlog, and no index rewrite per write in memory.

    python -m tools.gcs_emulator start --host 127.0.0.1 --port 9023 ...   # the emulator's CLI

Everything else is the emulator's own (the version pinned in constraints.txt).
"""

from __future__ import annotations

import sys
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server, storage
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


# The emulator serves one request at a time on http.server's HTTPServer, whose listen backlog
# is socketserver's 5: in a burst (hundreds of renders writing at once) the kernel dropped the
# connections beyond it and the clients' connects timed out, where Cloud Storage takes them all.
# With a deep backlog they wait for their turn instead.
LISTEN_BACKLOG = 1024

_write_index = storage.Storage._write_config_to_file


def _write_index_unless_in_memory(self: Any) -> None:
    """The emulator writes its whole index (every object's metadata, as indented JSON) after
    each change, so each write costs more than the last: a thousand shots made writes take
    seconds. In memory (--in-memory) nothing ever reads it back, so it is not written."""
    if not self._use_memory_fs:
        _write_index(self)


def install() -> None:
    """Route the JSON API's object deletes through `delete`; queue connections, not drop them;
    keep no on-disk index in memory mode."""
    for _, handlers in server.HANDLERS:
        if handlers.get(server.DELETE) is objects.delete:
            handlers[server.DELETE] = delete
    server.server.HTTPServer.request_queue_size = LISTEN_BACKLOG
    storage.Storage._write_config_to_file = _write_index_unless_in_memory


if __name__ == "__main__":
    install()
    main(sys.argv[1:])
