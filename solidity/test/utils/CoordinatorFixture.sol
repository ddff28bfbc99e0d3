// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";

import {Coordinator} from "../../src/Coordinator.sol";
import {ICoordinator} from "../../src/interfaces/ICoordinator.sol";
import {ExampleConsumer} from "../../src/examples/ExampleConsumer.sol";
import {MockVerifier} from "../../src/test/MockVerifier.sol";

/// @title CoordinatorFixture
/// @notice The one place forge tests deploy a Coordinator (its constructor changes in one place
/// only), with the parameters `oracle/chain/deploy.py` uses, a staked node serving two models
/// (plain and Zk, the latter with a `MockVerifier`) and an `ExampleConsumer`.
abstract contract CoordinatorFixture is Test {
    uint256 internal constant MIN_STAKE = 1 ether;
    uint32 internal constant TIMEOUT_BLOCKS = 100;
    uint32 internal constant MAX_CALLBACK_GAS = 2_000_000;
    uint32 internal constant MAX_INPUT_LENGTH = 1024;
    uint32 internal constant UNBONDING_BLOCKS = 100;
    uint32 internal constant FEE_CHANGE_DELAY_BLOCKS = 100;
    uint32 internal constant EXCLUSIVE_WINDOW_BLOCKS = 10;
    uint64 internal constant BASE_FEE = 1e15;
    uint64 internal constant ZK_PREMIUM = 1e16;
    uint64 internal constant OPTIMISTIC_PREMIUM = 2e15;
    uint32 internal constant CHALLENGE_WINDOW_BLOCKS = 10;
    uint32 internal constant PROOF_WINDOW_BLOCKS = 20;
    uint96 internal constant NODE_BOND = 2e16;
    uint96 internal constant CHALLENGER_BOND = 1e16;
    uint96 internal constant STAKE_SLASH = 1e17;
    uint64 internal constant PROOF_GAS_PRICE = 10 gwei;
    uint16 internal constant CHALLENGER_SHARE_BPS = 5_000;
    uint48 internal constant MIN_GAS_PRICE = 1 gwei;
    uint16 internal constant GAS_PRICE_MULTIPLIER_BPS = 10_000;
    uint32 internal constant CALLBACK_GAS = 200_000;
    uint8 internal constant MODE_NONE = 0;
    uint8 internal constant MODE_ZK = 1;
    uint8 internal constant MODE_OPTIMISTIC = 2;

    Coordinator internal coordinator;
    ExampleConsumer internal consumer;
    MockVerifier internal verifier;
    bytes32 internal model; // 2 inputs -> 1 output, no verifier
    bytes32 internal zkModel; // 2 inputs -> 1 output, MockVerifier
    address internal node = makeAddr("node");
    address internal user = makeAddr("user");

    function setUp() public virtual {
        vm.roll(1_000);
        vm.fee(1 gwei);
        coordinator = deployCoordinator();
        consumer = new ExampleConsumer(address(coordinator));
        verifier = new MockVerifier();
        model = coordinator.registerModel(keccak256("model"), 2, 1, 0, 0, address(0));
        zkModel = coordinator.registerModel(keccak256("zk model"), 2, 1, 0, 0, address(verifier));
        vm.deal(node, 100 ether);
        vm.deal(user, 100 ether);
        registerNode(node);
        serve(node, model);
        serve(node, zkModel);
    }

    /// @dev The Coordinator as `oracle/chain/deploy.py` deploys it, owned by this test.
    function deployCoordinator() internal returns (Coordinator c) {
        c = new Coordinator(
            MIN_STAKE,
            TIMEOUT_BLOCKS,
            MAX_CALLBACK_GAS,
            MAX_INPUT_LENGTH,
            Coordinator.FeeConfig(BASE_FEE, ZK_PREMIUM, OPTIMISTIC_PREMIUM, MIN_GAS_PRICE, GAS_PRICE_MULTIPLIER_BPS),
            UNBONDING_BLOCKS,
            FEE_CHANGE_DELAY_BLOCKS,
            feeCaps(),
            EXCLUSIVE_WINDOW_BLOCKS
        );
        c.setOptimisticConfig(optimisticConfig());
    }

    function optimisticConfig() internal pure returns (Coordinator.OptimisticConfig memory) {
        return Coordinator.OptimisticConfig(
            CHALLENGE_WINDOW_BLOCKS,
            PROOF_WINDOW_BLOCKS,
            NODE_BOND,
            CHALLENGER_BOND,
            STAKE_SLASH,
            PROOF_GAS_PRICE,
            CHALLENGER_SHARE_BPS
        );
    }

    function feeCaps() internal pure returns (Coordinator.FeeConfig memory) {
        return Coordinator.FeeConfig(1e17, 1e18, 1e18, 100 gwei, 30_000);
    }

    function registerNode(address who) internal {
        vm.prank(who);
        coordinator.registerNode{value: MIN_STAKE}();
    }

    function serve(address who, bytes32 modelId) internal {
        vm.prank(who);
        coordinator.serveModel(modelId);
    }

    function pair(int256 a, int256 b) internal pure returns (int256[] memory v) {
        v = new int256[](2);
        v[0] = a;
        v[1] = b;
    }

    function one(int256 a) internal pure returns (int256[] memory v) {
        v = new int256[](1);
        v[0] = a;
    }

    /// @dev `user` asks through the ExampleConsumer, paying the quoted fee; returns the request
    /// exactly as committed (what `fulfill` and `cancelRequest` take).
    function request(bytes32 modelId, int256[] memory input, uint8 mode)
        internal
        returns (ICoordinator.Request memory req)
    {
        return requestFrom(address(consumer), modelId, input, mode, CALLBACK_GAS);
    }

    /// @dev A request by `from` (an ExampleConsumer-like contract with `requestPrediction`).
    function requestFrom(address from, bytes32 modelId, int256[] memory input, uint8 mode, uint32 gas)
        internal
        returns (ICoordinator.Request memory req)
    {
        uint256 fee = coordinator.quoteFee(modelId, mode, gas);
        vm.prank(user);
        uint256 id = ExampleConsumer(payable(from)).requestPrediction{value: fee}(modelId, input, mode, gas);
        req = ICoordinator.Request({
            requestId: id,
            modelId: modelId,
            consumer: from,
            mode: mode,
            callbackGasLimit: gas,
            requestedAtBlock: uint64(block.number),
            fee: fee,
            input: input
        });
    }

    function fulfill(ICoordinator.Request memory req, int256[] memory output) internal {
        vm.prank(node);
        coordinator.fulfill(req, output, "", "");
    }
}
