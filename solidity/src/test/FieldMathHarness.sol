// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {FieldMath} from "../libraries/FieldMath.sol";

/// @title FieldMathHarness
/// @notice Test-only: exposes the `FieldMath` library so its mapping can be compared with the
/// node's Python implementation.
contract FieldMathHarness {
    /// @notice The value is outside the canonical signed range.
    error ValueOutOfFieldRange(int256 value);

    /// @notice Whether `x` is in the canonical signed range.
    function inRange(int256 x) external pure returns (bool) {
        return FieldMath.inRange(x);
    }

    /// @notice The field element of `x`; reverts outside the canonical signed range.
    function toField(int256 x) external pure returns (uint256) {
        if (!FieldMath.inRange(x)) revert ValueOutOfFieldRange(x);
        return FieldMath.toField(x);
    }

    /// @notice The canonical signed value of a field element.
    function fromField(uint256 v) external pure returns (int256) {
        return FieldMath.fromField(v);
    }
}
