"""The attempt builder: call data is a function of the row, fees follow the head and
outbid on replacement, and sign() yields what the chain accepts under that hash."""

from __future__ import annotations

from hexbytes import HexBytes

from oracle.db import Transaction
from oracle.relayer.attempts import Fees, fulfil_calldata
from tests.unit.relayer.parts import Parts


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
