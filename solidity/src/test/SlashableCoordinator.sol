// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Coordinator} from "../Coordinator.sol";

/// @title SlashableCoordinator
/// @notice Test-only: a Coordinator whose owner can call the internal `_slash` hook, so tests can
/// show that unbonding stake is still slashable without setting up an optimistic dispute.
contract SlashableCoordinator is Coordinator {
    /// @param minStake See Coordinator.
    /// @param unbondingBlocks See Coordinator.
    constructor(uint256 minStake, uint32 unbondingBlocks)
        Coordinator(minStake, 5, 2_000_000, 16, FeeConfig(0, 0, 0, 0, 0), unbondingBlocks, 1, FeeConfig(1, 1, 1, 1, 1), 2)
    {}

    /// @notice Owner: take `amount` from `node`'s stake through the internal hook.
    function slash(address node, uint256 amount) external onlyOwner {
        _slash(node, amount);
    }
}
