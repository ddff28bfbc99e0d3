"""End to end through real processes: anvil -> listener -> Celery worker -> relayer -> callback."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from oracle.errors import TransactionError
from oracle.fixedpoint import from_fixed, to_fixed
from tests.support.chain import deploy_consumer
from tests.support.models import EXAMPLE_MODEL
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


def onnx_reference(values: list[float]) -> float:
    session = ort.InferenceSession(str(EXAMPLE_MODEL), providers=["CPUExecutionProvider"])
    x = np.array([values], dtype=np.float32)
    return float(session.run(None, {"input": x})[0].reshape(-1)[0])


def test_happy_path_answers_with_the_models_output(stack: Stack, running_node: object) -> None:
    values = [0.5, -0.25, 0.125, 0.75]
    request_id = stack.request([to_fixed(v, 16) for v in values])
    fulfilled, output, err = stack.wait_result(request_id)
    assert fulfilled and err == b""
    assert len(output) == 1
    assert from_fixed(output[0], 16) == pytest.approx(onnx_reference(values), abs=2**-15)
    wait_for(lambda: stack.row_status(request_id) == "confirmed", what="row confirmed")
    # The node earned the fee.
    node_balance = stack.coordinator.contract.functions.nodeBalance(
        running_node.relayer.sender  # type: ignore[attr-defined]
    ).call()
    assert node_balance > 0


@pytest.mark.faults
def test_wrong_input_length_is_refused_on_chain_and_node_keeps_serving(
    stack: Stack, running_node: object
) -> None:
    # The Coordinator refuses it at request time: no request exists for the node to answer.
    with pytest.raises(TransactionError, match="InputLengthMismatch"):
        stack.request([to_fixed(0.1, 16)] * 3)
    good = stack.request([to_fixed(0.2, 16)] * 4)
    fulfilled, output, err = stack.wait_result(good)
    assert fulfilled and err == b"" and len(output) == 1


@pytest.mark.faults
def test_value_out_of_range_gets_an_error_callback(stack: Stack, running_node: object) -> None:
    request_id = stack.request([2**100, 0, 0, 0])
    fulfilled, output, err = stack.wait_result(request_id)
    assert fulfilled and output == []
    assert err.decode().startswith("value out of range at index 0")


@pytest.mark.faults
@pytest.mark.parametrize("consumer_name", ["RevertingConsumer", "GasHungryConsumer"])
def test_failing_callback_does_not_revert_the_fulfilment(
    stack: Stack, running_node: object, consumer_name: str
) -> None:
    consumer = deploy_consumer(stack.w3, consumer_name, stack.deployment.coordinator)
    request_id = stack.request([to_fixed(0.3, 16)] * 4, gas=100_000, consumer=consumer)
    wait_for(lambda: stack.row_status(request_id) == "confirmed", timeout=30, what="confirmed")
    events = stack.coordinator.contract.events.InferenceFulfilled().get_logs(
        from_block=0, argument_filters={"requestId": request_id}
    )
    assert len(events) == 1
    assert events[0]["args"]["callbackSucceeded"] is False
    assert stack.coordinator.commitment(request_id) == b"\x00" * 32
