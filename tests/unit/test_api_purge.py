"""purge_objects' message checks, without storage or a database: a message names one outbox
row; anything else (names of objects included) is a permanent error, acknowledged."""

from __future__ import annotations

import pytest

from shared import purge
from shared.errors import InvalidInput


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"object_names": ["generated/x.jpg"], "reason": "forged"},
        {"outbox_id": 1},
        {"outbox_id": ["6f9619ff-8b86-d011-b42d-00c04fc964ff"]},
        {"outbox_id": "not-a-uuid"},
        {"outbox_id": None},
    ],
)
def test_malformed_messages_are_permanent(data):
    with pytest.raises(InvalidInput) as caught:
        purge.purge(data)
    assert caught.value.code == "malformed_event" and not caught.value.retryable
