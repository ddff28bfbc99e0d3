// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

import {Coordinator} from "../src/Coordinator.sol";
import {ICoordinator} from "../src/interfaces/ICoordinator.sol";
import {ExampleMlpProof} from "../src/mocks/fixtures/ExampleMlpProof.sol";
import {ExampleMlpFixture} from "./utils/ExampleMlpFixture.sol";

// Apart from CoordinatorBatch.t.sol: importing the EZKL verifier compiles a file with the legacy
// pipeline (foundry.toml), whose stack the larger batch tests do not fit.
/// @notice `fulfillBatch` with the shipped real EZKL proof (INSECURE dev SRS) and its verifier.
contract CoordinatorBatchZkTest is ExampleMlpFixture {
    function zkAnswers(uint256 n) internal returns (ICoordinator.Answer[] memory answers) {
        answers = new ICoordinator.Answer[](n);
        for (uint256 i = 0; i < n; ++i) {
            ICoordinator.Request memory req = request(mlp, ExampleMlpProof.input(), MODE_ZK);
            answers[i] = ICoordinator.Answer(req, ExampleMlpProof.output(), "", ExampleMlpProof.proof());
        }
    }

    function test_RealProofsAreVerifiedAndDeliveredInOneBatch() public {
        ICoordinator.Answer[] memory answers = zkAnswers(3);
        vm.prank(node);
        assertEq(coordinator.fulfillBatch(answers), 0);
        for (uint256 i = 0; i < 3; ++i) {
            (bool done, int256[] memory output,) = consumer.getResult(answers[i].req.requestId);
            assertTrue(done);
            assertEq(output, ExampleMlpProof.output());
        }
        assertEq(coordinator.nodeBalance(node), 3 * answers[0].req.fee);
    }

    /// @dev Enough gas for the callback but not for the verifier's budget: the answer is refused
    /// for the gas (`InsufficientGasForCallback`), never as `InvalidProof` (the proof is good),
    /// changes nothing, and lands when sent again with enough gas.
    function test_AZkAnswerShortOfVerifierGasIsRefusedForTheGasAndLandsLater() public {
        ICoordinator.Answer[] memory answers = zkAnswers(1);
        ICoordinator.Request memory req = answers[0].req;
        vm.recordLogs();
        vm.prank(node);
        (bool ok, bytes memory ret) =
            address(coordinator).call{gas: 350_000}(abi.encodeCall(Coordinator.fulfillBatch, (answers)));
        assertTrue(ok);
        assertEq(abi.decode(ret, (uint256)), 1);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1);
        assertEq(logs[0].topics[0], keccak256("AnswerRejected(uint256,address,bytes)"));
        assertEq(
            abi.decode(logs[0].data, (bytes)),
            abi.encodeWithSelector(Coordinator.InsufficientGasForCallback.selector, req.requestId)
        );
        assertEq(coordinator.requestCommitment(req.requestId), keccak256(abi.encode(req)));
        assertEq(coordinator.nodeBalance(node), 0);
        vm.prank(node);
        assertEq(coordinator.fulfillBatch(answers), 0);
        assertEq(coordinator.nodeBalance(node), req.fee);
    }
}
