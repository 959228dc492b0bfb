from __future__ import annotations

import uuid

import pytest

from orchestrator.messaging.bodies import Poison, read_body
from orchestrator.messaging.messages import COMMAND, RUN_DISPATCH


@pytest.mark.parametrize(
    ("body", "start"),
    [
        (b"[" * 200_000, "not JSON this service reads: nested too deeply"),
        (b'{"a":' * 200_000, "not JSON this service reads: nested too deeply"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"type": "command.cancel", "n": NaN}', "not JSON"),
        (b"[]", "invalid command"),
        (b'{"type": "command.explode"}', "invalid command"),
    ],
)
def test_every_bad_body_is_poison_with_a_reason(body: bytes, start: str) -> None:
    got = read_body(body, COMMAND, "command")
    assert isinstance(got, Poison)
    assert got.reason.startswith(start), got.reason


def test_a_good_body_is_read() -> None:
    command_id = uuid.uuid4()
    body = f'{{"type": "command.cancel", "command_id": "{command_id}", "backfill_id": 5}}'
    got = read_body(body.encode(), COMMAND, "command")
    assert not isinstance(got, Poison)
    assert got.command_id == command_id
    assert isinstance(read_body(b"[" * 200_000, RUN_DISPATCH, "run.dispatch"), Poison)
