// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from
    "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {GovernorTimelockControl} from "@openzeppelin/contracts/governance/extensions/GovernorTimelockControl.sol";
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {InferenceConsumer} from "../../InferenceConsumer.sol";
import {Coordinator} from "../../Coordinator.sol";
import {ICoordinator} from "../../interfaces/ICoordinator.sol";

/// @title ScreenedGovernor
/// @notice A Governor (timelocked, token-voting) in which every new proposal is screened by a
/// model through the oracle in Zk mode. A proposal cannot be queued or executed until its
/// screening passed; a proposal the model puts in the "block" class can never be. The proposer
/// pays the screening fee (`proposeWithFee`) and must hold the proposal threshold of votes, so
/// proposals cannot be spammed at the DAO's expense.
/// @dev Features (see models/governance/MODEL_CARD.md), computed from the proposal itself:
/// share of the treasury (the timelock's ETH) moved, share of calls to targets the DAO has
/// never executed a call to, number of calls / 10, the proposer's share of the votes, and
/// whether a call targets the governor or the timelock. Each is in [0, 1], kept as a WAD
/// and sent at the model's input scale. The model answers three logits: routine, review, block.
contract ScreenedGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction,
    GovernorTimelockControl,
    InferenceConsumer
{
    using Strings for uint256;

    /// @notice Where a proposal's screening stands.
    enum Screening {
        None,
        Pending,
        Errored,
        Passed,
        Flagged
    }

    struct ScreeningRecord {
        Screening status;
        uint8 riskClass;
        uint64 requestId; // the latest screening request
        uint64[5] features; // WAD (1e18 = 1)
    }

    uint8 private constant ZK_MODE = 1;
    uint32 private constant CALLBACK_GAS = 500_000;
    uint256 private constant WAD = 1e18;
    uint256 private constant MAX_ACTIONS = 10;
    uint8 private constant N_CLASSES = 3;
    uint8 private constant BLOCK_CLASS = 2;

    bytes32 private immutable i_screeningModel;
    /// @dev What is left of the proposer's `msg.value` while `proposeWithFee` runs.
    uint256 private transient t_paid;
    mapping(uint256 proposalId => ScreeningRecord) private s_screenings;
    mapping(uint256 requestId => uint256 proposalId) private s_requestProposal;
    mapping(address target => bool) private s_knownTargets;

    /// @notice The proposal was not (yet) screened as passed.
    error ScreeningPending(uint256 proposalId);
    /// @notice The screening model flagged the proposal; it can never be queued or executed.
    error ProposalBlocked(uint256 proposalId);
    /// @notice The governor's ETH balance does not cover the oracle fee.
    error InsufficientScreeningFunds(uint256 fee, uint256 balance);
    /// @notice A proposal must pay its screening fee: use `proposeWithFee` with at least `fee`.
    error ScreeningFeeRequired(uint256 fee, uint256 paid);
    /// @notice The excess of a proposer's payment could not be sent back.
    error RefundFailed(address to, uint256 amount);
    /// @notice Only a proposal whose screening came back with an error, or whose pending request
    /// the Coordinator no longer holds (its callback failed, or it was cancelled), may be screened again.
    error RescreenNotAllowed(uint256 proposalId, Screening status);
    /// @notice The request is not the pending screening of any proposal.
    error NoPendingScreening(uint256 requestId);
    /// @notice The screening model's registry record cannot take this governor's input.
    error UnsuitableScreeningModel(bytes32 modelId);

    /// @notice A screening inference was requested for a proposal.
    event ScreeningRequested(uint256 indexed proposalId, uint256 indexed requestId, int256[] input);
    /// @notice The model answered: `passed` unless the block logit was the largest.
    event ProposalScreened(uint256 indexed proposalId, bool passed, uint8 riskClass, int256[] logits);
    /// @notice The model flagged the proposal; `reason` says why, in words.
    event ProposalFlagged(uint256 indexed proposalId, string reason);
    /// @notice The oracle answered with an error; the proposal stays unscreened (see `rescreen`).
    event ScreeningFailed(uint256 indexed proposalId, uint256 indexed requestId, bytes err);
    /// @notice The DAO executed its first call to `target`; it is no longer a new target.
    event TargetRecorded(address indexed target);

    /// @param token_ The voting token.
    /// @param timelock_ The timelock that holds the treasury and executes proposals.
    /// @param coordinator_ The oracle Coordinator.
    /// @param screeningModel The registered (Zk-capable) screening model's id.
    /// @param knownTargets Addresses the DAO already deals with (not counted as new targets).
    /// @param proposalThreshold_ Votes a proposer must hold (e.g. 1 % of the supply).
    constructor(
        IVotes token_,
        TimelockController timelock_,
        address coordinator_,
        bytes32 screeningModel,
        address[] memory knownTargets,
        uint256 proposalThreshold_
    )
        Governor("ScreenedGovernor")
        GovernorSettings(1, 20, proposalThreshold_)
        GovernorVotes(token_)
        GovernorVotesQuorumFraction(4)
        GovernorTimelockControl(timelock_)
        InferenceConsumer(coordinator_)
    {
        ICoordinator.ModelInfo memory info = Coordinator(payable(coordinator_)).getModel(screeningModel);
        if (!info.exists || info.verifier == address(0) || info.inputLength != 5 || info.outputLength != N_CLASSES)
        {
            revert UnsuitableScreeningModel(screeningModel);
        }
        i_screeningModel = screeningModel;
        for (uint256 i = 0; i < knownTargets.length; ++i) {
            s_knownTargets[knownTargets[i]] = true;
            emit TargetRecorded(knownTargets[i]);
        }
    }

    /// @notice Accept ETH: the oracle fees are paid from this balance (and refunds land here).
    receive() external payable override(Governor, InferenceConsumer) {}

    /// @notice Make a proposal and pay its screening fee (`Coordinator.quoteFee` for the screening
    /// model, Zk mode, 500k callback gas) with `msg.value`; the excess is sent back. `propose`
    /// itself cannot pay and reverts with `ScreeningFeeRequired` (unless the fee is zero).
    /// @return proposalId The new proposal.
    // `propose` calls only the immutable Coordinator (to request the screening), which never
    // calls back into this governor while taking a request.
    // slither-disable-next-line reentrancy-eth
    function proposeWithFee(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        string memory description
    ) external payable returns (uint256 proposalId) {
        t_paid = msg.value;
        proposalId = propose(targets, values, calldatas, description);
        uint256 excess = t_paid;
        t_paid = 0;
        if (excess != 0) {
            // The excess of the caller's own payment goes back to the caller.
            // slither-disable-next-line arbitrary-send-eth
            (bool ok,) = msg.sender.call{value: excess}("");
            if (!ok) revert RefundFailed(msg.sender, excess);
        }
    }

    /// @notice Ask for a new screening of a proposal whose last screening came back with an error,
    /// or is still Pending although the Coordinator no longer holds its request (answered with a
    /// failed callback, or cancelled): such a proposal would otherwise be stuck forever.
    /// @param proposalId The proposal.
    /// @return requestId The oracle request id.
    function rescreen(uint256 proposalId) external returns (uint256 requestId) {
        ScreeningRecord storage r = s_screenings[proposalId];
        Screening status = r.status;
        bool lost = status == Screening.Pending
            && Coordinator(payable(coordinator())).requestCommitment(r.requestId) == bytes32(0);
        if (status != Screening.Errored && !lost) revert RescreenNotAllowed(proposalId, status);
        return _requestScreening(proposalId, false);
    }

    /// @notice Cancel a screening request the oracle left unanswered past its deadline: the fee
    /// comes back to this governor and the screening counts as failed, so `rescreen` may ask again.
    /// @param req The request exactly as the Coordinator's `InferenceRequested` event gave it.
    function cancelScreening(ICoordinator.Request calldata req) external {
        uint256 proposalId = s_requestProposal[req.requestId];
        Screening status = s_screenings[proposalId].status;
        if (proposalId == 0 || status != Screening.Pending) revert NoPendingScreening(req.requestId);
        s_screenings[proposalId].status = Screening.Errored; // effects before the call
        _cancelInference(req); // the Coordinator checks the commitment and the deadline
        emit ScreeningFailed(proposalId, req.requestId, "request expired");
    }

    /// @notice Pull fees the Coordinator refunded (screenings answered with an error) back into
    /// this governor's balance, which pays future screenings. Anyone may call it.
    function reclaimRefunds() external {
        _withdrawRefunds(payable(address(this)));
    }

    /// @notice A proposal's screening: status, risk class (valid once answered) and features (WAD).
    /// @param proposalId The proposal.
    function screening(uint256 proposalId)
        external
        view
        returns (Screening status, uint8 riskClass, uint64[5] memory features)
    {
        ScreeningRecord storage r = s_screenings[proposalId];
        return (r.status, r.riskClass, r.features);
    }

    /// @notice Whether the DAO has ever executed a call to `target` (or was told so at deployment).
    /// @param target The address.
    function isKnownTarget(address target) external view returns (bool) {
        return s_knownTargets[target];
    }

    /// @notice The screening model's id.
    function screeningModel() external view returns (bytes32) {
        return i_screeningModel;
    }

    /// @notice The proposal a screening request belongs to (0 if none).
    /// @param requestId The oracle request id.
    function proposalOfRequest(uint256 requestId) external view returns (uint256) {
        return s_requestProposal[requestId];
    }

    // ------------------------------------------------------------------ screening
    function _propose(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        string memory description,
        address proposer
    ) internal override returns (uint256 proposalId) {
        proposalId = super._propose(targets, values, calldatas, description, proposer);
        s_screenings[proposalId].features = _features(targets, values, proposer);
        _requestScreening(proposalId, true);
    }

    // `balance == 0` only guards the division (an empty treasury: any value moved is all of it).
    // slither-disable-next-line incorrect-equality
    function _features(address[] memory targets, uint256[] memory values, address proposer)
        private
        view
        returns (uint64[5] memory f)
    {
        address treasury = _executor();
        uint256 moved = 0;
        uint256 fresh = 0;
        bool selfCall = false;
        for (uint256 i = 0; i < targets.length; ++i) {
            moved += values[i];
            if (!s_knownTargets[targets[i]]) ++fresh;
            if (targets[i] == address(this) || targets[i] == treasury) selfCall = true;
        }
        uint256 n = targets.length;
        uint256 balance = treasury.balance;
        f[0] = _clipWad(balance == 0 ? (moved == 0 ? 0 : WAD) : moved * WAD / balance);
        f[1] = _clipWad(fresh * WAD / n);
        f[2] = _clipWad(n * WAD / MAX_ACTIONS);
        uint256 at = clock() - 1;
        uint256 supply = token().getPastTotalSupply(at);
        f[3] = supply == 0 ? 0 : _clipWad(token().getPastVotes(proposer, at) * WAD / supply);
        f[4] = selfCall ? uint64(WAD) : 0;
    }

    function _clipWad(uint256 x) private pure returns (uint64) {
        return uint64(x > WAD ? WAD : x);
    }

    /// @dev `byProposer`: the fee comes out of what `proposeWithFee` was paid, not the DAO's balance.
    // The only external call is to the immutable Coordinator, which never calls back while
    // taking a request; the writes after it need the request id it returns.
    // slither-disable-next-line reentrancy-eth
    function _requestScreening(uint256 proposalId, bool byProposer) private returns (uint256 requestId) {
        ScreeningRecord storage r = s_screenings[proposalId];
        Coordinator c = Coordinator(payable(coordinator()));
        uint8 scale = c.getModel(i_screeningModel).inputScale;
        int256[] memory input = new int256[](5);
        for (uint256 i = 0; i < 5; ++i) {
            input[i] = int256((uint256(r.features[i]) << scale) / WAD);
        }
        uint256 fee = c.quoteFee(i_screeningModel, ZK_MODE, CALLBACK_GAS);
        if (byProposer) {
            uint256 paid = t_paid;
            if (paid < fee) revert ScreeningFeeRequired(fee, paid);
            t_paid = paid - fee;
        } else if (address(this).balance < fee) {
            revert InsufficientScreeningFunds(fee, address(this).balance);
        }
        r.status = Screening.Pending;
        requestId = _requestInference(i_screeningModel, input, ZK_MODE, CALLBACK_GAS, fee);
        r.requestId = uint64(requestId);
        s_requestProposal[requestId] = proposalId;
        emit ScreeningRequested(proposalId, requestId, input);
    }

    function _onInferenceResult(uint256 requestId, int256[] memory output, bytes memory err) internal override {
        uint256 proposalId = s_requestProposal[requestId];
        ScreeningRecord storage r = s_screenings[proposalId];
        // Stale (superseded by a rescreen) or unknown request.
        if (proposalId == 0 || r.status != Screening.Pending || r.requestId != requestId) return;
        if (err.length != 0 || output.length != N_CLASSES) {
            r.status = Screening.Errored;
            emit ScreeningFailed(proposalId, requestId, err.length != 0 ? err : bytes("bad output length"));
            return;
        }
        uint8 cls = 0;
        for (uint8 i = 1; i < N_CLASSES; ++i) {
            if (output[i] > output[cls]) cls = i;
        }
        bool passed = cls != BLOCK_CLASS;
        r.status = passed ? Screening.Passed : Screening.Flagged;
        r.riskClass = cls;
        emit ProposalScreened(proposalId, passed, cls, output);
        if (!passed) emit ProposalFlagged(proposalId, _reason(r.features));
    }

    function _reason(uint64[5] storage f) private view returns (string memory) {
        return string.concat(
            "screening model: block-risk proposal (moves ",
            _percent(f[0]),
            " of the treasury; ",
            _percent(f[1]),
            " of calls to never-seen targets; proposer holds ",
            _percent(f[3]),
            " of votes",
            f[4] != 0 ? "; changes governance config)" : ")"
        );
    }

    function _percent(uint64 wad) private pure returns (string memory) {
        return string.concat((uint256(wad) * 100 / WAD).toString(), "%");
    }

    function _requirePassed(uint256 proposalId) private view {
        Screening status = s_screenings[proposalId].status;
        if (status == Screening.Flagged) revert ProposalBlocked(proposalId);
        if (status != Screening.Passed) revert ScreeningPending(proposalId);
    }

    // ------------------------------------------------------------------ gates
    function _queueOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint48) {
        _requirePassed(proposalId);
        return super._queueOperations(proposalId, targets, values, calldatas, descriptionHash);
    }

    function _executeOperations(
        uint256 proposalId,
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) {
        _requirePassed(proposalId);
        super._executeOperations(proposalId, targets, values, calldatas, descriptionHash);
        for (uint256 i = 0; i < targets.length; ++i) {
            if (!s_knownTargets[targets[i]]) {
                s_knownTargets[targets[i]] = true;
                emit TargetRecorded(targets[i]);
            }
        }
    }

    // ------------------------------------------------------------------ required overrides
    /// @inheritdoc Governor
    function state(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (ProposalState)
    {
        return super.state(proposalId);
    }

    /// @inheritdoc Governor
    function proposalNeedsQueuing(uint256 proposalId)
        public
        view
        override(Governor, GovernorTimelockControl)
        returns (bool)
    {
        return super.proposalNeedsQueuing(proposalId);
    }

    /// @inheritdoc Governor
    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }

    function _cancel(
        address[] memory targets,
        uint256[] memory values,
        bytes[] memory calldatas,
        bytes32 descriptionHash
    ) internal override(Governor, GovernorTimelockControl) returns (uint256) {
        return super._cancel(targets, values, calldatas, descriptionHash);
    }

    function _executor() internal view override(Governor, GovernorTimelockControl) returns (address) {
        return super._executor();
    }
}

/// @title DaoTimelock
/// @notice OpenZeppelin's TimelockController, unchanged; declared here so the build emits an
/// artifact for it (the DAO's treasury and executor).
contract DaoTimelock is TimelockController {
    /// @param minDelay Seconds between queueing and execution.
    /// @param proposers Accounts allowed to schedule (the governor).
    /// @param executors Accounts allowed to execute (address(0) = anyone).
    /// @param admin Optional admin for the initial setup (address(0) = none).
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
