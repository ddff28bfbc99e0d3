"""The node's model id rule agrees with the Coordinator's: the id ``registerModel`` returns
(and emits) for some content is :func:`content_model_id` of that content."""

from __future__ import annotations

import os

import pytest
from web3.logs import DISCARD

from oracle.models.registration import ZERO_HASH, content_model_id, verifier_code_hash
from tests.support.contract import OWNER, Chain, artifact_code_hash, register_raw

CONTENTS = [
    (2, 1, 16, 16),
    (16, 3, 0, 64),
    (1, 2**32 - 1, 64, 0),
]


@pytest.mark.parametrize("shape", CONTENTS)
@pytest.mark.parametrize("with_verifier", [False, True])
def test_content_model_id_is_the_coordinators(
    chain: Chain, shape: tuple[int, int, int, int], with_verifier: bool
) -> None:
    onnx_hash = "0x" + os.urandom(32).hex()
    verifier = chain.verifier.address if with_verifier else "0x" + "00" * 20
    code_hash = verifier_code_hash(chain.w3, verifier)
    assert code_hash == (artifact_code_hash("MockVerifier") if with_verifier else ZERO_HASH)
    expected = content_model_id(onnx_hash, code_hash, *shape)

    returned, receipt = register_raw(
        chain.w3, chain.coord.contract, OWNER, onnx_hash, shape, verifier
    )
    (event,) = chain.coord.contract.events.ModelRegistered().process_receipt(
        receipt, errors=DISCARD
    )
    assert returned == expected
    assert "0x" + bytes(event["args"]["modelId"]).hex() == expected
    info = chain.coord.model(expected)
    assert info["exists"] and info["onnx_hash"] == onnx_hash
    assert info["verifier_code_hash"] == code_hash


def test_content_model_id_changes_with_every_field() -> None:
    base = ("0x" + "11" * 32, ZERO_HASH, 2, 1, 16, 16)
    ids = {content_model_id(*base)}
    variants = [
        ("0x" + "12" * 32, *base[1:]),
        (base[0], "0x" + "22" * 32, *base[2:]),
        (*base[:2], 3, *base[3:]),
        (*base[:3], 2, *base[4:]),
        (*base[:4], 17, base[5]),
        (*base[:5], 17),
    ]
    for v in variants:
        ids.add(content_model_id(*v))  # type: ignore[arg-type]
    assert len(ids) == 1 + len(variants)
