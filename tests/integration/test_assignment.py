"""Assignment: each request belongs to one node for its exclusive window.

Against the attack "censorship by error answers, and copied fulfilments": inside the window
another active node can neither replay the assigned node's fulfilment from the mempool nor
answer a Zk request with an error first. Two nodes against one Coordinator each answer
exactly their own requests; with one of them stopped, the other answers its requests once
the window has passed. A request for a model nobody serves is refused at request time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from celery import Celery
from eth_account import Account
from sqlalchemy import select
from web3.logs import DISCARD

from oracle.chain.client import RequestStruct, revert_from_exception
from oracle.chain.deploy import ETHER, CoordinatorParams, register_node, send, serve_model
from oracle.db import Database, InferenceRequest, ModelRecord, Transaction
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.dev.processes import OracleProcess, RedisServer, file_exists
from oracle.models.registration import upsert_model_record
from oracle.node import Node
from oracle.settings import Settings, load_settings
from oracle.types import Mode, RequestStatus
from tests.support.chain import burst, mine
from tests.support.contract import MODEL, NODE, ZK_MODEL, Chain, register_raw, reverts_with
from tests.support.node import new_node
from tests.support.stack import Stack, started_stack
from tests.support.wait import wait_for
from workers.app import INFERENCE_QUEUE, INFERENCE_TASK

pytestmark = pytest.mark.integration

SECOND_KEY = ANVIL_DEV_KEYS[4]
SECOND = Account.from_key(SECOND_KEY)
WINDOW = 30  # blocks: longer than a burst and its answers take, with automine
TIMEOUT = 100


# -- on the Coordinator alone ------------------------------------------------------------
def second_node_serving(chain: Chain, *models: str) -> None:
    register_node(chain.w3, SECOND, chain.coord.address, ETHER)
    for model in models:
        serve_model(chain.w3, SECOND, chain.coord.address, model)


def assignment(chain: Chain, req: RequestStruct) -> tuple[str, int]:
    logs = chain.coord.contract.events.RequestAssigned().get_logs(
        from_block=req.requested_at_block,
        to_block=req.requested_at_block,
        argument_filters={"requestId": req.request_id},
    )
    assert len(logs) == 1
    return str(logs[0]["args"]["node"]), int(logs[0]["args"]["exclusiveUntilBlock"])


def request_for(chain: Chain, assignee: str, mode: int = 0, model: str = MODEL) -> RequestStruct:
    """A request that the rotation assigns to ``assignee`` (ids alternate between nodes)."""
    for _ in range(3):
        req = chain.request([1, 2], mode=mode, model=model)
        if assignment(chain, req)[0] == assignee:
            return req
    raise AssertionError(f"no request was assigned to {assignee}")


def test_a_copied_fulfilment_is_refused_inside_the_window(chain: Chain) -> None:
    second_node_serving(chain, MODEL)
    req = request_for(chain, NODE.address)
    node, until = assignment(chain, req)
    assert until == req.requested_at_block + int(
        chain.coord.contract.functions.exclusiveWindowBlocks().call()
    )
    # The copier replays the assigned node's exact call data from the mempool, with its own
    # key and a higher tip: refused in simulation, and reverted when mined anyway.
    calldata = chain.coord.fulfill_calldata(req, [7], b"", b"")
    with pytest.raises(Exception) as info:
        chain.w3.eth.call({"from": SECOND.address, "to": chain.coord.address, "data": calldata})
    revert = revert_from_exception(info.value)
    assert revert is not None and revert.name == "NotAssignedNode", info.value
    assert revert.error_args == (req.request_id, NODE.address.lower())
    copied = SECOND.sign_transaction(
        {
            "to": chain.coord.address,
            "data": calldata,
            "gas": 500_000,
            "maxFeePerGas": 10 * 10**9,
            "maxPriorityFeePerGas": 5 * 10**9,
            "nonce": chain.w3.eth.get_transaction_count(SECOND.address),
            "chainId": chain.w3.eth.chain_id,
        }
    )
    tx_hash = chain.w3.eth.send_raw_transaction(copied.raw_transaction)
    assert chain.w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 0
    assert chain.coord.commitment(req.request_id) != bytes(32)
    receipt = chain.fulfill(req, [7])  # the assigned node still can
    ev = chain.coord.contract.events.InferenceFulfilled().process_receipt(receipt, errors=DISCARD)
    assert ev[0]["args"]["node"] == node == NODE.address


def test_an_error_answer_by_another_node_is_refused_inside_the_window(chain: Chain) -> None:
    second_node_serving(chain, ZK_MODEL)
    req = request_for(chain, NODE.address, mode=int(Mode.ZK), model=ZK_MODEL)
    reverts_with(
        "NotAssignedNode", lambda: chain.fulfill(req, [], err=b"model failed", sender=SECOND)
    )
    assert chain.coord.commitment(req.request_id) != bytes(32)  # still pending for the prover


def test_after_the_window_any_serving_node_may_answer_and_no_other(chain: Chain) -> None:
    second_node_serving(chain, MODEL)
    req = request_for(chain, NODE.address)
    _, until = assignment(chain, req)
    outsider = Account.from_key(ANVIL_DEV_KEYS[3])  # active, but serves nothing
    register_node(chain.w3, outsider, chain.coord.address, ETHER)
    mine(chain.w3, until - chain.w3.eth.block_number)  # the window is over at the head
    reverts_with("NotServingModel", lambda: chain.fulfill(req, [7], sender=outsider))
    receipt = chain.fulfill(req, [7], sender=SECOND)
    ev = chain.coord.contract.events.InferenceFulfilled().process_receipt(receipt, errors=DISCARD)
    assert ev[0]["args"]["node"] == SECOND.address


def test_a_request_nobody_serves_is_refused(chain: Chain) -> None:
    nobody, _ = register_raw(chain.w3, chain.coord.contract, NODE, "0x" + "44" * 32, (2, 1, 16, 16))
    before = int(chain.coord.contract.functions.nextRequestId().call())
    reverts_with("NoNodeServesModel", lambda: chain.request([1, 2], model=nobody))
    # Serving it, then stopping, leaves nobody again; an inactive server does not count.
    fns = chain.coord.contract.functions
    serve_model(chain.w3, NODE, chain.coord.address, nobody)
    send(chain.w3, NODE, fns.stopServingModel(bytes.fromhex(nobody[2:])))
    reverts_with("NoNodeServesModel", lambda: chain.request([1, 2], model=nobody))
    assert int(fns.nextRequestId().call()) == before


# -- two nodes, each with its own database, broker and worker ----------------------------
class SecondNode:
    """A second operator on the stack's chain: signer ``SECOND``, its own SQLite database,
    its own redis database (so its own queue) and its own inference worker process."""

    def __init__(self, stack: Stack, redis_url: str) -> None:
        self.stack = stack
        tmp = stack.tmp / "second"
        tmp.mkdir()
        config = yaml.safe_load(stack.local.config_path.read_text())
        config["db"]["url"] = f"sqlite:///{tmp / 'oracle.db'}"
        config["redis"]["url"] = redis_url
        self.config_path = tmp / "oracle.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.env = {
            "ORACLE_CONFIG": str(self.config_path),
            "ORACLE_SIGNER__PRIVATE_KEY": SECOND_KEY,
        }
        self.settings: Settings = stack.settings.model_copy(
            update={
                "db": stack.settings.db.model_copy(update={"url": config["db"]["url"]}),
                "redis": stack.settings.redis.model_copy(update={"url": redis_url}),
                "signer": load_settings(
                    self.config_path, signer={"private_key": SECOND_KEY}
                ).signer,
            }
        )
        self.db = Database(self.settings.db.url)
        self.db.upgrade()
        # It holds the same model file (the shared artifact store) and knows its record.
        with stack.db.session() as s:
            held = s.scalars(select(ModelRecord)).one()
            record = ModelRecord(
                **{c.key: getattr(held, c.key) for c in ModelRecord.__table__.columns}
            )
        upsert_model_record(self.db, record)
        register_node(stack.w3, SECOND, stack.deployment.coordinator, ETHER)
        ready = tmp / "worker.ready"
        self.worker = OracleProcess(
            "inference second",
            ["--config", str(self.config_path), "worker", "--ready-file", str(ready)],
            self.env,
            tmp / "worker.log",
            ready=file_exists(ready),
        )
        self.worker.start()
        stack.extra_processes.append(self.worker)
        self.producer = Celery("second-node", broker=redis_url)
        self.node: Node | None = None

    def enqueue(self, row_id: int) -> None:
        self.producer.send_task(INFERENCE_TASK, args=[row_id], queue=INFERENCE_QUEUE)

    def start(self) -> Node:
        self.node = Node(self.settings, self.enqueue, None, serve_status=False)
        self.node.start()  # declares the model it holds
        return self.node

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
            self.node = None

    def close(self) -> None:
        self.stop()
        self.producer.close()
        self.db.dispose()


@contextmanager
def two_nodes(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[Stack, SecondNode]]:
    params = CoordinatorParams(request_timeout_blocks=TIMEOUT, exclusive_window_blocks=WINDOW)
    with started_stack(
        tmp_path, f"sqlite:///{tmp_path / 'oracle.db'}", redis_server.url(0), params=params
    ) as stack:
        second = SecondNode(stack, redis_server.url(1))
        try:
            yield stack, second
        finally:
            second.close()


def assignees(stack: Stack, ids: list[int]) -> dict[int, str]:
    logs = stack.coordinator.contract.events.RequestAssigned().get_logs(from_block=0)
    found = {int(ev["args"]["requestId"]): str(ev["args"]["node"]) for ev in logs}
    return {i: found[i] for i in ids}


def fulfilled_by(stack: Stack, ids: list[int]) -> dict[int, list[str]]:
    """request id -> the ``node`` of each of its ``InferenceFulfilled`` events."""
    found: dict[int, list[str]] = {i: [] for i in ids}
    for ev in stack.coordinator.contract.events.InferenceFulfilled().get_logs(from_block=0):
        rid = int(ev["args"]["requestId"])
        if rid in found:
            found[rid].append(str(ev["args"]["node"]))
    return found


def confirmed_rows(db: Database) -> dict[int, int | None]:
    """request id -> fulfilment tx id, for the confirmed rows of one node's database."""
    with db.session() as s:
        return {
            r.request_id: r.fulfil_tx_id
            for r in s.scalars(
                select(InferenceRequest).where(
                    InferenceRequest.status == RequestStatus.CONFIRMED.value
                )
            )
        }


def statuses(db: Database) -> dict[int, str]:
    with db.session() as s:
        return {r.request_id: r.status for r in s.scalars(select(InferenceRequest))}


def tx_count(db: Database) -> int:
    with db.session() as s:
        return len(list(s.scalars(select(Transaction.id))))


def answered(stack: Stack, ids: list[int]) -> dict[int, list[str]] | None:
    got = fulfilled_by(stack, ids)
    return got if all(got.values()) else None


def test_two_nodes_each_answer_exactly_their_assigned_requests(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with two_nodes(tmp_path, redis_server) as (stack, second):
        first = new_node(stack.settings)
        first.start()
        second.start()
        try:
            assert stack.coordinator.contract.functions.modelServers(
                bytes.fromhex(stack.model_id[2:])
            ).call() == [stack.local.node_account.address, SECOND.address]
            ids = burst(stack, 6)
            wait_for(lambda: answered(stack, ids), 60, "every request answered")
            mine(stack.w3, 1)  # nothing may land after the answers
            owners = assignees(stack, ids)
            assert set(owners.values()) == {stack.local.node_account.address, SECOND.address}
            by = fulfilled_by(stack, ids)
            assert by == {i: [owners[i]] for i in ids}, (by, owners)
            for db, me in (
                (stack.db, stack.local.node_account.address),
                (second.db, SECOND.address),
            ):
                mine_ids = {i for i in ids if owners[i] == me}
                rows = wait_for(
                    lambda db=db, mine_ids=mine_ids: (
                        (r := confirmed_rows(db)).keys() >= mine_ids and r
                    ),
                    30,
                    f"{me}'s rows confirmed",
                )
                assert set(rows) == mine_ids
                # Each row answered by one tx (a batch may answer several rows), and the node
                # signed no tx but those its rows point at.
                assert None not in {rows[i] for i in mine_ids}
                assert tx_count(db) == len({rows[i] for i in mine_ids})
                others = {i: s for i, s in statuses(db).items() if i not in mine_ids}
                assert set(others.values()) == {RequestStatus.STANDBY.value}, others
        finally:
            second.stop()
            first.stop()


def test_a_stopped_nodes_requests_are_answered_by_the_other_after_the_window(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with two_nodes(tmp_path, redis_server) as (stack, second):
        second.start()  # it declares the model, then goes offline
        second.stop()
        first = new_node(stack.settings)
        first.start()
        me = stack.local.node_account.address
        try:
            ids = burst(stack, 6)
            owners = assignees(stack, ids)
            theirs = [i for i in ids if owners[i] == SECOND.address]
            assert theirs and len(theirs) < len(ids)
            wait_for(
                lambda: all(fulfilled_by(stack, [i for i in ids if i not in theirs]).values()),
                60,
                "the first node's own requests answered",
            )
            assert all(statuses(stack.db)[i] == RequestStatus.STANDBY.value for i in theirs)
            assert not any(fulfilled_by(stack, theirs).values())
            last_until = max(
                int(ev["args"]["exclusiveUntilBlock"])
                for ev in stack.coordinator.contract.events.RequestAssigned().get_logs(from_block=0)
            )
            mine(stack.w3, max(0, last_until - stack.w3.eth.block_number))
            wait_for(lambda: answered(stack, ids), 60, "the stopped node's requests taken over")
            mine(stack.w3, 1)
            assert fulfilled_by(stack, ids) == {i: [me] for i in ids}
            rows = wait_for(
                lambda: (r := confirmed_rows(stack.db)).keys() >= set(ids) and r,
                30,
                "every row confirmed",
            )
            assert None not in {rows[i] for i in ids}
            assert tx_count(stack.db) == len({rows[i] for i in ids})  # no tx but those
        finally:
            first.stop()
