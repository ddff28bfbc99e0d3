// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IInferenceConsumer
/// @notice What a contract must expose to receive inference results.
interface IInferenceConsumer {
    /// @notice Called by the Coordinator, and only by it, with a request's result.
    /// @param requestId The request being answered.
    /// @param output Fixed-point output, `value = int / 2**outputScale`; empty on error.
    /// @param err Empty on success, otherwise a short reason.
    function rawFulfillInference(uint256 requestId, int256[] calldata output, bytes calldata err) external;
}
