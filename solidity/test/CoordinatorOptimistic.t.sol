// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Coordinator} from "../src/Coordinator.sol";
import {ICoordinator} from "../src/interfaces/ICoordinator.sol";
import {ExampleConsumer} from "../src/examples/ExampleConsumer.sol";
import {RevertingConsumer} from "../src/test/RevertingConsumer.sol";
import {CoordinatorFixture} from "./utils/CoordinatorFixture.sol";

/// @notice Optimistic mode (docs/design.md, "Optimistic mode"): post with a bond, challenge up to
/// and including the challenge deadline, prove up to and including the proof deadline, finalise
/// after the deadline; an unproven challenge slashes the node and re-opens the request in Zk.
contract CoordinatorOptimisticTest is CoordinatorFixture {
    address internal challenger = makeAddr("challenger");
    address internal node2 = makeAddr("node2");

    function setUp() public override {
        super.setUp();
        vm.deal(challenger, 100 ether);
        vm.deal(node2, 100 ether);
    }

    // ------------------------------------------------------------ helpers
    function askOptimistic() internal returns (ICoordinator.Request memory) {
        return request(zkModel, pair(1, 2), MODE_OPTIMISTIC);
    }

    /// @dev `node` posts `output` with the configured bond; returns the claim as the event shows it.
    function post(ICoordinator.Request memory req, int256[] memory output)
        internal
        returns (ICoordinator.Claim memory claim)
    {
        vm.prank(node);
        coordinator.postOptimistic{value: NODE_BOND}(req, output);
        claim = ICoordinator.Claim({
            output: output,
            node: node,
            bond: NODE_BOND,
            challengeDeadline: uint64(block.number) + CHALLENGE_WINDOW_BLOCKS,
            proofDeadline: uint64(block.number) + CHALLENGE_WINDOW_BLOCKS + PROOF_WINDOW_BLOCKS,
            challenger: address(0),
            challengerBond: 0
        });
        assertEq(coordinator.claimCommitment(req.requestId), keccak256(abi.encode(req, claim)));
    }

    function challengeBy(address who, ICoordinator.Request memory req, ICoordinator.Claim memory claim)
        internal
        returns (ICoordinator.Claim memory disputed)
    {
        vm.prank(who);
        coordinator.challenge{value: CHALLENGER_BOND}(req, claim);
        disputed = ICoordinator.Claim(
            claim.output, claim.node, claim.bond, claim.challengeDeadline, claim.proofDeadline, who, CHALLENGER_BOND
        );
    }

    function delivered(uint256 id) internal view returns (bool done, int256[] memory output) {
        (done, output,) = consumer.getResult(id);
    }

    function reopenedZk(ICoordinator.Request memory req) internal view returns (ICoordinator.Request memory r) {
        r = req;
        r.mode = MODE_ZK;
        r.requestedAtBlock = uint64(block.number);
    }

    // ------------------------------------------------------------ posting
    function test_PostMovesTheRequestToAClaimAndTellsTheConsumerNothing() public {
        ICoordinator.Request memory req = askOptimistic();
        vm.expectEmit(address(coordinator));
        emit Coordinator.OptimisticAnswerPosted(
            req.requestId,
            node,
            one(3),
            NODE_BOND,
            uint64(block.number) + CHALLENGE_WINDOW_BLOCKS,
            uint64(block.number) + CHALLENGE_WINDOW_BLOCKS + PROOF_WINDOW_BLOCKS
        );
        ICoordinator.Claim memory claim = post(req, one(3));
        assertEq(coordinator.requestCommitment(req.requestId), bytes32(0));
        assertEq(coordinator.openClaims(node), 1);
        (bool done,) = delivered(req.requestId);
        assertFalse(done);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotChallenged.selector, req.requestId));
        coordinator.proveOptimistic(req, claim, hex"01");
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.RequestNotPending.selector, req.requestId));
        coordinator.postOptimistic{value: NODE_BOND}(req, one(3));
    }

    function test_PostRefusesWrongModeLowBondAndPlainFulfil() public {
        ICoordinator.Request memory req = askOptimistic();
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InsufficientBond.selector, NODE_BOND, NODE_BOND - 1));
        coordinator.postOptimistic{value: NODE_BOND - 1}(req, one(3));
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.OptimisticAnswerNeedsBond.selector, req.requestId));
        coordinator.fulfill(req, one(3), "", "");
        ICoordinator.Request memory zk = request(zkModel, pair(1, 2), MODE_ZK);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotOptimisticRequest.selector, zk.requestId, MODE_ZK));
        coordinator.postOptimistic{value: NODE_BOND}(zk, one(3));
    }

    // ------------------------------------------------------------ window edges
    function test_FinalizeRefusedInTheLastChallengeBlockThenDelivers() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = post(req, one(3));
        vm.roll(claim.challengeDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(Coordinator.ChallengeWindowOpen.selector, req.requestId, claim.challengeDeadline)
        );
        coordinator.finalize(req, claim);
        vm.roll(claim.challengeDeadline + 1);
        vm.expectEmit(address(coordinator));
        emit Coordinator.InferenceFulfilled(req.requestId, node, true, one(3), "");
        coordinator.finalize(req, claim);
        (bool done, int256[] memory output) = delivered(req.requestId);
        assertTrue(done);
        assertEq(output, one(3));
        assertEq(coordinator.nodeBalance(node), uint256(NODE_BOND) + req.fee);
        assertEq(coordinator.openClaims(node), 0);
        assertEq(coordinator.claimCommitment(req.requestId), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NoClaim.selector, req.requestId));
        coordinator.finalize(req, claim);
    }

    function test_ChallengeInTheLastBlockIsAcceptedOneLaterIsNot() public {
        ICoordinator.Request memory a = askOptimistic();
        ICoordinator.Request memory b = askOptimistic();
        ICoordinator.Claim memory ca = post(a, one(3));
        ICoordinator.Claim memory cb = post(b, one(4));
        vm.roll(ca.challengeDeadline);
        challengeBy(challenger, a, ca);
        vm.roll(cb.challengeDeadline + 1);
        vm.prank(challenger);
        vm.expectRevert(
            abi.encodeWithSelector(Coordinator.ChallengeWindowClosed.selector, b.requestId, cb.challengeDeadline)
        );
        coordinator.challenge{value: CHALLENGER_BOND}(b, cb);
    }

    function test_ChallengeRefusesLowBondSecondChallengeAndStaleClaim() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = post(req, one(3));
        vm.prank(challenger);
        vm.expectRevert(
            abi.encodeWithSelector(Coordinator.InsufficientBond.selector, CHALLENGER_BOND, CHALLENGER_BOND - 1)
        );
        coordinator.challenge{value: CHALLENGER_BOND - 1}(req, claim);
        ICoordinator.Claim memory disputed = challengeBy(challenger, req, claim);
        // The undisputed claim no longer matches; the disputed one cannot be challenged again.
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.ClaimMismatch.selector, req.requestId));
        coordinator.challenge{value: CHALLENGER_BOND}(req, claim);
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.AlreadyChallenged.selector, req.requestId, challenger));
        coordinator.challenge{value: CHALLENGER_BOND}(req, disputed);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.ClaimMismatch.selector, req.requestId));
        coordinator.proveOptimistic(req, claim, hex"01");
    }

    // ------------------------------------------------------------ proofs
    function test_FrivolousChallengeLosesItsBondAndTheAnswerIsDelivered() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = challengeBy(challenger, req, post(req, one(3)));
        vm.roll(claim.proofDeadline); // the last block a proof is accepted in
        vm.expectEmit(address(coordinator));
        emit Coordinator.ChallengeDefeated(req.requestId, node, challenger, CHALLENGER_BOND);
        coordinator.proveOptimistic(req, claim, hex"01");
        (bool done, int256[] memory output) = delivered(req.requestId);
        assertTrue(done);
        assertEq(output, one(3));
        assertEq(coordinator.nodeBalance(node), uint256(NODE_BOND) + CHALLENGER_BOND + req.fee);
        assertEq(coordinator.nodeBalance(challenger), 0);
        assertEq(coordinator.openClaims(node), 0);
        assertEq(coordinator.burnedWei(), 0);
    }

    function test_InvalidProofChangesNothingAndLateProofIsRefused() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = challengeBy(challenger, req, post(req, one(3)));
        bytes32 stored = coordinator.claimCommitment(req.requestId);
        verifier.setAnswer(false);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidProof.selector, req.requestId));
        coordinator.proveOptimistic(req, claim, hex"01");
        assertEq(coordinator.claimCommitment(req.requestId), stored);
        verifier.setAnswer(true);
        vm.roll(claim.proofDeadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(Coordinator.ProofWindowClosed.selector, req.requestId, claim.proofDeadline)
        );
        coordinator.proveOptimistic(req, claim, hex"01");
    }

    // ------------------------------------------------------------ slashing
    function test_UnprovenChallengeIsSlashedReopenedInZkAndAnsweredByAnotherNode() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = challengeBy(challenger, req, post(req, one(666)));
        registerNode(node2);
        serve(node2, zkModel);
        vm.roll(claim.proofDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(Coordinator.ProofWindowOpen.selector, req.requestId, claim.proofDeadline)
        );
        coordinator.finalize(req, claim);
        vm.roll(claim.proofDeadline + 1);
        uint256 slashed = uint256(NODE_BOND) + STAKE_SLASH;
        uint256 toChallenger = slashed * CHALLENGER_SHARE_BPS / 10_000;
        uint256 balanceBefore = address(coordinator).balance;
        vm.expectEmit(address(coordinator));
        emit Coordinator.OptimisticAnswerSlashed(
            req.requestId, node, challenger, slashed, toChallenger, slashed - toChallenger
        );
        coordinator.finalize(req, claim);

        (bool done,) = delivered(req.requestId);
        assertFalse(done); // the wrong output never reached the consumer
        assertEq(coordinator.nodeBalance(challenger), uint256(CHALLENGER_BOND) + toChallenger);
        assertEq(coordinator.burnedWei(), slashed - toChallenger);
        assertEq(address(coordinator).balance, balanceBefore - (slashed - toChallenger));
        (uint256 stake,,) = coordinator.getNode(node);
        assertEq(stake, MIN_STAKE - STAKE_SLASH);
        assertFalse(coordinator.isActiveNode(node)); // slashed below minStake
        assertEq(coordinator.openClaims(node), 0);
        assertEq(coordinator.claimCommitment(req.requestId), bytes32(0));

        ICoordinator.Request memory zk = reopenedZk(req);
        assertEq(coordinator.requestCommitment(req.requestId), keccak256(abi.encode(zk)));
        assertEq(coordinator.assignedNode(req.requestId), node2);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.NotActiveNode.selector, node));
        coordinator.fulfill(zk, one(3), "", hex"01");
        vm.prank(node2);
        coordinator.fulfill(zk, one(3), "", hex"01");
        (bool doneNow, int256[] memory output) = delivered(req.requestId);
        assertTrue(doneNow);
        assertEq(output, one(3));
        assertEq(coordinator.nodeBalance(node2), req.fee);
    }

    function test_NodeChallengingItsOwnWrongAnswerStillLoses() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = challengeBy(node, req, post(req, one(666)));
        uint256 nodeWeiBefore = node.balance + coordinator.nodeBalance(node);
        (uint256 stakeBefore,,) = coordinator.getNode(node);
        vm.roll(claim.proofDeadline + 1);
        coordinator.finalize(req, claim);
        (uint256 stakeAfter,,) = coordinator.getNode(node);
        uint256 nodeWeiAfter = node.balance + coordinator.nodeBalance(node);
        // What the node owns (wallet, balance, stake) fell by the burned part, which is > 0.
        assertLt(nodeWeiAfter + stakeAfter, nodeWeiBefore + stakeBefore + NODE_BOND + CHALLENGER_BOND);
        assertEq(
            nodeWeiBefore + stakeBefore + NODE_BOND + CHALLENGER_BOND - (nodeWeiAfter + stakeAfter),
            coordinator.burnedWei()
        );
        assertGt(coordinator.burnedWei(), 0);
    }

    function test_ReopenedRequestWithNoOtherServerIsOpenToAnyServerAtOnce() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = challengeBy(challenger, req, post(req, one(666)));
        vm.roll(claim.proofDeadline + 1);
        coordinator.finalize(req, claim);
        assertEq(coordinator.assignedNode(req.requestId), address(0));
        registerNode(node2);
        serve(node2, zkModel);
        vm.prank(node2);
        coordinator.fulfill(reopenedZk(req), one(3), "", hex"01");
        (bool done,) = delivered(req.requestId);
        assertTrue(done);
    }

    function test_ARevertingConsumerNeverBlocksFinalisation() public {
        RevertingConsumer bad = new RevertingConsumer(address(coordinator));
        ICoordinator.Request memory req = requestFrom(address(bad), zkModel, pair(1, 2), MODE_OPTIMISTIC, CALLBACK_GAS);
        ICoordinator.Claim memory claim = post(req, one(3));
        vm.roll(claim.challengeDeadline + 1);
        vm.expectEmit(address(coordinator));
        emit Coordinator.InferenceFulfilled(req.requestId, node, false, one(3), "");
        coordinator.finalize(req, claim);
        assertEq(coordinator.nodeBalance(node), uint256(NODE_BOND) + req.fee);
        assertEq(coordinator.claimCommitment(req.requestId), bytes32(0));
    }

    // ------------------------------------------------------------ stake
    function test_UnbondingStakeIsHeldWhileAClaimIsOpen() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = post(req, one(3));
        vm.prank(node);
        coordinator.deregisterNode();
        (, uint64 releaseBlock) = coordinator.getUnbonding(node);
        vm.roll(releaseBlock);
        vm.prank(node);
        vm.expectRevert(abi.encodeWithSelector(Coordinator.OpenClaimsPending.selector, node, uint32(1)));
        coordinator.withdrawStake();
        coordinator.finalize(req, claim); // the deregistered node still gets bond and fee
        assertEq(coordinator.nodeBalance(node), uint256(NODE_BOND) + req.fee);
        uint256 before = node.balance;
        vm.prank(node);
        coordinator.withdrawStake();
        assertEq(node.balance, before + MIN_STAKE);
    }

    function test_UnbondingStakeIsSlashable() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = challengeBy(challenger, req, post(req, one(666)));
        vm.prank(node);
        coordinator.deregisterNode();
        vm.roll(claim.proofDeadline + 1);
        coordinator.finalize(req, claim);
        (uint256 unbonding,) = coordinator.getUnbonding(node);
        assertEq(unbonding, MIN_STAKE - STAKE_SLASH);
    }

    // ------------------------------------------------------------ batches
    function test_FinalizeManyResolvesWhatIsDueAndSkipsTheRest() public {
        ICoordinator.Request[] memory reqs = new ICoordinator.Request[](4);
        ICoordinator.Claim[] memory claims = new ICoordinator.Claim[](4);
        reqs[0] = askOptimistic();
        claims[0] = post(reqs[0], one(1)); // due: unchallenged, window over
        reqs[1] = askOptimistic();
        claims[1] = challengeBy(challenger, reqs[1], post(reqs[1], one(2))); // proof window still open
        reqs[2] = askOptimistic();
        claims[2] = post(reqs[2], one(3));
        claims[2].output = one(4); // mismatched
        reqs[3] = askOptimistic();
        claims[3] = post(reqs[3], one(5));
        vm.roll(claims[3].challengeDeadline + 1);
        coordinator.finalize(reqs[3], claims[3]); // already resolved
        assertEq(coordinator.finalizeMany(reqs, claims), 1);
        (bool d0,) = delivered(reqs[0].requestId);
        (bool d1,) = delivered(reqs[1].requestId);
        (bool d2,) = delivered(reqs[2].requestId);
        assertTrue(d0);
        assertFalse(d1);
        assertFalse(d2);
        assertEq(coordinator.openClaims(node), 2);

        vm.expectRevert(abi.encodeWithSelector(Coordinator.BatchLengthMismatch.selector, 4, 3));
        coordinator.finalizeMany(reqs, new ICoordinator.Claim[](3));
        vm.expectRevert(abi.encodeWithSelector(Coordinator.BatchTooLarge.selector, 65, 64));
        coordinator.finalizeMany(new ICoordinator.Request[](65), new ICoordinator.Claim[](65));
    }

    // ------------------------------------------------------------ config
    function test_OptimisticConfigIsCheckedAndOnlyTheOwnerSetsIt() public {
        Coordinator.OptimisticConfig memory c = optimisticConfig();
        c.challengerShareBps = 5_001;
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidOptimisticConfig.selector, uint8(5)));
        coordinator.setOptimisticConfig(c);
        c = optimisticConfig();
        c.challengeWindowBlocks = UNBONDING_BLOCKS;
        vm.expectRevert(abi.encodeWithSelector(Coordinator.InvalidOptimisticConfig.selector, uint8(2)));
        coordinator.setOptimisticConfig(c);
        vm.prank(user);
        vm.expectRevert();
        coordinator.setOptimisticConfig(optimisticConfig());
    }

    function test_APostedAnswerKeepsItsTermsWhenTheConfigChanges() public {
        ICoordinator.Request memory req = askOptimistic();
        ICoordinator.Claim memory claim = challengeBy(challenger, req, post(req, one(666)));
        Coordinator.OptimisticConfig memory c = optimisticConfig();
        c.challengeWindowBlocks = 50;
        c.proofWindowBlocks = 50;
        coordinator.setOptimisticConfig(c);
        vm.roll(claim.proofDeadline + 1);
        coordinator.finalize(req, claim); // the deadlines of the posted claim still hold
        assertEq(coordinator.claimCommitment(req.requestId), bytes32(0));
    }

    // ------------------------------------------------------------ fuzz
    /// @dev For any bonds, slash, share and stake: what is slashed is the node's bond plus what
    /// of `stakeSlash` its stake (active, then unbonding) covers; the challenger's share and the
    /// burned part add up to it; exactly the burned part leaves the contract.
    function testFuzz_SlashAddsUp(
        uint96 nodeBond,
        uint96 challengerBond,
        uint96 stakeSlash,
        uint16 shareBps,
        uint96 extraStake,
        bool deregistered
    ) public {
        Coordinator.OptimisticConfig memory c = optimisticConfig();
        c.nodeBond = uint96(bound(nodeBond, 1_500_000 * uint256(PROOF_GAS_PRICE), 10 ether));
        c.challengerBond = uint96(bound(challengerBond, 1, 10 ether));
        c.stakeSlash = uint96(bound(stakeSlash, 0, 20 ether));
        c.challengerShareBps = uint16(bound(shareBps, 0, 5_000));
        coordinator.setOptimisticConfig(c);
        uint256 extra = bound(extraStake, 0, 10 ether);
        address n = makeAddr("fuzz node");
        vm.deal(n, 100 ether);
        vm.prank(n);
        coordinator.registerNode{value: MIN_STAKE + extra}();
        serve(n, zkModel);
        vm.prank(node);
        coordinator.stopServingModel(zkModel);

        ICoordinator.Request memory req = askOptimistic();
        vm.prank(n);
        coordinator.postOptimistic{value: c.nodeBond}(req, one(666));
        ICoordinator.Claim memory claim = ICoordinator.Claim(
            one(666),
            n,
            c.nodeBond,
            uint64(block.number) + c.challengeWindowBlocks,
            uint64(block.number) + c.challengeWindowBlocks + c.proofWindowBlocks,
            address(0),
            0
        );
        vm.prank(challenger);
        coordinator.challenge{value: c.challengerBond}(req, claim);
        claim.challenger = challenger;
        claim.challengerBond = c.challengerBond;
        if (deregistered) {
            vm.prank(n);
            coordinator.deregisterNode();
        }
        vm.roll(claim.proofDeadline + 1);
        uint256 balanceBefore = address(coordinator).balance;
        uint256 zeroBefore = address(0).balance;
        coordinator.finalize(req, claim);

        uint256 fromStake = c.stakeSlash < MIN_STAKE + extra ? c.stakeSlash : MIN_STAKE + extra;
        uint256 slashed = uint256(c.nodeBond) + fromStake;
        uint256 toChallenger = slashed * c.challengerShareBps / 10_000;
        uint256 burned = slashed - toChallenger;
        assertEq(coordinator.burnedWei(), burned);
        assertEq(address(0).balance - zeroBefore, burned);
        assertEq(balanceBefore - address(coordinator).balance, burned);
        assertEq(coordinator.nodeBalance(challenger), uint256(c.challengerBond) + toChallenger);
        (uint256 stake,,) = coordinator.getNode(n);
        (uint256 unbonding,) = coordinator.getUnbonding(n);
        assertEq(stake + unbonding, MIN_STAKE + extra - fromStake);
        assertGe(burned, toChallenger); // the share is at most half: self-challenge never pays
        assertEq(coordinator.openClaims(n), 0);
    }

    /// @dev Whatever blocks a challenge and a finalisation are tried at: the answer is never both
    /// delivered unchallenged and challenged; it is delivered iff unchallenged and finalised after
    /// the challenge window, slashed iff challenged and finalised after the proof window.
    function testFuzz_ChallengeAndFinalizeOffsets(uint8 challengeAt, uint8 finalizeAt) public {
        uint256 ca = bound(challengeAt, 0, 40);
        uint256 fa = bound(finalizeAt, 0, 40);
        ICoordinator.Request memory req = askOptimistic();
        // Not `block.number`: via IR it may be read after the rolls below.
        uint256 posted = vm.getBlockNumber();
        ICoordinator.Claim memory claim = post(req, one(3));
        bool challenged;
        bool finalized;
        for (uint256 step = 0; step < 2; ++step) {
            bool doChallenge = (step == 0) == (ca <= fa);
            vm.roll(posted + (doChallenge ? ca : fa));
            if (doChallenge) {
                vm.prank(challenger);
                try coordinator.challenge{value: CHALLENGER_BOND}(req, claim) {
                    challenged = true;
                    claim.challenger = challenger;
                    claim.challengerBond = CHALLENGER_BOND;
                } catch {}
            } else {
                try coordinator.finalize(req, claim) {
                    finalized = true;
                } catch {}
            }
        }
        (bool done,) = delivered(req.requestId);
        assertEq(challenged, ca <= CHALLENGE_WINDOW_BLOCKS && !(finalized && fa < ca));
        assertFalse(done && challenged);
        assertEq(done, finalized && !challenged);
        if (finalized && challenged) {
            assertGt(fa, CHALLENGE_WINDOW_BLOCKS + PROOF_WINDOW_BLOCKS);
            assertGt(coordinator.burnedWei(), 0);
        }
        if (finalized && !challenged) assertGt(fa, CHALLENGE_WINDOW_BLOCKS);
        assertEq(coordinator.claimCommitment(req.requestId) == bytes32(0), finalized);
    }
}
