// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

import {Coordinator} from "../src/Coordinator.sol";
import {ICoordinator} from "../src/interfaces/ICoordinator.sol";
import {InferenceConsumer} from "../src/InferenceConsumer.sol";
import {ExampleConsumer} from "../src/examples/ExampleConsumer.sol";
import {GasHungryConsumer} from "../src/test/GasHungryConsumer.sol";
import {ReentrantConsumer} from "../src/test/ReentrantConsumer.sol";
import {RevertingConsumer} from "../src/test/RevertingConsumer.sol";
import {CoordinatorFixture} from "./utils/CoordinatorFixture.sol";

/// @notice Unit tests of the Coordinator alone (no node, no chain but forge's).
contract CoordinatorTest is CoordinatorFixture {
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    address internal outsider = makeAddr("outsider");

    event InferenceFulfilled(
        uint256 indexed requestId, address indexed node, bool callbackSucceeded, int256[] output, bytes err
    );
    event FeeRefunded(uint256 indexed requestId, address indexed consumer, uint256 amount);
    event RequestAssigned(uint256 indexed requestId, address indexed node, uint64 exclusiveUntilBlock);

    // ------------------------------------------------------------ fulfil
    function test_FulfilDeliversOutputPaysNodeAndDeletesCommitment() public {
        ICoordinator.Request memory req = request(model, pair(5, -7), MODE_NONE);
        assertEq(coordinator.requestCommitment(req.requestId), keccak256(abi.encode(req)));
        vm.expectEmit(address(coordinator));
        emit InferenceFulfilled(req.requestId, node, true, one(42), "");
        fulfill(req, one(42));
        (bool done, int256[] memory output, bytes memory err) = consumer.getResult(req.requestId);
        assertTrue(done);
        assertEq(output, one(42));
        assertEq(err, "");
        assertEq(coordinator.requestCommitment(req.requestId), bytes32(0));
        assertEq(coordinator.nodeBalance(node), req.fee);
    }

    function test_ReplayedFulfilmentIsRejected() public {
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        fulfill(req, one(3));
        vm.expectRevert(abi.encodeWithSelector(Coordinator.RequestNotPending.selector, req.requestId));
        fulfill(req, one(4));
    }

    function test_TamperedRequestDoesNotMatchTheCommitment() public {
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        ICoordinator.Request[5] memory tampered = [req, req, req, req, req];
        for (uint256 i = 0; i < 5; ++i) {
            tampered[i] = ICoordinator.Request(
                req.requestId,
                req.modelId,
                req.consumer,
                i == 0 ? 1 : req.mode,
                i == 1 ? 1_000_000 : req.callbackGasLimit,
                i == 2 ? 1 : req.requestedAtBlock,
                i == 3 ? 1 : req.fee,
                i == 4 ? pair(9, 9) : req.input
            );
            vm.expectRevert(abi.encodeWithSelector(Coordinator.CommitmentMismatch.selector, req.requestId));
            fulfill(tampered[i], one(3));
        }
        fulfill(req, one(3));
    }

    function test_OnlyActiveNodesCanFulfil() public {
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotActiveNode.selector, outsider));
        coordinator.fulfill(req, one(3), "", "");
        coordinator.setNodePaused(node, true);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotActiveNode.selector, node));
        fulfill(req, one(3));
        coordinator.setNodePaused(node, false);
        fulfill(req, one(3));
    }

    function test_OnlyTheCoordinatorCanDeliverToAConsumer() public {
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(InferenceConsumer.OnlyCoordinator.selector, outsider));
        consumer.rawFulfillInference(1, one(3), "");
    }

    function test_FailingCallbackIsReportedNotReverted() public {
        RevertingConsumer reverting = new RevertingConsumer(address(coordinator));
        ICoordinator.Request memory req = requestFrom(address(reverting), model, pair(1, 2), MODE_NONE, 100_000);
        vm.expectEmit(address(coordinator));
        emit InferenceFulfilled(req.requestId, node, false, one(3), "");
        fulfill(req, one(3));
        assertEq(coordinator.requestCommitment(req.requestId), bytes32(0));
        assertEq(coordinator.nodeBalance(node), req.fee);
    }

    function test_GasHungryCallbackGetsExactlyItsLimit() public {
        GasHungryConsumer hungry = new GasHungryConsumer(address(coordinator));
        ICoordinator.Request memory req = requestFrom(address(hungry), model, pair(1, 2), MODE_NONE, 100_000);
        vm.prank(node);
        uint256 before = gasleft();
        coordinator.fulfill(req, one(3), "", "");
        uint256 used = before - gasleft();
        assertLt(used, 100_000 + 120_000);
        assertGt(used, 100_000);
    }

    function test_TooLittleGasForTheCallbackReverts() public {
        GasHungryConsumer hungry = new GasHungryConsumer(address(coordinator));
        ICoordinator.Request memory req = requestFrom(address(hungry), model, pair(1, 2), MODE_NONE, 500_000);
        vm.prank(node);
        (bool ok, bytes memory ret) = address(coordinator).call{gas: 300_000}(
            abi.encodeCall(Coordinator.fulfill, (req, one(3), bytes(""), bytes("")))
        );
        assertFalse(ok);
        assertEq(ret, abi.encodeWithSelector(Coordinator.InsufficientGasForCallback.selector, req.requestId));
        assertEq(coordinator.requestCommitment(req.requestId), keccak256(abi.encode(req))); // still open
    }

    function test_ReentrantConsumerCannotFulfilTwice() public {
        ReentrantConsumer reentrant = new ReentrantConsumer(address(coordinator));
        ICoordinator.Request memory req = requestFrom(address(reentrant), model, pair(1, 2), MODE_NONE, 500_000);
        reentrant.arm(req);
        fulfill(req, one(3));
        (bool called, bool reentryReverted) = reentrant.outcome();
        assertTrue(called);
        assertTrue(reentryReverted);
        assertEq(coordinator.nodeBalance(node), req.fee);
    }

    function test_OutputMustHaveTheModelsLength() public {
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.OutputLengthMismatch.selector, req.requestId, 2, 1));
        coordinator.fulfill(req, pair(1, 2), "", "");
    }

    function test_ErrorLongerThan256BytesIsRefused() public {
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.ErrorTooLong.selector, req.requestId, 257, 256));
        coordinator.fulfill(req, new int256[](0), new bytes(257), "");
    }

    // ------------------------------------------------------------ deadline, cancel
    function test_CancelAfterDeadlineRefundsExactlyAndBlocksFulfilment() public {
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        uint256 deadline = block.number + TIMEOUT_BLOCKS;
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.RequestNotExpired.selector, req.requestId, deadline));
        consumer.cancel(req);
        vm.roll(deadline + 1);
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.NotRequester.selector, req.requestId, outsider));
        consumer.cancel(req);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.RequestExpired.selector, req.requestId, deadline));
        fulfill(req, one(3));
        uint256 userBefore = user.balance;
        uint256 coordinatorBefore = address(coordinator).balance;
        vm.prank(user);
        consumer.cancel(req);
        assertEq(user.balance, userBefore + req.fee);
        assertEq(address(coordinator).balance, coordinatorBefore - req.fee);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.RequestNotPending.selector, req.requestId));
        fulfill(req, one(3));
    }

    function test_OnlyTheConsumerCanCancelAtTheCoordinator() public {
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        vm.roll(block.number + TIMEOUT_BLOCKS + 1);
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotRequestConsumer.selector, req.requestId, outsider));
        coordinator.cancelRequest(req);
    }

    // ------------------------------------------------------------ request validation
    function test_RequestValidation() public {
        vm.startPrank(user);
        uint256 fee = coordinator.quoteFee(model, MODE_NONE, CALLBACK_GAS);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InsufficientFee.selector, fee, 1));
        consumer.requestPrediction{value: 1}(model, pair(1, 2), MODE_NONE, CALLBACK_GAS);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.UnknownModel.selector, bytes32(uint256(0x33))));
        consumer.requestPrediction{value: 1 ether}(bytes32(uint256(0x33)), pair(1, 2), MODE_NONE, CALLBACK_GAS);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.ModelNotVerifiable.selector, model, MODE_ZK));
        consumer.requestPrediction{value: 1 ether}(model, pair(1, 2), MODE_ZK, CALLBACK_GAS);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidMode.selector, 3));
        consumer.requestPrediction{value: 1 ether}(model, pair(1, 2), 3, CALLBACK_GAS);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InputTooLong.selector, 1025, MAX_INPUT_LENGTH));
        consumer.requestPrediction{value: 1 ether}(model, new int256[](1025), MODE_NONE, CALLBACK_GAS);
        vm.expectRevert(Coordinator.EmptyInput.selector);
        consumer.requestPrediction{value: 1 ether}(model, new int256[](0), MODE_NONE, CALLBACK_GAS);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InputLengthMismatch.selector, model, 1, 2));
        consumer.requestPrediction{value: 1 ether}(model, one(1), MODE_NONE, CALLBACK_GAS);
        vm.expectRevert(
            abi.encodeWithSelector(Coordinator.CallbackGasLimitTooHigh.selector, 3_000_000, MAX_CALLBACK_GAS)
        );
        consumer.requestPrediction{value: 1 ether}(model, pair(1, 2), MODE_NONE, 3_000_000);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.ModelNotVerifiable.selector, model, MODE_OPTIMISTIC));
        consumer.requestPrediction{value: 1 ether}(model, pair(1, 2), MODE_OPTIMISTIC, CALLBACK_GAS);
        int256 tooBig = int256((R - 1) / 2 + 1);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InputOutOfFieldRange.selector, 1, tooBig));
        consumer.requestPrediction{value: 1 ether}(zkModel, pair(1, tooBig), MODE_ZK, CALLBACK_GAS);
        vm.stopPrank();
    }

    function test_OverpaymentIsCreditedToTheConsumer() public {
        uint256 fee = coordinator.quoteFee(model, MODE_NONE, CALLBACK_GAS);
        vm.prank(user);
        consumer.requestPrediction{value: fee + 123}(model, pair(1, 2), MODE_NONE, CALLBACK_GAS);
        assertEq(coordinator.nodeBalance(address(consumer)), 123);
    }

    // ------------------------------------------------------------ models
    function test_ModelIdIsContentAddressedAndRegistrationIdempotent() public {
        bytes32 onnx = keccak256("model");
        bytes32 expected = keccak256(abi.encode(onnx, bytes32(0), uint32(2), uint32(1), uint8(0), uint8(0)));
        assertEq(model, expected);
        vm.prank(outsider);
        assertEq(coordinator.registerModel(onnx, 2, 1, 0, 0, address(0)), model);
        assertEq(coordinator.getModel(model).owner, address(this)); // the first registrant stays
        bytes32 zkExpected =
            keccak256(abi.encode(keccak256("zk model"), address(verifier).codehash, uint32(2), uint32(1), uint8(0), uint8(0)));
        assertEq(zkModel, zkExpected);
    }

    function test_ModelRegistrationValidation() public {
        vm.expectRevert(abi.encodeWithSelector(Coordinator.ScaleTooLarge.selector, 65, 16, 64));
        coordinator.registerModel(keccak256("x"), 2, 1, 65, 16, address(0));
        vm.expectRevert(abi.encodeWithSelector(Coordinator.VerifierHasNoCode.selector, outsider));
        coordinator.registerModel(keccak256("x"), 2, 1, 0, 0, outsider);
        bytes32 id = keccak256(abi.encode(keccak256("x"), bytes32(0), uint32(0), uint32(1), uint8(0), uint8(0)));
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidModelShape.selector, id, 0, 1));
        coordinator.registerModel(keccak256("x"), 0, 1, 0, 0, address(0));
    }

    // ------------------------------------------------------------ Zk
    function test_ZkModeChecksTheProofAgainstFieldMappedInstances() public {
        ICoordinator.Request memory req = request(zkModel, pair(-3, 7), MODE_ZK);
        verifier.setAnswer(false);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidProof.selector, req.requestId));
        coordinator.fulfill(req, one(-1), "", hex"01");
        verifier.setAnswer(true);
        uint256[] memory wrong = new uint256[](3);
        (wrong[0], wrong[1], wrong[2]) = (R - 3, 7, 1);
        verifier.setExpectedInstances(wrong);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidProof.selector, req.requestId));
        coordinator.fulfill(req, one(-1), "", hex"01");
        uint256[] memory right = new uint256[](3);
        (right[0], right[1], right[2]) = (R - 3, 7, R - 1);
        verifier.setExpectedInstances(right);
        vm.prank(node);
        coordinator.fulfill(req, one(-1), "", hex"01");
        assertEq(coordinator.requestCommitment(req.requestId), bytes32(0));
    }

    function test_ZkErrorAnswerCarriesNoOutputAndRefundsThePremium() public {
        ICoordinator.Request memory req = request(zkModel, pair(1, 2), MODE_ZK);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.UnprovenOutput.selector, req.requestId));
        coordinator.fulfill(req, one(5), "model failed", "");
        vm.expectEmit(address(coordinator));
        emit FeeRefunded(req.requestId, address(consumer), ZK_PREMIUM);
        vm.prank(node);
        coordinator.fulfill(req, new int256[](0), "model failed", "");
        assertEq(coordinator.nodeBalance(address(consumer)), ZK_PREMIUM);
        assertEq(coordinator.nodeBalance(node), req.fee - ZK_PREMIUM);
        (,, bytes memory err) = consumer.getResult(req.requestId);
        assertEq(err, "model failed");
        consumer.withdrawRefunds(payable(outsider));
        assertEq(outsider.balance, ZK_PREMIUM);
    }

    function test_ZkAnswerIsRefusedWhenTheVerifierCodeChanged() public {
        ICoordinator.Request memory req = request(zkModel, pair(1, 2), MODE_ZK);
        bytes32 registered = address(verifier).codehash;
        vm.etch(address(verifier), hex"600160005260206000f3"); // returns 1, but other code
        vm.prank(node);
        vm.expectRevert(
            abi.encodeWithSelector(
                Coordinator.VerifierCodeChanged.selector, zkModel, registered, address(verifier).codehash
            )
        );
        coordinator.fulfill(req, one(1), "", hex"01");
    }

    // ------------------------------------------------------------ nodes, stake, fees
    function test_NodeStakeAndFeeWithdrawal() public {
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NodeAlreadyRegistered.selector, node));
        coordinator.registerNode{value: MIN_STAKE}();
        vm.deal(outsider, 1 ether);
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InsufficientStake.selector, MIN_STAKE, 1));
        coordinator.registerNode{value: 1}();
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        fulfill(req, one(3));
        vm.prank(node);
        coordinator.withdrawFees(payable(outsider));
        assertEq(outsider.balance, 1 ether + req.fee);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NothingToWithdraw.selector, node));
        coordinator.withdrawFees(payable(outsider));
    }

    function test_StakeUnbondsBeforeItCanBeWithdrawn() public {
        vm.prank(node);
        coordinator.deregisterNode();
        assertFalse(coordinator.isActiveNode(node));
        uint64 release = uint64(block.number) + UNBONDING_BLOCKS;
        (uint256 amount, uint64 releaseBlock) = coordinator.getUnbonding(node);
        assertEq(amount, MIN_STAKE);
        assertEq(releaseBlock, release);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.StakeStillBonded.selector, node, release));
        coordinator.withdrawStake();
        vm.roll(release);
        uint256 before = node.balance;
        vm.prank(node);
        coordinator.withdrawStake();
        assertEq(node.balance, before + MIN_STAKE);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NothingToWithdraw.selector, node));
        coordinator.withdrawStake();
    }

    function test_APausedNodeCannotRegisterAgain() public {
        coordinator.setNodePaused(node, true);
        vm.prank(node);
        coordinator.deregisterNode();
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NodeIsPaused.selector, node));
        coordinator.registerNode{value: MIN_STAKE}();
    }

    function test_OnlyTheOwnerPausesNodes() public {
        vm.prank(outsider);
        vm.expectRevert();
        coordinator.setNodePaused(node, true);
    }

    function test_FeeChangeTakesEffectAfterTheDelayAndUnderTheCaps() public {
        Coordinator.FeeConfig memory high = Coordinator.FeeConfig(2e17, 0, 0, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.FeeAboveCap.selector, 0, 2e17, 1e17));
        coordinator.setFeeConfig(high);
        Coordinator.FeeConfig memory next = Coordinator.FeeConfig(2e15, 2e16, OPTIMISTIC_PREMIUM, MIN_GAS_PRICE, 5_000);
        uint256 oldQuote = coordinator.quoteFee(model, MODE_ZK, CALLBACK_GAS);
        coordinator.setFeeConfig(next);
        (, uint64 effective) = coordinator.pendingFeeConfig();
        // The current fees came into force at deployment (this block): a change may take effect
        // only after every request made under them has expired, which here is later than the delay.
        assertEq(effective, block.number + TIMEOUT_BLOCKS + 1);
        assertEq(coordinator.quoteFee(model, MODE_ZK, CALLBACK_GAS), oldQuote);
        vm.roll(effective);
        uint256 gasPrice = block.basefee > MIN_GAS_PRICE ? block.basefee : MIN_GAS_PRICE;
        assertEq(
            coordinator.quoteFee(model, MODE_ZK, CALLBACK_GAS),
            2e15 + 2e16 + (uint256(CALLBACK_GAS) + 3 * 1_300) * gasPrice * 5_000 / 10_000
        );
    }

    /// @notice A request for a model with a large input or output pays for its answer's data:
    /// 1,300 gas per element at the chain's gas price, on top of the callback gas.
    function test_TheFeeGrowsWithTheModelsInputAndOutput() public {
        bytes32 wide = coordinator.registerModel(keccak256("wide"), 2, 1000, 0, 0, address(0));
        uint256 gasPrice = block.basefee > MIN_GAS_PRICE ? block.basefee : MIN_GAS_PRICE;
        uint256 small = coordinator.quoteFee(model, MODE_NONE, CALLBACK_GAS); // 2 in, 1 out
        uint256 large = coordinator.quoteFee(wide, MODE_NONE, CALLBACK_GAS);
        assertEq(large - small, 999 * 1_300 * gasPrice); // multiplier 10,000 bps: exact
        vm.deal(address(this), 1 ether);
        int256[] memory input = new int256[](2);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InsufficientFee.selector, large, small));
        coordinator.requestInference{value: small}(wide, input, MODE_NONE, CALLBACK_GAS);
    }

    function test_AZkErrorAnswerRefundsThePremiumInForceAtTheRequest() public {
        vm.roll(block.number + 50); // so the change below can come into force before the deadline
        ICoordinator.Request memory req = request(zkModel, pair(1, 2), MODE_ZK);
        coordinator.setFeeConfig(Coordinator.FeeConfig(BASE_FEE, 5e17, OPTIMISTIC_PREMIUM, MIN_GAS_PRICE, GAS_PRICE_MULTIPLIER_BPS));
        (, uint64 effective) = coordinator.pendingFeeConfig();
        assertEq(effective, req.requestedAtBlock + TIMEOUT_BLOCKS);
        vm.roll(effective); // the new premium is in force, the request is still answerable
        coordinator.applyFeeConfig();
        assertEq(coordinator.feeConfig().zkPremium, 5e17);
        vm.prank(node);
        coordinator.fulfill(req, new int256[](0), "failed", "");
        assertEq(coordinator.nodeBalance(address(consumer)), ZK_PREMIUM);
    }

    // ------------------------------------------------------------ assignment
    function test_OnlyTheAssignedNodeAnswersInsideTheExclusiveWindow() public {
        address other = makeAddr("other node");
        vm.deal(other, 10 ether);
        registerNode(other);
        serve(other, model);
        vm.recordLogs();
        ICoordinator.Request memory req = request(model, pair(1, 2), MODE_NONE);
        address assigned = coordinator.assignedNode(req.requestId);
        address notAssigned = assigned == node ? other : node;
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bool sawAssignment;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] == RequestAssigned.selector) {
                sawAssignment = true;
                assertEq(address(uint160(uint256(logs[i].topics[2]))), assigned);
            }
        }
        assertTrue(sawAssignment);
        vm.prank(notAssigned);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotAssignedNode.selector, req.requestId, assigned));
        coordinator.fulfill(req, one(3), "", "");
        vm.roll(block.number + EXCLUSIVE_WINDOW_BLOCKS);
        vm.prank(notAssigned);
        coordinator.fulfill(req, one(3), "", "");
        assertEq(coordinator.nodeBalance(notAssigned), req.fee);
    }

    function test_RequestsAreAssignedOnlyToActiveServers() public {
        coordinator.setNodePaused(node, true);
        uint256 fee = coordinator.quoteFee(model, MODE_NONE, CALLBACK_GAS);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NoNodeServesModel.selector, model));
        consumer.requestPrediction{value: fee}(model, pair(1, 2), MODE_NONE, CALLBACK_GAS);
        vm.prank(outsider);
        coordinator.dropInactiveServer(model, node);
        assertFalse(coordinator.isServingModel(model, node));
    }

    function test_AnActiveServerCannotBeDropped() public {
        vm.expectRevert(abi.encodeWithSelector(Coordinator.ServerStillActive.selector, model, node));
        coordinator.dropInactiveServer(model, node);
    }
}
