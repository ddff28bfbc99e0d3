// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {ICoordinator} from "./interfaces/ICoordinator.sol";
import {IInferenceConsumer} from "./interfaces/IInferenceConsumer.sol";
import {IVerifier} from "./interfaces/IVerifier.sol";
import {FieldMath} from "./libraries/FieldMath.sol";

/// @title Coordinator
/// @notice Takes inference requests from consumer contracts, keeps a commitment per request,
/// and delivers results from staked nodes back to the consumer with exactly the gas it asked for.
/// @dev Commitment pattern after Chainlink VRF: only `keccak256(abi.encode(Request))` is stored;
/// the fulfilling node repeats the request. The callback never reverts the fulfilment.
/// Trust rules enforced here: Zk instances are canonical field elements (one integer per field
/// element); inputs and outputs have the model's lengths; answers after the deadline are refused;
/// fee changes are capped and take effect only after a delay; a node's pause is a ban that
/// survives deregistration; stake leaves through an unbonding delay during which it is slashable;
/// model ids are content-addressed (ONNX hash, verifier code hash, shape, scales), and a Zk
/// answer is checked by verifier code identical to the registered one, under a gas cap.
/// Assignment: nodes declare the models they serve; each request is assigned at request time to
/// one active node serving its model, which alone may answer until `exclusiveWindowBlocks` after
/// the request's block; after that any active node serving the model may answer.
/// Optimistic mode: the node posts an output with a bond (`postOptimistic`); anyone may challenge
/// it with a bond until the challenge deadline; a challenged answer is delivered only with an EZKL
/// proof posted by the proof deadline, else the node's bond and part of its stake are slashed and
/// the request re-opens in Zk mode. Both deadlines are fixed when the answer is posted. See
/// docs/design.md, "Optimistic mode".
contract Coordinator is ICoordinator, Ownable2Step, ReentrancyGuard {
    /// @notice Fee parameters, set by the owner (each component under a cap fixed at construction).
    /// A request's fee is `baseFee + premium + callbackGasLimit * gasPrice * gasPriceMultiplierBps
    /// / 10_000`, where `premium` is `zkPremium` for Zk requests (zero for None) and `gasPrice` is
    /// `max(block.basefee, minGasPrice)` at the request.
    struct FeeConfig {
        uint64 baseFee;
        uint64 zkPremium;
        uint64 optimisticPremium;
        uint48 minGasPrice;
        uint16 gasPriceMultiplierBps;
    }

    /// @notice Optimistic-mode parameters, set by the owner (`setOptimisticConfig`). A change
    /// applies to answers posted after it; a posted answer keeps its bond and deadlines.
    /// `nodeBond` must cover a proof's verification (`VERIFIER_GAS_LIMIT * proofGasPrice`);
    /// `challengeWindowBlocks + proofWindowBlocks` must not exceed `unbondingBlocks()`;
    /// `challengerShareBps` is at most `MAX_CHALLENGER_SHARE_BPS`, so a node challenging its own
    /// wrong answer always loses the rest of what is slashed.
    struct OptimisticConfig {
        uint32 challengeWindowBlocks;
        uint32 proofWindowBlocks;
        uint96 nodeBond;
        uint96 challengerBond;
        uint96 stakeSlash;
        uint64 proofGasPrice;
        uint16 challengerShareBps;
    }

    struct Node {
        uint128 stake;
        /// @dev Optimistic answers of this node not yet resolved: its stake cannot be withdrawn
        /// while any is open (kept across deregistration).
        uint32 openClaims;
        bool registered;
    }

    /// @notice Stake a node deregistered and has not withdrawn yet (still slashable).
    struct Unbonding {
        uint256 amount;
        uint64 releaseBlock;
    }

    uint8 internal constant MODE_NONE = 0;
    uint8 internal constant MODE_ZK = 1;
    uint8 internal constant MODE_OPTIMISTIC = 2;
    /// @dev Longest `err` a fulfilment may carry: a consumer's callback must be able to afford it.
    uint256 internal constant MAX_ERR_LENGTH = 256;
    /// @dev Gas kept back for the work after the callback (event, return) and the call itself.
    uint256 internal constant CALLBACK_GAS_MARGIN = 5_000;
    /// @dev Gas an answer costs its node per element of the model's input and output, beyond the
    /// callback: the element's 32 bytes of call data at EIP-7623's floor (40 gas a non-zero
    /// byte), which also covers copying, hashing and logging it (`bench/answer_gas.py` measures
    /// both). Priced like callback gas, so a request for a model with a large input or output
    /// pays for the answer it asks for.
    uint256 internal constant ANSWER_GAS_PER_ELEMENT = 1_300;
    /// @dev Largest fixed-point scale (bits) a model may declare, for its input or its output.
    uint8 internal constant MAX_SCALE = 64;
    /// @dev Gas a verifier call may use. The EZKL verifier of the example model uses about
    /// 0.4M gas (tests/integration/test_trust_layer.py measures it); the cap leaves room for
    /// larger circuits and bounds what a verifier can make a fulfilment cost.
    uint256 internal constant VERIFIER_GAS_LIMIT = 1_500_000;
    /// @dev Most serving-list entries a request looks at to find an active node (inactive entries
    /// are skipped; anyone may remove them with `dropInactiveServer`).
    uint256 internal constant MAX_ASSIGN_PROBES = 8;
    /// @dev Largest share of a slashed amount that goes to the challenger; the rest is burned.
    uint16 internal constant MAX_CHALLENGER_SHARE_BPS = 5_000;
    /// @dev Most items `finalizeMany` takes in one call.
    uint256 internal constant MAX_FINALIZE_BATCH = 64;
    /// @dev Most answers `fulfillBatch` takes in one call (its result is a 256-bit mask).
    uint256 internal constant MAX_FULFIL_BATCH = 256;
    /// @dev Gas `fulfillBatch` keeps back from each item's call, so a failed item (even one that
    /// ran out of gas) can always be recorded and the loop go on.
    uint256 internal constant BATCH_ITEM_RESERVE = 30_000;

    uint256 private immutable i_minStake;
    uint32 private immutable i_requestTimeoutBlocks;
    uint32 private immutable i_maxCallbackGasLimit;
    uint32 private immutable i_maxInputLength;
    uint32 private immutable i_unbondingBlocks;
    uint32 private immutable i_feeChangeDelayBlocks;
    uint64 private immutable i_maxBaseFee;
    uint64 private immutable i_maxZkPremium;
    uint64 private immutable i_maxOptimisticPremium;
    uint48 private immutable i_maxMinGasPrice;
    uint16 private immutable i_maxGasPriceMultiplierBps;
    uint32 private immutable i_exclusiveWindowBlocks;

    FeeConfig private s_fees;
    FeeConfig private s_pendingFees;
    /// @dev The configuration `s_fees` replaced: still needed to split the fee of a request made
    /// under it (see `_feesAt`).
    FeeConfig private s_previousFees;
    uint64 private s_nextRequestId = 1;
    /// @dev Block from which `s_pendingFees` is in force; zero when no change is scheduled.
    uint64 private s_pendingFeesFromBlock;
    /// @dev Block from which `s_fees` is in force (before it, `s_previousFees` was).
    uint64 private s_feesFromBlock;
    mapping(bytes32 modelId => ModelInfo) private s_models;
    mapping(address node => Node) private s_nodes;
    mapping(address node => bool) private s_paused;
    mapping(address node => Unbonding) private s_unbonding;
    mapping(address node => uint256) private s_nodeBalances;
    mapping(uint256 requestId => bytes32) private s_commitments;
    /// @dev The node a pending request is assigned to; deleted with the commitment.
    mapping(uint256 requestId => address) private s_assignees;
    /// @dev Nodes that declared they serve a model, and each one's index in that list plus one.
    mapping(bytes32 modelId => address[]) private s_servers;
    mapping(bytes32 modelId => mapping(address node => uint256)) private s_serverSlots;
    OptimisticConfig private s_optimistic;
    /// @dev A posted optimistic answer: `keccak256(abi.encode(req, claim))`; zero when none.
    mapping(uint256 requestId => bytes32) private s_claims;
    /// @dev Wei burned by slashing (sent to the zero address), for accounting.
    uint256 private s_burned;

    // ---------------------------------------------------------------- errors
    error ScaleTooLarge(uint8 inputScale, uint8 outputScale, uint8 max);
    error VerifierCodeChanged(bytes32 modelId, bytes32 registered, bytes32 current);
    error InvalidModelShape(bytes32 modelId, uint32 inputLength, uint32 outputLength);
    error VerifierHasNoCode(address verifier);
    error UnknownModel(bytes32 modelId);
    error InvalidMode(uint8 mode);
    error ModelNotVerifiable(bytes32 modelId, uint8 mode);
    error CallbackGasLimitTooHigh(uint32 limit, uint32 max);
    error EmptyInput();
    error InputTooLong(uint256 length, uint32 max);
    error InputLengthMismatch(bytes32 modelId, uint256 length, uint32 expected);
    error InputOutOfFieldRange(uint256 index, int256 value);
    error OutputOutOfFieldRange(uint256 requestId, uint256 index, int256 value);
    error OutputLengthMismatch(uint256 requestId, uint256 length, uint32 expected);
    error ErrorTooLong(uint256 requestId, uint256 length, uint256 max);
    error RequestExpired(uint256 requestId, uint256 deadlineBlock);
    error FeeAboveCap(uint8 component, uint256 value, uint256 cap);
    error NodeIsPaused(address node);
    error StakeStillBonded(address node, uint64 releaseBlock);
    error InsufficientFee(uint256 required, uint256 provided);
    error InsufficientStake(uint256 required, uint256 provided);
    error NodeAlreadyRegistered(address node);
    error NodeNotRegistered(address node);
    error NotActiveNode(address caller);
    error RequestNotPending(uint256 requestId);
    error CommitmentMismatch(uint256 requestId);
    error InvalidProof(uint256 requestId);
    error UnprovenOutput(uint256 requestId);
    error InsufficientGasForCallback(uint256 requestId);
    error NotRequestConsumer(uint256 requestId, address caller);
    error RequestNotExpired(uint256 requestId, uint256 deadlineBlock);
    error TransferFailed(address to, uint256 amount);
    error NothingToWithdraw(address node);
    error SlashExceedsStake(address node, uint256 amount, uint256 available);
    error NoNodeServesModel(bytes32 modelId);
    error NotAssignedNode(uint256 requestId, address assigned);
    error AlreadyServingModel(bytes32 modelId, address node);
    error NotServingModel(bytes32 modelId, address node);
    error ServerStillActive(bytes32 modelId, address node);
    error OptimisticModeDisabled();
    error NotOptimisticRequest(uint256 requestId, uint8 mode);
    error OptimisticAnswerNeedsBond(uint256 requestId);
    error InsufficientBond(uint256 required, uint256 provided);
    error NoClaim(uint256 requestId);
    error ClaimMismatch(uint256 requestId);
    error AlreadyChallenged(uint256 requestId, address challenger);
    error NotChallenged(uint256 requestId);
    error ChallengeWindowClosed(uint256 requestId, uint64 challengeDeadline);
    error ChallengeWindowOpen(uint256 requestId, uint64 challengeDeadline);
    error ProofWindowClosed(uint256 requestId, uint64 proofDeadline);
    error ProofWindowOpen(uint256 requestId, uint64 proofDeadline);
    error InvalidOptimisticConfig(uint8 field);
    error OpenClaimsPending(address node, uint32 openClaims);
    error BatchTooLarge(uint256 length, uint256 max);
    error BatchLengthMismatch(uint256 requests, uint256 claims);
    error OnlyCoordinator(address caller);

    // ---------------------------------------------------------------- events
    /// @notice A model record was created under its content-addressed id (see `registerModel`).
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed owner,
        bytes32 indexed onnxHash,
        address verifier,
        bytes32 verifierCodeHash,
        uint32 inputLength,
        uint32 outputLength,
        uint8 inputScale,
        uint8 outputScale
    );
    /// @notice A node staked and may now fulfil.
    event NodeRegistered(address indexed node, uint256 stake);
    /// @notice A node left the node set; its stake is unbonding until `releaseBlock` (see
    /// `withdrawStake`) and stays slashable until withdrawn.
    event NodeDeregistered(address indexed node, uint256 stake, uint64 releaseBlock);
    /// @notice A node took back its unbonded stake.
    event StakeWithdrawn(address indexed node, uint256 amount);
    /// @notice Stake was taken from a node (active stake first, then unbonding stake).
    event NodeSlashed(address indexed node, uint256 amount);
    /// @notice The owner paused (banned) or resumed a node address.
    event NodePausedSet(address indexed node, bool paused);
    /// @notice A fee configuration is in force from block `effectiveBlock` on. Emitted at
    /// construction, and for a scheduled change when it is first applied (by the first request at
    /// or after `effectiveBlock`, or by `applyFeeConfig`); `quoteFee` uses it from
    /// `effectiveBlock` on whether or not this event was emitted yet.
    event FeeConfigSet(
        uint64 baseFee, uint64 zkPremium, uint64 optimisticPremium, uint48 minGasPrice, uint16 gasPriceMultiplierBps
    );
    /// @notice The owner scheduled a fee change that takes effect at block `effectiveBlock`.
    event FeeConfigScheduled(
        uint64 baseFee,
        uint64 zkPremium,
        uint64 optimisticPremium,
        uint48 minGasPrice,
        uint16 gasPriceMultiplierBps,
        uint64 effectiveBlock
    );
    /// @notice A request paid more than its fee; the excess is owed to the consumer (`withdrawFees`).
    event OverpaymentCredited(uint256 indexed requestId, address indexed consumer, uint256 amount);
    /// @notice A node withdrew the fees it earned.
    event FeesWithdrawn(address indexed node, address indexed to, uint256 amount);
    /// @notice A request was answered; `callbackSucceeded` is false if the consumer's callback failed.
    /// @dev Who was paid: `node` earned the request's fee, less the `amount` of a `FeeRefunded`
    /// event for the same request that precedes this one in the transaction (a Zk error answer:
    /// the Zk premium went back to the consumer, the node kept the base fee and the callback gas).
    event InferenceFulfilled(
        uint256 indexed requestId, address indexed node, bool callbackSucceeded, int256[] output, bytes err
    );
    /// @notice A Zk request was answered with an error and no proof: its Zk premium (`amount`) is
    /// owed to the consumer (withdrawable through `withdrawFees`); the node keeps the rest.
    event FeeRefunded(uint256 indexed requestId, address indexed consumer, uint256 amount);
    /// @notice An answer in a `fulfillBatch` was refused and changed nothing; `reason` is the
    /// revert data `fulfill` would have given for it alone (empty when it ran out of gas).
    event AnswerRejected(uint256 indexed requestId, address indexed node, bytes reason);
    /// @notice A node declared it serves a model: requests for it may be assigned to the node.
    event ModelServed(bytes32 indexed modelId, address indexed node);
    /// @notice A node left a model's serving list (it stopped, or it was inactive and dropped).
    event ModelServingStopped(bytes32 indexed modelId, address indexed node);
    /// @notice Emitted right after `InferenceRequested`: only `node` may answer the request before
    /// block `exclusiveUntilBlock`; from that block on, any active node serving the model may.
    event RequestAssigned(uint256 indexed requestId, address indexed node, uint64 exclusiveUntilBlock);
    /// @notice An expired request was cancelled and its fee refunded to the consumer.
    event RequestCancelled(uint256 indexed requestId, address indexed consumer, uint256 refund);
    /// @notice The owner changed the optimistic-mode parameters (answers posted from now on).
    event OptimisticConfigSet(
        uint32 challengeWindowBlocks,
        uint32 proofWindowBlocks,
        uint96 nodeBond,
        uint96 challengerBond,
        uint96 stakeSlash,
        uint64 proofGasPrice,
        uint16 challengerShareBps
    );
    /// @notice `node` posted an optimistic answer with `bond`. Anyone may challenge it up to and
    /// including block `challengeDeadline`; a challenged answer must be proven up to and including
    /// block `proofDeadline`. The consumer hears nothing until it is finalised.
    event OptimisticAnswerPosted(
        uint256 indexed requestId,
        address indexed node,
        int256[] output,
        uint256 bond,
        uint64 challengeDeadline,
        uint64 proofDeadline
    );
    /// @notice `challenger` disputed the posted answer with `bond`.
    event AnswerChallenged(uint256 indexed requestId, address indexed challenger, uint256 bond);
    /// @notice A proof of the challenged answer verified: the challenger's bond went to the node.
    event ChallengeDefeated(
        uint256 indexed requestId, address indexed node, address indexed challenger, uint256 challengerBond
    );
    /// @notice A challenged answer was not proven in time: `slashed` wei (the node's bond and part
    /// of its stake) were taken; `toChallenger` of them went to the challenger (besides its own
    /// bond back) and `burned` to the zero address. The output was never delivered.
    event OptimisticAnswerSlashed(
        uint256 indexed requestId,
        address indexed node,
        address indexed challenger,
        uint256 slashed,
        uint256 toChallenger,
        uint256 burned
    );
    /// @notice A request whose optimistic answer was slashed is open again, in `mode` (Zk), from
    /// block `requestedAtBlock` (this block), for the fee already paid. Followed by
    /// `RequestAssigned` (node zero: any node serving the model may answer at once).
    event RequestReopened(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed consumer,
        int256[] input,
        uint8 mode,
        uint32 callbackGasLimit,
        uint256 fee
    );

    /// @param minStake Wei a node must stake to fulfil.
    /// @param requestTimeoutBlocks Blocks after which the consumer may cancel an unanswered request.
    /// @param maxCallbackGasLimit Upper bound on a request's callback gas.
    /// @param maxInputLength Upper bound on a request's input length.
    /// @param fees Initial fee configuration.
    /// @param unbondingBlocks Blocks a deregistered node's stake stays locked (and slashable).
    /// @param feeChangeDelayBlocks Blocks between `setFeeConfig` and the new fees taking effect.
    /// @param feeCaps Upper bound on each fee component, fixed for the contract's lifetime.
    /// @param exclusiveWindowBlocks Blocks after a request during which only its assigned node may
    /// answer.
    constructor(
        uint256 minStake,
        uint32 requestTimeoutBlocks,
        uint32 maxCallbackGasLimit,
        uint32 maxInputLength,
        FeeConfig memory fees,
        uint32 unbondingBlocks,
        uint32 feeChangeDelayBlocks,
        FeeConfig memory feeCaps,
        uint32 exclusiveWindowBlocks
    ) Ownable(msg.sender) {
        i_minStake = minStake;
        i_requestTimeoutBlocks = requestTimeoutBlocks;
        i_maxCallbackGasLimit = maxCallbackGasLimit;
        i_maxInputLength = maxInputLength;
        i_unbondingBlocks = unbondingBlocks;
        i_feeChangeDelayBlocks = feeChangeDelayBlocks;
        i_maxBaseFee = feeCaps.baseFee;
        i_maxZkPremium = feeCaps.zkPremium;
        i_maxOptimisticPremium = feeCaps.optimisticPremium;
        i_maxMinGasPrice = feeCaps.minGasPrice;
        i_maxGasPriceMultiplierBps = feeCaps.gasPriceMultiplierBps;
        i_exclusiveWindowBlocks = exclusiveWindowBlocks;
        _checkFeeCaps(fees);
        s_fees = fees;
        s_previousFees = fees;
        s_feesFromBlock = uint64(block.number);
        emit FeeConfigSet(
            fees.baseFee, fees.zkPremium, fees.optimisticPremium, fees.minGasPrice, fees.gasPriceMultiplierBps
        );
    }

    // ---------------------------------------------------------------- models
    /// @notice Register a model under an id derived from its content, so nobody can take the id
    /// of someone else's model: `modelId = keccak256(abi.encode(onnxHash, verifierCodeHash,
    /// inputLength, outputLength, inputScale, outputScale))`, with `verifierCodeHash` the
    /// verifier's code hash (zero without a verifier). Registering content that is already
    /// registered changes nothing and returns its id (the first registrant stays the owner);
    /// other weights, settings or verifier code are another model with another id.
    /// @param onnxHash SHA-256 of the ONNX bytes (not checkable on chain; nodes check it).
    /// @param inputLength Flat input length (1 to `maxInputLength()`).
    /// @param outputLength Flat output length (at least 1).
    /// @param inputScale Input fixed-point scale in bits (at most 64).
    /// @param outputScale Output fixed-point scale in bits (at most 64).
    /// @param verifier EZKL verifier for Zk/Optimistic, or zero for plain mode only.
    /// @return modelId The model's content-addressed id.
    function registerModel(
        bytes32 onnxHash,
        uint32 inputLength,
        uint32 outputLength,
        uint8 inputScale,
        uint8 outputScale,
        address verifier
    ) external returns (bytes32 modelId) {
        bytes32 verifierCodeHash = verifier == address(0) ? bytes32(0) : verifier.codehash;
        modelId = keccak256(
            abi.encode(onnxHash, verifierCodeHash, inputLength, outputLength, inputScale, outputScale)
        );
        if (s_models[modelId].exists) return modelId;
        if (inputLength == 0 || outputLength == 0 || inputLength > i_maxInputLength) {
            revert InvalidModelShape(modelId, inputLength, outputLength);
        }
        if (inputScale > MAX_SCALE || outputScale > MAX_SCALE) {
            revert ScaleTooLarge(inputScale, outputScale, MAX_SCALE);
        }
        if (verifier != address(0) && verifier.code.length == 0) revert VerifierHasNoCode(verifier);
        s_models[modelId] = ModelInfo({
            owner: msg.sender,
            verifier: verifier,
            inputLength: inputLength,
            outputLength: outputLength,
            inputScale: inputScale,
            outputScale: outputScale,
            exists: true,
            onnxHash: onnxHash,
            verifierCodeHash: verifierCodeHash
        });
        emit ModelRegistered(
            modelId,
            msg.sender,
            onnxHash,
            verifier,
            verifierCodeHash,
            inputLength,
            outputLength,
            inputScale,
            outputScale
        );
    }

    /// @notice A model's registry record (`exists` is false for unknown ids).
    function getModel(bytes32 modelId) external view returns (ModelInfo memory) {
        return s_models[modelId];
    }

    // ---------------------------------------------------------------- nodes
    /// @notice Stake at least `minStake()` and become an active node. A paused (banned) address
    /// cannot register.
    function registerNode() external payable {
        if (s_paused[msg.sender]) revert NodeIsPaused(msg.sender);
        if (s_nodes[msg.sender].registered) revert NodeAlreadyRegistered(msg.sender);
        if (msg.value < i_minStake) revert InsufficientStake(i_minStake, msg.value);
        Node storage node = s_nodes[msg.sender];
        node.stake = SafeCast.toUint128(msg.value);
        node.registered = true; // openClaims carries over from an earlier registration
        emit NodeRegistered(msg.sender, msg.value);
    }

    /// @notice Leave the node set at once. The stake is not returned now: it unbonds for
    /// `unbondingBlocks()` blocks, stays slashable meanwhile, and is then taken back with
    /// `withdrawStake`. Deregistering again while unbonding adds to it and restarts the delay.
    function deregisterNode() external {
        Node storage node = s_nodes[msg.sender];
        if (!node.registered) revert NodeNotRegistered(msg.sender);
        uint256 stake = node.stake;
        node.stake = 0;
        node.registered = false;
        Unbonding storage u = s_unbonding[msg.sender];
        u.amount += stake;
        uint64 releaseBlock = uint64(block.number) + i_unbondingBlocks;
        u.releaseBlock = releaseBlock;
        emit NodeDeregistered(msg.sender, stake, releaseBlock);
    }

    /// @notice Take back the caller's unbonded stake once its unbonding delay is over and none of
    /// its optimistic answers is still open (each may yet be slashed).
    function withdrawStake() external nonReentrant {
        Unbonding memory u = s_unbonding[msg.sender];
        if (u.amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.number < u.releaseBlock) revert StakeStillBonded(msg.sender, u.releaseBlock);
        uint32 open = s_nodes[msg.sender].openClaims;
        if (open != 0) revert OpenClaimsPending(msg.sender, open);
        delete s_unbonding[msg.sender];
        emit StakeWithdrawn(msg.sender, u.amount);
        _send(payable(msg.sender), u.amount);
    }

    /// @notice Owner: pause (ban) or resume a node address. The pause is kept per address, so it
    /// survives deregistration: a paused address can neither fulfil nor register again.
    /// @param node The node address (need not be registered).
    /// @param paused True to ban, false to lift the ban.
    function setNodePaused(address node, bool paused) external onlyOwner {
        s_paused[node] = paused;
        emit NodePausedSet(node, paused);
    }

    /// @notice True when `node` is registered, not paused, and its stake (after any slashing) is
    /// still at least `minStake()`.
    function isActiveNode(address node) public view returns (bool) {
        Node storage n = s_nodes[node];
        return n.registered && n.stake >= i_minStake && !s_paused[node];
    }

    /// @notice A node's stake and flags.
    function getNode(address node) external view returns (uint256 stake, bool registered, bool paused) {
        Node storage n = s_nodes[node];
        return (n.stake, n.registered, s_paused[node]);
    }

    /// @notice How many optimistic answers of `node` are posted and not yet resolved.
    function openClaims(address node) external view returns (uint32) {
        return s_nodes[node].openClaims;
    }

    /// @notice A deregistered node's stake still locked, and the block from which it may be withdrawn.
    function getUnbonding(address node) external view returns (uint256 amount, uint64 releaseBlock) {
        Unbonding storage u = s_unbonding[node];
        return (u.amount, u.releaseBlock);
    }

    // ---------------------------------------------------------------- serving
    /// @notice Declare that the caller (an active node) serves `modelId`: it holds the model and
    /// answers requests assigned to it.
    /// @param modelId A registered model.
    function serveModel(bytes32 modelId) external {
        if (!isActiveNode(msg.sender)) revert NotActiveNode(msg.sender);
        if (!s_models[modelId].exists) revert UnknownModel(modelId);
        if (s_serverSlots[modelId][msg.sender] != 0) revert AlreadyServingModel(modelId, msg.sender);
        s_servers[modelId].push(msg.sender);
        s_serverSlots[modelId][msg.sender] = s_servers[modelId].length;
        emit ModelServed(modelId, msg.sender);
    }

    /// @notice Stop serving `modelId`: no new request is assigned to the caller. Requests already
    /// assigned stay assigned (the caller may still answer them).
    /// @param modelId A model the caller serves.
    function stopServingModel(bytes32 modelId) external {
        _removeServer(modelId, msg.sender);
    }

    /// @notice Anyone: remove a node that is no longer active (deregistered or paused) from a
    /// model's serving list, so requests stop probing it.
    /// @param modelId The model.
    /// @param node An inactive node in its serving list.
    function dropInactiveServer(bytes32 modelId, address node) external {
        if (isActiveNode(node)) revert ServerStillActive(modelId, node);
        _removeServer(modelId, node);
    }

    /// @notice True when `node` is in `modelId`'s serving list (active or not).
    function isServingModel(bytes32 modelId, address node) external view returns (bool) {
        return s_serverSlots[modelId][node] != 0;
    }

    /// @notice The nodes that declared they serve `modelId`, in assignment order.
    function modelServers(bytes32 modelId) external view returns (address[] memory) {
        return s_servers[modelId];
    }

    /// @notice The node a pending request is assigned to (zero when not pending).
    function assignedNode(uint256 requestId) external view returns (address) {
        return s_assignees[requestId];
    }

    /// @notice Blocks after a request during which only its assigned node may answer.
    function exclusiveWindowBlocks() external view returns (uint32) {
        return i_exclusiveWindowBlocks;
    }

    // ---------------------------------------------------------------- fees
    /// @inheritdoc ICoordinator
    /// @dev Uses the fee configuration in force at the current block (a scheduled change counts
    /// from its effective block on, even before it was applied to storage) and this block's base
    /// fee (floored at `minGasPrice`) to price the callback gas and the answer's data
    /// (`ANSWER_GAS_PER_ELEMENT` per element of the model's input and output). Called from a
    /// transaction it is exact; an off-chain quote may be below the fee a later block asks when
    /// the base fee rises (send a margin: the excess is credited back).
    function quoteFee(bytes32 modelId, uint8 mode, uint32 callbackGasLimit) public view returns (uint256) {
        return _fee(_currentFees(), mode, callbackGasLimit, _answerElements(s_models[modelId]));
    }

    /// @notice Owner: schedule new fees. Each component must be under its cap; the change takes
    /// effect `feeChangeDelayBlocks()` blocks from now, so a consumer quoting now is not surprised
    /// by a fee raised in front of its request. A new schedule replaces a pending one. Changes come
    /// into force at least `requestTimeoutBlocks() + 1` blocks apart, so every request that may
    /// still be answered was priced by the configuration in force or the one before it.
    /// @param fees The new fee configuration.
    function setFeeConfig(FeeConfig calldata fees) external onlyOwner {
        _checkFeeCaps(fees);
        _applyScheduledFees();
        uint64 effectiveBlock = uint64(block.number) + i_feeChangeDelayBlocks;
        uint64 earliest = s_feesFromBlock + i_requestTimeoutBlocks + 1;
        if (effectiveBlock < earliest) effectiveBlock = earliest;
        s_pendingFees = fees;
        s_pendingFeesFromBlock = effectiveBlock;
        emit FeeConfigScheduled(
            fees.baseFee,
            fees.zkPremium,
            fees.optimisticPremium,
            fees.minGasPrice,
            fees.gasPriceMultiplierBps,
            effectiveBlock
        );
    }

    /// @notice Write a scheduled fee change whose effective block has come into storage (and emit
    /// `FeeConfigSet`). Anyone may call it; requests do it on their own, so it is never needed
    /// for correct fees.
    function applyFeeConfig() external {
        _applyScheduledFees();
    }

    /// @notice The fee configuration in force at the current block.
    function feeConfig() external view returns (FeeConfig memory) {
        return _currentFees();
    }

    /// @notice A scheduled fee change and the block it takes effect at (zero block: none pending).
    function pendingFeeConfig() external view returns (FeeConfig memory fees, uint64 effectiveBlock) {
        return (s_pendingFees, s_pendingFeesFromBlock);
    }

    /// @notice The caps on each fee component and the delay of a fee change, fixed at construction.
    function feeLimits() external view returns (FeeConfig memory caps, uint32 changeDelayBlocks) {
        return (
            FeeConfig(
                i_maxBaseFee, i_maxZkPremium, i_maxOptimisticPremium, i_maxMinGasPrice, i_maxGasPriceMultiplierBps
            ),
            i_feeChangeDelayBlocks
        );
    }

    /// @notice Wei owed to `node` and not yet withdrawn: fees a node earned, or what is owed to a
    /// consumer (fees of Zk requests answered with an error, overpayments).
    function nodeBalance(address node) external view returns (uint256) {
        return s_nodeBalances[node];
    }

    /// @notice Withdraw what the caller is owed (earned fees or refunds) to `to`.
    function withdrawFees(address payable to) external nonReentrant {
        uint256 amount = s_nodeBalances[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        s_nodeBalances[msg.sender] = 0;
        emit FeesWithdrawn(msg.sender, to, amount);
        _send(to, amount);
    }

    // ---------------------------------------------------------------- requests
    /// @inheritdoc ICoordinator
    function requestInference(bytes32 modelId, int256[] calldata input, uint8 mode, uint32 callbackGasLimit)
        external
        payable
        returns (uint256 requestId)
    {
        ModelInfo storage model = s_models[modelId];
        if (!model.exists) revert UnknownModel(modelId);
        if (mode > MODE_OPTIMISTIC) revert InvalidMode(mode);
        if (mode != MODE_NONE && model.verifier == address(0)) revert ModelNotVerifiable(modelId, mode);
        if (mode == MODE_OPTIMISTIC && s_optimistic.challengeWindowBlocks == 0) revert OptimisticModeDisabled();
        if (callbackGasLimit > i_maxCallbackGasLimit) {
            revert CallbackGasLimitTooHigh(callbackGasLimit, i_maxCallbackGasLimit);
        }
        if (input.length == 0) revert EmptyInput();
        if (input.length > i_maxInputLength) revert InputTooLong(input.length, i_maxInputLength);
        if (input.length != model.inputLength) revert InputLengthMismatch(modelId, input.length, model.inputLength);
        if (mode != MODE_NONE) {
            for (uint256 i = 0; i < input.length; ++i) {
                if (!FieldMath.inRange(input[i])) revert InputOutOfFieldRange(i, input[i]);
            }
        }
        uint256 fee = _fee(_applyScheduledFees(), mode, callbackGasLimit, _answerElements(model));
        if (msg.value < fee) revert InsufficientFee(fee, msg.value);

        requestId = s_nextRequestId++;
        address assignee = _assign(modelId, requestId);
        Request memory req = Request({
            requestId: requestId,
            modelId: modelId,
            consumer: msg.sender,
            mode: mode,
            callbackGasLimit: callbackGasLimit,
            requestedAtBlock: uint64(block.number),
            fee: fee,
            input: input
        });
        s_commitments[requestId] = keccak256(abi.encode(req));
        s_assignees[requestId] = assignee;
        emit InferenceRequested(requestId, modelId, msg.sender, input, mode, callbackGasLimit, fee);
        emit RequestAssigned(requestId, assignee, uint64(block.number) + i_exclusiveWindowBlocks);
        if (msg.value > fee) {
            s_nodeBalances[msg.sender] += msg.value - fee;
            emit OverpaymentCredited(requestId, msg.sender, msg.value - fee);
        }
    }

    /// @notice The stored commitment; zero when not pending (fulfilled, cancelled or unknown).
    function requestCommitment(uint256 requestId) external view returns (bytes32) {
        return s_commitments[requestId];
    }

    /// @notice The id the next request will get.
    function nextRequestId() external view returns (uint256) {
        return s_nextRequestId;
    }

    /// @notice Answer a pending request. Only active nodes; the request must match its commitment
    /// and its deadline (`requestedAtBlock + requestTimeoutBlocks()`) must not have passed. Before
    /// `requestedAtBlock + exclusiveWindowBlocks()` only the assigned node may answer
    /// (`NotAssignedNode`); from then on any active node serving the model may.
    /// @dev A successful answer has exactly the model's output length. In Zk mode it must carry a
    /// proof the model's verifier accepts, with the request's input followed by `output` as public
    /// instances, every output in the canonical signed field range. An Optimistic request is
    /// answered here only with an error; its output goes through `postOptimistic`. The consumer's
    /// callback gets exactly `callbackGasLimit` gas and its failure does not revert this call. A
    /// Zk or Optimistic error answer carries no output (`UnprovenOutput`): the node keeps the base
    /// fee and the callback gas it paid for, and the mode's premium (as configured at
    /// `requestedAtBlock`) goes back to the consumer.
    /// @param req The request exactly as committed.
    /// @param output Fixed-point output (empty when `err` is set).
    /// @param err Empty on success, otherwise a short reason of at most 256 bytes.
    /// @param proof EZKL proof for Zk mode; ignored otherwise.
    function fulfill(Request calldata req, int256[] calldata output, bytes calldata err, bytes calldata proof)
        external
        nonReentrant
    {
        if (!isActiveNode(msg.sender)) revert NotActiveNode(msg.sender);
        _fulfil(msg.sender, req, output, err, proof);
    }

    /// @notice Answer many pending requests in one transaction, each exactly as `fulfill` would,
    /// each on its own: an answer `fulfill` would refuse (not pending, expired, another node's,
    /// a bad proof, a wrong length) or one that runs out of gas is skipped with `AnswerRejected`
    /// and changes nothing, and never reverts the others. Every accepted answer emits its own
    /// `InferenceFulfilled` (and `FeeRefunded` where `fulfill` would).
    /// @dev Only the caller's being an active node is checked once for the whole batch. Each item
    /// runs in a call to `fulfillBatchItem` that keeps `BATCH_ITEM_RESERVE` gas back; an item the
    /// gas left cannot cover (its callback gas plus twice that reserve, plus `VERIFIER_GAS_LIMIT`
    /// for a proof) is rejected with `InsufficientGasForCallback` without being tried.
    /// @param answers At most 256 answers; their order is the order they are applied in.
    /// @return rejected Bit `i` is set when `answers[i]` was rejected (an `eth_call` of this tells
    /// a node which answers would land before it signs).
    function fulfillBatch(Answer[] calldata answers) external nonReentrant returns (uint256 rejected) {
        if (!isActiveNode(msg.sender)) revert NotActiveNode(msg.sender);
        uint256 n = answers.length;
        if (n > MAX_FULFIL_BATCH) revert BatchTooLarge(n, MAX_FULFIL_BATCH);
        for (uint256 i = 0; i < n; ++i) {
            Answer calldata answer = answers[i];
            uint256 requestId = answer.req.requestId;
            uint256 needed = uint256(answer.req.callbackGasLimit) + 2 * BATCH_ITEM_RESERVE;
            // A proof is checked with up to VERIFIER_GAS_LIMIT: a good proof short of gas must be
            // refused for the gas, never as InvalidProof.
            if (answer.req.mode == MODE_ZK && answer.err.length == 0) needed += VERIFIER_GAS_LIMIT;
            uint256 gasLeft = gasleft();
            if (gasLeft < needed) {
                rejected |= 1 << i;
                emit AnswerRejected(
                    requestId, msg.sender, abi.encodeWithSelector(InsufficientGasForCallback.selector, requestId)
                );
                continue;
            }
            try this.fulfillBatchItem{gas: gasLeft - BATCH_ITEM_RESERVE}(msg.sender, answer) {}
            catch (bytes memory reason) {
                rejected |= 1 << i;
                emit AnswerRejected(requestId, msg.sender, reason);
            }
        }
    }

    /// @notice One item of `fulfillBatch`; callable only by the Coordinator itself (from inside
    /// `fulfillBatch`, whose reentrancy lock it runs under).
    /// @param node The active node that sent the batch.
    /// @param answer The answer, as `fulfill` takes it.
    function fulfillBatchItem(address node, Answer calldata answer) external {
        if (msg.sender != address(this)) revert OnlyCoordinator(msg.sender);
        _fulfil(node, answer.req, answer.output, answer.err, answer.proof);
    }

    /// @dev `fulfill`'s checks and effects for `node`, an active node.
    function _fulfil(
        address node,
        Request calldata req,
        int256[] calldata output,
        bytes calldata err,
        bytes calldata proof
    ) private {
        bytes32 stored = s_commitments[req.requestId];
        // Zero means "not pending" (a hash slot, not a balance anyone can nudge).
        // slither-disable-next-line incorrect-equality
        if (stored == bytes32(0)) revert RequestNotPending(req.requestId);
        if (stored != keccak256(abi.encode(req))) revert CommitmentMismatch(req.requestId);
        uint256 deadline = uint256(req.requestedAtBlock) + i_requestTimeoutBlocks;
        if (block.number > deadline) revert RequestExpired(req.requestId, deadline);
        _checkAssignment(node, req);
        if (err.length > MAX_ERR_LENGTH) revert ErrorTooLong(req.requestId, err.length, MAX_ERR_LENGTH);
        if (err.length == 0) {
            ModelInfo storage model = s_models[req.modelId];
            uint32 outputLength = model.outputLength;
            if (output.length != outputLength) revert OutputLengthMismatch(req.requestId, output.length, outputLength);
            if (req.mode == MODE_ZK) _verify(req, model, output, proof);
            if (req.mode == MODE_OPTIMISTIC) revert OptimisticAnswerNeedsBond(req.requestId);
        } else if (req.mode != MODE_NONE && output.length != 0) {
            revert UnprovenOutput(req.requestId);
        }

        delete s_commitments[req.requestId];
        delete s_assignees[req.requestId];
        if (req.mode != MODE_NONE && err.length != 0) {
            // An unproven failure earns no premium: the consumer gets it back (withdrawable), so a
            // node gains nothing by answering "failed" instead of proving; the node keeps what
            // covers the callback it still pays for.
            uint256 premium = _premium(_feesAt(req.requestedAtBlock), req.mode);
            if (premium > req.fee) premium = req.fee;
            s_nodeBalances[req.consumer] += premium;
            s_nodeBalances[node] += req.fee - premium;
            emit FeeRefunded(req.requestId, req.consumer, premium);
        } else {
            s_nodeBalances[node] += req.fee;
        }

        bytes memory payload =
            abi.encodeCall(IInferenceConsumer.rawFulfillInference, (req.requestId, output, err));
        bool ok = _callWithExactGas(req.requestId, req.callbackGasLimit, req.consumer, payload);
        emit InferenceFulfilled(req.requestId, node, ok, output, err);
    }

    /// @notice Cancel an unanswered request after its deadline and refund the fee to the consumer.
    /// @param req The request exactly as committed; only its consumer may cancel.
    function cancelRequest(Request calldata req) external nonReentrant {
        bytes32 stored = s_commitments[req.requestId];
        if (stored == bytes32(0)) revert RequestNotPending(req.requestId);
        if (stored != keccak256(abi.encode(req))) revert CommitmentMismatch(req.requestId);
        if (msg.sender != req.consumer) revert NotRequestConsumer(req.requestId, msg.sender);
        uint256 deadline = uint256(req.requestedAtBlock) + i_requestTimeoutBlocks;
        if (block.number <= deadline) revert RequestNotExpired(req.requestId, deadline);
        delete s_commitments[req.requestId];
        delete s_assignees[req.requestId];
        emit RequestCancelled(req.requestId, req.consumer, req.fee);
        _send(payable(req.consumer), req.fee);
    }

    // ---------------------------------------------------------------- optimistic mode
    /// @notice Owner: set the optimistic-mode parameters. Optimistic requests are refused while
    /// `challengeWindowBlocks` is zero (the default). Answers already posted keep their bond and
    /// deadlines; the slash amount and challenger share in force at resolution apply.
    /// @param c The new parameters (see `OptimisticConfig` for the rules they must meet).
    function setOptimisticConfig(OptimisticConfig calldata c) external onlyOwner {
        if (c.challengeWindowBlocks == 0) revert InvalidOptimisticConfig(0);
        if (c.proofWindowBlocks == 0) revert InvalidOptimisticConfig(1);
        if (uint256(c.challengeWindowBlocks) + c.proofWindowBlocks > i_unbondingBlocks) {
            revert InvalidOptimisticConfig(2);
        }
        if (uint256(c.nodeBond) < VERIFIER_GAS_LIMIT * c.proofGasPrice || c.proofGasPrice == 0) {
            revert InvalidOptimisticConfig(3);
        }
        if (c.challengerBond == 0) revert InvalidOptimisticConfig(4);
        if (c.challengerShareBps > MAX_CHALLENGER_SHARE_BPS) revert InvalidOptimisticConfig(5);
        s_optimistic = c;
        emit OptimisticConfigSet(
            c.challengeWindowBlocks,
            c.proofWindowBlocks,
            c.nodeBond,
            c.challengerBond,
            c.stakeSlash,
            c.proofGasPrice,
            c.challengerShareBps
        );
    }

    /// @notice The optimistic-mode parameters in force.
    function optimisticConfig() external view returns (OptimisticConfig memory) {
        return s_optimistic;
    }

    /// @notice The stored hash of a request's open optimistic answer; zero when none.
    function claimCommitment(uint256 requestId) external view returns (bytes32) {
        return s_claims[requestId];
    }

    /// @notice Wei burned by slashing so far.
    function burnedWei() external view returns (uint256) {
        return s_burned;
    }

    /// @notice Post an optimistic answer to a pending Optimistic request, with a bond of at least
    /// `optimisticConfig().nodeBond` (`msg.value`; all of it is the bond). The same rules as
    /// `fulfill` decide who may answer and when. The consumer hears nothing yet: the answer is
    /// delivered by `finalize` after the challenge deadline, or by `proveOptimistic` if challenged.
    /// @param req The request exactly as committed (mode Optimistic).
    /// @param output Fixed-point output: the model's output length, each value in the canonical
    /// signed field range (so that it can be proven if challenged).
    function postOptimistic(Request calldata req, int256[] calldata output) external payable nonReentrant {
        if (!isActiveNode(msg.sender)) revert NotActiveNode(msg.sender);
        bytes32 stored = s_commitments[req.requestId];
        if (stored == bytes32(0)) revert RequestNotPending(req.requestId);
        if (stored != keccak256(abi.encode(req))) revert CommitmentMismatch(req.requestId);
        if (req.mode != MODE_OPTIMISTIC) revert NotOptimisticRequest(req.requestId, req.mode);
        uint256 deadline = uint256(req.requestedAtBlock) + i_requestTimeoutBlocks;
        if (block.number > deadline) revert RequestExpired(req.requestId, deadline);
        _checkAssignment(msg.sender, req);
        uint32 outputLength = s_models[req.modelId].outputLength;
        if (output.length != outputLength) revert OutputLengthMismatch(req.requestId, output.length, outputLength);
        for (uint256 i = 0; i < output.length; ++i) {
            if (!FieldMath.inRange(output[i])) revert OutputOutOfFieldRange(req.requestId, i, output[i]);
        }
        OptimisticConfig memory c = s_optimistic;
        if (msg.value < c.nodeBond) revert InsufficientBond(c.nodeBond, msg.value);

        uint64 challengeDeadline = uint64(block.number) + c.challengeWindowBlocks;
        uint64 proofDeadline = challengeDeadline + c.proofWindowBlocks;
        Claim memory claim = Claim({
            output: output,
            node: msg.sender,
            bond: SafeCast.toUint96(msg.value),
            challengeDeadline: challengeDeadline,
            proofDeadline: proofDeadline,
            challenger: address(0),
            challengerBond: 0
        });
        delete s_commitments[req.requestId];
        delete s_assignees[req.requestId];
        s_claims[req.requestId] = keccak256(abi.encode(req, claim));
        s_nodes[msg.sender].openClaims += 1;
        emit OptimisticAnswerPosted(req.requestId, msg.sender, output, msg.value, challengeDeadline, proofDeadline);
    }

    /// @notice Dispute a posted optimistic answer: anyone, once per answer, up to and including
    /// block `claim.challengeDeadline`, with a bond of at least `optimisticConfig().challengerBond`
    /// (`msg.value`). The node must then prove the answer by `claim.proofDeadline` or be slashed.
    /// @param req The request exactly as committed.
    /// @param claim The posted answer exactly as in `OptimisticAnswerPosted`.
    function challenge(Request calldata req, Claim calldata claim) external payable nonReentrant {
        _checkClaim(req, claim);
        if (claim.challenger != address(0)) revert AlreadyChallenged(req.requestId, claim.challenger);
        if (block.number > claim.challengeDeadline) {
            revert ChallengeWindowClosed(req.requestId, claim.challengeDeadline);
        }
        uint96 required = s_optimistic.challengerBond;
        if (msg.value < required) revert InsufficientBond(required, msg.value);
        Claim memory disputed = claim;
        disputed.challenger = msg.sender;
        disputed.challengerBond = SafeCast.toUint96(msg.value);
        s_claims[req.requestId] = keccak256(abi.encode(req, disputed));
        emit AnswerChallenged(req.requestId, msg.sender, msg.value);
    }

    /// @notice Prove a challenged answer: anyone, up to and including block `claim.proofDeadline`,
    /// with an EZKL proof of exactly the posted output for the request's input. The answer is then
    /// delivered (as by `finalize`) and the challenger's bond goes to the node. An invalid proof
    /// reverts (`InvalidProof`) and changes nothing.
    /// @param req The request exactly as committed.
    /// @param claim The challenged answer exactly as in `OptimisticAnswerPosted` and `AnswerChallenged`.
    /// @param proof The proof.
    function proveOptimistic(Request calldata req, Claim calldata claim, bytes calldata proof)
        external
        nonReentrant
    {
        _checkClaim(req, claim);
        if (claim.challenger == address(0)) revert NotChallenged(req.requestId);
        if (block.number > claim.proofDeadline) revert ProofWindowClosed(req.requestId, claim.proofDeadline);
        _verify(req, s_models[req.modelId], claim.output, proof);
        s_nodeBalances[claim.node] += claim.challengerBond;
        emit ChallengeDefeated(req.requestId, claim.node, claim.challenger, claim.challengerBond);
        _deliver(req, claim);
    }

    /// @notice Resolve an optimistic answer whose deadline has passed; anyone may call it. An
    /// unchallenged answer (after `claim.challengeDeadline`) is delivered: the consumer's callback
    /// fires once, with exactly its gas, and its failure changes nothing else; the node gets its
    /// bond and the fee. A challenged answer not proven by `claim.proofDeadline` is slashed (see
    /// `OptimisticAnswerSlashed`) and the request re-opens in Zk mode (`RequestReopened`).
    /// @param req The request exactly as committed.
    /// @param claim The answer exactly as in its events.
    function finalize(Request calldata req, Claim calldata claim) external nonReentrant {
        _checkClaim(req, claim);
        if (claim.challenger == address(0)) {
            if (block.number <= claim.challengeDeadline) {
                revert ChallengeWindowOpen(req.requestId, claim.challengeDeadline);
            }
        } else if (block.number <= claim.proofDeadline) {
            revert ProofWindowOpen(req.requestId, claim.proofDeadline);
        }
        _resolve(req, claim);
    }

    /// @notice `finalize` for up to 64 answers in one call, for keepers: items that cannot be
    /// resolved now (not open, mismatched, deadline not passed) are skipped, not reverted.
    /// @param reqs The requests.
    /// @param claims Their answers, in the same order.
    /// @return resolved How many items were resolved.
    function finalizeMany(Request[] calldata reqs, Claim[] calldata claims)
        external
        nonReentrant
        returns (uint256 resolved)
    {
        if (reqs.length != claims.length) revert BatchLengthMismatch(reqs.length, claims.length);
        if (reqs.length > MAX_FINALIZE_BATCH) revert BatchTooLarge(reqs.length, MAX_FINALIZE_BATCH);
        for (uint256 i = 0; i < reqs.length; ++i) {
            Request calldata req = reqs[i];
            Claim calldata claim = claims[i];
            bytes32 stored = s_claims[req.requestId];
            if (stored == bytes32(0) || stored != keccak256(abi.encode(req, claim))) continue;
            uint64 deadline = claim.challenger == address(0) ? claim.challengeDeadline : claim.proofDeadline;
            if (block.number <= deadline) continue;
            _resolve(req, claim);
            ++resolved;
        }
    }

    // ---------------------------------------------------------------- getters
    /// @notice Wei a node must stake.
    function minStake() external view returns (uint256) {
        return i_minStake;
    }

    /// @notice Blocks after a request before its consumer may cancel it.
    function requestTimeoutBlocks() external view returns (uint32) {
        return i_requestTimeoutBlocks;
    }

    /// @notice Largest callback gas limit a request may ask for.
    function maxCallbackGasLimit() external view returns (uint32) {
        return i_maxCallbackGasLimit;
    }

    /// @notice Largest input a request may carry.
    function maxInputLength() external view returns (uint32) {
        return i_maxInputLength;
    }

    /// @notice Blocks a deregistered node's stake stays locked (and slashable).
    function unbondingBlocks() external view returns (uint32) {
        return i_unbondingBlocks;
    }

    /// @notice Longest `err` a fulfilment may carry.
    function maxErrLength() external pure returns (uint256) {
        return MAX_ERR_LENGTH;
    }

    // ---------------------------------------------------------------- internals
    /// @dev Take `amount` from `node`'s stake: the active stake first, then the unbonding stake.
    /// The slashed wei stay in this contract; the caller decides where they go.
    function _slash(address node, uint256 amount) internal {
        Node storage n = s_nodes[node];
        Unbonding storage u = s_unbonding[node];
        uint256 available = uint256(n.stake) + u.amount;
        if (amount > available) revert SlashExceedsStake(node, amount, available);
        uint256 fromActive = amount < n.stake ? amount : n.stake;
        n.stake -= uint128(fromActive);
        u.amount -= amount - fromActive;
        emit NodeSlashed(node, amount);
    }

    /// @dev The claim must be the request's open optimistic answer.
    function _checkClaim(Request calldata req, Claim calldata claim) private view {
        bytes32 stored = s_claims[req.requestId];
        // Zero means "no open answer" (a hash slot, not a balance anyone can nudge).
        // slither-disable-next-line incorrect-equality
        if (stored == bytes32(0)) revert NoClaim(req.requestId);
        if (stored != keccak256(abi.encode(req, claim))) revert ClaimMismatch(req.requestId);
    }

    /// @dev Deadline passed: deliver an unchallenged answer, slash an unproven challenged one.
    function _resolve(Request calldata req, Claim calldata claim) private {
        if (claim.challenger == address(0)) {
            _deliver(req, claim);
        } else {
            _slashClaim(req, claim);
        }
    }

    /// @dev The one terminal success of an optimistic answer: close it, pay the node its bond and
    /// the fee, and call the consumer with exactly its gas (its failure changes nothing else).
    function _deliver(Request calldata req, Claim calldata claim) private {
        delete s_claims[req.requestId];
        s_nodes[claim.node].openClaims -= 1;
        s_nodeBalances[claim.node] += uint256(claim.bond) + req.fee;
        bytes memory payload =
            abi.encodeCall(IInferenceConsumer.rawFulfillInference, (req.requestId, claim.output, bytes("")));
        bool ok = _callWithExactGas(req.requestId, req.callbackGasLimit, req.consumer, payload);
        emit InferenceFulfilled(req.requestId, claim.node, ok, claim.output, "");
    }

    /// @dev The one terminal failure of an optimistic answer: take the node's bond and up to
    /// `stakeSlash` of its stake; the challenger gets its bond back and `challengerShareBps` of
    /// what was taken, the rest is burned; the request re-opens in Zk mode for the fee already
    /// paid, assigned to another node serving the model (or to none: then any may answer).
    function _slashClaim(Request calldata req, Claim calldata claim) private {
        delete s_claims[req.requestId];
        s_nodes[claim.node].openClaims -= 1;
        OptimisticConfig memory c = s_optimistic;
        uint256 available = uint256(s_nodes[claim.node].stake) + s_unbonding[claim.node].amount;
        uint256 fromStake = c.stakeSlash < available ? c.stakeSlash : available;
        if (fromStake != 0) _slash(claim.node, fromStake);
        uint256 slashed = uint256(claim.bond) + fromStake;
        uint256 toChallenger = (slashed * c.challengerShareBps) / 10_000;
        uint256 burned = slashed - toChallenger;
        s_nodeBalances[claim.challenger] += uint256(claim.challengerBond) + toChallenger;
        s_burned += burned;
        emit OptimisticAnswerSlashed(req.requestId, claim.node, claim.challenger, slashed, toChallenger, burned);
        _reopen(req, claim.node);
        // Burned wei leave the contract for good: nobody, the owner included, can take them.
        // slither-disable-next-line arbitrary-send-eth
        (bool sent,) = payable(address(0)).call{value: burned}("");
        if (!sent) revert TransferFailed(address(0), burned);
    }

    /// @dev Open a slashed request again in Zk mode, from this block, for the fee already paid.
    function _reopen(Request calldata req, address excluded) private {
        Request memory reopened = Request({
            requestId: req.requestId,
            modelId: req.modelId,
            consumer: req.consumer,
            mode: MODE_ZK,
            callbackGasLimit: req.callbackGasLimit,
            requestedAtBlock: uint64(block.number),
            fee: req.fee,
            input: req.input
        });
        address assignee = _findServer(req.modelId, req.requestId, excluded);
        s_commitments[req.requestId] = keccak256(abi.encode(reopened));
        s_assignees[req.requestId] = assignee;
        emit RequestReopened(
            req.requestId, req.modelId, req.consumer, req.input, MODE_ZK, req.callbackGasLimit, req.fee
        );
        uint64 exclusiveUntil = uint64(block.number);
        if (assignee != address(0)) exclusiveUntil += i_exclusiveWindowBlocks;
        emit RequestAssigned(req.requestId, assignee, exclusiveUntil);
    }

    /// @dev The request's node: rotate through the model's serving list by request id and take
    /// the first active node, looking at no more than `MAX_ASSIGN_PROBES` entries.
    function _assign(bytes32 modelId, uint256 requestId) private view returns (address node) {
        node = _findServer(modelId, requestId, address(0));
        if (node == address(0)) revert NoNodeServesModel(modelId);
    }

    /// @dev The first active node other than `excluded` in the model's serving list, starting at
    /// `requestId`'s turn and probing at most `MAX_ASSIGN_PROBES` entries; zero when none.
    function _findServer(bytes32 modelId, uint256 requestId, address excluded) private view returns (address) {
        address[] storage servers = s_servers[modelId];
        uint256 n = servers.length;
        uint256 probes = n < MAX_ASSIGN_PROBES ? n : MAX_ASSIGN_PROBES;
        for (uint256 i = 0; i < probes; ++i) {
            address node = servers[(requestId + i) % n];
            if (node != excluded && isActiveNode(node)) return node;
        }
        return address(0);
    }

    /// @dev Inside the exclusive window only the assignee may answer; after it, any node serving
    /// the model (the caller was checked to be active). A re-opened request nobody could be
    /// assigned to (assignee zero) is open to any serving node at once.
    function _checkAssignment(address node, Request calldata req) private view {
        address assigned = s_assignees[req.requestId];
        if (node == assigned) return;
        if (assigned != address(0) && block.number < uint256(req.requestedAtBlock) + i_exclusiveWindowBlocks) {
            revert NotAssignedNode(req.requestId, assigned);
        }
        if (s_serverSlots[req.modelId][node] == 0) revert NotServingModel(req.modelId, node);
    }

    function _removeServer(bytes32 modelId, address node) private {
        uint256 slot = s_serverSlots[modelId][node];
        if (slot == 0) revert NotServingModel(modelId, node);
        address[] storage servers = s_servers[modelId];
        address last = servers[servers.length - 1];
        servers[slot - 1] = last;
        s_serverSlots[modelId][last] = slot;
        servers.pop();
        delete s_serverSlots[modelId][node];
        emit ModelServingStopped(modelId, node);
    }

    function _fee(FeeConfig memory f, uint8 mode, uint32 callbackGasLimit, uint256 answerElements)
        private
        view
        returns (uint256 fee)
    {
        uint256 gasPrice = block.basefee > f.minGasPrice ? block.basefee : f.minGasPrice;
        uint256 gas = uint256(callbackGasLimit) + answerElements * ANSWER_GAS_PER_ELEMENT;
        fee = uint256(f.baseFee) + (gas * gasPrice * f.gasPriceMultiplierBps) / 10_000;
        fee += _premium(f, mode);
    }

    /// @dev Elements an answer for `model` carries: its input (in the request) and its output.
    function _answerElements(ModelInfo storage model) private view returns (uint256) {
        return uint256(model.inputLength) + model.outputLength;
    }

    /// @dev The part of a fee that pays for the mode's guarantee (none for None).
    function _premium(FeeConfig memory f, uint8 mode) private pure returns (uint256) {
        if (mode == MODE_ZK) return f.zkPremium;
        if (mode == MODE_OPTIMISTIC) return f.optimisticPremium;
        return 0;
    }

    /// @dev The fee configuration that was in force at block `at`, for a request that may still be
    /// answered (`at >= block.number - requestTimeoutBlocks()`): changes come into force more than
    /// `requestTimeoutBlocks()` blocks apart (`setFeeConfig`), so it is the configuration in force
    /// now or the one before it.
    function _feesAt(uint64 at) private view returns (FeeConfig memory) {
        uint64 from = s_pendingFeesFromBlock;
        if (from != 0 && at >= from) return s_pendingFees;
        return at >= s_feesFromBlock ? s_fees : s_previousFees;
    }

    function _currentFees() private view returns (FeeConfig memory) {
        uint64 from = s_pendingFeesFromBlock;
        return from != 0 && block.number >= from ? s_pendingFees : s_fees;
    }

    /// @dev Move a scheduled fee change whose effective block has come into `s_fees`; return the
    /// fees in force now.
    // `from == 0` means "nothing scheduled" (a block number, not a balance an attacker can nudge).
    // slither-disable-next-line incorrect-equality
    function _applyScheduledFees() private returns (FeeConfig memory) {
        uint64 from = s_pendingFeesFromBlock;
        if (from == 0 || block.number < from) return s_fees;
        FeeConfig memory f = s_pendingFees;
        s_previousFees = s_fees;
        s_fees = f;
        s_feesFromBlock = from;
        delete s_pendingFees;
        s_pendingFeesFromBlock = 0;
        emit FeeConfigSet(f.baseFee, f.zkPremium, f.optimisticPremium, f.minGasPrice, f.gasPriceMultiplierBps);
        return f;
    }

    function _checkFeeCaps(FeeConfig memory f) private view {
        if (f.baseFee > i_maxBaseFee) revert FeeAboveCap(0, f.baseFee, i_maxBaseFee);
        if (f.zkPremium > i_maxZkPremium) revert FeeAboveCap(1, f.zkPremium, i_maxZkPremium);
        if (f.optimisticPremium > i_maxOptimisticPremium) {
            revert FeeAboveCap(2, f.optimisticPremium, i_maxOptimisticPremium);
        }
        if (f.minGasPrice > i_maxMinGasPrice) revert FeeAboveCap(3, f.minGasPrice, i_maxMinGasPrice);
        if (f.gasPriceMultiplierBps > i_maxGasPriceMultiplierBps) {
            revert FeeAboveCap(4, f.gasPriceMultiplierBps, i_maxGasPriceMultiplierBps);
        }
    }

    /// @dev The inputs were checked to be in the canonical range at request time; the outputs are
    /// checked here, so every instance is the one field element of exactly one integer.
    /// The verifier must still have the code it was registered with (`VerifierCodeChanged`). It
    /// is called read-only with at most `VERIFIER_GAS_LIMIT` gas, and only the first 32 bytes of
    /// its answer are copied: anything but exactly the ABI encoding of `true` (a revert, running
    /// out of gas, a short, long or other answer) is `InvalidProof`.
    function _verify(
        Request calldata req,
        ModelInfo storage model,
        int256[] calldata output,
        bytes calldata proof
    ) private view {
        address verifier = model.verifier;
        bytes32 registered = model.verifierCodeHash;
        bytes32 current = verifier.codehash;
        if (current != registered) revert VerifierCodeChanged(req.modelId, registered, current);
        uint256 n = req.input.length;
        uint256[] memory instances = new uint256[](n + output.length);
        for (uint256 i = 0; i < n; ++i) {
            instances[i] = FieldMath.toField(req.input[i]);
        }
        for (uint256 i = 0; i < output.length; ++i) {
            int256 y = output[i];
            if (!FieldMath.inRange(y)) revert OutputOutOfFieldRange(req.requestId, i, y);
            instances[n + i] = FieldMath.toField(y);
        }
        bytes memory data = abi.encodeCall(IVerifier.verifyProof, (proof, instances));
        uint256 gasLimit = VERIFIER_GAS_LIMIT;
        bool valid;
        assembly ("memory-safe") {
            // Scratch space (0x00-0x1f) takes the one word we read; the rest is never copied.
            let ok := staticcall(gasLimit, verifier, add(data, 0x20), mload(data), 0x00, 0x20)
            valid := and(ok, and(eq(returndatasize(), 0x20), eq(mload(0x00), 1)))
        }
        if (!valid) revert InvalidProof(req.requestId);
    }

    /// @dev Forward exactly `gasAmount` gas to `target` (Chainlink's callWithExactGas): revert if
    /// the transaction cannot afford it under the 63/64 rule, never copy return data.
    function _callWithExactGas(uint256 requestId, uint256 gasAmount, address target, bytes memory data)
        private
        returns (bool success)
    {
        if (target.code.length == 0) return false;
        uint256 margin = CALLBACK_GAS_MARGIN;
        bool enough;
        assembly ("memory-safe") {
            let g := gas()
            // The call opcode costs up to `margin`; after it, 63/64 of the rest must cover gasAmount.
            if gt(g, margin) {
                g := sub(g, margin)
                enough := gt(sub(g, div(g, 64)), gasAmount)
            }
        }
        if (!enough) revert InsufficientGasForCallback(requestId);
        assembly ("memory-safe") {
            success := call(gasAmount, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
    }

    function _send(address payable to, uint256 amount) private {
        // Pull payments only: `to` is the caller withdrawing its own balance or stake, or the
        // consumer of the request being cancelled; never an address a third party chooses.
        // slither-disable-next-line arbitrary-send-eth
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
