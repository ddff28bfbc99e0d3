// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// The test of docs/consumer-guide.md ("Test your consumer in five minutes"). Keep in step.
import {Test} from "forge-std/Test.sol";
import {MockCoordinator} from "@onchain-ai-oracle/contracts/mocks/MockCoordinator.sol";
import {ExampleMlpProof} from "@onchain-ai-oracle/contracts/mocks/fixtures/ExampleMlpProof.sol";
import {ExampleMlpVerifier} from "@onchain-ai-oracle/contracts/mocks/fixtures/ExampleMlpVerifier.sol";

import {MyConsumer} from "./MyConsumer.sol";

contract MyConsumerTest is Test {
    MockCoordinator coordinator;
    MyConsumer consumer;

    function setUp() public {
        // base fee 0.001 ether, Zk premium 0.01 ether, 100-block timeout, 2M max callback gas
        coordinator = new MockCoordinator(0.001 ether, 0.01 ether, 100, 2_000_000);
        // The example model: 4 inputs, 1 output, scale 13, with its (dev-SRS) EZKL verifier.
        bytes32 modelId = coordinator.registerModel(
            ExampleMlpProof.ONNX_HASH, 4, 1, 13, 13, address(new ExampleMlpVerifier())
        );
        consumer = new MyConsumer(address(coordinator), modelId);
    }

    function test_StoresTheScore() public {
        uint256 id = consumer.ask{value: 0.001 ether}(ExampleMlpProof.input(), 0); // mode None
        int256[] memory output = new int256[](1);
        output[0] = 4242;
        coordinator.fulfill(id, output);
        assertEq(consumer.lastScore(), 4242);
    }

    function test_KeepsTheError() public {
        uint256 id = consumer.ask{value: 0.001 ether}(ExampleMlpProof.input(), 0);
        coordinator.fulfillError(id, "input out of range");
        assertEq(consumer.lastError(), "input out of range");
    }

    function test_AcceptsAZkProvedScore() public {
        uint256 id = consumer.ask{value: 0.011 ether}(ExampleMlpProof.input(), 1); // mode Zk
        coordinator.fulfillWithProof(id, ExampleMlpProof.output(), ExampleMlpProof.proof());
        assertEq(consumer.lastScore(), ExampleMlpProof.output()[0]);
    }

    function test_AZkAnswerNeedsAValidProof() public {
        uint256 id = consumer.ask{value: 0.011 ether}(ExampleMlpProof.input(), 1);
        int256[] memory forged = new int256[](1);
        forged[0] = 1;
        vm.expectRevert(abi.encodeWithSelector(MockCoordinator.InvalidProof.selector, id));
        coordinator.fulfillWithProof(id, forged, ExampleMlpProof.proof());
    }
    function test_AnOptimisticScoreArrivesAfterTheChallengeWindow() public {
        // mode Optimistic: base fee + a fifth of the Zk premium
        uint256 id = consumer.ask{value: 0.003 ether}(ExampleMlpProof.input(), 2);
        coordinator.postOptimistic(id, ExampleMlpProof.output()); // as the node would
        (uint64 challengeDeadline,) = coordinator.windowsOf(id);
        vm.roll(challengeDeadline + 1); // nobody challenged
        coordinator.finalize(id);
        assertEq(consumer.lastScore(), ExampleMlpProof.output()[0]);
    }

    function test_AWrongOptimisticScoreNeverArrives() public {
        uint256 id = consumer.ask{value: 0.003 ether}(ExampleMlpProof.input(), 2);
        int256[] memory wrong = new int256[](1);
        wrong[0] = 666;
        coordinator.postOptimistic(id, wrong);
        coordinator.challenge(id); // a watcher disputes it; no proof follows
        (, uint64 proofDeadline) = coordinator.windowsOf(id);
        vm.roll(proofDeadline + 1);
        coordinator.finalize(id); // slashed: the request is open again, in Zk mode
        assertEq(consumer.lastScore(), 0);
        coordinator.fulfillWithProof(id, ExampleMlpProof.output(), ExampleMlpProof.proof());
        assertEq(consumer.lastScore(), ExampleMlpProof.output()[0]);
    }
}
