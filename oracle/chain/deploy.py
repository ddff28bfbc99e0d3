"""Deploy contracts and send owner/user transactions (local stack, CLI, tests)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import Web3Exception

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import revert_from_exception
from oracle.errors import TransactionError

ETHER = 10**18


@dataclass(frozen=True)
class CoordinatorParams:
    min_stake: int = 1 * ETHER
    request_timeout_blocks: int = 100
    max_callback_gas_limit: int = 2_000_000
    max_input_length: int = 1024
    base_fee: int = 10**15  # 0.001 ether
    zk_premium: int = 10**16
    optimistic_premium: int = 2 * 10**15
    # Callback gas is priced at max(block base fee, min_gas_price) * multiplier / 10_000.
    min_gas_price: int = 10**9
    gas_price_multiplier_bps: int = 10_000
    unbonding_blocks: int = 100
    fee_change_delay_blocks: int = 100
    # Caps on each fee component, fixed for the Coordinator's lifetime.
    max_base_fee: int = 10**17
    max_zk_premium: int = 10**18
    max_optimistic_premium: int = 10**18
    max_min_gas_price: int = 10**11
    max_gas_price_multiplier_bps: int = 30_000
    # Blocks after a request during which only its assigned node may answer.
    exclusive_window_blocks: int = 10
    # Optimistic mode (challenge_window_blocks 0: left disabled). Windows in blocks; the two
    # together may not exceed unbonding_blocks. node_bond must cover a proof's verification:
    # at least 1.5M gas (the Coordinator's verifier gas cap) at proof_gas_price.
    challenge_window_blocks: int = 10
    proof_window_blocks: int = 20
    node_bond: int = 2 * 10**16
    challenger_bond: int = 10**16
    stake_slash: int = 10**17
    proof_gas_price: int = 10 * 10**9
    challenger_share_bps: int = 5_000

    def optimistic_config(self) -> tuple[int, ...]:
        """The ``OptimisticConfig`` tuple for ``setOptimisticConfig``."""
        return (
            self.challenge_window_blocks,
            self.proof_window_blocks,
            self.node_bond,
            self.challenger_bond,
            self.stake_slash,
            self.proof_gas_price,
            self.challenger_share_bps,
        )

    def constructor_args(self) -> list[Any]:
        return [
            self.min_stake,
            self.request_timeout_blocks,
            self.max_callback_gas_limit,
            self.max_input_length,
            (
                self.base_fee,
                self.zk_premium,
                self.optimistic_premium,
                self.min_gas_price,
                self.gas_price_multiplier_bps,
            ),
            self.unbonding_blocks,
            self.fee_change_delay_blocks,
            (
                self.max_base_fee,
                self.max_zk_premium,
                self.max_optimistic_premium,
                self.max_min_gas_price,
                self.max_gas_price_multiplier_bps,
            ),
            self.exclusive_window_blocks,
        ]


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    rpc_url: str
    coordinator: str
    example_consumer: str
    deployed_block: int
    owner: str

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> Deployment:
        return cls(**json.loads(path.read_text()))


def send(
    w3: Web3, account: LocalAccount, fn: ContractFunction, value: int = 0, gas: int | None = None
) -> Any:
    """Simulate, sign, send and wait for ``fn``; raise TransactionError with the revert."""
    params: dict[str, Any] = {"from": account.address, "value": value}
    try:
        fn.call(params)  # type: ignore[arg-type]
        tx = fn.build_transaction(
            {  # type: ignore[arg-type]
                **params,  # type: ignore[typeddict-item]
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": w3.eth.chain_id,
                **({"gas": gas} if gas is not None else {}),
            }
        )
    except (Web3Exception, ValueError) as exc:
        revert = revert_from_exception(exc)
        raise TransactionError(
            f"{fn.fn_name} would revert: {revert if revert is not None else exc}"
        ) from exc
    return _sign_and_wait(w3, account, tx, fn.fn_name)


def deploy(w3: Web3, account: LocalAccount, name: str, *args: Any) -> tuple[str, Any]:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor(*args).build_transaction(
        {
            "from": account.address,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
    )
    receipt = _sign_and_wait(w3, account, tx, f"deploy {name}")
    return str(receipt["contractAddress"]), receipt


def deploy_artifact(w3: Web3, account: LocalAccount, artifact: dict[str, Any]) -> str:
    """Deploy a contract built outside ``solidity/src`` (a generated verifier)."""
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor().build_transaction(
        {
            "from": account.address,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
    )
    receipt = _sign_and_wait(w3, account, tx, f"deploy {artifact['contractName']}")
    return Web3.to_checksum_address(str(receipt["contractAddress"]))


def _sign_and_wait(w3: Web3, account: LocalAccount, tx: Any, what: str) -> Any:
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.05)
    if receipt["status"] != 1:
        raise TransactionError(f"{what} reverted in tx 0x{bytes(tx_hash).hex()}")
    return receipt


def deploy_stack(
    w3: Web3,
    owner: LocalAccount,
    rpc_url: str,
    params: CoordinatorParams | None = None,
) -> Deployment:
    """Deploy a Coordinator (with optimistic mode configured unless its challenge window is
    zero) and the example consumer."""
    params = params or CoordinatorParams()
    coordinator, receipt = deploy(w3, owner, "Coordinator", *params.constructor_args())
    if params.challenge_window_blocks:
        contract = w3.eth.contract(
            address=Web3.to_checksum_address(coordinator), abi=load_artifact("Coordinator").abi
        )
        send(w3, owner, contract.functions.setOptimisticConfig(params.optimistic_config()))
    consumer, _ = deploy(w3, owner, "ExampleConsumer", coordinator)
    return Deployment(
        chain_id=int(w3.eth.chain_id),
        rpc_url=rpc_url,
        coordinator=Web3.to_checksum_address(coordinator),
        example_consumer=Web3.to_checksum_address(consumer),
        deployed_block=int(receipt["blockNumber"]),
        owner=owner.address,
    )


def register_node(w3: Web3, node: LocalAccount, coordinator: str, stake: int) -> None:
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(coordinator), abi=load_artifact("Coordinator").abi
    )
    registered = contract.functions.getNode(node.address).call()[1]
    if not registered:
        send(w3, node, contract.functions.registerNode(), value=stake)


def serve_model(w3: Web3, node: LocalAccount, coordinator: str, model_id: str) -> bool:
    """Declare that ``node`` serves ``model_id`` (it must be an active node); True if it
    was not serving it already."""
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(coordinator), abi=load_artifact("Coordinator").abi
    )
    model = bytes.fromhex(model_id.removeprefix("0x"))
    if contract.functions.isServingModel(model, node.address).call():
        return False
    send(w3, node, contract.functions.serveModel(model))
    return True
