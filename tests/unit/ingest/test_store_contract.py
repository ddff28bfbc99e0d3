"""The fake listener store keeps the same rules as the SQL one: the same calls, checked on
both (the SQL store on a migrated SQLite database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from oracle.chain.client import RequestedEvent
from oracle.db import Database, InferenceRequest
from oracle.ingest.store import Cursor, Header, ListenerStore, SqlListenerStore
from oracle.types import ModelId, RequestId, RequestStatus
from tests.unit.ingest.fake_store import FakeListenerStore

COORDINATOR = "0x" + "11" * 20


def event(request_id: int, block: int, mode: int = 0, reopened: bool = False) -> RequestedEvent:
    return RequestedEvent(
        request_id=RequestId(request_id),
        model_id=ModelId("0x" + "ab" * 32),
        consumer="0x" + "22" * 20,  # type: ignore[arg-type]
        input=(1, -2),
        mode=mode,
        callback_gas_limit=100_000,
        fee=10**15,
        block_number=block,
        block_hash=f"0x{block:064x}",
        tx_hash=f"0x{request_id:064x}",
        log_index=0,
        reopened=reopened,
    )


def header(number: int, fork: str = "a") -> Header:
    return Header(number, f"0x{fork}{number:063x}", f"0x{fork}{number - 1:063x}")


@pytest.fixture(params=["fake", "sql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ListenerStore]:
    if request.param == "fake":
        yield FakeListenerStore()
        return
    db = Database(f"sqlite:///{tmp_path / 'oracle.db'}")
    db.upgrade()
    yield SqlListenerStore(db, 31337, COORDINATOR)
    db.dispose()


def status_of(store: ListenerStore, request_id: int) -> tuple[str, int]:
    if isinstance(store, FakeListenerStore):
        row = store.rows[request_id]
        return row.status, row.block_number
    assert isinstance(store, SqlListenerStore)
    with store.db.session() as s:
        found = s.scalars(
            select(InferenceRequest).where(InferenceRequest.request_id == request_id)
        ).one()
        return found.status, found.block_number


def test_cursor_commit_rewind_reopen_and_halt(store: ListenerStore) -> None:
    assert store.cursor() is None
    assert store.create_cursor(9, header(9).hash) == Cursor(9, header(9).hash)
    assert store.create_cursor(3, "0xother") == Cursor(9, header(9).hash)  # already placed

    first = store.commit_range([event(1, 10), event(2, 12)], header(12), forget_below=0)
    assert len(first) == 2
    assert store.commit_range([event(1, 10)], header(13), forget_below=0) == []  # known row
    assert store.cursor() == Cursor(13, header(13).hash)
    assert store.remembered_blocks(above=11, up_to=13) == {12: header(12).hash, 13: header(13).hash}
    assert store.remembered_blocks(above=12, up_to=12) == {}

    assert store.rewind(11, header(11).hash) == 1  # only the row from block 12
    assert store.cursor() == Cursor(11, header(11).hash)
    assert store.remembered_blocks(above=0, up_to=100) == {}
    assert status_of(store, 1) == (RequestStatus.SEEN.value, 10)
    assert status_of(store, 2) == (RequestStatus.REORGED.value, 12)

    reopened = store.commit_range([event(2, 14)], header(14, "b"), forget_below=0)
    assert reopened == [first[1]]  # the same row, reopened
    assert status_of(store, 2) == (RequestStatus.SEEN.value, 14)

    store.commit_range([], header(20, "b"), forget_below=15)
    assert store.remembered_blocks(above=0, up_to=100) == {20: header(20, "b").hash}

    store.halt("too deep")
    halted = store.cursor()
    assert halted is not None and halted.halted_reason == "too deep"


def test_a_reopened_request_resets_its_row_once(store: ListenerStore) -> None:
    """``RequestReopened`` (a slashed optimistic answer): the row starts again in Zk mode
    from the reopening block, whatever it was; the same log read again changes nothing."""
    store.create_cursor(9, header(9).hash)
    (row_id,) = store.commit_range([event(1, 10, mode=2)], header(10), forget_below=0)
    assert store.commit_range([event(1, 10, mode=2)], header(11), forget_below=0) == []
    reopened = event(1, 15, mode=1, reopened=True)
    assert store.commit_range([reopened], header(15), forget_below=0) == [row_id]
    assert status_of(store, 1) == (RequestStatus.SEEN.value, 15)
    assert store.commit_range([reopened], header(16), forget_below=0) == []
    # Announced and re-opened within one range (a node starting late): one row, re-opened.
    rows = store.commit_range(
        [event(2, 17, mode=2), event(2, 18, mode=1, reopened=True)], header(18), forget_below=0
    )
    assert len(set(rows)) == 1 and status_of(store, 2) == (RequestStatus.SEEN.value, 18)
