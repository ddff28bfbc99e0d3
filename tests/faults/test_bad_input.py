"""Bad input in one stream: every malformed request gets a clear error callback, none is
lost or answered twice, and the good requests around them are answered normally. A model
this node does not hold is never answered with an error: nobody serving it, the request is
refused; served by a node without the file, it is left ``unserved``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.errors import TransactionError
from oracle.fixedpoint import to_fixed
from oracle.models.registration import register_model
from oracle.models.store import ArtifactStore
from oracle.types import RequestStatus
from tests.support.chain import fulfilled_events
from tests.support.checks import answered_exactly_once
from tests.support.models import onnx_variant
from tests.support.node import new_node
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

GOOD = [to_fixed(v, 16) for v in (0.5, -0.25, 0.125, 0.75)]


def unserved_model(stack: Stack, tmp_path: Path) -> str:
    """A model registered on chain by someone else, whose file this node does not hold."""
    onnx = onnx_variant(tmp_path / "elsewhere.onnx", "not served here")
    owner = Account.from_key(ANVIL_DEV_KEYS[3])
    elsewhere = ArtifactStore(tmp_path / "someone-elses-store")
    model_id, created = register_model(None, elsewhere, stack.coordinator, owner, onnx, 16, 16)
    assert created
    return model_id


def test_malformed_requests_get_error_callbacks_and_the_node_keeps_serving(
    stack: Stack, running_node: Any, tmp_path: Path
) -> None:
    max_len = int(stack.coordinator.contract.functions.maxInputLength().call())
    unserved = unserved_model(stack, tmp_path)
    expected = {
        stack.request(GOOD): None,
        stack.request([2**100, 0, 0, 0]): "value out of range at index 0",
        stack.request([-(2**200), 0, 0, 0]): "value out of range at index 0",
        stack.request(GOOD): None,
    }
    # Requests the chain itself refuses never exist, so there is nothing to answer.
    before = int(stack.coordinator.contract.functions.nextRequestId().call())
    refused = (
        (GOOD[:3], stack.model_id, "InputLengthMismatch"),
        ([1] * max_len, stack.model_id, "InputLengthMismatch"),
        ([1] * (max_len + 1), stack.model_id, "InputTooLong"),
        (GOOD, "0x" + "33" * 32, "UnknownModel"),
        (GOOD, unserved, "NoNodeServesModel"),
    )
    for values, model, error in refused:
        with pytest.raises(TransactionError, match=error):
            stack.request(values, model_id=model)
    assert int(stack.coordinator.contract.functions.nextRequestId().call()) == before

    for request_id, error in expected.items():
        fulfilled, output, err = stack.wait_result(request_id, timeout=60)
        assert fulfilled, request_id
        if error is None:
            assert err == b"" and len(output) == 1
        else:
            assert output == [] and err.decode().startswith(error), (request_id, err)
    # Each row final, each request answered by one event and one transaction.
    answered_exactly_once(stack, list(expected), timeout=60)
    for request_id, error in expected.items():
        final = RequestStatus.CONFIRMED if error is None else RequestStatus.ERRORED
        wait_for(lambda r=request_id, f=final: stack.row_status(r) == f.value, what="final row")
    assert running_node.healthy()[0]


def test_a_served_model_the_node_does_not_hold_is_left_unserved_not_answered(
    stack: Stack, tmp_path: Path
) -> None:
    unserved = unserved_model(stack, tmp_path)
    # Declared with the node's key before the node runs (its relayer owns the nonces then),
    # but the file is not in this node's store.
    stack.local.serve(unserved)
    node = new_node(stack.settings)
    node.start()
    try:
        check_unserved(stack, unserved)
    finally:
        node.stop()


def check_unserved(stack: Stack, unserved: str) -> None:
    request_id = stack.request(GOOD, model_id=unserved)
    wait_for(
        lambda: stack.row_status(request_id) == RequestStatus.UNSERVED.value, what="unserved row"
    )
    good = stack.request(GOOD)  # the node keeps serving, and sent nothing for the other
    answered_exactly_once(stack, [good], timeout=60)
    assert fulfilled_events(stack, request_id) == []
    assert stack.coordinator.commitment(request_id) != bytes(32)
