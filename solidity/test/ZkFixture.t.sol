// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Coordinator} from "../src/Coordinator.sol";
import {ICoordinator} from "../src/interfaces/ICoordinator.sol";
import {ExampleMlpProof} from "../src/mocks/fixtures/ExampleMlpProof.sol";
import {ExampleMlpFixture} from "./utils/ExampleMlpFixture.sol";

/// @notice The shipped proof fixture (a real EZKL proof, INSECURE dev SRS) verifies through the
/// real Coordinator in Zk mode, and only for the input and output it proves.
contract ZkFixtureTest is ExampleMlpFixture {
    function test_TheFixtureProofVerifiesThroughTheCoordinator() public {
        ICoordinator.Request memory req = request(mlp, ExampleMlpProof.input(), MODE_ZK);
        vm.prank(node);
        coordinator.fulfill(req, ExampleMlpProof.output(), "", ExampleMlpProof.proof());
        (bool done, int256[] memory output,) = consumer.getResult(req.requestId);
        assertTrue(done);
        assertEq(output, ExampleMlpProof.output());
        assertEq(coordinator.nodeBalance(node), req.fee);
    }

    function test_TheFixtureProofDoesNotProveAnotherOutput() public {
        ICoordinator.Request memory req = request(mlp, ExampleMlpProof.input(), MODE_ZK);
        int256[] memory other = ExampleMlpProof.output();
        other[0] += 1;
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidProof.selector, req.requestId));
        coordinator.fulfill(req, other, "", ExampleMlpProof.proof());
    }

    function test_TheFixtureProofDoesNotProveAnotherInput() public {
        int256[] memory input = ExampleMlpProof.input();
        input[0] += 1;
        ICoordinator.Request memory req = request(mlp, input, MODE_ZK);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidProof.selector, req.requestId));
        coordinator.fulfill(req, ExampleMlpProof.output(), "", ExampleMlpProof.proof());
    }

    function test_ATamperedProofIsRefused() public {
        ICoordinator.Request memory req = request(mlp, ExampleMlpProof.input(), MODE_ZK);
        bytes memory proof = ExampleMlpProof.proof();
        proof[100] = bytes1(uint8(proof[100]) ^ 1);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidProof.selector, req.requestId));
        coordinator.fulfill(req, ExampleMlpProof.output(), "", proof);
    }
}
