// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {Coordinator} from "../src/Coordinator.sol";
import {ICoordinator} from "../src/interfaces/ICoordinator.sol";
import {ExampleConsumer} from "../src/examples/ExampleConsumer.sol";
import {MockCoordinator} from "../src/mocks/MockCoordinator.sol";
import {GasHungryConsumer} from "../src/test/GasHungryConsumer.sol";
import {MockVerifier} from "../src/test/MockVerifier.sol";
import {RevertingConsumer} from "../src/test/RevertingConsumer.sol";
import {CoordinatorFixture} from "./utils/CoordinatorFixture.sol";

/// @notice The mock keeps the Coordinator's consumer-facing rules (what a consumer's tests rely on).
contract MockCoordinatorTest is Test {
    uint96 internal constant BASE_FEE = 1e15;
    uint96 internal constant ZK_PREMIUM = 1e16;
    uint32 internal constant TIMEOUT = 100;

    MockCoordinator internal mock;
    ExampleConsumer internal consumer;
    MockVerifier internal verifier;
    bytes32 internal model;
    bytes32 internal zkModel;
    address internal user = makeAddr("user");

    event InferenceRequested(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed consumer,
        int256[] input,
        uint8 mode,
        uint32 callbackGasLimit,
        uint256 fee
    );
    event InferenceFulfilled(
        uint256 indexed requestId, address indexed node, bool callbackSucceeded, int256[] output, bytes err
    );
    event OptimisticAnswerPosted(
        uint256 indexed requestId,
        address indexed node,
        int256[] output,
        uint256 bond,
        uint64 challengeDeadline,
        uint64 proofDeadline
    );
    event OptimisticAnswerSlashed(
        uint256 indexed requestId,
        address indexed node,
        address indexed challenger,
        uint256 slashed,
        uint256 toChallenger,
        uint256 burned
    );
    event RequestReopened(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed consumer,
        int256[] input,
        uint8 mode,
        uint32 callbackGasLimit,
        uint256 fee
    );

    function setUp() public {
        mock = new MockCoordinator(BASE_FEE, ZK_PREMIUM, TIMEOUT, 2_000_000);
        consumer = new ExampleConsumer(address(mock));
        verifier = new MockVerifier();
        model = mock.registerModel(keccak256("model"), 2, 1, 0, 0, address(0));
        zkModel = mock.registerModel(keccak256("zk model"), 2, 1, 0, 0, address(verifier));
        vm.deal(user, 10 ether);
    }

    function pair(int256 a, int256 b) internal pure returns (int256[] memory v) {
        v = new int256[](2);
        (v[0], v[1]) = (a, b);
    }

    function one(int256 a) internal pure returns (int256[] memory v) {
        v = new int256[](1);
        v[0] = a;
    }

    function ask(bytes32 modelId, uint8 mode) internal returns (uint256) {
        uint256 fee = mock.quoteFee(modelId, mode, 200_000);
        vm.prank(user);
        return consumer.requestPrediction{value: fee}(modelId, pair(1, 2), mode, 200_000);
    }

    function test_RequestEmitsWhatTheCoordinatorEmitsAndFulfilDelivers() public {
        vm.expectEmit(address(mock));
        emit InferenceRequested(1, model, address(consumer), pair(1, 2), 0, 200_000, BASE_FEE);
        uint256 id = ask(model, 0);
        ICoordinator.Request memory req = mock.getRequest(id);
        assertEq(mock.requestCommitment(id), keccak256(abi.encode(req)));
        vm.expectEmit(address(mock));
        emit InferenceFulfilled(id, address(this), true, one(7), "");
        mock.fulfill(id, one(7));
        (bool done, int256[] memory output,) = consumer.getResult(id);
        assertTrue(done);
        assertEq(output, one(7));
        assertEq(mock.requestCommitment(id), bytes32(0));
        assertEq(uint8(mock.requestStatus(id)), uint8(MockCoordinator.Status.Fulfilled));
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.RequestNotPending.selector, id));
        mock.fulfill(id, one(7));
    }

    function test_ModelIdsAreTheCoordinatorsIds() public {
        CoordinatorParity parity = new CoordinatorParity();
        bytes32 real = parity.registerLikeTheMock(address(verifier));
        assertEq(real, zkModel);
    }

    function test_FeesAndValidation() public {
        assertEq(mock.quoteFee(model, 0, 0), BASE_FEE);
        assertEq(mock.quoteFee(model, 1, 0), BASE_FEE + ZK_PREMIUM);
        assertEq(mock.quoteFee(zkModel, 2, 0), BASE_FEE + ZK_PREMIUM / 5);
        vm.startPrank(user);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.InsufficientFee.selector, BASE_FEE, 1));
        consumer.requestPrediction{value: 1}(model, pair(1, 2), 0, 200_000);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.ModelNotVerifiable.selector, model, 1));
        consumer.requestPrediction{value: 1 ether}(model, pair(1, 2), 1, 200_000);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.ModelNotVerifiable.selector, model, 2));
        consumer.requestPrediction{value: 1 ether}(model, pair(1, 2), 2, 200_000);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.InputLengthMismatch.selector, model, 1, 2));
        consumer.requestPrediction{value: 1 ether}(model, one(1), 0, 200_000);
        consumer.requestPrediction{value: BASE_FEE + 5}(model, pair(1, 2), 0, 200_000);
        vm.stopPrank();
        assertEq(mock.nodeBalance(address(consumer)), 5); // overpayment credited
        uint256 id = ask(model, 0);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.OutputLengthMismatch.selector, id, 2, 1));
        mock.fulfill(id, pair(1, 2));
    }

    function test_ZkErrorRefundsThePremium() public {
        uint256 id = ask(zkModel, 1);
        mock.fulfillError(id, "model failed");
        (,, bytes memory err) = consumer.getResult(id);
        assertEq(err, "model failed");
        assertEq(mock.nodeBalance(address(consumer)), ZK_PREMIUM);
        assertEq(mock.nodeBalance(address(this)), BASE_FEE);
        uint256 next = ask(zkModel, 1);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.EmptyReason.selector, next));
        mock.fulfillError(next, "");
    }

    function test_FulfilWithProofRunsTheVerifier() public {
        uint256 plain = ask(model, 0);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.NotZkRequest.selector, plain));
        mock.fulfillWithProof(plain, one(3), hex"01");
        uint256 id = ask(zkModel, 1);
        verifier.setAnswer(false);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.InvalidProof.selector, id));
        mock.fulfillWithProof(id, one(3), hex"01");
        verifier.setAnswer(true);
        uint256[] memory expected = new uint256[](3);
        (expected[0], expected[1], expected[2]) = (1, 2, 3);
        verifier.setExpectedInstances(expected);
        mock.fulfillWithProof(id, one(3), hex"01");
        (bool done,,) = consumer.getResult(id);
        assertTrue(done);
    }

    function test_ExpiryAndCancel() public {
        uint256 id = ask(model, 0);
        ICoordinator.Request memory req = mock.getRequest(id);
        uint256 deadline = mock.deadlineBlock(id);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.RequestNotExpired.selector, id, deadline));
        consumer.cancel(req);
        vm.roll(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.RequestExpired.selector, id, deadline));
        mock.fulfill(id, one(1));
        uint256 before = user.balance;
        vm.prank(user);
        consumer.cancel(req);
        assertEq(user.balance, before + BASE_FEE);
        assertEq(uint8(mock.requestStatus(id)), uint8(MockCoordinator.Status.Cancelled));
    }

    function test_AFailingCallbackIsReportedAndTheCallbackGetsItsLimit() public {
        RevertingConsumer reverting = new RevertingConsumer(address(mock));
        uint256 id = reverting.requestPrediction{value: BASE_FEE}(model, pair(1, 2), 0, 100_000);
        vm.expectEmit(address(mock));
        emit InferenceFulfilled(id, address(this), false, one(1), "");
        mock.fulfill(id, one(1));
        GasHungryConsumer hungry = new GasHungryConsumer(address(mock));
        id = hungry.requestPrediction{value: BASE_FEE}(model, pair(1, 2), 0, 100_000);
        uint256 before = gasleft();
        mock.fulfill(id, one(1));
        assertLt(before - gasleft(), 100_000 + 100_000);
        id = hungry.requestPrediction{value: BASE_FEE}(model, pair(1, 2), 0, 500_000);
        (bool ok, bytes memory ret) =
            address(mock).call{gas: 300_000}(abi.encodeCall(MockCoordinator.fulfill, (id, one(1))));
        assertFalse(ok);
        assertEq(ret, abi.encodeWithSelector(MockCoordinator.InsufficientGasForCallback.selector, id));
    }

    function test_WithdrawFees() public {
        uint256 id = ask(model, 0);
        mock.fulfill(id, one(1));
        address to = makeAddr("to");
        mock.withdrawFees(payable(to));
        assertEq(to.balance, BASE_FEE);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.NothingToWithdraw.selector, address(this)));
        mock.withdrawFees(payable(to));
    }

    // ------------------------------------------------------------ optimistic mode
    function done(uint256 id) internal view returns (bool fulfilled) {
        (fulfilled,,) = consumer.getResult(id);
    }

    function test_OptimisticAnswerIsDeliveredOnlyAfterTheChallengeWindow() public {
        uint256 id = ask(zkModel, 2);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.OptimisticAnswerNeedsBond.selector, id));
        mock.fulfill(id, one(7));
        vm.expectEmit(address(mock));
        emit OptimisticAnswerPosted(id, address(this), one(7), 0, uint64(block.number) + 10, uint64(block.number) + 30);
        mock.postOptimistic(id, one(7));
        assertEq(uint8(mock.requestStatus(id)), uint8(MockCoordinator.Status.Posted));
        assertEq(mock.requestCommitment(id), bytes32(0));
        (uint64 challengeDeadline,) = mock.windowsOf(id);
        vm.roll(challengeDeadline);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.ChallengeWindowOpen.selector, id, challengeDeadline));
        mock.finalize(id);
        assertFalse(done(id));
        vm.roll(challengeDeadline + 1);
        vm.expectEmit(address(mock));
        emit InferenceFulfilled(id, address(this), true, one(7), "");
        mock.finalize(id);
        (bool fulfilled, int256[] memory output,) = consumer.getResult(id);
        assertTrue(fulfilled);
        assertEq(output, one(7));
        assertEq(mock.nodeBalance(address(this)), BASE_FEE + ZK_PREMIUM / 5);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.NoClaim.selector, id));
        mock.finalize(id);
    }

    function test_OptimisticChallengeProvenDeliversOnce() public {
        uint256 id = ask(zkModel, 2);
        mock.postOptimistic(id, one(7));
        (uint64 challengeDeadline, uint64 proofDeadline) = mock.windowsOf(id);
        vm.roll(challengeDeadline); // the last block a challenge is accepted in
        vm.prank(user);
        mock.challenge(id);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.AlreadyChallenged.selector, id, user));
        mock.challenge(id);
        vm.roll(proofDeadline);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.ProofWindowOpen.selector, id, proofDeadline));
        mock.finalize(id);
        verifier.setAnswer(false);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.InvalidProof.selector, id));
        mock.proveOptimisticWithProof(id, hex"01");
        verifier.setAnswer(true);
        mock.proveOptimisticWithProof(id, hex"01");
        assertTrue(done(id));
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.NoClaim.selector, id));
        mock.proveOptimistic(id);
    }

    function test_OptimisticWindowEdgesRefuseLateSteps() public {
        uint256 id = ask(zkModel, 2);
        mock.postOptimistic(id, one(7));
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.NotChallenged.selector, id));
        mock.proveOptimistic(id);
        (uint64 challengeDeadline,) = mock.windowsOf(id);
        vm.roll(challengeDeadline + 1);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.ChallengeWindowClosed.selector, id, challengeDeadline));
        mock.challenge(id);
        uint256 other = ask(zkModel, 2);
        mock.postOptimistic(other, one(7));
        mock.challenge(other);
        (, uint64 proofDeadline) = mock.windowsOf(other);
        vm.roll(proofDeadline + 1);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.ProofWindowClosed.selector, other, proofDeadline));
        mock.proveOptimistic(other);
        uint256 zk = ask(zkModel, 1);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.NotOptimisticRequest.selector, zk, 1));
        mock.postOptimistic(zk, one(7));
    }

    function test_UnprovenChallengeSlashesAndReopensInZk() public {
        uint256 id = ask(zkModel, 2);
        mock.postOptimistic(id, one(666));
        vm.prank(user);
        mock.challenge(id);
        (, uint64 proofDeadline) = mock.windowsOf(id);
        vm.roll(proofDeadline + 1);
        ICoordinator.Request memory req = mock.getRequest(id);
        vm.expectEmit(address(mock));
        emit OptimisticAnswerSlashed(id, address(this), user, 0, 0, 0);
        vm.expectEmit(address(mock));
        emit RequestReopened(id, zkModel, address(consumer), pair(1, 2), 1, 200_000, req.fee);
        mock.finalize(id);
        assertFalse(done(id)); // the wrong answer never reached the consumer
        req = mock.getRequest(id);
        assertEq(req.mode, 1);
        assertEq(req.requestedAtBlock, block.number);
        assertEq(uint8(mock.requestStatus(id)), uint8(MockCoordinator.Status.Pending));
        assertEq(mock.requestCommitment(id), keccak256(abi.encode(req)));
        mock.fulfillWithProof(id, one(3), hex"01");
        (bool fulfilled, int256[] memory output,) = consumer.getResult(id);
        assertTrue(fulfilled);
        assertEq(output, one(3));
    }

    function test_ARevertingConsumerNeverBlocksOptimisticFinalisation() public {
        RevertingConsumer reverting = new RevertingConsumer(address(mock));
        uint256 id = reverting.requestPrediction{value: BASE_FEE + ZK_PREMIUM / 5}(zkModel, pair(1, 2), 2, 100_000);
        mock.postOptimistic(id, one(1));
        (uint64 challengeDeadline,) = mock.windowsOf(id);
        vm.roll(challengeDeadline + 1);
        vm.expectEmit(address(mock));
        emit InferenceFulfilled(id, address(this), false, one(1), "");
        mock.finalize(id);
        assertEq(uint8(mock.requestStatus(id)), uint8(MockCoordinator.Status.Fulfilled));
    }

    function test_OptimisticWindowsAreSettableAndErrorRefundsThePremium() public {
        mock.setOptimisticWindows(3, 4);
        uint256 id = ask(zkModel, 2);
        mock.postOptimistic(id, one(1));
        (uint64 c, uint64 p) = mock.windowsOf(id);
        assertEq(c, block.number + 3);
        assertEq(p, block.number + 7);
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.InvalidWindows.selector, 0, 4));
        mock.setOptimisticWindows(0, 4);
        uint256 failed = ask(zkModel, 2);
        mock.fulfillError(failed, "model failed");
        assertEq(mock.nodeBalance(address(consumer)), ZK_PREMIUM / 5);
    }
}

/// @dev Registers on a real Coordinator what the mock test registers, to compare model ids.
contract CoordinatorParity is CoordinatorFixture {
    function registerLikeTheMock(address verifier_) external returns (bytes32) {
        return deployCoordinator().registerModel(keccak256("zk model"), 2, 1, 0, 0, verifier_);
    }
}

/// @notice The mock's optimistic game, step for step, as the Coordinator plays it: for any order
/// and timing of challenges, proofs and finalisations, each step succeeds or fails with the same
/// error on both, and the consumer sees the same thing.
contract MockCoordinatorParityTest is CoordinatorFixture {
    MockCoordinator internal mock;
    ExampleConsumer internal mockConsumer;
    bytes32 internal mockModel;
    address internal watcher = makeAddr("watcher");

    function setUp() public override {
        super.setUp();
        mock = new MockCoordinator(BASE_FEE, ZK_PREMIUM, TIMEOUT_BLOCKS, MAX_CALLBACK_GAS);
        mock.setOptimisticWindows(CHALLENGE_WINDOW_BLOCKS, PROOF_WINDOW_BLOCKS);
        mockConsumer = new ExampleConsumer(address(mock));
        mockModel = mock.registerModel(keccak256("zk model"), 2, 1, 0, 0, address(verifier));
        assertEq(mockModel, zkModel);
        vm.deal(watcher, 10 ether);
    }

    /// @dev Each seed is one step: its low two bits pick challenge, prove or finalize (twice as
    /// likely), the rest how many blocks (0..15) pass before it.
    function testFuzz_OptimisticStepsMatchTheCoordinator(uint8[4] calldata steps, bool validProof) public {
        ICoordinator.Request memory req = request(zkModel, pair(1, 2), MODE_OPTIMISTIC);
        vm.prank(user);
        uint256 mockId = mockConsumer.requestPrediction{value: mock.quoteFee(zkModel, MODE_OPTIMISTIC, CALLBACK_GAS)}(
            zkModel, pair(1, 2), MODE_OPTIMISTIC, CALLBACK_GAS
        );
        assertEq(mockId, req.requestId);
        uint256 at = vm.getBlockNumber();
        vm.prank(node);
        coordinator.postOptimistic{value: NODE_BOND}(req, one(3));
        vm.prank(node);
        mock.postOptimistic(mockId, one(3));
        ICoordinator.Claim memory claim = ICoordinator.Claim(
            one(3),
            node,
            NODE_BOND,
            uint64(at) + CHALLENGE_WINDOW_BLOCKS,
            uint64(at) + CHALLENGE_WINDOW_BLOCKS + PROOF_WINDOW_BLOCKS,
            address(0),
            0
        );
        (uint64 c, uint64 p) = mock.windowsOf(mockId);
        assertEq(c, claim.challengeDeadline);
        assertEq(p, claim.proofDeadline);
        verifier.setAnswer(validProof);

        for (uint256 i = 0; i < steps.length; ++i) {
            at += (steps[i] >> 2) % 16;
            vm.roll(at);
            uint256 kind = steps[i] & 3;
            bytes memory onCoordinator;
            bytes memory onMock;
            if (kind == 0) {
                onCoordinator = abi.encodeCall(Coordinator.challenge, (req, claim));
                onMock = abi.encodeCall(MockCoordinator.challenge, (mockId));
            } else if (kind == 1) {
                onCoordinator = abi.encodeCall(Coordinator.proveOptimistic, (req, claim, hex"01"));
                onMock = abi.encodeCall(MockCoordinator.proveOptimisticWithProof, (mockId, hex"01"));
            } else {
                onCoordinator = abi.encodeCall(Coordinator.finalize, (req, claim));
                onMock = abi.encodeCall(MockCoordinator.finalize, (mockId));
            }
            vm.prank(watcher);
            (bool okC, bytes memory retC) =
                address(coordinator).call{value: kind == 0 ? CHALLENGER_BOND : 0}(onCoordinator);
            vm.prank(watcher);
            (bool okM, bytes memory retM) = address(mock).call(onMock);
            assertEq(okC, okM);
            assertEq(retC, retM);
            if (okC && kind == 0) (claim.challenger, claim.challengerBond) = (watcher, CHALLENGER_BOND);
        }
        (bool doneC, int256[] memory outC, bytes memory errC) = consumer.getResult(req.requestId);
        (bool doneM, int256[] memory outM, bytes memory errM) = mockConsumer.getResult(mockId);
        assertEq(doneC, doneM);
        assertEq(outC, outM);
        assertEq(errC, errM);
        // Re-opened in Zk on both, or on neither.
        assertEq(
            coordinator.requestCommitment(req.requestId) != bytes32(0),
            mock.requestStatus(mockId) == MockCoordinator.Status.Pending
        );
    }
}
