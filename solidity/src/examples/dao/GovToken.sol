// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title GovToken
/// @notice The voting token of the example DAO: ERC-20 with permit and checkpointed votes
/// (block-number clock). The owner mints; holders must delegate (to themselves) to vote.
contract GovToken is ERC20, ERC20Permit, ERC20Votes, Ownable {
    /// @param owner_ The account allowed to mint.
    constructor(address owner_) ERC20("Screened DAO", "SDAO") ERC20Permit("Screened DAO") Ownable(owner_) {}

    /// @notice Mint `amount` tokens to `to`. Only the owner.
    /// @param to The recipient.
    /// @param amount The amount, in the token's smallest unit.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice The current permit nonce of `owner_` (shared by ERC20Permit and the votes' delegateBySig).
    /// @param owner_ The account.
    function nonces(address owner_) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner_);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }
}
