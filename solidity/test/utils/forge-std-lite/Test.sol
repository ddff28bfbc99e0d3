// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "./Vm.sol";

/// @title Test
/// @notice The part of forge-std's `Test` these tests use, with the same names and signatures,
/// so a test written against it compiles unchanged against forge-std.
/// @dev forge-std cannot be fetched where this project is built (no git access; npm only has
/// an unofficial 1.1.2), so `foundry.toml` maps `forge-std/` here. With forge-std installed
/// (`forge install foundry-rs/forge-std`), point the remapping at `lib/forge-std/src/`.
abstract contract Test {
    /// @notice `bound` was given an empty range.
    error BoundMinAboveMax(uint256 min, uint256 max);

    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// @dev forge looks for this flag to treat the contract as a test suite.
    bool public IS_TEST = true;

    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    address[] private s_targetContracts;
    address[] private s_excludeSenders;
    FuzzSelector[] private s_targetSelectors;

    // ------------------------------------------------------------ assertions
    function assertTrue(bool condition) internal pure {
        vm.assertTrue(condition);
    }

    function assertTrue(bool condition, string memory err) internal pure {
        vm.assertTrue(condition, err);
    }

    function assertFalse(bool condition) internal pure {
        vm.assertFalse(condition);
    }

    function assertEq(bool left, bool right) internal pure {
        vm.assertEq(left, right);
    }

    function assertEq(uint256 left, uint256 right) internal pure {
        vm.assertEq(left, right);
    }

    function assertEq(uint256 left, uint256 right, string memory err) internal pure {
        vm.assertEq(left, right, err);
    }

    function assertEq(int256 left, int256 right) internal pure {
        vm.assertEq(left, right);
    }

    function assertEq(address left, address right) internal pure {
        vm.assertEq(left, right);
    }

    function assertEq(bytes32 left, bytes32 right) internal pure {
        vm.assertEq(left, right);
    }

    function assertEq(bytes memory left, bytes memory right) internal pure {
        vm.assertEq(left, right);
    }

    function assertEq(string memory left, string memory right) internal pure {
        vm.assertEq(left, right);
    }

    function assertEq(int256[] memory left, int256[] memory right) internal pure {
        vm.assertEq(left, right);
    }

    function assertGt(uint256 left, uint256 right) internal pure {
        vm.assertGt(left, right);
    }

    function assertGe(uint256 left, uint256 right) internal pure {
        vm.assertGe(left, right);
    }

    function assertLt(uint256 left, uint256 right) internal pure {
        vm.assertLt(left, right);
    }

    function assertLe(uint256 left, uint256 right) internal pure {
        vm.assertLe(left, right);
    }

    // ------------------------------------------------------------ utilities
    /// @dev `x` mapped into [min, max] (forge-std's StdUtils.bound, without its log line).
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (min > max) revert BoundMinAboveMax(min, max);
        if (x >= min && x <= max) return x;
        uint256 size;
        unchecked {
            size = max - min + 1;
        }
        if (size == 0) return x; // the whole uint256 range
        return min + (x % size);
    }

    /// @dev A deterministic address for `name`, labelled in traces.
    function makeAddr(string memory name) internal returns (address a) {
        a = vm.addr(uint256(keccak256(bytes(name))));
        vm.label(a, name);
    }

    // ------------------------------------------------------------ invariant targets
    function targetContract(address target) internal {
        s_targetContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        s_targetSelectors.push(selector);
    }

    function excludeSender(address sender) internal {
        s_excludeSenders.push(sender);
    }

    /// @dev Read by forge's invariant runner.
    function targetContracts() public view returns (address[] memory) {
        return s_targetContracts;
    }

    /// @dev Read by forge's invariant runner.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return s_targetSelectors;
    }

    /// @dev Read by forge's invariant runner.
    function excludeSenders() public view returns (address[] memory) {
        return s_excludeSenders;
    }
}
