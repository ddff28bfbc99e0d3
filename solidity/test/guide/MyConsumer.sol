// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// The consumer of docs/consumer-guide.md ("Test your consumer in five minutes"), kept here so
// `forge test` proves the guide's example works. Keep the two in step.
import {InferenceConsumer} from "@onchain-ai-oracle/contracts/InferenceConsumer.sol";

/// @notice Asks a model for a score and keeps the last answer.
contract MyConsumer is InferenceConsumer {
    bytes32 public immutable modelId;
    int256 public lastScore;
    bytes public lastError;

    constructor(address coordinator_, bytes32 modelId_) InferenceConsumer(coordinator_) {
        modelId = modelId_;
    }

    /// @notice Ask for a score; `msg.value` pays the fee (`quoteFee`).
    function ask(int256[] calldata features, uint8 mode) external payable returns (uint256) {
        return _requestInference(modelId, features, mode, 100_000, msg.value);
    }

    function _onInferenceResult(uint256, int256[] memory output, bytes memory err) internal override {
        if (err.length != 0) {
            lastError = err;
            return;
        }
        lastScore = output[0];
    }
}
