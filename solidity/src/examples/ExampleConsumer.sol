// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InferenceConsumer} from "../InferenceConsumer.sol";
import {ICoordinator} from "../interfaces/ICoordinator.sol";

/// @title ExampleConsumer
/// @notice Asks for a prediction and keeps every answer; used by the demo and the CLI.
contract ExampleConsumer is InferenceConsumer {
    struct Result {
        bool fulfilled;
        int256[] output;
        bytes err;
    }

    mapping(uint256 requestId => Result) private s_results;
    mapping(uint256 requestId => address) private s_requesters;
    address private immutable i_owner;

    /// @notice Only the account that sent a request may cancel it.
    error NotRequester(uint256 requestId, address caller);
    /// @notice Forwarding a refund to the requester failed.
    error RefundFailed(uint256 requestId);
    /// @notice Only the deployer may withdraw what the Coordinator credited to this contract.
    error NotOwner(address caller);

    /// @notice A prediction was requested.
    event PredictionRequested(uint256 indexed requestId, address indexed requester);
    /// @notice A prediction (or an error) arrived.
    event PredictionReceived(uint256 indexed requestId, int256[] output, bytes err);

    /// @param coordinator_ The Coordinator to use.
    constructor(address coordinator_) InferenceConsumer(coordinator_) {
        i_owner = msg.sender;
    }

    /// @notice Owner: withdraw what the Coordinator credited to this contract (fees of Zk requests
    /// answered with an error, overpayments) to `to`. The Coordinator emits `FeesWithdrawn`.
    /// @param to Where the wei go.
    function withdrawRefunds(address payable to) external {
        if (msg.sender != i_owner) revert NotOwner(msg.sender);
        _withdrawRefunds(to);
    }

    /// @notice The account allowed to withdraw credited refunds.
    function owner() external view returns (address) {
        return i_owner;
    }

    /// @notice Request a prediction; `msg.value` is the fee (see the Coordinator's quoteFee).
    function requestPrediction(bytes32 modelId, int256[] calldata input, uint8 mode, uint32 callbackGasLimit)
        external
        payable
        returns (uint256 requestId)
    {
        requestId = _requestInference(modelId, input, mode, callbackGasLimit, msg.value);
        s_requesters[requestId] = msg.sender;
        emit PredictionRequested(requestId, msg.sender);
    }

    /// @notice Cancel an expired request; the refunded fee goes back to the requester.
    function cancel(ICoordinator.Request calldata req) external {
        if (s_requesters[req.requestId] != msg.sender) revert NotRequester(req.requestId, msg.sender);
        _cancelInference(req);
        (bool ok,) = payable(msg.sender).call{value: req.fee}("");
        if (!ok) revert RefundFailed(req.requestId);
    }

    /// @notice A request's result so far.
    function getResult(uint256 requestId)
        external
        view
        returns (bool fulfilled, int256[] memory output, bytes memory err)
    {
        Result storage r = s_results[requestId];
        return (r.fulfilled, r.output, r.err);
    }

    function _onInferenceResult(uint256 requestId, int256[] memory output, bytes memory err) internal override {
        s_results[requestId] = Result({fulfilled: true, output: output, err: err});
        emit PredictionReceived(requestId, output, err);
    }
}
