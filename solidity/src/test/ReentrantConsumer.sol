// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Coordinator} from "../Coordinator.sol";
import {InferenceConsumer} from "../InferenceConsumer.sol";
import {ICoordinator} from "../interfaces/ICoordinator.sol";

/// @title ReentrantConsumer
/// @notice Test double: its callback tries to fulfil and cancel its own request again.
contract ReentrantConsumer is InferenceConsumer {
    ICoordinator.Request private s_replay;
    bool private s_armed;
    bool private s_reentryReverted;
    bool private s_called;

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

    /// @notice Store the request to replay from inside the callback.
    function arm(ICoordinator.Request calldata req) external {
        s_replay = req;
        s_armed = true;
    }

    /// @notice (callback ran, the reentrant fulfil reverted)
    function outcome() external view returns (bool called, bool reentryReverted) {
        return (s_called, s_reentryReverted);
    }

    function _onInferenceResult(uint256, int256[] memory output, bytes memory err) internal override {
        s_called = true;
        if (!s_armed) return;
        try Coordinator(payable(coordinator())).fulfill(s_replay, output, err, "") {
            s_reentryReverted = false;
        } catch {
            s_reentryReverted = true;
        }
    }
}
