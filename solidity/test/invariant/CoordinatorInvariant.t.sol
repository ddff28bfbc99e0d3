// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ICoordinator} from "../../src/interfaces/ICoordinator.sol";
import {CoordinatorFixture} from "../utils/CoordinatorFixture.sol";
import {CoordinatorHandler} from "./CoordinatorHandler.sol";

/// @notice Whatever sequence of requests, answers, cancellations, registrations and withdrawals
/// happens, the Coordinator's wei add up: fees, refunds, stakes and unbonding stakes.
contract CoordinatorInvariantTest is CoordinatorFixture {
    CoordinatorHandler internal handler;
    uint256 internal initialBalance;

    function setUp() public override {
        super.setUp();
        // The handler asks through a consumer it deploys: it is the requester who may cancel and
        // the owner who withdraws refunds.
        handler = new CoordinatorHandler(coordinator, model, zkModel, node);
        // ... and owns the Coordinator, to change fees and pause nodes.
        coordinator.transferOwnership(address(handler));
        vm.prank(address(handler));
        coordinator.acceptOwnership();
        vm.deal(address(handler), 1_000 ether);
        initialBalance = address(coordinator).balance;
        targetContract(address(handler));
    }

    /// @dev Coordinator balance = every credited balance + active stakes + unbonding stakes + the
    /// fees of the requests still pending.
    function invariant_BalanceCoversEveryClaim() public view {
        address[3] memory nodes = handler.nodes();
        uint256 owed = coordinator.nodeBalance(address(handler.consumer()));
        for (uint256 i = 0; i < nodes.length; ++i) {
            (uint256 stake,,) = coordinator.getNode(nodes[i]);
            (uint256 unbonding,) = coordinator.getUnbonding(nodes[i]);
            owed += coordinator.nodeBalance(nodes[i]) + stake + unbonding;
        }
        for (uint256 i = 0; i < handler.pendingCount(); ++i) {
            owed += handler.pending(i).fee;
        }
        assertEq(address(coordinator).balance, owed);
    }

    /// @dev No wei appear or vanish: balance = initial + what went in - what came out.
    function invariant_WeiInMinusWeiOut() public view {
        assertEq(address(coordinator).balance, initialBalance + handler.ghostIn() - handler.ghostOut());
    }

    /// @dev Every request the handler holds as pending is pending at the Coordinator, unchanged.
    function invariant_PendingRequestsKeepTheirCommitment() public view {
        for (uint256 i = 0; i < handler.pendingCount(); ++i) {
            ICoordinator.Request memory req = handler.pending(i);
            assertEq(coordinator.requestCommitment(req.requestId), keccak256(abi.encode(req)));
        }
    }

    /// @dev Ids are handed out in order: the next id is one more than the requests made.
    function invariant_RequestIdsAreSequential() public view {
        assertEq(coordinator.nextRequestId(), 1 + handler.calls("request"));
    }
}
