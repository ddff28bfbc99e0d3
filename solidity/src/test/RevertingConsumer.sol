// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InferenceConsumer} from "../InferenceConsumer.sol";

/// @title RevertingConsumer
/// @notice Test double: its callback always reverts.
contract RevertingConsumer is InferenceConsumer {
    /// @notice Always raised by the callback.
    error AlwaysReverts(uint256 requestId);

    /// @param coordinator_ The Coordinator to use.
    constructor(address coordinator_) InferenceConsumer(coordinator_) {}

    /// @notice Send a request; `msg.value` is the fee.
    function requestPrediction(bytes32 modelId, int256[] calldata input, uint8 mode, uint32 callbackGasLimit)
        external
        payable
        returns (uint256)
    {
        return _requestInference(modelId, input, mode, callbackGasLimit, msg.value);
    }

    function _onInferenceResult(uint256 requestId, int256[] memory, bytes memory) internal pure override {
        revert AlwaysReverts(requestId);
    }
}
