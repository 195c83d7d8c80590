"""purge_objects' message checks, without storage: malformed messages are permanent errors and
names outside the system's own prefixes are never deleted."""

from __future__ import annotations

import pytest

from shared import purge
from shared.errors import InvalidInput


@pytest.mark.parametrize(
    "data",
    [{}, {"object_names": "generated/x.jpg"}, {"object_names": [1]}, {"object_names": None}],
)
def test_malformed_messages_are_permanent(data):
    with pytest.raises(InvalidInput) as caught:
        purge.purge(data)
    assert not caught.value.retryable


def test_foreign_names_are_refused_without_touching_storage(capsys):
    names = ["", "elsewhere/a.jpg", "/generated/a.jpg", "Generated/a.jpg", "../uploads/x"]
    assert purge.purge({"object_names": names, "reason": "t"}) == {
        "deleted": 0,
        "already_gone": 0,
        "refused": len(names),
    }
    assert capsys.readouterr().out.count('"action": "purge.refused"') == len(names)
