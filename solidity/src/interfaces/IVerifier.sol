// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IVerifier
/// @notice The EZKL-generated Halo2/KZG verifier's entry point.
interface IVerifier {
    /// @notice Check `proof` against the public `instances` (BN254 field elements).
    /// @return True when the proof verifies (EZKL verifiers revert on a bad proof).
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool);
}
