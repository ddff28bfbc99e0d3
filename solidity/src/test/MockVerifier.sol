// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerifier} from "../interfaces/IVerifier.sol";

/// @title MockVerifier
/// @notice Test double for an EZKL verifier: returns a settable answer, and with expected
/// instances set, accepts only those (the Coordinator calls verifiers read-only, so the double
/// checks the instances instead of recording them).
contract MockVerifier is IVerifier {
    bool private s_answer = true;
    bool private s_checkInstances;
    uint256[] private s_expected;

    /// @notice Set what verifyProof returns.
    function setAnswer(bool answer) external {
        s_answer = answer;
    }

    /// @notice From now on, answer false unless the instances are exactly `expected`.
    function setExpectedInstances(uint256[] calldata expected) external {
        s_expected = expected;
        s_checkInstances = true;
    }

    /// @inheritdoc IVerifier
    function verifyProof(bytes calldata, uint256[] calldata instances) external view returns (bool) {
        if (s_checkInstances && keccak256(abi.encode(instances)) != keccak256(abi.encode(s_expected))) {
            return false;
        }
        return s_answer;
    }
}
