// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {Coordinator} from "../src/Coordinator.sol";
import {ICoordinator} from "../src/interfaces/ICoordinator.sol";
import {InferenceConsumer} from "../src/InferenceConsumer.sol";
import {GasHungryConsumer} from "../src/test/GasHungryConsumer.sol";
import {RevertingConsumer} from "../src/test/RevertingConsumer.sol";
import {CoordinatorFixture} from "./utils/CoordinatorFixture.sol";

/// @notice Test double: its callback tries `fulfill`, `fulfillBatch` and `fulfillBatchItem` on
/// its own request and keeps what each reverted with (empty when the call went through).
contract BatchReentrantConsumer is InferenceConsumer {
    ICoordinator.Request private s_replay;
    bytes[3] private s_reverts;
    bool[3] private s_succeeded;
    bool private s_called;

    constructor(address coordinator_) InferenceConsumer(coordinator_) {}

    function requestPrediction(bytes32 modelId, int256[] calldata input, uint8 mode, uint32 callbackGasLimit)
        external
        payable
        returns (uint256)
    {
        return _requestInference(modelId, input, mode, callbackGasLimit, msg.value);
    }

    function arm(ICoordinator.Request calldata req) external {
        s_replay = req;
    }

    function outcome() external view returns (bool called, bool[3] memory succeeded, bytes[3] memory reverts) {
        return (s_called, s_succeeded, s_reverts);
    }

    function _onInferenceResult(uint256, int256[] memory output, bytes memory) internal override {
        s_called = true;
        Coordinator c = Coordinator(payable(coordinator()));
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](1);
        answers[0] = ICoordinator.Answer(s_replay, output, "", "");
        try c.fulfill(s_replay, output, "", "") {
            s_succeeded[0] = true;
        } catch (bytes memory reason) {
            s_reverts[0] = reason;
        }
        try c.fulfillBatch(answers) {
            s_succeeded[1] = true;
        } catch (bytes memory reason) {
            s_reverts[1] = reason;
        }
        try c.fulfillBatchItem(address(this), answers[0]) {
            s_succeeded[2] = true;
        } catch (bytes memory reason) {
            s_reverts[2] = reason;
        }
    }
}

/// @notice `fulfillBatch`: many answers in one transaction, each applied exactly as `fulfill`
/// would apply it, each refused on its own (`AnswerRejected` with `fulfill`'s revert data and its
/// bit in the returned mask) without reverting the others.
contract CoordinatorBatchTest is CoordinatorFixture {
    bytes32 internal constant ANSWER_REJECTED = keccak256("AnswerRejected(uint256,address,bytes)");
    bytes32 internal constant INFERENCE_FULFILLED =
        keccak256("InferenceFulfilled(uint256,address,bool,int256[],bytes)");
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    address internal outsider = makeAddr("outsider");

    event InferenceFulfilled(
        uint256 indexed requestId, address indexed node, bool callbackSucceeded, int256[] output, bytes err
    );
    event FeeRefunded(uint256 indexed requestId, address indexed consumer, uint256 amount);
    event AnswerRejected(uint256 indexed requestId, address indexed node, bytes reason);

    /// @notice What a batch's logs said about one request.
    struct Outcome {
        uint256 fulfilled; // InferenceFulfilled events
        uint256 rejected; // AnswerRejected events
        bool callbackSucceeded;
        bytes reason; // of the last AnswerRejected
    }

    // ------------------------------------------------------------ helpers
    function answer(ICoordinator.Request memory req, int256[] memory output)
        internal
        pure
        returns (ICoordinator.Answer memory)
    {
        return ICoordinator.Answer(req, output, "", "");
    }

    /// @dev `node` sends the batch; returns the mask and the logs it emitted.
    function sendBatch(ICoordinator.Answer[] memory answers) internal returns (uint256 mask, Vm.Log[] memory logs) {
        vm.recordLogs();
        vm.prank(node);
        mask = coordinator.fulfillBatch(answers);
        logs = vm.getRecordedLogs();
    }

    function outcomeOf(Vm.Log[] memory logs, uint256 requestId) internal view returns (Outcome memory o) {
        for (uint256 i = 0; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (l.emitter != address(coordinator) || l.topics.length < 2 || uint256(l.topics[1]) != requestId) {
                continue;
            }
            if (l.topics[0] == ANSWER_REJECTED) {
                assertEq(address(uint160(uint256(l.topics[2]))), node);
                o.rejected++;
                o.reason = abi.decode(l.data, (bytes));
            } else if (l.topics[0] == INFERENCE_FULFILLED) {
                o.fulfilled++;
                (o.callbackSucceeded,,) = abi.decode(l.data, (bool, int256[], bytes));
            }
        }
    }

    function assertDelivered(Vm.Log[] memory logs, uint256 requestId, bool callbackSucceeded) internal view {
        Outcome memory o = outcomeOf(logs, requestId);
        assertEq(o.fulfilled, 1, "one InferenceFulfilled");
        assertEq(o.rejected, 0, "no AnswerRejected");
        assertEq(o.callbackSucceeded, callbackSucceeded);
        assertEq(coordinator.requestCommitment(requestId), bytes32(0));
    }

    function assertRejected(Vm.Log[] memory logs, ICoordinator.Request memory req, bytes memory reason) internal view {
        Outcome memory o = outcomeOf(logs, req.requestId);
        assertEq(o.rejected, 1, "one AnswerRejected");
        assertEq(o.fulfilled, 0, "no InferenceFulfilled");
        assertEq(o.reason, reason);
    }

    function sum(ICoordinator.Request[] memory reqs) internal pure returns (uint256 total) {
        for (uint256 i = 0; i < reqs.length; ++i) {
            total += reqs[i].fee;
        }
    }

    /// @dev A node registered and serving `m` only.
    function otherNode(bytes32 m) internal returns (address other) {
        other = makeAddr("other node");
        vm.deal(other, 10 ether);
        registerNode(other);
        serve(other, m);
    }

    // ------------------------------------------------------------ delivery
    function test_ABatchDeliversEachAnswerAsSingleFulfilsWould() public {
        uint256 n = 6;
        ICoordinator.Request[] memory batched = new ICoordinator.Request[](n);
        ICoordinator.Request[] memory single = new ICoordinator.Request[](n);
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](n);
        for (uint256 i = 0; i < n; ++i) {
            batched[i] = request(model, pair(int256(i), 1), MODE_NONE);
            single[i] = request(model, pair(int256(i), 1), MODE_NONE);
            answers[i] = answer(batched[i], one(int256(i) * 10));
        }
        for (uint256 i = 0; i < n; ++i) {
            vm.expectEmit(address(coordinator));
            emit InferenceFulfilled(batched[i].requestId, node, true, one(int256(i) * 10), "");
        }
        vm.prank(node);
        uint256 mask = coordinator.fulfillBatch(answers);
        assertEq(mask, 0);
        uint256 afterBatch = coordinator.nodeBalance(node);
        assertEq(afterBatch, sum(batched));
        for (uint256 i = 0; i < n; ++i) {
            fulfill(single[i], one(int256(i) * 10));
        }
        assertEq(coordinator.nodeBalance(node) - afterBatch, afterBatch); // the same as n single fulfils
        for (uint256 i = 0; i < n; ++i) {
            (bool doneB, int256[] memory outB, bytes memory errB) = consumer.getResult(batched[i].requestId);
            (bool doneS, int256[] memory outS, bytes memory errS) = consumer.getResult(single[i].requestId);
            assertTrue(doneB && doneS);
            assertEq(outB, outS);
            assertEq(errB, errS);
            assertEq(coordinator.requestCommitment(batched[i].requestId), bytes32(0));
        }
    }

    function test_ABatchMixesModesAndRefundsZkErrorPremiums() public {
        ICoordinator.Request memory plain = request(model, pair(1, 2), MODE_NONE);
        ICoordinator.Request memory zk = request(zkModel, pair(1, 2), MODE_ZK);
        ICoordinator.Request memory zkErr = request(zkModel, pair(3, 4), MODE_ZK);
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](3);
        answers[0] = answer(plain, one(3));
        answers[1] = ICoordinator.Answer(zk, one(3), "", hex"01");
        answers[2] = ICoordinator.Answer(zkErr, new int256[](0), "model failed", "");
        vm.expectEmit(address(coordinator));
        emit InferenceFulfilled(plain.requestId, node, true, one(3), "");
        vm.expectEmit(address(coordinator));
        emit InferenceFulfilled(zk.requestId, node, true, one(3), "");
        vm.expectEmit(address(coordinator));
        emit FeeRefunded(zkErr.requestId, address(consumer), ZK_PREMIUM);
        vm.expectEmit(address(coordinator));
        emit InferenceFulfilled(zkErr.requestId, node, true, new int256[](0), "model failed");
        vm.prank(node);
        assertEq(coordinator.fulfillBatch(answers), 0);
        assertEq(coordinator.nodeBalance(node), plain.fee + zk.fee + zkErr.fee - ZK_PREMIUM);
        assertEq(coordinator.nodeBalance(address(consumer)), ZK_PREMIUM);
        (,, bytes memory err) = consumer.getResult(zkErr.requestId);
        assertEq(err, "model failed");
    }

    function test_AnEmptyBatchReturnsZeroAndDoesNothing() public {
        vm.recordLogs();
        vm.prank(node);
        assertEq(coordinator.fulfillBatch(new ICoordinator.Answer[](0)), 0);
        assertEq(vm.getRecordedLogs().length, 0);
    }

    // ------------------------------------------------------------ isolation
    /// @dev One batch with every kind of bad answer between good ones: each bad one is rejected
    /// with exactly what `fulfill` alone reverts with and its bit set; the rest are delivered.
    function test_EachBadAnswerIsRejectedAloneWithFulfilsRevertData() public {
        bytes32 shared = coordinator.registerModel(keccak256("shared model"), 2, 1, 0, 0, address(0));
        serve(node, shared);
        address other = otherNode(shared);

        ICoordinator.Request memory expired = request(model, pair(9, 9), MODE_NONE);
        uint256 expiredDeadline = uint256(expired.requestedAtBlock) + TIMEOUT_BLOCKS;
        vm.roll(expiredDeadline + 1);

        ICoordinator.Request memory stale = request(model, pair(1, 1), MODE_NONE);
        fulfill(stale, one(2));
        ICoordinator.Request memory good0 = request(model, pair(1, 2), MODE_NONE);
        ICoordinator.Request memory tampered = request(model, pair(1, 3), MODE_NONE);
        ICoordinator.Request memory othersReq;
        for (uint256 i = 0; i < 4; ++i) {
            othersReq = request(shared, pair(int256(i), 5), MODE_NONE);
            if (coordinator.assignedNode(othersReq.requestId) == other) break;
        }
        assertEq(coordinator.assignedNode(othersReq.requestId), other);
        ICoordinator.Request memory wrongLength = request(model, pair(1, 4), MODE_NONE);
        ICoordinator.Request memory zkGood = request(zkModel, pair(-3, 7), MODE_ZK);
        ICoordinator.Request memory zkBad = request(zkModel, pair(-3, 7), MODE_ZK);
        RevertingConsumer reverting = new RevertingConsumer(address(coordinator));
        ICoordinator.Request memory toReverting = requestFrom(address(reverting), model, pair(1, 5), MODE_NONE, 100_000);
        GasHungryConsumer hungry = new GasHungryConsumer(address(coordinator));
        ICoordinator.Request memory toHungry = requestFrom(address(hungry), model, pair(1, 6), MODE_NONE, 100_000);
        ICoordinator.Request memory good1 = request(model, pair(1, 7), MODE_NONE);
        // The verifier accepts the instances of (-3, 7) -> 4 only.
        uint256[] memory instances = new uint256[](3);
        (instances[0], instances[1], instances[2]) = (R - 3, 7, 4);
        verifier.setExpectedInstances(instances);

        ICoordinator.Request memory tamperedCopy = ICoordinator.Request(
            tampered.requestId,
            tampered.modelId,
            tampered.consumer,
            tampered.mode,
            tampered.callbackGasLimit,
            tampered.requestedAtBlock,
            tampered.fee - 1,
            tampered.input
        );

        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](13);
        answers[0] = answer(good0, one(3));
        answers[1] = answer(stale, one(2));
        answers[2] = answer(tamperedCopy, one(4));
        answers[3] = answer(expired, one(18));
        answers[4] = answer(othersReq, one(5));
        answers[5] = answer(wrongLength, pair(5, 5));
        answers[6] = ICoordinator.Answer(zkGood, one(4), "", hex"01");
        answers[7] = ICoordinator.Answer(zkBad, one(5), "", hex"01");
        answers[8] = answer(toReverting, one(6));
        answers[9] = answer(toHungry, one(7));
        answers[10] = answer(good0, one(3)); // the same answer again
        answers[11] = answer(good1, one(8));
        answers[12] = answer(tampered, one(4)); // the untampered request, after its tampered copy

        uint256 coordinatorBalance = address(coordinator).balance;
        (uint256 mask, Vm.Log[] memory logs) = sendBatch(answers);

        uint256 expectedMask = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 7) | (1 << 10);
        assertEq(mask, expectedMask);
        assertRejected(logs, stale, abi.encodeWithSelector(Coordinator.RequestNotPending.selector, stale.requestId));
        assertRejected(
            logs,
            expired,
            abi.encodeWithSelector(Coordinator.RequestExpired.selector, expired.requestId, expiredDeadline)
        );
        assertRejected(
            logs, othersReq, abi.encodeWithSelector(Coordinator.NotAssignedNode.selector, othersReq.requestId, other)
        );
        assertRejected(
            logs,
            wrongLength,
            abi.encodeWithSelector(Coordinator.OutputLengthMismatch.selector, wrongLength.requestId, 2, 1)
        );
        assertRejected(logs, zkBad, abi.encodeWithSelector(Coordinator.InvalidProof.selector, zkBad.requestId));
        // good0 twice: delivered once, its second answer rejected as no longer pending.
        Outcome memory g = outcomeOf(logs, good0.requestId);
        assertEq(g.fulfilled, 1);
        assertEq(g.rejected, 1);
        assertEq(g.reason, abi.encodeWithSelector(Coordinator.RequestNotPending.selector, good0.requestId));
        // The tampered copy was rejected, the true request after it delivered.
        Outcome memory t = outcomeOf(logs, tampered.requestId);
        assertEq(t.fulfilled, 1);
        assertEq(t.rejected, 1);
        assertEq(t.reason, abi.encodeWithSelector(Coordinator.CommitmentMismatch.selector, tampered.requestId));

        assertDelivered(logs, zkGood.requestId, true);
        assertDelivered(logs, toReverting.requestId, false);
        assertDelivered(logs, toHungry.requestId, false);
        assertDelivered(logs, good1.requestId, true);

        // The rejected are untouched: still pending under their commitment, nothing paid for them.
        assertEq(coordinator.requestCommitment(expired.requestId), keccak256(abi.encode(expired)));
        assertEq(coordinator.requestCommitment(othersReq.requestId), keccak256(abi.encode(othersReq)));
        assertEq(coordinator.requestCommitment(wrongLength.requestId), keccak256(abi.encode(wrongLength)));
        assertEq(coordinator.requestCommitment(zkBad.requestId), keccak256(abi.encode(zkBad)));
        assertEq(coordinator.nodeBalance(other), 0);
        uint256 earned = stale.fee + good0.fee + tampered.fee + zkGood.fee + toReverting.fee + toHungry.fee + good1.fee;
        assertEq(coordinator.nodeBalance(node), earned);
        assertEq(address(coordinator).balance, coordinatorBalance); // fulfilment moves no wei
        (bool done,,) = consumer.getResult(wrongLength.requestId);
        assertFalse(done);
        (done,,) = consumer.getResult(good1.requestId);
        assertTrue(done);
    }

    function test_AnotherNodesAnswerIsAcceptedAfterTheExclusiveWindow() public {
        bytes32 shared = coordinator.registerModel(keccak256("shared model"), 2, 1, 0, 0, address(0));
        serve(node, shared);
        address other = otherNode(shared);
        ICoordinator.Request memory req;
        for (uint256 i = 0; i < 4; ++i) {
            req = request(shared, pair(int256(i), 5), MODE_NONE);
            if (coordinator.assignedNode(req.requestId) == other) break;
        }
        vm.roll(block.number + EXCLUSIVE_WINDOW_BLOCKS);
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](1);
        answers[0] = answer(req, one(1));
        (uint256 mask, Vm.Log[] memory logs) = sendBatch(answers);
        assertEq(mask, 0);
        assertDelivered(logs, req.requestId, true);
        assertEq(coordinator.nodeBalance(node), req.fee);
    }

    // ------------------------------------------------------------ gas
    /// @dev A batch sent with too little gas for all its answers delivers the first ones and
    /// rejects the rest (each with `InsufficientGasForCallback` or, where it ran out inside, an
    /// empty reason); the transaction itself succeeds and the rejected change nothing.
    function test_ABatchShortOfGasRejectsItsLastAnswersAndSucceeds() public {
        GasHungryConsumer hungry = new GasHungryConsumer(address(coordinator));
        uint256 n = 8;
        ICoordinator.Request[] memory reqs = new ICoordinator.Request[](n);
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](n);
        for (uint256 i = 0; i < n; ++i) {
            reqs[i] = requestFrom(address(hungry), model, pair(int256(i), 1), MODE_NONE, 300_000);
            answers[i] = answer(reqs[i], one(1));
        }
        vm.recordLogs();
        vm.prank(node);
        (bool ok, bytes memory ret) =
            address(coordinator).call{gas: 1_200_000}(abi.encodeCall(Coordinator.fulfillBatch, (answers)));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertTrue(ok, "the batch transaction does not revert");
        uint256 mask = abi.decode(ret, (uint256));
        uint256 delivered;
        while (delivered < n && mask & (1 << delivered) == 0) ++delivered;
        assertGt(delivered, 0); // the first answers are delivered
        assertLt(delivered, n); // the last answers are rejected
        assertEq(mask, ((1 << n) - 1) ^ ((1 << delivered) - 1), "rejected from the first short one on");
        uint256 earned;
        for (uint256 i = 0; i < n; ++i) {
            if (i < delivered) {
                assertDelivered(logs, reqs[i].requestId, false);
                earned += reqs[i].fee;
                continue;
            }
            Outcome memory o = outcomeOf(logs, reqs[i].requestId);
            assertEq(o.rejected, 1);
            assertEq(o.fulfilled, 0);
            assertTrue(
                o.reason.length == 0
                    || keccak256(o.reason)
                        == keccak256(
                            abi.encodeWithSelector(Coordinator.InsufficientGasForCallback.selector, reqs[i].requestId)
                        ),
                "out of gas or too little for the callback"
            );
            assertEq(coordinator.requestCommitment(reqs[i].requestId), keccak256(abi.encode(reqs[i])));
        }
        assertEq(coordinator.nodeBalance(node), earned);
    }

    /// @dev The check inside the item (`_callWithExactGas`) rather than the loop's pre-check: the
    /// item is tried, cannot afford its callback, and is rejected with what `fulfill` gives.
    function test_AnItemThatCannotAffordItsCallbackIsRejectedWithFulfilsError() public {
        GasHungryConsumer hungry = new GasHungryConsumer(address(coordinator));
        ICoordinator.Request memory req = requestFrom(address(hungry), model, pair(1, 2), MODE_NONE, 500_000);
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](1);
        answers[0] = answer(req, one(1));
        // Above the loop's pre-check (callback + 60,000) but below what the callback needs after
        // the item's own work and the 63/64 rule.
        vm.recordLogs();
        vm.prank(node);
        (bool ok, bytes memory ret) =
            address(coordinator).call{gas: 575_000}(abi.encodeCall(Coordinator.fulfillBatch, (answers)));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertTrue(ok);
        assertEq(abi.decode(ret, (uint256)), 1);
        assertRejected(
            logs, req, abi.encodeWithSelector(Coordinator.InsufficientGasForCallback.selector, req.requestId)
        );
        assertEq(coordinator.requestCommitment(req.requestId), keccak256(abi.encode(req)));
    }

    // ------------------------------------------------------------ access
    function test_OnlyTheCoordinatorCallsFulfillBatchItem() public {
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        for (uint256 i = 0; i < 2; ++i) {
            address caller = i == 0 ? outsider : node; // not even an active node
            vm.prank(caller);
            vm.expectRevert(abi.encodeWithSelector(Coordinator.OnlyCoordinator.selector, caller));
            coordinator.fulfillBatchItem(caller, answer(req, one(3)));
        }
        assertEq(coordinator.requestCommitment(req.requestId), keccak256(abi.encode(req)));
    }

    function test_AReentrantConsumerGetsNothingFromItsCallback() public {
        BatchReentrantConsumer reentrant = new BatchReentrantConsumer(address(coordinator));
        ICoordinator.Request memory req = requestFrom(address(reentrant), model, pair(1, 2), MODE_NONE, 1_000_000);
        ICoordinator.Request memory other = request(model, pair(3, 4), MODE_NONE);
        reentrant.arm(other); // it tries to answer someone else's pending request
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](1);
        answers[0] = answer(req, one(3));
        (uint256 mask, Vm.Log[] memory logs) = sendBatch(answers);
        assertEq(mask, 0);
        assertDelivered(logs, req.requestId, true);
        (bool called, bool[3] memory succeeded, bytes[3] memory reverts) = reentrant.outcome();
        assertTrue(called);
        bytes memory locked = abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        assertFalse(succeeded[0] || succeeded[1] || succeeded[2]);
        assertEq(reverts[0], locked);
        assertEq(reverts[1], locked);
        assertEq(reverts[2], abi.encodeWithSelector(Coordinator.OnlyCoordinator.selector, address(reentrant)));
        assertEq(coordinator.requestCommitment(other.requestId), keccak256(abi.encode(other)));
        assertEq(coordinator.nodeBalance(node), req.fee);
        assertEq(coordinator.nodeBalance(address(reentrant)), 0);
    }

    function test_OnlyAnActiveNodeSendsABatch() public {
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](1);
        answers[0] = answer(req, one(3));
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotActiveNode.selector, outsider));
        coordinator.fulfillBatch(answers);
        coordinator.setNodePaused(node, true);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotActiveNode.selector, node));
        coordinator.fulfillBatch(answers);
        coordinator.setNodePaused(node, false);
        vm.prank(node);
        coordinator.deregisterNode();
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotActiveNode.selector, node));
        coordinator.fulfillBatch(answers);
        assertEq(coordinator.requestCommitment(req.requestId), keccak256(abi.encode(req)));
    }

    function test_ABatchOfMoreThan256AnswersIsRefused() public {
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.BatchTooLarge.selector, 257, 256));
        coordinator.fulfillBatch(new ICoordinator.Answer[](257));
    }

    /// @dev 256 answers fit the mask: the last one's bit is bit 255.
    function test_TheLastOfAFullBatchIsBit255() public {
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](256);
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        for (uint256 i = 0; i < 256; ++i) {
            answers[i] = answer(req, one(3));
        }
        ICoordinator.Request memory last = request(model, pair(5, 6), MODE_NONE);
        answers[255] = answer(last, pair(1, 1)); // wrong length
        (uint256 mask,) = sendBatch(answers);
        // The first is delivered; the 254 repeats are no longer pending; the last has the wrong length.
        assertEq(mask, type(uint256).max ^ 1);
        assertEq(coordinator.nodeBalance(node), req.fee);
    }

    // ------------------------------------------------------------ fuzz
    /// @dev Eight answers, each good or bad in one of three ways (already answered, tampered,
    /// wrong length), in a random order of kinds: the mask is exactly the bad ones, the node is
    /// paid exactly the good ones' fees, and the Coordinator's wei still cover every claim.
    function testFuzz_TheMaskIsExactlyTheBadAnswers(uint16 kinds, uint32 gas) public {
        uint256 n = 8;
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](n);
        ICoordinator.Request[] memory reqs = new ICoordinator.Request[](n);
        uint256 expected;
        uint256 good;
        for (uint256 i = 0; i < n; ++i) {
            uint256 kind = (kinds >> (2 * i)) & 3;
            uint32 g = uint32(bound(uint256(gas) + i * 7919, 0, 300_000));
            reqs[i] = requestFrom(address(consumer), model, pair(int256(i), int256(uint256(kinds))), MODE_NONE, g);
            answers[i] = answer(reqs[i], one(int256(i)));
            if (kind == 0) {
                good += reqs[i].fee;
                continue;
            }
            expected |= 1 << i;
            if (kind == 1) {
                fulfill(reqs[i], one(0)); // already answered
                good += reqs[i].fee; // paid by that single fulfil
            } else if (kind == 2) {
                ICoordinator.Request memory r = reqs[i];
                answers[i].req = ICoordinator.Request(
                    r.requestId,
                    r.modelId,
                    r.consumer,
                    r.mode,
                    r.callbackGasLimit,
                    r.requestedAtBlock,
                    r.fee + 1,
                    r.input
                ); // tampered (a copy: reqs[i] stays the committed request)
            } else {
                answers[i].output = pair(1, 2); // wrong length
            }
        }
        (uint256 mask, Vm.Log[] memory logs) = sendBatch(answers);
        assertEq(mask, expected);
        uint256 stillPending;
        for (uint256 i = 0; i < n; ++i) {
            Outcome memory o = outcomeOf(logs, reqs[i].requestId);
            bool rejected = expected & (1 << i) != 0;
            assertEq(o.rejected, rejected ? 1 : 0);
            assertEq(o.fulfilled, rejected ? 0 : 1);
            if (coordinator.requestCommitment(reqs[i].requestId) != bytes32(0)) stillPending += reqs[i].fee;
        }
        assertEq(coordinator.nodeBalance(node), good);
        assertEq(address(coordinator).balance, MIN_STAKE + coordinator.nodeBalance(node) + stillPending);
    }

    // ------------------------------------------------------------ gas per answer
    /// @dev Gas per answer of a batch of 50 (ExampleConsumer, as bench/gas.py) against one
    /// `fulfill`; recorded in the gas snapshot, measured on anvil by `make bench-gas`.
    function test_GasPerAnswerInABatchOf50() public {
        fulfill(request(model, pair(0, 0), MODE_NONE), one(0)); // the node's balance is non-zero
        ICoordinator.Request memory single = request(model, pair(1, 1), MODE_NONE);
        uint256 n = 50;
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](n);
        for (uint256 i = 0; i < n; ++i) {
            answers[i] = answer(request(model, pair(int256(i), 2), MODE_NONE), one(int256(i)));
        }
        vm.prank(node);
        uint256 before = gasleft();
        coordinator.fulfill(single, one(1), "", "");
        uint256 singleGas = before - gasleft();
        vm.prank(node);
        before = gasleft();
        uint256 mask = coordinator.fulfillBatch(answers);
        uint256 batchGas = before - gasleft();
        assertEq(mask, 0);
        // Without the transaction's 21,000 and calldata, and with every slot the single fulfil
        // touches already warm in this one test transaction (on a chain the batch shares those
        // cold reads, the single does not), an answer in the batch still costs a little less
        // than one alone: the self-call and try/catch cost less than one call's own overhead.
        assertLt(batchGas / n, singleGas);
    }
}
