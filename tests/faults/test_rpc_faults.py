"""An RPC that times out or answers garbage: the node stays up and loses nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.rpc_proxy import FaultyRpcProxy
from tests.support.chain import burst
from tests.support.checks import answered_exactly_once
from tests.support.node import new_node
from tests.support.stack import Stack
from tests.support.wait import wait_for

# ~30 s per database (timeouts are waited out): `make faults` only
pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow_fault]


@pytest.fixture
def proxy(stack: Stack) -> Iterator[FaultyRpcProxy]:
    server = FaultyRpcProxy(stack.anvil.url, rate=0.0, delay_s=2.0).start()
    yield server
    server.stop()


def test_node_survives_an_rpc_that_times_out_or_answers_garbage(
    stack: Stack, proxy: FaultyRpcProxy
) -> None:
    settings = stack.settings.model_copy(
        update={
            "chain": stack.settings.chain.model_copy(
                update={"rpc_url": proxy.url, "rpc_timeout_s": 1.0, "confirmations": 0}
            ),
            "worker": stack.settings.worker.model_copy(update={"requeue_after_s": 5.0}),
        }
    )
    node = new_node(settings)
    node.start()
    try:
        proxy.rate = 0.25  # one RPC call in four misbehaves, in one of five ways
        ids = burst(stack, 8)  # sent straight to anvil: the chain itself is fine
        answered_exactly_once(stack, ids)
        assert all(proxy.counts[fault] > 0 for fault in ("timeout", "garbage", "http500"))
        proxy.rate = 0.0
        wait_for(lambda: node.healthy()[0], 60, "the node to be healthy once the RPC behaves")
    finally:
        node.stop()
