// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

import {Coordinator} from "../../src/Coordinator.sol";
import {ICoordinator} from "../../src/interfaces/ICoordinator.sol";
import {ExampleConsumer} from "../../src/examples/ExampleConsumer.sol";
import {MockVerifier} from "../../src/test/MockVerifier.sol";

/// @notice Drives a Coordinator with random, bounded actions (requests, answers, error answers,
/// batches of answers, cancellations, node registrations, deregistrations, stake and fee withdrawals, time, and the
/// optimistic game: honest or wrong posts by the assigned node, challenges by anyone, the node
/// included, proofs, finalisations one by one or in batches) and keeps ghost records of every wei
/// that went in or out, of the requests still pending and of the optimistic answers still open.
/// An action the Coordinator refuses reverts whole, ghost records included.
contract CoordinatorHandler {
    /// @notice `finalizeMany` resolved another number of answers than the handler saw resolved.
    error FinalizeManyCountMismatch(uint256 seen, uint256 returned);

    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant NODES = 3;
    /// @dev Nodes plus one outsider: who may challenge (and so be credited).
    uint256 internal constant ACCOUNTS = NODES + 1;

    /// @notice An open optimistic answer as the handler knows it.
    struct OpenClaim {
        ICoordinator.Request req;
        ICoordinator.Claim claim;
        bool honest;
    }

    Coordinator public immutable coordinator;
    ExampleConsumer public immutable consumer;
    bytes32 public immutable model;
    bytes32 public immutable zkModel;
    MockVerifier public immutable verifier;
    address[NODES] internal s_nodes;
    address internal constant OUTSIDER = address(0xC4A1);

    ICoordinator.Request[] internal s_pending;
    OpenClaim[] internal s_open;
    mapping(address node => uint256) public ghostOpenClaims;
    /// @notice Wei the Coordinator burned (sent to the zero address), part of `ghostOut`.
    uint256 public ghostBurned;
    /// @notice Wei sent to the Coordinator: stakes and request payments.
    uint256 public ghostIn;
    /// @notice Wei the Coordinator paid out: stake and fee withdrawals, cancellation refunds.
    uint256 public ghostOut;
    mapping(bytes32 action => uint256) public calls;
    /// @notice `fulfillBatch` mask bits that disagreed with the commitments afterwards.
    uint256 public ghostBatchMismatches;

    constructor(Coordinator coordinator_, bytes32 model_, bytes32 zkModel_, address node0, MockVerifier verifier_) {
        coordinator = coordinator_;
        verifier = verifier_;
        vm.deal(OUTSIDER, 1_000 ether);
        consumer = new ExampleConsumer(address(coordinator_));
        model = model_;
        zkModel = zkModel_;
        s_nodes = [node0, address(0xA11CE), address(0xB0B)];
        for (uint256 i = 0; i < NODES; ++i) {
            vm.deal(s_nodes[i], 1_000 ether);
        }
    }

    receive() external payable {}

    // ------------------------------------------------------------ actions
    function registerNode(uint256 who, uint256 extra) external {
        address n = s_nodes[who % NODES];
        uint256 stake = coordinator.minStake() + (extra % 10 ether);
        vm.prank(n);
        coordinator.registerNode{value: stake}();
        ghostIn += stake;
        _serve(n, model);
        _serve(n, zkModel);
        calls["registerNode"]++;
    }

    function deregisterNode(uint256 who) external {
        vm.prank(s_nodes[who % NODES]);
        coordinator.deregisterNode();
        calls["deregisterNode"]++;
    }

    function withdrawStake(uint256 who) external {
        address n = s_nodes[who % NODES];
        (uint256 amount, uint64 releaseBlock) = coordinator.getUnbonding(n);
        if (block.number < releaseBlock) vm.roll(releaseBlock);
        vm.prank(n);
        coordinator.withdrawStake();
        ghostOut += amount;
        calls["withdrawStake"]++;
    }

    function withdrawFees(uint256 who) external {
        address n = _account(who);
        uint256 amount = coordinator.nodeBalance(n);
        vm.prank(n);
        coordinator.withdrawFees(payable(n));
        ghostOut += amount;
        calls["withdrawFees"]++;
    }

    function withdrawRefunds() external {
        uint256 amount = coordinator.nodeBalance(address(consumer));
        consumer.withdrawRefunds(payable(address(this))); // this handler deployed the consumer
        ghostOut += amount;
        calls["withdrawRefunds"]++;
    }

    function request(bool zk, uint32 gas, uint256 overpay, int256 a, int256 b) external {
        bytes32 m = zk ? zkModel : model;
        uint8 mode = zk ? 1 : 0;
        gas = uint32(gas % 1_000_000);
        overpay %= 1 ether;
        uint256 fee = coordinator.quoteFee(m, mode, gas);
        int256[] memory input = new int256[](2);
        (input[0], input[1]) = (a % 1e18, b % 1e18);
        uint256 id = consumer.requestPrediction{value: fee + overpay}(m, input, mode, gas);
        ghostIn += fee + overpay;
        s_pending.push(ICoordinator.Request(id, m, address(consumer), mode, gas, uint64(block.number), fee, input));
        calls["request"]++;
    }

    function fulfill(uint256 index, bool asError, int256 y) external {
        if (s_pending.length == 0) return;
        index %= s_pending.length;
        ICoordinator.Request memory req = s_pending[index];
        address answerer = _answerer(req);
        int256[] memory output = new int256[](asError ? 0 : 1);
        if (!asError) output[0] = y % 1e18;
        vm.prank(answerer);
        coordinator.fulfill{gas: 5_000_000}(req, output, asError ? bytes("failed") : bytes(""), hex"01");
        _remove(index);
        calls[asError ? bytes32("fulfillError") : bytes32("fulfill")]++;
    }

    /// @dev Up to 6 pending requests answered in one `fulfillBatch` by the first one's answerer,
    /// each with an output or an error (`errors` bit i), the first one possibly twice. A cleared
    /// mask bit must mean the request is no longer pending, a set one that it is pending unchanged
    /// (or, for the repeat, already answered); any other outcome is counted in `ghostBatchMismatches`.
    function fulfillBatch(uint256 start, uint256 count, uint8 errors, bool repeatFirst, int256 y) external {
        if (s_pending.length == 0) return;
        count = 1 + count % 6;
        if (count > s_pending.length) count = s_pending.length;
        start %= s_pending.length;
        uint256 n = count + (repeatFirst ? 1 : 0);
        ICoordinator.Answer[] memory answers = new ICoordinator.Answer[](n);
        for (uint256 i = 0; i < n; ++i) {
            ICoordinator.Request memory req = s_pending[(start + (i < count ? i : 0)) % s_pending.length];
            bool asError = (errors >> i) & 1 == 1;
            int256[] memory output = new int256[](asError ? 0 : 1);
            if (!asError) output[0] = y % 1e18;
            answers[i] = ICoordinator.Answer(req, output, asError ? bytes("failed") : bytes(""), hex"01");
        }
        address answerer = _answerer(answers[0].req);
        vm.prank(answerer);
        uint256 mask = coordinator.fulfillBatch{gas: 25_000_000}(answers);
        for (uint256 i = 0; i < n; ++i) {
            ICoordinator.Request memory req = answers[i].req;
            bytes32 stored = coordinator.requestCommitment(req.requestId);
            bool rejected = mask & (1 << i) != 0;
            if (i >= count) {
                // The repeat: rejected unless the first answer was rejected and this one landed.
                if (!rejected && (mask & 1 == 0 || stored != bytes32(0))) ghostBatchMismatches++;
                if (rejected && mask & 1 != 0 && stored == bytes32(0)) ghostBatchMismatches++;
            } else if (rejected ? stored != keccak256(abi.encode(req)) && (i != 0 || !repeatFirst) : stored != 0) {
                ghostBatchMismatches++;
            }
        }
        for (uint256 i = 0; i < count; ++i) {
            uint256 id = answers[i].req.requestId;
            if (coordinator.requestCommitment(id) != bytes32(0)) continue;
            for (uint256 j = 0; j < s_pending.length; ++j) {
                if (s_pending[j].requestId == id) {
                    _remove(j);
                    break;
                }
            }
        }
        calls["fulfillBatch"]++;
    }

    function cancel(uint256 index) external {
        if (s_pending.length == 0) return;
        index %= s_pending.length;
        ICoordinator.Request memory req = s_pending[index];
        uint256 deadline = uint256(req.requestedAtBlock) + coordinator.requestTimeoutBlocks();
        if (block.number <= deadline) vm.roll(deadline + 1);
        consumer.cancel(req);
        ghostOut += req.fee;
        _remove(index);
        calls["cancel"]++;
    }

    /// @dev Owner: schedule new fees (under the caps); they come into force later, so pending
    /// requests are answered under the fees of their own block.
    function setFees(uint96 baseFee, uint96 zkPremium, uint48 minGasPrice, uint16 bps) external {
        (Coordinator.FeeConfig memory caps,) = coordinator.feeLimits();
        coordinator.setFeeConfig(
            Coordinator.FeeConfig(
                uint64(baseFee % (uint256(caps.baseFee) + 1)),
                uint64(zkPremium % (uint256(caps.zkPremium) + 1)),
                uint64((zkPremium / 5) % (uint256(caps.optimisticPremium) + 1)),
                uint48(minGasPrice % (uint256(caps.minGasPrice) + 1)),
                uint16(bps % (uint256(caps.gasPriceMultiplierBps) + 1))
            )
        );
        calls["setFees"]++;
    }

    /// @dev Owner: pause (ban) or resume a node.
    function setPaused(uint256 who, bool paused) external {
        coordinator.setNodePaused(s_nodes[who % NODES], paused);
        calls["setPaused"]++;
    }

    function roll(uint256 blocks) external {
        vm.roll(block.number + blocks % 50);
        calls["roll"]++;
    }

    // ------------------------------------------------------------ optimistic mode
    function requestOptimistic(uint32 gas, uint256 overpay, int256 a, int256 b) external {
        gas = uint32(gas % 1_000_000);
        overpay %= 1 ether;
        uint256 fee = coordinator.quoteFee(zkModel, 2, gas);
        int256[] memory input = new int256[](2);
        (input[0], input[1]) = (a % 1e18, b % 1e18);
        uint256 id = consumer.requestPrediction{value: fee + overpay}(zkModel, input, 2, gas);
        ghostIn += fee + overpay;
        s_pending.push(ICoordinator.Request(id, zkModel, address(consumer), 2, gas, uint64(block.number), fee, input));
        calls["requestOptimistic"]++;
    }

    /// @dev The request's node posts the right output (`honest`: the sum of the inputs) or a wrong one.
    function postOptimistic(uint256 index, bool honest, uint256 extraBond) external {
        if (s_pending.length == 0) return;
        index %= s_pending.length;
        ICoordinator.Request memory req = s_pending[index];
        address answerer = _answerer(req);
        int256[] memory output = new int256[](1);
        output[0] = req.input[0] + req.input[1] + (honest ? int256(0) : int256(1));
        uint96 bond = coordinator.optimisticConfig().nodeBond + uint96(extraBond % 1e16);
        vm.prank(answerer);
        coordinator.postOptimistic{value: bond}(req, output);
        ghostIn += bond;
        (uint32 cw, uint32 pw) =
            (coordinator.optimisticConfig().challengeWindowBlocks, coordinator.optimisticConfig().proofWindowBlocks);
        s_open.push(
            OpenClaim(
                req,
                ICoordinator.Claim(
                    output, answerer, bond, uint64(block.number) + cw, uint64(block.number) + cw + pw, address(0), 0
                ),
                honest
            )
        );
        ghostOpenClaims[answerer]++;
        _remove(index);
        calls[honest ? bytes32("postHonest") : bytes32("postWrong")]++;
    }

    /// @dev Anyone challenges, the answering node included.
    function challenge(uint256 index, uint256 who, uint256 extraBond) external {
        if (s_open.length == 0) return;
        index %= s_open.length;
        OpenClaim storage o = s_open[index];
        address challenger = _account(who);
        uint96 bond = coordinator.optimisticConfig().challengerBond + uint96(extraBond % 1e16);
        vm.prank(challenger);
        coordinator.challenge{value: bond}(o.req, o.claim);
        ghostIn += bond;
        o.claim.challenger = challenger;
        o.claim.challengerBond = bond;
        calls[challenger == o.claim.node ? bytes32("selfChallenge") : bytes32("challenge")]++;
    }

    /// @dev A proof the verifier accepts exactly when the output is right.
    function prove(uint256 index) external {
        if (s_open.length == 0) return;
        index %= s_open.length;
        OpenClaim memory o = s_open[index];
        verifier.setAnswer(o.honest);
        coordinator.proveOptimistic{gas: 5_000_000}(o.req, o.claim, hex"01");
        _closeClaim(index);
        calls["prove"]++;
    }

    function finalize(uint256 index) external {
        if (s_open.length == 0) return;
        index %= s_open.length;
        OpenClaim memory o = s_open[index];
        uint256 burnedBefore = coordinator.burnedWei();
        coordinator.finalize{gas: 5_000_000}(o.req, o.claim);
        _resolved(index, burnedBefore);
        calls["finalize"]++;
    }

    /// @dev Up to 8 open answers in one batch (some due, some not); the resolved ones are those
    /// whose claim commitment is gone afterwards.
    function finalizeMany(uint256 start, uint256 count) external {
        if (s_open.length == 0) return;
        count = 1 + count % 8;
        if (count > s_open.length) count = s_open.length;
        start %= s_open.length;
        ICoordinator.Request[] memory reqs = new ICoordinator.Request[](count);
        ICoordinator.Claim[] memory claims = new ICoordinator.Claim[](count);
        uint256[] memory ids = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            OpenClaim storage o = s_open[(start + i) % s_open.length];
            (reqs[i], claims[i], ids[i]) = (o.req, o.claim, o.req.requestId);
        }
        uint256 burnedBefore = coordinator.burnedWei();
        uint256 resolved = coordinator.finalizeMany{gas: 25_000_000}(reqs, claims);
        uint256 seen;
        for (uint256 i = 0; i < count; ++i) {
            if (coordinator.claimCommitment(ids[i]) != bytes32(0)) continue;
            for (uint256 j = 0; j < s_open.length; ++j) {
                if (s_open[j].req.requestId == ids[i]) {
                    // Everything the batch burned is counted once, by its first challenged answer
                    // (an unchallenged one counts nothing and must not move the mark).
                    bool challenged = s_open[j].claim.challenger != address(0);
                    _resolved(j, burnedBefore);
                    if (challenged) burnedBefore = coordinator.burnedWei();
                    ++seen;
                    break;
                }
            }
        }
        if (seen != resolved) revert FinalizeManyCountMismatch(seen, resolved);
        calls["finalizeMany"]++;
    }

    // ------------------------------------------------------------ views for the invariants
    function openCount() external view returns (uint256) {
        return s_open.length;
    }

    function open(uint256 index) external view returns (OpenClaim memory) {
        return s_open[index];
    }

    function accounts() external view returns (address[ACCOUNTS] memory a) {
        for (uint256 i = 0; i < NODES; ++i) {
            a[i] = s_nodes[i];
        }
        a[NODES] = OUTSIDER;
    }

    function pendingCount() external view returns (uint256) {
        return s_pending.length;
    }

    function pending(uint256 index) external view returns (ICoordinator.Request memory) {
        return s_pending[index];
    }

    function nodes() external view returns (address[NODES] memory) {
        return s_nodes;
    }

    // ------------------------------------------------------------ internals
    /// @dev The assigned node inside the exclusive window; after it, the first active server.
    function _answerer(ICoordinator.Request memory req) private view returns (address) {
        address assigned = coordinator.assignedNode(req.requestId);
        if (coordinator.isActiveNode(assigned)) return assigned;
        for (uint256 i = 0; i < NODES; ++i) {
            if (coordinator.isActiveNode(s_nodes[i]) && coordinator.isServingModel(req.modelId, s_nodes[i])) {
                return s_nodes[i];
            }
        }
        return assigned; // refused: the action reverts
    }

    function _serve(address n, bytes32 m) private {
        if (coordinator.isServingModel(m, n)) return;
        vm.prank(n);
        coordinator.serveModel(m);
    }

    function _account(uint256 who) private view returns (address) {
        who %= ACCOUNTS;
        return who == NODES ? OUTSIDER : s_nodes[who];
    }

    /// @dev The open answer at `index` was finalised: delivered, or slashed and re-opened in Zk.
    function _resolved(uint256 index, uint256 burnedBefore) private {
        OpenClaim storage o = s_open[index];
        if (o.claim.challenger != address(0)) {
            uint256 burned = coordinator.burnedWei() - burnedBefore;
            ghostBurned += burned;
            ghostOut += burned;
            ICoordinator.Request memory req = o.req;
            req.mode = 1;
            req.requestedAtBlock = uint64(block.number);
            s_pending.push(req);
        }
        _closeClaim(index);
    }

    function _closeClaim(uint256 index) private {
        ghostOpenClaims[s_open[index].claim.node]--;
        s_open[index] = s_open[s_open.length - 1];
        s_open.pop();
    }

    function _remove(uint256 index) private {
        s_pending[index] = s_pending[s_pending.length - 1];
        s_pending.pop();
    }
}
