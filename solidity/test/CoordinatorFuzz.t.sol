// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Coordinator} from "../src/Coordinator.sol";
import {ICoordinator} from "../src/interfaces/ICoordinator.sol";
import {SlashableCoordinator} from "../src/test/SlashableCoordinator.sol";
import {CoordinatorFixture} from "./utils/CoordinatorFixture.sol";

/// @notice Properties of the Coordinator over random inputs.
contract CoordinatorFuzzTest is CoordinatorFixture {
    uint256 internal constant HALF_FIELD = 10944121435919637611123202872628637544274182200208017171849102093287904247808;

    /// @dev The quote is the documented formula, for any fees under the caps, any callback gas
    /// and any block base fee.
    function testFuzz_QuoteFeeIsTheDocumentedFormula(
        uint96 baseFee,
        uint96 zkPremium,
        uint48 minGasPrice,
        uint16 bps,
        uint32 gas,
        uint64 basefee,
        bool zk
    ) public {
        Coordinator.FeeConfig memory caps = feeCaps();
        Coordinator.FeeConfig memory f = Coordinator.FeeConfig(
            uint64(bound(baseFee, 0, caps.baseFee)),
            uint64(bound(zkPremium, 0, caps.zkPremium)),
            uint64(bound(zkPremium / 5, 0, caps.optimisticPremium)),
            uint48(bound(minGasPrice, 0, caps.minGasPrice)),
            uint16(bound(bps, 0, caps.gasPriceMultiplierBps))
        );
        coordinator.setFeeConfig(f);
        (, uint64 effective) = coordinator.pendingFeeConfig();
        vm.roll(effective);
        vm.fee(basefee);
        gas = uint32(bound(gas, 0, MAX_CALLBACK_GAS));
        uint256 gasPrice = basefee > f.minGasPrice ? basefee : f.minGasPrice;
        uint256 answerGas = 3 * 1_300; // the fixture's models: 2 inputs, 1 output
        uint256 expected = uint256(f.baseFee)
            + ((uint256(gas) + answerGas) * gasPrice * f.gasPriceMultiplierBps) / 10_000 + (zk ? f.zkPremium : 0);
        assertEq(coordinator.quoteFee(zk ? zkModel : model, zk ? MODE_ZK : MODE_NONE, gas), expected);
    }

    /// @dev A Zk error answer splits the fee exactly: premium to the consumer, the rest to the node.
    function testFuzz_ZkErrorAnswerSplitsTheFeeExactly(uint32 gas, uint64 basefee, uint8 errLength) public {
        gas = uint32(bound(gas, 0, MAX_CALLBACK_GAS));
        vm.fee(bound(basefee, 0, 1_000 gwei));
        ICoordinator.Request memory req = requestFrom(address(consumer), zkModel, pair(1, 2), MODE_ZK, gas);
        bytes memory err = new bytes(bound(errLength, 1, 256));
        vm.prank(node);
        coordinator.fulfill{gas: 10_000_000}(req, new int256[](0), err, "");
        uint256 refunded = coordinator.nodeBalance(address(consumer));
        assertEq(refunded, ZK_PREMIUM);
        assertEq(refunded + coordinator.nodeBalance(node), req.fee);
    }

    /// @dev Paying more than the quote credits exactly the excess to the consumer.
    function testFuzz_OverpaymentIsCreditedExactly(uint256 extra) public {
        extra = bound(extra, 0, 10 ether);
        uint256 fee = coordinator.quoteFee(model, MODE_NONE, CALLBACK_GAS);
        vm.prank(user);
        consumer.requestPrediction{value: fee + extra}(model, pair(1, 2), MODE_NONE, CALLBACK_GAS);
        assertEq(coordinator.nodeBalance(address(consumer)), extra);
        assertEq(address(coordinator).balance, MIN_STAKE + fee + extra);
    }

    /// @dev Verifiable modes accept an input exactly when it is a canonical signed field element.
    function testFuzz_ZkInputsMustBeCanonicalFieldElements(int256 x) public {
        uint256 fee = coordinator.quoteFee(zkModel, MODE_ZK, CALLBACK_GAS);
        bool inRange = x >= -int256(HALF_FIELD) && x <= int256(HALF_FIELD);
        vm.prank(user);
        if (!inRange) vm.expectRevert(abi.encodeWithSelector(Coordinator.InputOutOfFieldRange.selector, 0, x));
        consumer.requestPrediction{value: fee}(zkModel, pair(x, 0), MODE_ZK, CALLBACK_GAS);
    }

    /// @dev The Zk output goes to the verifier as its field element: x for x >= 0, r + x below.
    function testFuzz_ZkOutputsAreMappedIntoTheField(int256 y) public {
        ICoordinator.Request memory req = request(zkModel, pair(0, 0), MODE_ZK);
        bool inRange = y >= -int256(HALF_FIELD) && y <= int256(HALF_FIELD);
        if (!inRange) {
            vm.prank(node);
            vm.expectRevert(abi.encodeWithSelector(Coordinator.OutputOutOfFieldRange.selector, req.requestId, 0, y));
            coordinator.fulfill(req, one(y), "", hex"01");
            return;
        }
        uint256[] memory expected = new uint256[](3);
        expected[2] = y >= 0 ? uint256(y) : 2 * HALF_FIELD + 1 - uint256(-y);
        verifier.setExpectedInstances(expected);
        vm.prank(node);
        coordinator.fulfill(req, one(y), "", hex"01");
        assertEq(coordinator.requestCommitment(req.requestId), bytes32(0));
    }

    /// @dev A cancelled request refunds exactly its fee, whenever after the deadline it is cancelled.
    function testFuzz_CancelRefundsTheFee(uint32 gas, uint16 late) public {
        gas = uint32(bound(gas, 0, MAX_CALLBACK_GAS));
        ICoordinator.Request memory req = requestFrom(address(consumer), model, pair(1, 2), MODE_NONE, gas);
        vm.roll(block.number + TIMEOUT_BLOCKS + 1 + late);
        uint256 before = user.balance;
        vm.prank(user);
        consumer.cancel(req);
        assertEq(user.balance, before + req.fee);
        assertEq(address(coordinator).balance, MIN_STAKE);
    }

    /// @dev Model ids are the hash of the registered content, whoever registers first.
    function testFuzz_ModelIdIsContentAddressed(bytes32 onnx, uint32 inLen, uint32 outLen, uint8 inScale, uint8 outScale)
        public
    {
        inLen = uint32(bound(inLen, 1, MAX_INPUT_LENGTH));
        outLen = uint32(bound(outLen, 1, type(uint32).max));
        inScale = uint8(bound(inScale, 0, 64));
        outScale = uint8(bound(outScale, 0, 64));
        bytes32 id = coordinator.registerModel(onnx, inLen, outLen, inScale, outScale, address(0));
        assertEq(id, keccak256(abi.encode(onnx, bytes32(0), inLen, outLen, inScale, outScale)));
        ICoordinator.ModelInfo memory info = coordinator.getModel(id);
        assertEq(info.onnxHash, onnx);
        assertEq(uint256(info.inputLength), inLen);
        vm.prank(user);
        assertEq(coordinator.registerModel(onnx, inLen, outLen, inScale, outScale, address(0)), id);
        assertEq(coordinator.getModel(id).owner, address(this));
    }

    /// @dev Slashing takes active stake first, then unbonding stake, and never more than both.
    function testFuzz_SlashTakesActiveThenUnbondingStake(uint256 first, uint256 second, uint256 amount) public {
        SlashableCoordinator slashable = new SlashableCoordinator(1 ether, 10);
        first = bound(first, 1 ether, 50 ether);
        second = bound(second, 1 ether, 50 ether);
        vm.startPrank(node);
        slashable.registerNode{value: first}();
        slashable.deregisterNode();
        slashable.registerNode{value: second}();
        vm.stopPrank();
        amount = bound(amount, 0, first + second + 1);
        if (amount > first + second) {
            vm.expectRevert(
                abi.encodeWithSelector(Coordinator.SlashExceedsStake.selector, node, amount, first + second)
            );
            slashable.slash(node, amount);
            return;
        }
        slashable.slash(node, amount);
        (uint256 active,,) = slashable.getNode(node);
        (uint256 unbonding,) = slashable.getUnbonding(node);
        assertEq(active, amount < second ? second - amount : 0);
        assertEq(active + unbonding, first + second - amount);
        assertEq(address(slashable).balance, first + second); // slashed wei stay in the contract
    }
}
