// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerifier} from "../interfaces/IVerifier.sol";

/// @title MockVerifier
/// @notice Test double for an EZKL verifier: returns a settable answer, records the instances.
contract MockVerifier is IVerifier {
    bool private s_answer = true;
    uint256[] private s_lastInstances;

    /// @notice Set what verifyProof returns.
    function setAnswer(bool answer) external {
        s_answer = answer;
    }

    /// @inheritdoc IVerifier
    function verifyProof(bytes calldata, uint256[] calldata instances) external returns (bool) {
        s_lastInstances = instances;
        return s_answer;
    }

    /// @notice The instances of the last call.
    function lastInstances() external view returns (uint256[] memory) {
        return s_lastInstances;
    }
}
