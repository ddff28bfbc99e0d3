// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title HugeReturnVerifier
/// @notice A hostile verifier: answers every call with `size` bytes whose first word is 1 (the
/// encoding of `true`), to make a caller that copies its answer pay for the copy.
contract HugeReturnVerifier {
    uint256 private immutable i_size;

    /// @param size Bytes to return (at least 32).
    constructor(uint256 size) {
        i_size = size;
    }

    fallback() external {
        uint256 size = i_size;
        assembly ("memory-safe") {
            mstore(0x00, 1)
            return(0x00, size)
        }
    }
}
