// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ICoordinator
/// @notice The stable on-chain interface of the inference Coordinator (see DESIGN.md).
interface ICoordinator {
    /// @notice Everything a fulfilment must repeat; its keccak256 is the stored commitment.
    struct Request {
        uint256 requestId;
        bytes32 modelId;
        address consumer;
        uint8 mode;
        uint32 callbackGasLimit;
        uint64 requestedAtBlock;
        uint256 fee;
        int256[] input;
    }

    /// @notice One answer of `fulfillBatch`: the arguments `fulfill` takes, as one value.
    struct Answer {
        Request req;
        int256[] output;
        bytes err;
        bytes proof;
    }

    /// @notice A posted optimistic answer; its keccak256 together with the request
    /// (`keccak256(abi.encode(req, claim))`) is stored while the answer is open. Everything in it
    /// is in the `OptimisticAnswerPosted` and `AnswerChallenged` events.
    struct Claim {
        int256[] output;
        address node;
        uint96 bond;
        /// @dev Last block a challenge is accepted in; an unchallenged answer finalises after it.
        uint64 challengeDeadline;
        /// @dev Last block a proof of a challenged answer is accepted in; it is slashed after it.
        uint64 proofDeadline;
        /// @dev Zero until challenged.
        address challenger;
        uint96 challengerBond;
    }

    /// @notice A model's immutable registry record. Its id is content-addressed: see
    /// `Coordinator.modelIdOf`.
    struct ModelInfo {
        address owner;
        address verifier;
        uint32 inputLength;
        uint32 outputLength;
        uint8 inputScale;
        uint8 outputScale;
        bool exists;
        /// @dev SHA-256 of the ONNX file's bytes (nodes check their copy against it).
        bytes32 onnxHash;
        /// @dev `verifier.codehash` at registration (zero without a verifier); a verifier whose
        /// code differs at verification is refused.
        bytes32 verifierCodeHash;
    }

    /// @notice Emitted for every accepted request; the node reads these.
    event InferenceRequested(
        uint256 indexed requestId,
        bytes32 indexed modelId,
        address indexed consumer,
        int256[] input,
        uint8 mode,
        uint32 callbackGasLimit,
        uint256 fee
    );

    /// @notice Ask for an inference. `msg.value` must cover `quoteFee`; that is the fee, and any
    /// excess is credited to the caller (withdrawable from the Coordinator). The input must have
    /// the model's input length; for mode != 0 every value must lie in the canonical signed field
    /// range |x| <= (r - 1) / 2 (r: the BN254 scalar field order).
    /// @param modelId The model's content-addressed id (returned by `registerModel`).
    /// @param input Fixed-point input, `value = int / 2**inputScale`.
    /// @param mode 0 = None, 1 = Zk, 2 = Optimistic.
    /// @param callbackGasLimit Gas forwarded, exactly, to the consumer's callback.
    /// @return requestId The new request's sequential id.
    function requestInference(bytes32 modelId, int256[] calldata input, uint8 mode, uint32 callbackGasLimit)
        external
        payable
        returns (uint256 requestId);

    /// @notice The fee a request with these parameters must pay: the base fee, the mode's
    /// premium, and the callback gas plus the answer's data (per element of the model's input
    /// and output) at the chain's gas price.
    function quoteFee(bytes32 modelId, uint8 mode, uint32 callbackGasLimit) external view returns (uint256);
}
