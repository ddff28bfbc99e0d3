// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

import {MockCoordinator} from "../src/mocks/MockCoordinator.sol";
import {ExampleMlpProof} from "../src/mocks/fixtures/ExampleMlpProof.sol";
import {ExampleMlpVerifier} from "../src/mocks/fixtures/ExampleMlpVerifier.sol";

/// @notice Deploy a MockCoordinator with the example model registered (and its dev-SRS verifier),
/// for a front end or a consumer on a local chain without a node:
/// `forge script script/DeployMockCoordinator.s.sol --rpc-url http://127.0.0.1:8545 --broadcast
/// --private-key <anvil key>`. Fees from MOCK_BASE_FEE and MOCK_ZK_PREMIUM (wei), if set.
contract DeployMockCoordinator {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external returns (MockCoordinator coordinator, bytes32 modelId) {
        uint96 baseFee = uint96(vm.envOr("MOCK_BASE_FEE", uint256(0.001 ether)));
        uint96 zkPremium = uint96(vm.envOr("MOCK_ZK_PREMIUM", uint256(0.01 ether)));
        vm.startBroadcast();
        coordinator = new MockCoordinator(baseFee, zkPremium, 100, 2_000_000);
        modelId = coordinator.registerModel(
            ExampleMlpProof.ONNX_HASH,
            ExampleMlpProof.INPUT_LENGTH,
            ExampleMlpProof.OUTPUT_LENGTH,
            ExampleMlpProof.INPUT_SCALE,
            ExampleMlpProof.OUTPUT_SCALE,
            address(new ExampleMlpVerifier())
        );
        vm.stopBroadcast();
    }
}
