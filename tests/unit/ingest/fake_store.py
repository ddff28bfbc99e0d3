"""An in-process :class:`oracle.ingest.store.ListenerStore`: the listener's database
boundary, kept in dictionaries, with the same rules as the SQL store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from oracle.chain.client import RequestedEvent
from oracle.ingest.store import Cursor, Header
from oracle.types import RequestStatus


@dataclass
class FakeRow:
    id: int
    request_id: int
    status: str
    block_number: int
    block_hash: str
    mode: int = 0


class FakeListenerStore:
    def __init__(self) -> None:
        self.current: Cursor | None = None
        self.blocks: dict[int, str] = {}
        self.rows: dict[int, FakeRow] = {}  # by request id
        self.halted_reason: str | None = None

    def cursor(self) -> Cursor | None:
        if self.current is None:
            return None
        return Cursor(self.current.block_number, self.current.block_hash, self.halted_reason)

    def create_cursor(self, block_number: int, block_hash: str) -> Cursor:
        if self.current is None:
            self.current = Cursor(block_number, block_hash)
        return self.current

    def commit_range(
        self, events: Sequence[RequestedEvent], last: Header, forget_below: int
    ) -> list[int]:
        new_rows: list[int] = []
        for ev in events:
            row = self.rows.get(ev.request_id)
            if row is None:
                row = FakeRow(len(self.rows) + 1, ev.request_id, "", 0, "")
                self.rows[ev.request_id] = row
            else:
                already = row.block_number == ev.block_number and row.mode == int(ev.mode)
                reopened = ev.reopened and not already
                if row.status != RequestStatus.REORGED.value and not reopened:
                    continue
            row.mode = int(ev.mode)
            row.status = RequestStatus.SEEN.value
            row.block_number, row.block_hash = ev.block_number, ev.block_hash
            new_rows.append(row.id)
        self.blocks[last.number] = last.hash
        self.blocks = {n: h for n, h in self.blocks.items() if n >= forget_below}
        self.current = Cursor(last.number, last.hash)
        return new_rows

    def remembered_blocks(self, above: int, up_to: int) -> dict[int, str]:
        return {n: h for n, h in self.blocks.items() if above < n <= up_to}

    def rewind(self, fork: int, fork_hash: str) -> int:
        marked = 0
        for row in self.rows.values():
            if row.block_number > fork and row.status != RequestStatus.REORGED.value:
                row.status = RequestStatus.REORGED.value
                marked += 1
        self.blocks = {n: h for n, h in self.blocks.items() if n <= fork}
        self.current = Cursor(fork, fork_hash)
        return marked

    def halt(self, reason: str) -> None:
        self.halted_reason = reason
