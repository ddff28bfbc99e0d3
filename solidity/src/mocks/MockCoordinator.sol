// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ICoordinator} from "../interfaces/ICoordinator.sol";
import {IInferenceConsumer} from "../interfaces/IInferenceConsumer.sol";
import {IVerifier} from "../interfaces/IVerifier.sol";
import {FieldMath} from "../libraries/FieldMath.sol";

/// @title MockCoordinator
/// @notice A Coordinator for consumers' unit tests, driven by the test itself (as Chainlink's
/// `VRFCoordinatorV2_5Mock` is): no nodes, no stake, no assignment. A consumer deployed against it
/// requests exactly as against the real Coordinator (`requestInference`, `quoteFee`,
/// `cancelRequest`, `withdrawFees`, the same events and custom errors), and the test answers:
/// `fulfill(requestId, output)`, `fulfillError(requestId, reason)`, or in Zk mode
/// `fulfillWithProof(requestId, output, proof)`, which runs the model's registered verifier.
/// @dev Kept to the real Coordinator's consumer-facing rules: model ids are content-addressed the
/// same way; input and output lengths, field ranges, `MAX_ERR_LENGTH` and the request deadline
/// are checked; the callback gets exactly `callbackGasLimit` gas and its failure does not revert
/// the answer; a Zk error answer refunds the Zk premium to the consumer (withdrawable); a request
/// may be cancelled after its deadline for a refund. The fee is flat: `baseFee` plus `zkPremium`
/// for Zk, plus a fifth of `zkPremium` for Optimistic (the Coordinator's default ratio).
/// Optimistic mode (2) is played by the test without bonds or stake: `postOptimistic(id, output)`
/// posts an answer with the Coordinator's deadlines (`setOptimisticWindows`, 10 and 20 blocks by
/// default; `windowsOf(id)` tells which block to `vm.roll` to), `challenge(id)` disputes it up to
/// and including the challenge deadline, `proveOptimistic(id)` or `proveOptimisticWithProof(id,
/// proof)` defeats the challenge up to and including the proof deadline, and `finalize(id)`
/// delivers an unchallenged answer after the challenge deadline or, for a challenged one not
/// proven by the proof deadline, "slashes" it and re-opens the request in Zk mode (the consumer
/// is not called). The consumer hears of an optimistic answer only when it is finalised or
/// proven, exactly once, as from the Coordinator. Same events as the Coordinator's (bonds and
/// slashed amounts are zero). Not for deployment: anyone can answer any request.
contract MockCoordinator is ICoordinator {
    /// @notice Where a request stands. `Posted` and `Challenged`: an optimistic answer is open
    /// (unchallenged or challenged); a slashed one goes back to `Pending`, in Zk mode.
    enum Status {
        Unknown,
        Pending,
        Fulfilled,
        Cancelled,
        Posted,
        Challenged
    }

    /// @notice An open optimistic answer.
    struct MockClaim {
        int256[] output;
        address node;
        uint64 challengeDeadline;
        uint64 proofDeadline;
        address challenger;
    }

    uint8 internal constant MODE_NONE = 0;
    uint8 internal constant MODE_ZK = 1;
    uint8 internal constant MODE_OPTIMISTIC = 2;
    /// @dev As in the Coordinator.
    uint256 internal constant MAX_ERR_LENGTH = 256;
    uint256 internal constant CALLBACK_GAS_MARGIN = 5_000;
    uint256 internal constant VERIFIER_GAS_LIMIT = 1_500_000;
    uint8 internal constant MAX_SCALE = 64;

    uint96 private immutable i_baseFee;
    uint96 private immutable i_zkPremium;
    uint32 private immutable i_requestTimeoutBlocks;
    uint32 private immutable i_maxCallbackGasLimit;

    uint64 private s_nextRequestId = 1;
    uint32 private s_challengeWindowBlocks = 10;
    uint32 private s_proofWindowBlocks = 20;
    bool private s_delivering;
    mapping(bytes32 modelId => ModelInfo) private s_models;
    mapping(uint256 requestId => Request) private s_requests;
    mapping(uint256 requestId => Status) private s_status;
    mapping(address account => uint256) private s_balances;
    mapping(uint256 requestId => MockClaim) private s_claims;

    // Same declarations as the Coordinator's, so `expectRevert(X.selector)` means the same.
    error ScaleTooLarge(uint8 inputScale, uint8 outputScale, uint8 max);
    error InvalidModelShape(bytes32 modelId, uint32 inputLength, uint32 outputLength);
    error VerifierHasNoCode(address verifier);
    error UnknownModel(bytes32 modelId);
    error InvalidMode(uint8 mode);
    error ModelNotVerifiable(bytes32 modelId, uint8 mode);
    error CallbackGasLimitTooHigh(uint32 limit, uint32 max);
    error EmptyInput();
    error InputLengthMismatch(bytes32 modelId, uint256 length, uint32 expected);
    error InputOutOfFieldRange(uint256 index, int256 value);
    error OutputOutOfFieldRange(uint256 requestId, uint256 index, int256 value);
    error OutputLengthMismatch(uint256 requestId, uint256 length, uint32 expected);
    error ErrorTooLong(uint256 requestId, uint256 length, uint256 max);
    error RequestExpired(uint256 requestId, uint256 deadlineBlock);
    error InsufficientFee(uint256 required, uint256 provided);
    error RequestNotPending(uint256 requestId);
    error CommitmentMismatch(uint256 requestId);
    error InvalidProof(uint256 requestId);
    error InsufficientGasForCallback(uint256 requestId);
    error NotRequestConsumer(uint256 requestId, address caller);
    error RequestNotExpired(uint256 requestId, uint256 deadlineBlock);
    error TransferFailed(address to, uint256 amount);
    error NothingToWithdraw(address node);
    error NotOptimisticRequest(uint256 requestId, uint8 mode);
    error OptimisticAnswerNeedsBond(uint256 requestId);
    error NoClaim(uint256 requestId);
    error AlreadyChallenged(uint256 requestId, address challenger);
    error NotChallenged(uint256 requestId);
    error ChallengeWindowClosed(uint256 requestId, uint64 challengeDeadline);
    error ChallengeWindowOpen(uint256 requestId, uint64 challengeDeadline);
    error ProofWindowClosed(uint256 requestId, uint64 proofDeadline);
    error ProofWindowOpen(uint256 requestId, uint64 proofDeadline);
    /// @notice Only in the mock: a window of zero blocks.
    error InvalidWindows(uint32 challengeWindowBlocks, uint32 proofWindowBlocks);
    /// @notice Only in the mock: an answer was sent from inside a consumer's callback.
    error ReentrantAnswer(uint256 requestId);
    /// @notice Only in the mock: `fulfillWithProof` on a request that is not Zk mode.
    error NotZkRequest(uint256 requestId);
    /// @notice Only in the mock: `fulfillError` without a reason (an empty error means success).
    error EmptyReason(uint256 requestId);

    // Same declarations as the Coordinator's events.
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
    event OverpaymentCredited(uint256 indexed requestId, address indexed consumer, uint256 amount);
    event FeesWithdrawn(address indexed node, address indexed to, uint256 amount);
    event InferenceFulfilled(
        uint256 indexed requestId, address indexed node, bool callbackSucceeded, int256[] output, bytes err
    );
    event FeeRefunded(uint256 indexed requestId, address indexed consumer, uint256 amount);
    event RequestCancelled(uint256 indexed requestId, address indexed consumer, uint256 refund);
    event OptimisticAnswerPosted(
        uint256 indexed requestId,
        address indexed node,
        int256[] output,
        uint256 bond,
        uint64 challengeDeadline,
        uint64 proofDeadline
    );
    event AnswerChallenged(uint256 indexed requestId, address indexed challenger, uint256 bond);
    event ChallengeDefeated(
        uint256 indexed requestId, address indexed node, address indexed challenger, uint256 challengerBond
    );
    event OptimisticAnswerSlashed(
        uint256 indexed requestId,
        address indexed node,
        address indexed challenger,
        uint256 slashed,
        uint256 toChallenger,
        uint256 burned
    );
    event RequestReopened(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed consumer,
        int256[] input,
        uint8 mode,
        uint32 callbackGasLimit,
        uint256 fee
    );

    /// @param baseFee Fee of every request, in wei.
    /// @param zkPremium Added to the fee of a Zk request; refunded on a Zk error answer.
    /// @param requestTimeoutBlocks_ Blocks after a request before it expires (answers are refused,
    /// the consumer may cancel).
    /// @param maxCallbackGasLimit_ Largest callback gas a request may ask for.
    constructor(uint96 baseFee, uint96 zkPremium, uint32 requestTimeoutBlocks_, uint32 maxCallbackGasLimit_) {
        i_baseFee = baseFee;
        i_zkPremium = zkPremium;
        i_requestTimeoutBlocks = requestTimeoutBlocks_;
        i_maxCallbackGasLimit = maxCallbackGasLimit_;
    }

    // ---------------------------------------------------------------- models
    /// @notice Register a model, as `Coordinator.registerModel` does (same id, same checks).
    function registerModel(
        bytes32 onnxHash,
        uint32 inputLength,
        uint32 outputLength,
        uint8 inputScale,
        uint8 outputScale,
        address verifier
    ) external returns (bytes32 modelId) {
        bytes32 verifierCodeHash = verifier == address(0) ? bytes32(0) : verifier.codehash;
        modelId = keccak256(abi.encode(onnxHash, verifierCodeHash, inputLength, outputLength, inputScale, outputScale));
        if (s_models[modelId].exists) return modelId;
        if (inputLength == 0 || outputLength == 0) revert InvalidModelShape(modelId, inputLength, outputLength);
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

    /// @notice A model's record (`exists` is false for an unknown id).
    function getModel(bytes32 modelId) external view returns (ModelInfo memory) {
        return s_models[modelId];
    }

    // ---------------------------------------------------------------- requests (consumer side)
    /// @inheritdoc ICoordinator
    function quoteFee(bytes32, uint8 mode, uint32) public view returns (uint256 fee) {
        fee = i_baseFee + _premium(mode);
    }

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
        if (callbackGasLimit > i_maxCallbackGasLimit) {
            revert CallbackGasLimitTooHigh(callbackGasLimit, i_maxCallbackGasLimit);
        }
        if (input.length == 0) revert EmptyInput();
        if (input.length != model.inputLength) revert InputLengthMismatch(modelId, input.length, model.inputLength);
        if (mode != MODE_NONE) {
            for (uint256 i = 0; i < input.length; ++i) {
                if (!FieldMath.inRange(input[i])) revert InputOutOfFieldRange(i, input[i]);
            }
        }
        uint256 fee = quoteFee(modelId, mode, callbackGasLimit);
        if (msg.value < fee) revert InsufficientFee(fee, msg.value);

        requestId = s_nextRequestId++;
        s_requests[requestId] = Request({
            requestId: requestId,
            modelId: modelId,
            consumer: msg.sender,
            mode: mode,
            callbackGasLimit: callbackGasLimit,
            requestedAtBlock: uint64(block.number),
            fee: fee,
            input: input
        });
        s_status[requestId] = Status.Pending;
        emit InferenceRequested(requestId, modelId, msg.sender, input, mode, callbackGasLimit, fee);
        if (msg.value > fee) {
            s_balances[msg.sender] += msg.value - fee;
            emit OverpaymentCredited(requestId, msg.sender, msg.value - fee);
        }
    }

    /// @notice Cancel an unanswered request after its deadline; the fee goes back to the consumer.
    /// @param req The request exactly as made (see `getRequest`); only its consumer may cancel.
    function cancelRequest(Request calldata req) external {
        uint256 requestId = req.requestId;
        if (s_status[requestId] != Status.Pending) revert RequestNotPending(requestId);
        if (keccak256(abi.encode(req)) != requestCommitment(requestId)) revert CommitmentMismatch(requestId);
        if (msg.sender != req.consumer) revert NotRequestConsumer(requestId, msg.sender);
        uint256 deadline = deadlineBlock(requestId);
        if (block.number <= deadline) revert RequestNotExpired(requestId, deadline);
        s_status[requestId] = Status.Cancelled;
        emit RequestCancelled(requestId, req.consumer, req.fee);
        _send(payable(req.consumer), req.fee);
    }

    /// @notice Withdraw what this contract credited to the caller (overpayments, Zk premiums of
    /// error answers) to `to`.
    function withdrawFees(address payable to) external {
        uint256 amount = s_balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        s_balances[msg.sender] = 0;
        emit FeesWithdrawn(msg.sender, to, amount);
        _send(to, amount);
    }

    // ---------------------------------------------------------------- answers (test side)
    /// @notice Answer `requestId` with `output` (None or Zk mode; in Zk mode no proof is checked,
    /// use `fulfillWithProof` to run the verifier).
    /// An Optimistic request is refused (`OptimisticAnswerNeedsBond`), as by the Coordinator: use
    /// `postOptimistic`.
    function fulfill(uint256 requestId, int256[] calldata output) external {
        Request storage req = _pending(requestId);
        if (req.mode == MODE_OPTIMISTIC) revert OptimisticAnswerNeedsBond(requestId);
        _checkOutput(req, output);
        _pay(requestId, msg.sender, req.fee);
        _deliver(req, msg.sender, output, "");
    }

    /// @notice Answer a Zk request with `output` and its proof, checked by the model's verifier
    /// with the input then the output as public instances, as the Coordinator does.
    function fulfillWithProof(uint256 requestId, int256[] calldata output, bytes calldata proof) external {
        Request storage req = _pending(requestId);
        if (req.mode != MODE_ZK) revert NotZkRequest(requestId);
        _checkOutput(req, output);
        _verify(req, output, proof);
        _pay(requestId, msg.sender, req.fee);
        _deliver(req, msg.sender, output, "");
    }

    /// @notice Answer `requestId` with an error (no output). In Zk or Optimistic mode the mode's
    /// premium is credited back to the consumer (`withdrawFees`), as the Coordinator does.
    function fulfillError(uint256 requestId, bytes calldata reason) external {
        Request storage req = _pending(requestId);
        if (reason.length == 0) revert EmptyReason(requestId);
        if (reason.length > MAX_ERR_LENGTH) revert ErrorTooLong(requestId, reason.length, MAX_ERR_LENGTH);
        uint256 fee = req.fee;
        if (req.mode != MODE_NONE) {
            uint256 premium = _premium(req.mode);
            if (premium > fee) premium = fee;
            s_balances[req.consumer] += premium;
            emit FeeRefunded(requestId, req.consumer, premium);
            fee -= premium;
        }
        _pay(requestId, msg.sender, fee);
        _deliver(req, msg.sender, new int256[](0), reason);
    }

    // ---------------------------------------------------------------- optimistic mode (test side)
    /// @notice Set the optimistic windows for answers posted from now on (as the Coordinator's
    /// `setOptimisticConfig` does; bonds and stake do not exist in the mock).
    function setOptimisticWindows(uint32 challengeWindowBlocks, uint32 proofWindowBlocks) external {
        if (challengeWindowBlocks == 0 || proofWindowBlocks == 0) {
            revert InvalidWindows(challengeWindowBlocks, proofWindowBlocks);
        }
        s_challengeWindowBlocks = challengeWindowBlocks;
        s_proofWindowBlocks = proofWindowBlocks;
    }

    /// @notice Post an optimistic answer to a pending Optimistic request, as a node would (the
    /// caller is the node). Challengeable up to and including block `challengeDeadline`, this
    /// block plus the challenge window; provable up to and including `proofDeadline`, the
    /// challenge deadline plus the proof window. The consumer is not called.
    function postOptimistic(uint256 requestId, int256[] calldata output) external {
        Request storage req = _pending(requestId);
        if (req.mode != MODE_OPTIMISTIC) revert NotOptimisticRequest(requestId, req.mode);
        _checkOutput(req, output);
        uint64 challengeDeadline = uint64(block.number) + s_challengeWindowBlocks;
        uint64 proofDeadline = challengeDeadline + s_proofWindowBlocks;
        s_claims[requestId] = MockClaim({
            output: output,
            node: msg.sender,
            challengeDeadline: challengeDeadline,
            proofDeadline: proofDeadline,
            challenger: address(0)
        });
        s_status[requestId] = Status.Posted;
        emit OptimisticAnswerPosted(requestId, msg.sender, output, 0, challengeDeadline, proofDeadline);
    }

    /// @notice Dispute the posted answer (the caller is the challenger), up to and including its
    /// challenge deadline; once per answer.
    function challenge(uint256 requestId) external {
        MockClaim storage claim = _claim(requestId);
        if (claim.challenger != address(0)) revert AlreadyChallenged(requestId, claim.challenger);
        if (block.number > claim.challengeDeadline) revert ChallengeWindowClosed(requestId, claim.challengeDeadline);
        claim.challenger = msg.sender;
        s_status[requestId] = Status.Challenged;
        emit AnswerChallenged(requestId, msg.sender, 0);
    }

    /// @notice Defeat the challenge without a proof (the test stands for a valid one), up to and
    /// including the proof deadline: the posted answer is delivered.
    function proveOptimistic(uint256 requestId) external {
        _prove(requestId);
    }

    /// @notice Defeat the challenge with a proof the model's verifier must accept for the request's
    /// input and the posted output, as the Coordinator's `proveOptimistic`.
    function proveOptimisticWithProof(uint256 requestId, bytes calldata proof) external {
        // The Coordinator's order: the answer must be challenged and in its proof window first.
        _verify(s_requests[requestId], _provable(requestId).output, proof);
        _prove(requestId);
    }

    /// @notice Resolve the posted answer once its deadline passed: unchallenged, after the
    /// challenge deadline, it is delivered; challenged and unproven, after the proof deadline, it
    /// is "slashed" and the request re-opens in Zk mode from this block (the consumer is not
    /// called; answer it again with `fulfill`/`fulfillWithProof`).
    function finalize(uint256 requestId) external {
        MockClaim storage claim = _claim(requestId);
        address node = claim.node;
        if (claim.challenger == address(0)) {
            if (block.number <= claim.challengeDeadline) {
                revert ChallengeWindowOpen(requestId, claim.challengeDeadline);
            }
            int256[] memory output = claim.output;
            delete s_claims[requestId];
            Request storage req = s_requests[requestId];
            _pay(requestId, node, req.fee);
            _deliver(req, node, output, "");
            return;
        }
        if (block.number <= claim.proofDeadline) revert ProofWindowOpen(requestId, claim.proofDeadline);
        address challenger = claim.challenger;
        delete s_claims[requestId];
        Request storage reopened = s_requests[requestId];
        reopened.mode = MODE_ZK;
        reopened.requestedAtBlock = uint64(block.number);
        s_status[requestId] = Status.Pending;
        emit OptimisticAnswerSlashed(requestId, node, challenger, 0, 0, 0);
        emit RequestReopened(
            requestId,
            reopened.modelId,
            reopened.consumer,
            reopened.input,
            MODE_ZK,
            reopened.callbackGasLimit,
            reopened.fee
        );
    }

    /// @notice The open answer's deadlines: roll to `challengeDeadline + 1` to finalise an
    /// unchallenged answer, to `proofDeadline + 1` to slash a challenged one. Zero when none.
    function windowsOf(uint256 requestId) external view returns (uint64 challengeDeadline, uint64 proofDeadline) {
        MockClaim storage claim = s_claims[requestId];
        return (claim.challengeDeadline, claim.proofDeadline);
    }

    /// @notice The open answer (empty when none).
    function getClaim(uint256 requestId) external view returns (MockClaim memory) {
        return s_claims[requestId];
    }

    // ---------------------------------------------------------------- views
    /// @notice The request as made: what `cancelRequest` takes.
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return s_requests[requestId];
    }

    /// @notice Where `requestId` stands.
    function requestStatus(uint256 requestId) external view returns (Status) {
        return s_status[requestId];
    }

    /// @notice As the Coordinator's: the request's commitment while pending, else zero.
    function requestCommitment(uint256 requestId) public view returns (bytes32) {
        if (s_status[requestId] != Status.Pending) return bytes32(0);
        return keccak256(abi.encode(s_requests[requestId]));
    }

    /// @notice Last block at which `requestId` may be answered (cancellable after it).
    function deadlineBlock(uint256 requestId) public view returns (uint256) {
        return uint256(s_requests[requestId].requestedAtBlock) + i_requestTimeoutBlocks;
    }

    /// @notice The id the next request will get.
    function nextRequestId() external view returns (uint256) {
        return s_nextRequestId;
    }

    /// @notice Wei credited to `account` (withdrawable with `withdrawFees`).
    function nodeBalance(address account) external view returns (uint256) {
        return s_balances[account];
    }

    /// @notice Blocks after a request before it expires.
    function requestTimeoutBlocks() external view returns (uint32) {
        return i_requestTimeoutBlocks;
    }

    /// @notice Largest callback gas a request may ask for.
    function maxCallbackGasLimit() external view returns (uint32) {
        return i_maxCallbackGasLimit;
    }

    /// @notice Longest error an answer may carry.
    function maxErrLength() external pure returns (uint256) {
        return MAX_ERR_LENGTH;
    }

    // ---------------------------------------------------------------- internals
    function _pending(uint256 requestId) private view returns (Request storage req) {
        if (s_delivering) revert ReentrantAnswer(requestId);
        if (s_status[requestId] != Status.Pending) revert RequestNotPending(requestId);
        req = s_requests[requestId];
        uint256 deadline = deadlineBlock(requestId);
        if (block.number > deadline) revert RequestExpired(requestId, deadline);
    }

    function _checkOutput(Request storage req, int256[] calldata output) private view {
        uint32 expected = s_models[req.modelId].outputLength;
        if (output.length != expected) revert OutputLengthMismatch(req.requestId, output.length, expected);
        if (req.mode == MODE_NONE) return;
        for (uint256 i = 0; i < output.length; ++i) {
            if (!FieldMath.inRange(output[i])) revert OutputOutOfFieldRange(req.requestId, i, output[i]);
        }
    }

    /// @dev The open optimistic answer of `requestId`, outside any callback.
    function _claim(uint256 requestId) private view returns (MockClaim storage claim) {
        if (s_delivering) revert ReentrantAnswer(requestId);
        Status status = s_status[requestId];
        if (status != Status.Posted && status != Status.Challenged) revert NoClaim(requestId);
        claim = s_claims[requestId];
    }

    /// @dev The open answer of `requestId`, challenged and still in its proof window.
    function _provable(uint256 requestId) private view returns (MockClaim storage claim) {
        claim = _claim(requestId);
        if (claim.challenger == address(0)) revert NotChallenged(requestId);
        if (block.number > claim.proofDeadline) revert ProofWindowClosed(requestId, claim.proofDeadline);
    }

    function _prove(uint256 requestId) private {
        MockClaim storage claim = _provable(requestId);
        address challenger = claim.challenger;
        address node = claim.node;
        int256[] memory output = claim.output;
        delete s_claims[requestId];
        emit ChallengeDefeated(requestId, node, challenger, 0);
        Request storage req = s_requests[requestId];
        _pay(requestId, node, req.fee);
        _deliver(req, node, output, "");
    }

    /// @dev The mock has no node: what the node would earn is credited to the answering caller
    /// (the poster of an optimistic answer).
    function _pay(uint256 requestId, address to, uint256 amount) private {
        s_status[requestId] = Status.Fulfilled;
        s_balances[to] += amount;
    }

    function _premium(uint8 mode) private view returns (uint256) {
        if (mode == MODE_ZK) return i_zkPremium;
        if (mode == MODE_OPTIMISTIC) return i_zkPremium / 5;
        return 0;
    }

    function _verify(Request storage req, int256[] memory output, bytes calldata proof) private view {
        int256[] storage input = req.input;
        uint256 n = input.length;
        uint256[] memory instances = new uint256[](n + output.length);
        for (uint256 i = 0; i < n; ++i) {
            instances[i] = FieldMath.toField(input[i]);
        }
        for (uint256 i = 0; i < output.length; ++i) {
            instances[n + i] = FieldMath.toField(output[i]);
        }
        address verifier = s_models[req.modelId].verifier;
        bytes memory data = abi.encodeCall(IVerifier.verifyProof, (proof, instances));
        uint256 gasLimit = VERIFIER_GAS_LIMIT;
        bool valid;
        // As in the Coordinator: read-only, gas-capped, one word of the answer copied; anything
        // but exactly the encoding of `true` is `InvalidProof`.
        assembly ("memory-safe") {
            let ok := staticcall(gasLimit, verifier, add(data, 0x20), mload(data), 0x00, 0x20)
            valid := and(ok, and(eq(returndatasize(), 0x20), eq(mload(0x00), 1)))
        }
        if (!valid) revert InvalidProof(req.requestId);
    }

    /// @dev Call the consumer with exactly `callbackGasLimit` gas; its failure is reported in the
    /// event, not raised. The one delivery of every mode, optimistic answers included.
    function _deliver(Request storage req, address node, int256[] memory output, bytes memory err) private {
        uint256 requestId = req.requestId;
        address consumer = req.consumer;
        uint256 gasAmount = req.callbackGasLimit;
        bytes memory payload = abi.encodeCall(IInferenceConsumer.rawFulfillInference, (requestId, output, err));
        bool ok;
        if (consumer.code.length != 0) {
            uint256 g = gasleft();
            if (g <= CALLBACK_GAS_MARGIN || g - CALLBACK_GAS_MARGIN - (g - CALLBACK_GAS_MARGIN) / 64 <= gasAmount) {
                revert InsufficientGasForCallback(requestId);
            }
            // The assembly call between the two writes is the callback the flag guards; Slither
            // does not see calls in assembly.
            // slither-disable-next-line write-after-write
            s_delivering = true;
            assembly ("memory-safe") {
                ok := call(gasAmount, consumer, 0, add(payload, 0x20), mload(payload), 0, 0)
            }
            s_delivering = false;
        }
        emit InferenceFulfilled(requestId, node, ok, output, err);
    }

    function _send(address payable to, uint256 amount) private {
        // Pull payments only: `to` is named by the account withdrawing its own balance, or is the
        // consumer of the request it cancels.
        // slither-disable-next-line arbitrary-send-eth
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
