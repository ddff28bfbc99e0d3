// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Coordinator} from "./Coordinator.sol";
import {ICoordinator} from "./interfaces/ICoordinator.sol";
import {IInferenceConsumer} from "./interfaces/IInferenceConsumer.sol";

/// @title InferenceConsumer
/// @notice Inherit this to ask the oracle for inferences: call `_requestInference`, receive the
/// result in `_onInferenceResult`. Only the Coordinator can deliver a result.
abstract contract InferenceConsumer is IInferenceConsumer {
    ICoordinator private immutable i_coordinator;

    /// @notice Someone other than the Coordinator tried to deliver a result.
    error OnlyCoordinator(address caller);

    /// @param coordinator The Coordinator this consumer trusts.
    constructor(address coordinator) {
        i_coordinator = ICoordinator(coordinator);
    }

    /// @inheritdoc IInferenceConsumer
    function rawFulfillInference(uint256 requestId, int256[] calldata output, bytes calldata err) external {
        if (msg.sender != address(i_coordinator)) revert OnlyCoordinator(msg.sender);
        _onInferenceResult(requestId, output, err);
    }

    /// @notice The Coordinator this consumer trusts.
    function coordinator() public view returns (address) {
        return address(i_coordinator);
    }

    /// @notice Accept refunds from cancelled requests.
    receive() external payable virtual {}

    /// @dev Send a request paying `fee` from this contract's balance (or the msg.value it holds).
    function _requestInference(
        bytes32 modelId,
        int256[] memory input,
        uint8 mode,
        uint32 callbackGasLimit,
        uint256 fee
    ) internal returns (uint256 requestId) {
        return i_coordinator.requestInference{value: fee}(modelId, input, mode, callbackGasLimit);
    }

    /// @dev Cancel an expired request; the refund arrives at this contract.
    function _cancelInference(ICoordinator.Request memory req) internal {
        Coordinator(payable(address(i_coordinator))).cancelRequest(req);
    }

    /// @dev Withdraw fees refunded to this contract (a Zk request answered with an error) to `to`.
    function _withdrawRefunds(address payable to) internal {
        Coordinator(payable(address(i_coordinator))).withdrawFees(to);
    }

    /// @dev Override with what to do with a result. `err` is empty on success.
    function _onInferenceResult(uint256 requestId, int256[] memory output, bytes memory err) internal virtual;
}
