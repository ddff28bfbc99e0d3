"""Random sequences of requests, fulfilments (good, failed, bad proof), cancels and
withdrawals against the real Coordinator: the ETH it holds always equals the stakes, what
it owes (node fees, Zk premium refunds) and the fees of pending requests; no request ends twice."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.chain.client import RequestStruct
from oracle.chain.deploy import ETHER, send
from oracle.errors import TransactionError
from tests.support.contract import NODE, OWNER, TIMEOUT_BLOCKS, USER, ZK_MODEL, Chain

pytestmark = [pytest.mark.integration, pytest.mark.faults]

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from([0, 1]), st.just("")),
        st.tuples(st.just("fulfil"), st.integers(0, 50), st.sampled_from(["ok", "err"])),
        st.tuples(st.just("bad_proof"), st.integers(0, 50), st.just("")),
        st.tuples(st.just("cancel"), st.integers(0, 50), st.just("")),
        st.tuples(st.just("withdraw"), st.just(0), st.just("")),
    ),
    min_size=5,
    max_size=25,
)


def rpc(ch: Chain, method: str, params: list[Any] | None = None) -> Any:
    return ch.w3.provider.make_request(method, params or [])["result"]  # type: ignore[arg-type]


def expired(ch: Chain, req: RequestStruct) -> bool:
    """True when a fulfilment sent now would land after the request's deadline."""
    return ch.w3.eth.block_number + 1 > req.requested_at_block + TIMEOUT_BLOCKS


def check_books(
    ch: Chain, pending: dict[int, RequestStruct], node_owed: int, consumer_owed: int
) -> None:
    coord = ch.coord.contract.functions
    assert coord.nodeBalance(NODE.address).call() == node_owed
    assert coord.nodeBalance(ch.consumer.address).call() == consumer_owed  # Zk error refunds
    held = ch.w3.eth.get_balance(ch.coord.address)
    stakes = ETHER  # the one registered node
    expected = stakes + node_owed + consumer_owed + sum(r.fee for r in pending.values())
    assert held == expected, (held, expected, pending)
    for request_id in pending:
        assert ch.coord.commitment(request_id) != b"\0" * 32


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_fees_and_refunds_always_add_up(chain: Chain, ops: list[tuple[str, int, Any]]) -> None:
    snapshot = rpc(chain, "evm_snapshot")
    pending: dict[int, RequestStruct] = {}
    done: set[int] = set()
    node_owed = chain.coord.contract.functions.nodeBalance(NODE.address).call()
    consumer_owed = chain.coord.contract.functions.nodeBalance(chain.consumer.address).call()
    premium = chain.coord.contract.functions.feeConfig().call()[1]  # no fee change here
    try:
        for op, arg, kind in ops:
            keys = sorted(pending)
            target = pending[keys[arg % len(keys)]] if keys else None
            if op == "request":
                req = (
                    chain.request([3, -7], mode=1, model=ZK_MODEL)
                    if arg == 1
                    else chain.request([3, -7])
                )
                pending[req.request_id] = req
            elif op == "fulfil" and target is not None and expired(chain, target):
                # Past its deadline nobody may answer (the tx lands in the next block); the
                # request stays pending until its consumer cancels it.
                with pytest.raises(TransactionError):
                    chain.fulfill(target, [1])
            elif op == "fulfil" and target is not None:
                if target.mode == 1 and kind == "ok":
                    send(chain.w3, OWNER, chain.verifier.functions.setAnswer(True))
                    chain.fulfill(target, [1], proof=b"\x01")
                    node_owed += target.fee
                elif kind == "ok":
                    chain.fulfill(target, [1])
                    node_owed += target.fee
                else:
                    chain.fulfill(target, [], err=b"model failed")
                    if target.mode == 1:
                        # An unproven failure earns no premium; the node keeps the base fee
                        # and the callback gas it paid for.
                        consumer_owed += premium
                        node_owed += target.fee - premium
                    else:
                        node_owed += target.fee
                done.add(pending.pop(target.request_id).request_id)
            elif op == "bad_proof" and target is not None and target.mode == 1:
                send(chain.w3, OWNER, chain.verifier.functions.setAnswer(False))
                with pytest.raises(TransactionError, match=r"InvalidProof|RequestExpired"):
                    chain.fulfill(target, [1], proof=b"\x01")
            elif op == "cancel" and target is not None:
                for _ in range(TIMEOUT_BLOCKS + 1):
                    rpc(chain, "evm_mine")
                send(chain.w3, USER, chain.consumer.functions.cancel(target.as_tuple()))
                done.add(pending.pop(target.request_id).request_id)
            elif op == "withdraw" and node_owed > 0:
                send(chain.w3, NODE, chain.coord.contract.functions.withdrawFees(NODE.address))
                node_owed = 0
            check_books(chain, pending, node_owed, consumer_owed)
        for request_id in done:  # nothing ends twice
            assert chain.coord.commitment(request_id) == b"\0" * 32
    finally:
        rpc(chain, "evm_revert", [snapshot])
