// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InferenceConsumer} from "../InferenceConsumer.sol";

/// @title GasHungryConsumer
/// @notice Test double: its callback burns every unit of gas it is given.
contract GasHungryConsumer is InferenceConsumer {
    uint256 private s_sink;

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

    function _onInferenceResult(uint256, int256[] memory, bytes memory) internal override {
        while (true) {
            s_sink += 1;
        }
    }
}
