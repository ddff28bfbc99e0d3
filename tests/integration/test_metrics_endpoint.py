"""``/metrics`` of a running node on anvil: a request the listener hands over shows up by
state and mode, and the chain figures are the chain's."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from oracle.dev.processes import free_port
from oracle.node import Node
from tests.support.stack import Stack
from tests.support.wait import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def node_with_endpoint(stack: Stack) -> Iterator[tuple[Node, str]]:
    port = free_port()
    settings = stack.settings.model_copy(
        update={"metrics": stack.settings.metrics.model_copy(update={"port": port})}
    )
    node = Node.with_celery(settings)
    node.start()
    try:
        yield node, f"http://127.0.0.1:{port}/metrics"
    finally:
        node.stop()


@pytest.mark.no_worker
def test_metrics_endpoint_reports_requests_and_the_chain(
    stack: Stack, node_with_endpoint: tuple[Node, str]
) -> None:
    node, url = node_with_endpoint
    chain = str(node.chain_id)
    coordinator = node.listener.address
    queued = ("oracle_requests", frozenset({
        ("chain_id", chain), ("coordinator", coordinator), ("state", "queued"), ("mode", "none"),
    }))  # fmt: skip

    def samples_when_up() -> Samples | None:
        try:
            return scrape(url)
        except OSError:
            return None

    wait_for(samples_when_up, 20, "the status endpoint")
    stack.request([1, 2, 3, 4])
    # no worker runs: the listener's hand-over leaves the row queued
    samples: Samples = wait_for(
        lambda: (s := scrape(url)).get(queued) == 1 and s, 30, "a queued request on /metrics"
    )

    signer = frozenset({("chain_id", chain), ("signer", node.relayer.sender)})
    balance = stack.w3.eth.get_balance(stack.w3.to_checksum_address(node.relayer.sender))
    assert samples[("oracle_signer_balance_wei", signer)] == float(balance)
    assert samples[("oracle_chain_rpc_up", frozenset({("chain_id", chain)}))] == 1
    assert samples[("oracle_database_up", frozenset())] == 1
    c = frozenset({("chain_id", chain), ("coordinator", coordinator)})
    head = samples[("oracle_chain_head_block", frozenset({("chain_id", chain)}))]
    assert head <= stack.w3.eth.block_number
    assert 0 <= samples[("oracle_listener_lag_blocks", c)] <= head
    assert samples[("oracle_requests_seen_total", c | {("mode", "none")})] == 1
    assert samples[("oracle_pending_request_max_age_seconds", c)] >= 0
    assert samples[("oracle_reorgs_total", c)] == 0
    assert ("oracle_health_state", c | {("state", "down")}) in samples
