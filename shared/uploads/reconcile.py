"""Backfill: register every object under `uploads/` that has no row, as the trigger would.

The listing is read page by page and checked against the table a batch at a time (one query per
batch); each missing object goes through `registration.register_object`, the trigger's own code, so a
run is safe while uploads continue (the database keeps one row per bucket path). Paging stops
when no page token comes back, which is also how the GCS emulator answers (everything in one
page), and when a token repeats.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from shared import config, db, log, storage
from shared.events import StorageObject
from shared.queries import reference_images
from shared.uploads import registration

ListPage = Callable[[str | None], tuple[list[Any], str | None]]
Progress = Callable[[dict[str, int]], None]

BATCH_SIZE = 200
PAGE_SIZE = 1000
TASK_BUDGET_SECONDS = 480  # under the maintenance function's 540 s timeout


def list_uploads_page(page_size: int = PAGE_SIZE) -> ListPage:
    """One page of `uploads/` per call: (blobs, next page token or None)."""

    def list_page(token: str | None) -> tuple[list[Any], str | None]:
        iterator = storage.client().list_blobs(
            storage.bucket(), prefix=storage.UPLOADS_PREFIX, page_size=page_size, page_token=token
        )
        page = next(iterator.pages, None)
        return (list(page) if page is not None else []), iterator.next_page_token

    return list_page


def listed(list_page: ListPage) -> Iterator[Any]:
    """Every item of every page, following tokens until none (or a repeated one) comes back."""
    token: str | None = None
    seen: set[str] = set()
    while True:
        items, token = list_page(token)
        yield from items
        if not token or token in seen:
            return
        seen.add(token)


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _storage_object(blob: Any) -> StorageObject:
    return StorageObject(
        bucket=config.settings().bucket,
        name=blob.name,
        generation=blob.generation,
        size=int(blob.size or 0),
        content_type=blob.content_type,
        metadata=dict(blob.metadata or {}),
    )


def reconcile(
    list_page: ListPage | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    budget_seconds: float | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Register what the trigger missed; returns counts (`checked`, `missing`, and outcomes)."""
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    counts: Counter[str] = Counter()
    for batch in batches(listed(list_page or list_uploads_page()), batch_size):
        if deadline is not None and time.monotonic() > deadline:
            counts["stopped_early"] = 1
            break
        by_path = {storage.bucket_path(blob.name): blob for blob in batch}
        with db.transaction() as conn:
            missing = reference_images.unregistered(conn, list(by_path))
        counts["checked"] += len(batch)
        counts["missing"] += len(missing)
        for path in sorted(missing):
            blob = by_path[path]
            with log.bind(object=blob.name, generation=blob.generation):
                counts[registration.register_object(_storage_object(blob), blob.time_created)] += 1
        if progress is not None:
            progress(dict(counts))
    return dict(counts)


def task() -> dict[str, int]:
    """The maintenance task `reconcile_uploads`: a time-boxed run (the next tick goes on)."""
    return reconcile(budget_seconds=TASK_BUDGET_SECONDS)
