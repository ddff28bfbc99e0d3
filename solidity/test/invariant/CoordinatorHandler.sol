// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Vm.sol";

import {Coordinator} from "../../src/Coordinator.sol";
import {ICoordinator} from "../../src/interfaces/ICoordinator.sol";
import {ExampleConsumer} from "../../src/examples/ExampleConsumer.sol";

/// @notice Drives a Coordinator with random, bounded actions (requests, answers, error answers,
/// cancellations, node registrations, deregistrations, stake and fee withdrawals, time) and keeps
/// ghost records of every wei that went in or out and of the requests still pending. An action
/// the Coordinator refuses reverts whole, ghost records included.
contract CoordinatorHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant NODES = 3;

    Coordinator public immutable coordinator;
    ExampleConsumer public immutable consumer;
    bytes32 public immutable model;
    bytes32 public immutable zkModel;
    address[NODES] internal s_nodes;

    ICoordinator.Request[] internal s_pending;
    /// @notice Wei sent to the Coordinator: stakes and request payments.
    uint256 public ghostIn;
    /// @notice Wei the Coordinator paid out: stake and fee withdrawals, cancellation refunds.
    uint256 public ghostOut;
    mapping(bytes32 action => uint256) public calls;

    constructor(Coordinator coordinator_, bytes32 model_, bytes32 zkModel_, address node0) {
        coordinator = coordinator_;
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
        address n = s_nodes[who % NODES];
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
        s_pending.push(
            ICoordinator.Request(id, m, address(consumer), mode, gas, uint64(block.number), fee, input)
        );
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

    // ------------------------------------------------------------ views for the invariants
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

    function _remove(uint256 index) private {
        s_pending[index] = s_pending[s_pending.length - 1];
        s_pending.pop();
    }
}
