// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title FieldMath
/// @notice The one mapping between signed fixed-point integers and BN254 scalar field elements
/// (EZKL's public instances), restricted to the canonical signed range so that it is a bijection.
/// @dev Without the range restriction `x`, `x + r` and `x - r` map to the same field element, so a
/// proof for one integer would also "prove" the others. In range, `x >= 0` maps to `x` and `x < 0`
/// to `r - |x|`; both halves are disjoint and `fromField` inverts `toField` exactly.
library FieldMath {
    /// @notice Order of the BN254 scalar field.
    uint256 internal constant MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Largest magnitude of a canonical signed value: (r - 1) / 2.
    int256 internal constant MAX_ABS = int256((MODULUS - 1) / 2);

    /// @notice A field element was not below the modulus.
    error NotAFieldElement(uint256 value);

    /// @notice True when `x` lies in the canonical signed range `|x| <= (r - 1) / 2`.
    function inRange(int256 x) internal pure returns (bool) {
        return x <= MAX_ABS && x >= -MAX_ABS;
    }

    /// @notice The field element of a canonical signed value. The caller must have checked
    /// `inRange(x)`: outside it the result is meaningless (and not unique).
    function toField(int256 x) internal pure returns (uint256) {
        // In range, -x cannot overflow (MAX_ABS < 2**255) and |x| < r.
        return x >= 0 ? uint256(x) : MODULUS - uint256(-x);
    }

    /// @notice The canonical signed value of a field element (inverse of `toField`).
    function fromField(uint256 v) internal pure returns (int256) {
        if (v >= MODULUS) revert NotAFieldElement(v);
        return v > uint256(MAX_ABS) ? -int256(MODULUS - v) : int256(v);
    }
}
