"""``oracle requests list | show | retry`` against a real, migrated SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from oracle.cli import app
from oracle.db import Database, InferenceRequest, Transaction
from oracle.ingest.redispatch import Redispatcher
from oracle.paths import ROOT
from oracle.types import Mode, RequestStatus, TxStatus

COORD = "0x" + "c" * 40
OTHER = "0x" + "d" * 40


def request(request_id: int, status: RequestStatus, **kw: Any) -> InferenceRequest:
    fields: dict[str, Any] = {
        "chain_id": 1,
        "coordinator": COORD,
        "request_id": request_id,
        "model_id": "0x" + "1" * 64,
        "consumer": "0x" + "2" * 40,
        "input": [1],
        "mode": int(Mode.NONE),
        "callback_gas_limit": 100_000,
        "fee": "0",
        "block_number": 10,
        "block_hash": "0x" + "b" * 64,
        "tx_hash": "0x" + f"{request_id:064x}",
        "log_index": request_id,
        "status": status.value,
    }
    fields.update(kw)
    return InferenceRequest(**fields)


def tx(nonce: int, status: TxStatus, **kw: Any) -> Transaction:
    return Transaction(
        chain_id=1,
        sender="0x" + "5" * 40,
        nonce=nonce,
        tx_hash="0x" + f"{nonce + 100:064x}",
        raw=b"\x01",
        status=status.value,
        gas_limit=200_000,
        max_fee_per_gas="7",
        max_priority_fee_per_gas="1",
        **kw,
    )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Database, Path]]:
    url = f"sqlite:///{tmp_path / 'oracle.db'}"
    db = Database(url)
    db.upgrade()
    with db.session() as s:
        reverted = tx(0, TxStatus.REVERTED, mined_block=12)
        confirmed = tx(1, TxStatus.CONFIRMED, mined_block=14, replaced_hashes=["0xaa"])
        pending = tx(2, TxStatus.BROADCAST)
        s.add_all([reverted, confirmed, pending])
        s.flush()
        s.add_all(
            [
                request(
                    1,
                    RequestStatus.ABANDONED,
                    error="model failed | fulfilment reverted on chain",
                    fulfil_tx_id=reverted.id,
                    fulfil_reverts=3,
                    attempts=2,
                ),
                request(
                    2,
                    RequestStatus.CONFIRMED,
                    mode=int(Mode.ZK),
                    proof=b"\x00" * 1234,
                    proof_attempts=1,
                    prove_s=3.5,
                    fulfil_tx_id=confirmed.id,
                ),
                request(3, RequestStatus.ABANDONED, error="x", fulfil_tx_id=pending.id),
                request(4, RequestStatus.UNSERVED, error="model unavailable: not held"),
                request(4, RequestStatus.QUEUED, coordinator=OTHER),
            ]
        )
    config = tmp_path / "oracle.yaml"
    config.write_text(f"db:\n  url: {url}\n")
    yield db, config
    db.dispose()


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), "requests", *args])


def row(db: Database, request_id: int, coordinator: str = COORD) -> InferenceRequest:
    with db.session() as s:
        found = s.scalars(
            select(InferenceRequest).where(
                InferenceRequest.request_id == request_id,
                InferenceRequest.coordinator == coordinator,
            )
        ).one()
        s.expunge(found)
        return found


def test_list_filters_by_state_newest_first(setup: tuple[Database, Path]) -> None:
    _, config = setup
    result = run(config, "list", "--state", "abandoned", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [r["request_id"] for r in listed] == [3, 1]
    assert listed[1]["error_reason"] == "fulfil_reverted"
    result = run(config, "list", "--limit", "2", "--json")
    assert [r["coordinator"] for r in json.loads(result.output)] == [OTHER, COORD]
    assert run(config, "list").exit_code == 0


def test_show_gives_states_transaction_proof_and_error(setup: tuple[Database, Path]) -> None:
    _, config = setup
    result = run(config, "show", "2", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["mode"] == "zk" and shown["state"] == "confirmed"
    assert shown["transaction"]["mined_block"] == 14
    assert shown["transaction"]["replaced_hashes"] == ["0xaa"]
    assert shown["transaction"]["answers"] == [2]  # the requests this transaction answers
    assert shown["fulfilled_block"] == 14
    assert shown["proof"] == {
        "bytes": 1234,
        "attempts": 1,
        "prove_s": 3.5,
        "circuit_deviation": None,
    }
    assert [name for name, _ in shown["timeline"]] == ["seen", "last change"]
    text = run(config, "show", "1")
    assert text.exit_code == 0
    assert "fulfil_reverted" in text.output and "reverted, nonce 0" in text.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "99"], "no request 99"),
        (["show", "4"], "more than one Coordinator"),
        (["show", "1", "--chain-id", "5"], "no request 1 in the database (chain 5)"),
        (["list", "--state", "stuck"], "unknown state 'stuck'"),
        (["retry", "2"], "is confirmed: only abandoned or unserved"),
        (["retry", "3"], "is broadcast: not retried"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    setup: tuple[Database, Path], args: list[str], message: str
) -> None:
    _, config = setup
    result = run(config, *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize("args", [["show", "abc"], ["show", "-1"], ["list", "--limit", "0"]])
def test_malformed_arguments_are_usage_errors(
    setup: tuple[Database, Path], args: list[str]
) -> None:
    _, config = setup
    assert run(config, *args).exit_code == 2


def test_a_bad_id_from_the_shell_is_a_message_not_a_traceback(
    setup: tuple[Database, Path],
) -> None:
    _, config = setup
    env = {k: v for k, v in os.environ.items() if k != "ORACLE_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "oracle.cli", "--config", str(config), "requests", "show", "99"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no request 99" in done.stderr and "Traceback" not in done.stderr


def test_retry_reopens_an_abandoned_request_for_the_redispatcher(
    setup: tuple[Database, Path],
) -> None:
    db, config = setup
    result = run(config, "retry", "1", "--coordinator", COORD)
    assert result.exit_code == 0, result.output
    again = row(db, 1)
    assert again.status == RequestStatus.SEEN.value
    assert again.error is None and again.fulfil_tx_id is None
    assert again.attempts == 0 and again.fulfil_reverts == 0
    # the redispatcher hands a `seen` row to the inference queue
    enqueued: list[int] = []
    redispatcher = Redispatcher(db, 1, COORD, enqueued.append)
    assert redispatcher.dispatch_pending(older_than_s=0) >= 1
    assert again.id in enqueued
    assert row(db, 1).status == RequestStatus.QUEUED.value

    assert run(config, "retry", "4", "--coordinator", COORD).exit_code == 0
    assert row(db, 4).status == RequestStatus.SEEN.value
    assert row(db, 4, OTHER).status == RequestStatus.QUEUED.value  # the other one untouched
