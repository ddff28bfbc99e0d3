// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ExampleMlpProof} from "../../src/mocks/fixtures/ExampleMlpProof.sol";
import {ExampleMlpVerifier} from "../../src/mocks/fixtures/ExampleMlpVerifier.sol";
import {CoordinatorFixture} from "./CoordinatorFixture.sol";

/// @notice The Coordinator fixture with the example MLP registered under its shipped EZKL
/// verifier (INSECURE dev SRS) and served by the fixture's node. Importing the verifier compiles
/// a test with the legacy pipeline (foundry.toml): keep it out of tests that do not need it.
abstract contract ExampleMlpFixture is CoordinatorFixture {
    bytes32 internal mlp;

    function setUp() public virtual override {
        super.setUp();
        ExampleMlpVerifier mlpVerifier = new ExampleMlpVerifier();
        mlp = coordinator.registerModel(
            ExampleMlpProof.ONNX_HASH,
            ExampleMlpProof.INPUT_LENGTH,
            ExampleMlpProof.OUTPUT_LENGTH,
            ExampleMlpProof.INPUT_SCALE,
            ExampleMlpProof.OUTPUT_SCALE,
            address(mlpVerifier)
        );
        serve(node, mlp);
    }
}
