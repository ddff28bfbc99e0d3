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
        handler = new CoordinatorHandler(coordinator, model, zkModel, node, verifier);
        // ... and owns the Coordinator, to change fees and pause nodes.
        coordinator.transferOwnership(address(handler));
        vm.prank(address(handler));
        coordinator.acceptOwnership();
        vm.deal(address(handler), 1_000 ether);
        initialBalance = address(coordinator).balance;
        targetContract(address(handler));
    }

    /// @dev Coordinator balance = every credited balance (nodes, challengers, the consumer) +
    /// active stakes + unbonding stakes + the fees of the requests still pending + the fee, node
    /// bond and challenger bond of every optimistic answer still open.
    function invariant_BalanceCoversEveryClaim() public view {
        address[4] memory accounts = handler.accounts();
        uint256 owed = coordinator.nodeBalance(address(handler.consumer()));
        for (uint256 i = 0; i < accounts.length; ++i) {
            (uint256 stake,,) = coordinator.getNode(accounts[i]);
            (uint256 unbonding,) = coordinator.getUnbonding(accounts[i]);
            owed += coordinator.nodeBalance(accounts[i]) + stake + unbonding;
        }
        for (uint256 i = 0; i < handler.pendingCount(); ++i) {
            owed += handler.pending(i).fee;
        }
        for (uint256 i = 0; i < handler.openCount(); ++i) {
            CoordinatorHandler.OpenClaim memory o = handler.open(i);
            owed += o.req.fee + o.claim.bond + o.claim.challengerBond;
        }
        assertEq(address(coordinator).balance, owed);
    }

    /// @dev Every open optimistic answer has its claim commitment and no request commitment.
    function invariant_OpenClaimsHaveAClaimCommitmentOnly() public view {
        for (uint256 i = 0; i < handler.openCount(); ++i) {
            CoordinatorHandler.OpenClaim memory o = handler.open(i);
            assertEq(coordinator.claimCommitment(o.req.requestId), keccak256(abi.encode(o.req, o.claim)));
            assertEq(coordinator.requestCommitment(o.req.requestId), bytes32(0));
        }
    }

    /// @dev Each node's count of open answers is the handler's.
    function invariant_OpenClaimsCountPerNode() public view {
        address[4] memory accounts = handler.accounts();
        for (uint256 i = 0; i < accounts.length; ++i) {
            assertEq(coordinator.openClaims(accounts[i]), handler.ghostOpenClaims(accounts[i]));
        }
    }

    /// @dev Burned wei are exactly what the handler saw slashed and not given to challengers.
    function invariant_BurnedWeiAreCounted() public view {
        assertEq(coordinator.burnedWei(), handler.ghostBurned());
    }

    /// @dev No wei appear or vanish: balance = initial + what went in - what came out (burned wei
    /// counted as out).
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

    /// @dev Every answer `fulfillBatch` reported as delivered is no longer pending; every one it
    /// reported as rejected still is, under its commitment.
    function invariant_FulfillBatchMaskMatchesTheCommitments() public view {
        assertEq(handler.ghostBatchMismatches(), 0);
    }

    /// @dev Ids are handed out in order: the next id is one more than the requests made.
    function invariant_RequestIdsAreSequential() public view {
        assertEq(coordinator.nextRequestId(), 1 + handler.calls("request") + handler.calls("requestOptimistic"));
    }
}
