// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {ICoordinator} from "./interfaces/ICoordinator.sol";
import {IInferenceConsumer} from "./interfaces/IInferenceConsumer.sol";
import {IVerifier} from "./interfaces/IVerifier.sol";

/// @title Coordinator
/// @notice Takes inference requests from consumer contracts, keeps a commitment per request,
/// and delivers results from staked nodes back to the consumer with exactly the gas it asked for.
/// @dev Commitment pattern after Chainlink VRF: only `keccak256(abi.encode(Request))` is stored;
/// the fulfilling node repeats the request. The callback never reverts the fulfilment.
contract Coordinator is ICoordinator, Ownable2Step, ReentrancyGuard {
    /// @notice Fee parameters, set by the owner.
    struct FeeConfig {
        uint96 baseFee;
        uint96 zkPremium;
        uint64 feePerCallbackGas;
    }

    struct Node {
        uint256 stake;
        bool registered;
        bool paused;
    }

    uint8 internal constant MODE_NONE = 0;
    uint8 internal constant MODE_ZK = 1;
    uint8 internal constant MODE_OPTIMISTIC = 2;
    /// @dev Order of the BN254 scalar field: EZKL's public instances live there.
    uint256 internal constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @dev Gas kept back for the work after the callback (event, return) and the call itself.
    uint256 internal constant CALLBACK_GAS_MARGIN = 5_000;

    uint256 private immutable i_minStake;
    uint32 private immutable i_requestTimeoutBlocks;
    uint32 private immutable i_maxCallbackGasLimit;
    uint32 private immutable i_maxInputLength;

    FeeConfig private s_fees;
    uint256 private s_nextRequestId = 1;
    mapping(bytes32 modelId => ModelInfo) private s_models;
    mapping(address node => Node) private s_nodes;
    mapping(address node => uint256) private s_nodeBalances;
    mapping(uint256 requestId => bytes32) private s_commitments;

    // ---------------------------------------------------------------- errors
    error ModelAlreadyRegistered(bytes32 modelId);
    error InvalidModelShape(bytes32 modelId, uint32 inputLength, uint32 outputLength);
    error VerifierHasNoCode(address verifier);
    error UnknownModel(bytes32 modelId);
    error InvalidMode(uint8 mode);
    error ModelNotVerifiable(bytes32 modelId, uint8 mode);
    error ModeNotSupported(uint8 mode);
    error CallbackGasLimitTooHigh(uint32 limit, uint32 max);
    error EmptyInput();
    error InputTooLong(uint256 length, uint32 max);
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

    // ---------------------------------------------------------------- events
    /// @notice A model record was created.
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed owner,
        address verifier,
        uint32 inputLength,
        uint32 outputLength,
        uint8 inputScale,
        uint8 outputScale
    );
    /// @notice A node staked and may now fulfil.
    event NodeRegistered(address indexed node, uint256 stake);
    /// @notice A node left and took its stake back.
    event NodeDeregistered(address indexed node, uint256 stake);
    /// @notice The owner paused or resumed a node.
    event NodePausedSet(address indexed node, bool paused);
    /// @notice The owner changed the fees.
    event FeeConfigSet(uint96 baseFee, uint96 zkPremium, uint64 feePerCallbackGas);
    /// @notice A node withdrew the fees it earned.
    event FeesWithdrawn(address indexed node, address indexed to, uint256 amount);
    /// @notice A request was answered; `callbackSucceeded` is false if the consumer's callback failed.
    event InferenceFulfilled(
        uint256 indexed requestId, address indexed node, bool callbackSucceeded, int256[] output, bytes err
    );
    /// @notice An expired request was cancelled and its fee refunded to the consumer.
    /// @notice A Zk request was answered with an error and no proof: its fee is owed to the consumer.
    event FeeRefunded(uint256 indexed requestId, address indexed consumer, uint256 amount);
    event RequestCancelled(uint256 indexed requestId, address indexed consumer, uint256 refund);

    /// @param minStake Wei a node must stake to fulfil.
    /// @param requestTimeoutBlocks Blocks after which the consumer may cancel an unanswered request.
    /// @param maxCallbackGasLimit Upper bound on a request's callback gas.
    /// @param maxInputLength Upper bound on a request's input length.
    /// @param fees Initial fee configuration.
    constructor(
        uint256 minStake,
        uint32 requestTimeoutBlocks,
        uint32 maxCallbackGasLimit,
        uint32 maxInputLength,
        FeeConfig memory fees
    ) Ownable(msg.sender) {
        i_minStake = minStake;
        i_requestTimeoutBlocks = requestTimeoutBlocks;
        i_maxCallbackGasLimit = maxCallbackGasLimit;
        i_maxInputLength = maxInputLength;
        s_fees = fees;
        emit FeeConfigSet(fees.baseFee, fees.zkPremium, fees.feePerCallbackGas);
    }

    // ---------------------------------------------------------------- models
    /// @notice Register a model. Records are immutable; new weights or settings are a new model.
    /// @param modelId SHA-256 of the ONNX bytes (not checkable on chain; nodes check it).
    /// @param verifier EZKL verifier for Zk/Optimistic, or zero for plain mode only.
    function registerModel(
        bytes32 modelId,
        uint32 inputLength,
        uint32 outputLength,
        uint8 inputScale,
        uint8 outputScale,
        address verifier
    ) external {
        if (s_models[modelId].exists) revert ModelAlreadyRegistered(modelId);
        if (inputLength == 0 || outputLength == 0 || inputLength > i_maxInputLength) {
            revert InvalidModelShape(modelId, inputLength, outputLength);
        }
        if (verifier != address(0) && verifier.code.length == 0) revert VerifierHasNoCode(verifier);
        s_models[modelId] = ModelInfo({
            owner: msg.sender,
            verifier: verifier,
            inputLength: inputLength,
            outputLength: outputLength,
            inputScale: inputScale,
            outputScale: outputScale,
            exists: true
        });
        emit ModelRegistered(modelId, msg.sender, verifier, inputLength, outputLength, inputScale, outputScale);
    }

    /// @notice A model's registry record (`exists` is false for unknown ids).
    function getModel(bytes32 modelId) external view returns (ModelInfo memory) {
        return s_models[modelId];
    }

    // ---------------------------------------------------------------- nodes
    /// @notice Stake at least `minStake()` and become an active node.
    function registerNode() external payable {
        if (s_nodes[msg.sender].registered) revert NodeAlreadyRegistered(msg.sender);
        if (msg.value < i_minStake) revert InsufficientStake(i_minStake, msg.value);
        s_nodes[msg.sender] = Node({stake: msg.value, registered: true, paused: false});
        emit NodeRegistered(msg.sender, msg.value);
    }

    /// @notice Leave the node set and take the stake back.
    function deregisterNode() external nonReentrant {
        Node memory node = s_nodes[msg.sender];
        if (!node.registered) revert NodeNotRegistered(msg.sender);
        delete s_nodes[msg.sender];
        emit NodeDeregistered(msg.sender, node.stake);
        _send(payable(msg.sender), node.stake);
    }

    /// @notice Owner: stop (or resume) a node from fulfilling.
    function setNodePaused(address node, bool paused) external onlyOwner {
        if (!s_nodes[node].registered) revert NodeNotRegistered(node);
        s_nodes[node].paused = paused;
        emit NodePausedSet(node, paused);
    }

    /// @notice True when `node` is registered and not paused.
    function isActiveNode(address node) public view returns (bool) {
        Node storage n = s_nodes[node];
        return n.registered && !n.paused;
    }

    /// @notice A node's stake and flags.
    function getNode(address node) external view returns (uint256 stake, bool registered, bool paused) {
        Node storage n = s_nodes[node];
        return (n.stake, n.registered, n.paused);
    }

    // ---------------------------------------------------------------- fees
    /// @inheritdoc ICoordinator
    function quoteFee(bytes32, uint8 mode, uint32 callbackGasLimit) public view returns (uint256) {
        FeeConfig memory f = s_fees;
        uint256 fee = uint256(f.baseFee) + uint256(callbackGasLimit) * uint256(f.feePerCallbackGas);
        if (mode != MODE_NONE) fee += f.zkPremium;
        return fee;
    }

    /// @notice Owner: change the fees for future requests.
    function setFeeConfig(FeeConfig calldata fees) external onlyOwner {
        s_fees = fees;
        emit FeeConfigSet(fees.baseFee, fees.zkPremium, fees.feePerCallbackGas);
    }

    /// @notice The current fee configuration.
    function feeConfig() external view returns (FeeConfig memory) {
        return s_fees;
    }

    /// @notice Wei owed to `node` and not yet withdrawn: fees a node earned, or fees refunded to a
    /// consumer whose Zk request was answered with an error.
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
        if (mode == MODE_OPTIMISTIC) revert ModeNotSupported(mode);
        if (callbackGasLimit > i_maxCallbackGasLimit) {
            revert CallbackGasLimitTooHigh(callbackGasLimit, i_maxCallbackGasLimit);
        }
        if (input.length == 0) revert EmptyInput();
        if (input.length > i_maxInputLength) revert InputTooLong(input.length, i_maxInputLength);
        uint256 required = quoteFee(modelId, mode, callbackGasLimit);
        if (msg.value < required) revert InsufficientFee(required, msg.value);

        requestId = s_nextRequestId++;
        Request memory req = Request({
            requestId: requestId,
            modelId: modelId,
            consumer: msg.sender,
            mode: mode,
            callbackGasLimit: callbackGasLimit,
            requestedAtBlock: uint64(block.number),
            fee: msg.value,
            input: input
        });
        s_commitments[requestId] = keccak256(abi.encode(req));
        emit InferenceRequested(requestId, modelId, msg.sender, input, mode, callbackGasLimit, msg.value);
    }

    /// @notice The stored commitment; zero when not pending (fulfilled, cancelled or unknown).
    function requestCommitment(uint256 requestId) external view returns (bytes32) {
        return s_commitments[requestId];
    }

    /// @notice The id the next request will get.
    function nextRequestId() external view returns (uint256) {
        return s_nextRequestId;
    }

    /// @notice Answer a pending request. Only active nodes; the request must match its commitment.
    /// @dev In Zk mode a successful answer must carry a proof the model's verifier accepts, with the
    /// request's input followed by `output` as public instances. The consumer's callback gets exactly
    /// `callbackGasLimit` gas and its failure does not revert this call. A Zk error answer carries no
    /// output (`UnprovenOutput`) and refunds the fee to the consumer instead of paying the node.
    /// @param req The request exactly as committed.
    /// @param output Fixed-point output (empty when `err` is set).
    /// @param err Empty on success, otherwise a short reason.
    /// @param proof EZKL proof for Zk mode; ignored otherwise.
    function fulfill(Request calldata req, int256[] calldata output, bytes calldata err, bytes calldata proof)
        external
        nonReentrant
    {
        if (!isActiveNode(msg.sender)) revert NotActiveNode(msg.sender);
        bytes32 stored = s_commitments[req.requestId];
        if (stored == bytes32(0)) revert RequestNotPending(req.requestId);
        if (stored != keccak256(abi.encode(req))) revert CommitmentMismatch(req.requestId);
        if (req.mode == MODE_ZK) {
            if (err.length == 0) _verify(req, output, proof);
            else if (output.length != 0) revert UnprovenOutput(req.requestId);
        }

        delete s_commitments[req.requestId];
        if (req.mode == MODE_ZK && err.length != 0) {
            // An unproven failure earns nothing: the consumer gets its fee back (withdrawable),
            // so a node gains nothing by answering "failed" instead of proving.
            s_nodeBalances[req.consumer] += req.fee;
            emit FeeRefunded(req.requestId, req.consumer, req.fee);
        } else {
            s_nodeBalances[msg.sender] += req.fee;
        }

        bytes memory payload =
            abi.encodeCall(IInferenceConsumer.rawFulfillInference, (req.requestId, output, err));
        bool ok = _callWithExactGas(req.requestId, req.callbackGasLimit, req.consumer, payload);
        emit InferenceFulfilled(req.requestId, msg.sender, ok, output, err);
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
        emit RequestCancelled(req.requestId, req.consumer, req.fee);
        _send(payable(req.consumer), req.fee);
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

    // ---------------------------------------------------------------- internals
    function _verify(Request calldata req, int256[] calldata output, bytes calldata proof) private {
        uint256 n = req.input.length;
        uint256[] memory instances = new uint256[](n + output.length);
        for (uint256 i = 0; i < n; ++i) {
            instances[i] = _toField(req.input[i]);
        }
        for (uint256 i = 0; i < output.length; ++i) {
            instances[n + i] = _toField(output[i]);
        }
        address verifier = s_models[req.modelId].verifier;
        try IVerifier(verifier).verifyProof(proof, instances) returns (bool valid) {
            if (!valid) revert InvalidProof(req.requestId);
        } catch {
            revert InvalidProof(req.requestId);
        }
    }

    function _toField(int256 x) private pure returns (uint256) {
        if (x >= 0) return uint256(x) % FIELD_MODULUS;
        // |x| for int256.min does not fit int256; compute it in unsigned arithmetic.
        uint256 magnitude = uint256(-(x + 1)) + 1;
        uint256 reduced = magnitude % FIELD_MODULUS;
        return reduced == 0 ? 0 : FIELD_MODULUS - reduced;
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
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
