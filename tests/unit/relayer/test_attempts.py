"""The attempt builder: call data is a function of the row, fees follow the head and
outbid on replacement, and sign() yields what the chain accepts under that hash."""

from __future__ import annotations

from typing import Any

from hexbytes import HexBytes
from web3 import Web3

from oracle.db import Transaction
from oracle.relayer.attempts import Fees, answer_call, fulfil_calldata
from oracle.types import Mode
from tests.unit.relayer.fake_store import copy
from tests.unit.relayer.parts import Parts

OUTSIDER = Web3.to_checksum_address("0x" + "ab" * 20)


def test_calldata_is_a_function_of_the_row(parts: Parts) -> None:
    row = parts.request()
    coordinator = parts.chain.coordinator
    assert fulfil_calldata(coordinator, row) == fulfil_calldata(coordinator, row)
    other = parts.request(error="model failed")
    assert fulfil_calldata(coordinator, other) != fulfil_calldata(coordinator, row)


def test_fees_follow_the_head_base_fee(parts: Parts) -> None:
    head = parts.head()
    fees = parts.attempts.fees(head)
    relayer = parts.settings.relayer
    assert head.base_fee > 0
    assert fees.max_fee == int(head.base_fee * relayer.max_fee_multiplier) + fees.priority


def test_replacement_outbids_by_the_bump_factor(parts: Parts) -> None:
    old = Transaction(max_fee_per_gas=str(10**12), max_priority_fee_per_gas=str(10**10))
    new = parts.attempts.replacement_fees(parts.head(), old)
    factor = parts.settings.relayer.bump_factor
    assert new.max_fee >= 10**12 * factor and new.priority >= 10**10 * factor


def test_sign_gives_the_hash_the_chain_mines(parts: Parts) -> None:
    row = parts.request()
    nonce = parts.chain_nonce("pending")
    fees = parts.attempts.fees(parts.head())
    signed = parts.attempts.sign(
        nonce=nonce,
        to=parts.chain.coordinator.address,
        gas_limit=500_000,
        fees=fees,
        data=fulfil_calldata(parts.chain.coordinator, row),
    )
    sent = parts.w3.eth.send_raw_transaction(HexBytes(signed.raw))
    assert "0x" + bytes(sent).hex() == signed.tx_hash
    receipt = parts.mined(sent)
    mined = parts.w3.eth.get_transaction(sent)
    assert mined["type"] == 2 and mined["nonce"] == nonce
    assert mined["maxFeePerGas"] == fees.max_fee
    assert receipt["status"] == 1
    assert isinstance(fees, Fees)


def test_the_call_follows_the_row_through_the_optimistic_game(parts: Parts) -> None:
    """Which Coordinator function a row's next transaction calls, and with what value: decided
    by the row alone (decoded here from the call data the builder made)."""
    coordinator = parts.chain.coordinator
    row = copy(parts.request())
    row.mode = int(Mode.OPTIMISTIC)

    def call(r: Any, bond: int = 7) -> tuple[str, int, dict[str, Any]]:
        answer = answer_call(coordinator, r, bond)
        fn, args = coordinator.contract.decode_function_input(answer.data)
        assert fn.fn_name == answer.function
        return answer.function, answer.value, args

    assert call(row)[:2] == ("postOptimistic", 7)  # an output, nothing posted yet: the bond
    errored = copy(row)
    errored.output, errored.error = [], "model failed"
    assert call(errored)[:2] == ("fulfill", 0)  # an error answer needs no bond
    posted = copy(row)
    posted.claim_node, posted.claim_bond = parts.chain.node.address, "7"
    posted.challenge_deadline, posted.proof_deadline = 50, 70
    name, value, args = call(posted)
    assert (name, value) == ("finalize", 0)
    assert args["claim"]["bond"] == 7 and args["claim"]["challengeDeadline"] == 50
    challenged = copy(posted)
    challenged.challenger, challenged.challenger_bond, challenged.proof = OUTSIDER, "3", b"p"
    name, _, args = call(challenged)
    assert name == "proveOptimistic" and args["proof"] == b"p"
    assert args["claim"]["challenger"] == OUTSIDER and args["claim"]["challengerBond"] == 3
    plain = parts.request()
    assert call(plain)[:2] == ("fulfill", 0)
