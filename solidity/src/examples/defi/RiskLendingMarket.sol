// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {InferenceConsumer} from "../../InferenceConsumer.sol";
import {Coordinator} from "../../Coordinator.sol";
import {ICoordinator} from "../../interfaces/ICoordinator.sol";

/// @title RiskLendingMarket
/// @notice A one-pair lending market whose per-borrower maximum loan-to-value comes from a risk
/// model proved with EZKL (Zk mode). Lenders deposit the debt token; borrowers deposit the
/// collateral token, ask for a risk score (the contract computes the model's five features on
/// chain), and may borrow up to collateral value * max LTV while the score is fresh.
/// Features (each a wad in [0, 1], see models/risk/MODEL_CARD.md): volatility of the last
/// 8 pushed prices (10 * mean |relative change|), utilisation (borrowed / deposited, averaged
/// over the past 100 to 300 blocks), account age (the collateral's weighted average holding
/// time in blocks / 1000, zero under 1 token of collateral), liquidations / 3, repayments / 10
/// (a repayment clears a loan of at least 1 token that was outstanding at least 10 blocks).
/// None of them can be moved within one block: a deposit parked for one transaction, dust
/// collateral deposited early or borrow/repay loops of dust do not change a score.
/// Tiers: score < 0.3 -> 75 %, score < 0.6 -> 50 %, otherwise 0 %. A score counts from the
/// block it was requested in (its features' block); a newer request supersedes an older one and
/// a liquidation clears it. The oracle's refunds go to the borrower who paid (`withdrawRefund`).
/// No interest, a fixed owner-set price: a demo of the oracle, not a production market.
contract RiskLendingMarket is InferenceConsumer, Ownable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    struct Account {
        uint256 collateral;
        uint256 debt;
        /// @dev Sum over past blocks of the collateral held, up to `collateralUpdatedAt`.
        uint256 collateralBlocks;
        uint64 collateralUpdatedAt;
        /// @dev Block since which the debt has been at least `MIN_REPAID_LOAN` (zero: below it).
        uint64 loanSince;
        uint32 liquidations;
        uint32 repayments;
    }

    /// @dev A pending score request: who asked (and paid) and in which block.
    struct PendingScore {
        address borrower;
        uint64 requestedAt;
        uint256 premium; // what the Coordinator refunds if the oracle answers with an error
    }

    /// @dev A running sum of utilisation (wad) x blocks at a block.
    struct Checkpoint {
        uint256 cumulative;
        uint64 at;
    }

    struct Score {
        int256 scoreWad;
        uint64 scoredAt;
        uint16 maxLtvBps;
        bool exists;
    }

    /// @notice Scores are always requested in Zk mode (a proof checked on chain).
    uint8 public constant MODE_ZK = 1;
    /// @notice Gas the Coordinator forwards to the score callback.
    uint32 public constant CALLBACK_GAS_LIMIT = 300_000;
    /// @notice How many pushed prices the volatility feature looks at.
    uint256 public constant PRICE_HISTORY = 8;
    uint256 private constant WAD = 1e18;
    uint256 private constant BPS = 10_000;
    uint256 private constant VOLATILITY_GAIN = 10;
    uint256 private constant AGE_SCALE_BLOCKS = 1000;
    uint256 private constant LIQUIDATION_SCALE = 3;
    uint256 private constant REPAYMENT_SCALE = 10;
    /// @notice Blocks between utilisation checkpoints: the feature averages over 1 to 2 windows.
    uint64 public constant UTILISATION_WINDOW = 100;
    /// @notice Collateral under which an account has no age.
    uint256 public constant MIN_AGE_COLLATERAL = 1e18;
    /// @notice Smallest loan whose repayment counts.
    uint256 public constant MIN_REPAID_LOAN = 1e18;
    /// @notice Blocks a loan must be outstanding for its repayment to count.
    uint64 public constant MIN_LOAN_BLOCKS = 10;

    IERC20 private immutable i_collateral;
    IERC20 private immutable i_debt;
    bytes32 private immutable i_modelId;

    uint256 private s_price; // debt-token wei per whole collateral token (1e18 units)
    uint256[] private s_priceHistory; // oldest first, at most PRICE_HISTORY
    address private s_keeper;
    uint64 private s_maxScoreAge;
    uint256 private s_totalDeposits;
    uint256 private s_totalBorrows;
    mapping(address lender => uint256) private s_deposits;
    mapping(address borrower => Account) private s_accounts;
    mapping(address borrower => Score) private s_scores;
    mapping(uint256 requestId => PendingScore) private s_requests;
    mapping(address borrower => uint256 requestId) private s_latestRequest;
    mapping(address borrower => uint256) private s_refunds;
    uint256 private s_utilCumulative; // utilisation (wad) x blocks, up to s_utilUpdatedAt
    uint64 private s_utilUpdatedAt;
    Checkpoint private s_utilOlder; // the average runs from here to now
    Checkpoint private s_utilNewer;

    /// @notice The borrower has no risk score yet.
    error ScoreMissing(address borrower);
    /// @notice The borrower's score is older than `maxAge` blocks.
    error ScoreExpired(address borrower, uint64 scoredAt, uint64 maxAge);
    /// @notice `requested` is above what the borrower's collateral and max LTV allow (`limit`).
    error BorrowExceedsLimit(address borrower, uint256 requested, uint256 limit);
    /// @notice The pool holds only `available` debt tokens.
    error InsufficientLiquidity(uint256 requested, uint256 available);
    /// @notice Withdrawing `amount` would leave `debt` above the limit `limitAfter`.
    error WithdrawExceedsLimit(address borrower, uint256 amount, uint256 debt, uint256 limitAfter);
    /// @notice More than the account holds (collateral, deposit or debt).
    error AmountExceedsBalance(address account, uint256 amount, uint256 balance);
    /// @notice A zero amount or price.
    error ZeroAmount();
    /// @notice Only the owner or the keeper may push prices.
    error NotKeeper(address caller);
    /// @notice The model has no verifier: it cannot answer in Zk mode.
    error ModelNotVerifiable(bytes32 modelId);
    /// @notice `requestRiskScore` was sent less than the oracle fee.
    error InsufficientFee(uint256 required, uint256 provided);
    /// @notice The caller has no refund to withdraw.
    error NothingToWithdraw(address account);
    /// @notice Sending ETH failed.
    error TransferFailed(address to, uint256 amount);

    /// @notice A lender deposited debt tokens.
    event Deposited(address indexed lender, uint256 amount);
    /// @notice A lender withdrew debt tokens.
    event Withdrawn(address indexed lender, uint256 amount);
    /// @notice A borrower deposited collateral.
    event CollateralDeposited(address indexed borrower, uint256 amount);
    /// @notice A borrower withdrew collateral.
    event CollateralWithdrawn(address indexed borrower, uint256 amount);
    /// @notice A borrower borrowed.
    event Borrowed(address indexed borrower, uint256 amount, uint256 debt);
    /// @notice A borrower repaid; `counted` if it cleared a loan that counts towards the
    /// repayments feature (at least `MIN_REPAID_LOAN`, outstanding `MIN_LOAN_BLOCKS`).
    event Repaid(address indexed borrower, uint256 amount, uint256 debt, bool counted);
    /// @notice The owner recorded a liquidation of `borrower`; its score (and any pending
    /// request) was cleared.
    event LiquidationRecorded(address indexed borrower, uint32 liquidations);
    /// @notice ETH is owed to `borrower` (an overpaid fee, or the Coordinator's refund of an
    /// error answer); withdrawn with `withdrawRefund`.
    event RefundCredited(address indexed borrower, uint256 amount);
    /// @notice A borrower withdrew its refunds.
    event RefundWithdrawn(address indexed borrower, uint256 amount);
    /// @notice A risk score was requested with these fixed-point features.
    event RiskScoreRequested(uint256 indexed requestId, address indexed borrower, int256[] features);
    /// @notice A risk score arrived and set the borrower's max LTV.
    event RiskScored(uint256 indexed requestId, address indexed borrower, int256 scoreWad, uint16 maxLtvBps);
    /// @notice An answer for a request that was superseded (or cleared by a liquidation) came
    /// in; it was ignored.
    event StaleRiskScoreIgnored(uint256 indexed requestId, address indexed borrower);
    /// @notice The oracle answered with an error; nothing was stored.
    event RiskScoreFailed(uint256 indexed requestId, address indexed borrower, bytes reason);
    /// @notice The valuation price changed.
    event PriceSet(uint256 price);
    /// @notice A price was appended to the volatility history.
    event PricePushed(uint256 price);
    /// @notice The keeper changed.
    event KeeperSet(address keeper);
    /// @notice The score lifetime changed.
    event MaxScoreAgeSet(uint64 maxScoreAge);

    /// @param coordinator_ The oracle Coordinator.
    /// @param collateral Collateral token (18 decimals).
    /// @param debt Debt token (18 decimals).
    /// @param modelId The risk model (registered with a verifier).
    /// @param price Debt-token wei per whole collateral token.
    /// @param maxScoreAge How many blocks a score stays usable.
    constructor(
        address coordinator_,
        IERC20 collateral,
        IERC20 debt,
        bytes32 modelId,
        uint256 price,
        uint64 maxScoreAge
    ) InferenceConsumer(coordinator_) Ownable(msg.sender) {
        if (price == 0) revert ZeroAmount();
        i_collateral = collateral;
        i_debt = debt;
        i_modelId = modelId;
        s_price = price;
        s_maxScoreAge = maxScoreAge;
        uint64 now_ = uint64(block.number);
        s_utilUpdatedAt = now_;
        s_utilOlder.at = now_;
        s_utilNewer.at = now_;
    }

    modifier nonZero(uint256 amount) {
        if (amount == 0) revert ZeroAmount();
        _;
    }

    // ------------------------------------------------------------------ lenders
    /// @notice Lend `amount` debt tokens to the pool (approve first).
    function deposit(uint256 amount) external nonReentrant nonZero(amount) {
        _accrueUtilisation();
        s_deposits[msg.sender] += amount;
        s_totalDeposits += amount;
        i_debt.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(msg.sender, amount);
    }

    /// @notice Take back `amount` of the caller's deposit, if the pool has the liquidity.
    function withdraw(uint256 amount) external nonReentrant nonZero(amount) {
        uint256 have = s_deposits[msg.sender];
        if (amount > have) revert AmountExceedsBalance(msg.sender, amount, have);
        uint256 available = s_totalDeposits - s_totalBorrows;
        if (amount > available) revert InsufficientLiquidity(amount, available);
        _accrueUtilisation();
        s_deposits[msg.sender] = have - amount;
        s_totalDeposits -= amount;
        i_debt.safeTransfer(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
    }

    // ------------------------------------------------------------------ borrowers
    /// @notice Deposit `amount` collateral (approve first); it starts ageing now (new collateral
    /// lowers the account's average holding time).
    function depositCollateral(uint256 amount) external nonReentrant nonZero(amount) {
        Account storage a = s_accounts[msg.sender];
        _accrueCollateral(a);
        a.collateral += amount;
        i_collateral.safeTransferFrom(msg.sender, address(this), amount);
        emit CollateralDeposited(msg.sender, amount);
    }

    /// @notice Withdraw collateral, keeping the debt within the borrower's latest max LTV
    /// (even if that score has expired; without a score any debt blocks the withdrawal).
    function withdrawCollateral(uint256 amount) external nonReentrant nonZero(amount) {
        Account storage a = s_accounts[msg.sender];
        if (amount > a.collateral) revert AmountExceedsBalance(msg.sender, amount, a.collateral);
        uint256 limitAfter = (_value(a.collateral - amount) * s_scores[msg.sender].maxLtvBps) / BPS;
        if (a.debt > limitAfter) revert WithdrawExceedsLimit(msg.sender, amount, a.debt, limitAfter);
        _accrueCollateral(a);
        // What stays keeps its average age: take the withdrawn share's collateral-blocks out.
        a.collateralBlocks -= (a.collateralBlocks * amount) / a.collateral;
        a.collateral -= amount;
        i_collateral.safeTransfer(msg.sender, amount);
        emit CollateralWithdrawn(msg.sender, amount);
    }

    /// @notice Ask the oracle for the caller's risk score; `msg.value` pays the fee (see
    /// `quoteFee`) and any excess is credited to the caller (`withdrawRefund`). The request
    /// supersedes the caller's pending one (a late answer to that one is ignored).
    /// @return requestId The Coordinator's request id.
    function requestRiskScore() external payable nonReentrant returns (uint256 requestId) {
        Coordinator c = _coordinator();
        ICoordinator.ModelInfo memory model = c.getModel(i_modelId);
        if (model.verifier == address(0)) revert ModelNotVerifiable(i_modelId);
        uint256 fee = c.quoteFee(i_modelId, MODE_ZK, CALLBACK_GAS_LIMIT);
        if (msg.value < fee) revert InsufficientFee(fee, msg.value);
        // The Zk premium is what the Coordinator refunds on an error answer.
        uint256 premium = fee - c.quoteFee(i_modelId, 0, CALLBACK_GAS_LIMIT);
        uint256[5] memory f = features(msg.sender);
        int256[] memory input = new int256[](5);
        for (uint256 i = 0; i < 5; ++i) {
            input[i] = int256((f[i] << model.inputScale) / WAD);
        }
        requestId = _requestInference(i_modelId, input, MODE_ZK, CALLBACK_GAS_LIMIT, fee);
        s_requests[requestId] =
            PendingScore({borrower: msg.sender, requestedAt: uint64(block.number), premium: premium});
        s_latestRequest[msg.sender] = requestId;
        emit RiskScoreRequested(requestId, msg.sender, input);
        if (msg.value > fee) _creditRefund(msg.sender, msg.value - fee);
    }

    /// @notice Withdraw the ETH owed to the caller: overpaid fees and the oracle's refunds of
    /// requests it paid for that were answered with an error.
    function withdrawRefund() external nonReentrant {
        uint256 amount = s_refunds[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        s_refunds[msg.sender] = 0;
        if (address(this).balance < amount) _withdrawRefunds(payable(address(this)));
        emit RefundWithdrawn(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
    }

    /// @notice Borrow `amount` debt tokens against the caller's collateral and fresh score.
    function borrow(uint256 amount) external nonReentrant nonZero(amount) {
        uint256 limit = borrowLimit(msg.sender); // reverts ScoreMissing / ScoreExpired
        if (amount > limit) revert BorrowExceedsLimit(msg.sender, amount, limit);
        uint256 available = s_totalDeposits - s_totalBorrows;
        if (amount > available) revert InsufficientLiquidity(amount, available);
        _accrueUtilisation();
        Account storage a = s_accounts[msg.sender];
        uint256 before = a.debt;
        a.debt = before + amount;
        if (before < MIN_REPAID_LOAN && a.debt >= MIN_REPAID_LOAN) a.loanSince = uint64(block.number);
        s_totalBorrows += amount;
        i_debt.safeTransfer(msg.sender, amount);
        emit Borrowed(msg.sender, amount, a.debt);
    }

    /// @notice Repay `amount` of the caller's debt (approve first). Clearing a loan that stayed
    /// at least `MIN_REPAID_LOAN` for `MIN_LOAN_BLOCKS` blocks counts as a repayment.
    function repay(uint256 amount) external nonReentrant nonZero(amount) {
        Account storage a = s_accounts[msg.sender];
        if (amount > a.debt) revert AmountExceedsBalance(msg.sender, amount, a.debt);
        _accrueUtilisation();
        a.debt -= amount;
        s_totalBorrows -= amount;
        uint64 since = a.loanSince;
        bool counted = a.debt == 0 && since != 0 && block.number >= uint256(since) + MIN_LOAN_BLOCKS;
        if (counted) a.repayments += 1;
        if (a.debt < MIN_REPAID_LOAN) a.loanSince = 0;
        i_debt.safeTransferFrom(msg.sender, address(this), amount);
        emit Repaid(msg.sender, amount, a.debt, counted);
    }

    // ------------------------------------------------------------------ owner / keeper
    /// @notice Owner: record a liquidation of `borrower` (e.g. on another venue); feeds the model.
    /// Clears the borrower's score and pending request: it must be scored again.
    function recordLiquidation(address borrower) external onlyOwner {
        uint32 n = s_accounts[borrower].liquidations + 1;
        s_accounts[borrower].liquidations = n;
        delete s_scores[borrower];
        delete s_latestRequest[borrower];
        emit LiquidationRecorded(borrower, n);
    }

    /// @notice Owner: set the valuation price (debt-token wei per whole collateral token).
    function setPrice(uint256 price) external onlyOwner nonZero(price) {
        s_price = price;
        emit PriceSet(price);
    }

    /// @notice Owner or keeper: append a price to the volatility history (the oldest drops out).
    function pushPrice(uint256 price) external nonZero(price) {
        if (msg.sender != owner() && msg.sender != s_keeper) revert NotKeeper(msg.sender);
        if (s_priceHistory.length == PRICE_HISTORY) {
            for (uint256 i = 1; i < PRICE_HISTORY; ++i) {
                s_priceHistory[i - 1] = s_priceHistory[i];
            }
            s_priceHistory.pop();
        }
        s_priceHistory.push(price);
        emit PricePushed(price);
    }

    /// @notice Owner: set the account allowed to push prices.
    function setKeeper(address keeper) external onlyOwner {
        s_keeper = keeper;
        emit KeeperSet(keeper);
    }

    /// @notice Owner: set how many blocks a score stays usable.
    function setMaxScoreAge(uint64 maxScoreAge) external onlyOwner {
        s_maxScoreAge = maxScoreAge;
        emit MaxScoreAgeSet(maxScoreAge);
    }

    // ------------------------------------------------------------------ oracle callback
    function _onInferenceResult(uint256 requestId, int256[] memory output, bytes memory err) internal override {
        PendingScore memory p = s_requests[requestId];
        address borrower = p.borrower;
        if (borrower == address(0)) return;
        delete s_requests[requestId];
        if (err.length != 0) {
            // The Coordinator credited the Zk premium back to this contract: it is the payer's.
            _creditRefund(borrower, p.premium);
        }
        if (s_latestRequest[borrower] != requestId) {
            emit StaleRiskScoreIgnored(requestId, borrower);
            return;
        }
        delete s_latestRequest[borrower];
        if (err.length != 0 || output.length == 0) {
            emit RiskScoreFailed(requestId, borrower, err);
            return;
        }
        uint8 outputScale = _coordinator().getModel(i_modelId).outputScale;
        int256 scoreWad = (output[0] * int256(WAD)) / int256(uint256(1) << outputScale);
        uint16 ltv = maxLtvFor(scoreWad);
        // The score describes the account as it was when asked: it ages from the request block.
        s_scores[borrower] = Score({scoreWad: scoreWad, scoredAt: p.requestedAt, maxLtvBps: ltv, exists: true});
        emit RiskScored(requestId, borrower, scoreWad, ltv);
    }

    // ------------------------------------------------------------------ views
    /// @notice The model's five features for `borrower`, as wads in [0, 1e18].
    function features(address borrower) public view returns (uint256[5] memory f) {
        Account storage a = s_accounts[borrower];
        f[0] = volatility();
        f[1] = utilisation();
        f[2] = _clip((accountAge(borrower) * WAD) / AGE_SCALE_BLOCKS);
        f[3] = _clip((uint256(a.liquidations) * WAD) / LIQUIDATION_SCALE);
        f[4] = _clip((uint256(a.repayments) * WAD) / REPAYMENT_SCALE);
    }

    /// @notice 10 * mean |p_i - p_{i-1}| / p_{i-1} over the price history, clipped to 1e18.
    function volatility() public view returns (uint256) {
        uint256 n = s_priceHistory.length;
        if (n < 2) return 0;
        uint256 sum = 0;
        for (uint256 i = 1; i < n; ++i) {
            uint256 prev = s_priceHistory[i - 1];
            uint256 cur = s_priceHistory[i];
            uint256 diff = cur > prev ? cur - prev : prev - cur;
            sum += (diff * WAD) / prev;
        }
        return _clip((sum * VOLATILITY_GAIN) / (n - 1));
    }

    /// @notice Borrowed / deposited (a wad in [0, 1e18]) averaged over past blocks: exactly the
    /// last `UTILISATION_WINDOW` blocks when the pool did not change in them, otherwise from a
    /// checkpoint 100 to 300 blocks back (fewer in a young market). Changes made in the current
    /// block do not count, so nothing done within one transaction moves the feature.
    // `elapsed == 0` only guards the division (the deployment block); block numbers, not balances.
    // slither-disable-next-line incorrect-equality
    function utilisation() public view returns (uint256) {
        uint256 spot = spotUtilisation();
        uint256 last = s_utilUpdatedAt;
        uint256 since = block.number > UTILISATION_WINDOW ? block.number - UTILISATION_WINDOW : 0;
        if (since >= last) return spot; // unchanged for the whole window
        Checkpoint memory base = s_utilNewer.at <= since ? s_utilNewer : s_utilOlder;
        uint256 elapsed = block.number - base.at;
        if (elapsed == 0) return 0; // the deployment block
        return (s_utilCumulative + spot * (block.number - last) - base.cumulative) / elapsed;
    }

    /// @notice Borrowed / deposited right now, as a wad in [0, 1e18].
    function spotUtilisation() public view returns (uint256) {
        return s_totalDeposits == 0 ? 0 : _clip((s_totalBorrows * WAD) / s_totalDeposits);
    }

    /// @notice The account's age in blocks: how long, on average, its collateral has been held
    /// (collateral-blocks / collateral); zero with less than `MIN_AGE_COLLATERAL`.
    function accountAge(address borrower) public view returns (uint256) {
        Account storage a = s_accounts[borrower];
        if (a.collateral < MIN_AGE_COLLATERAL) return 0;
        return (a.collateralBlocks + a.collateral * (block.number - a.collateralUpdatedAt)) / a.collateral;
    }

    /// @notice The max LTV (basis points) a score (wad) gives: < 0.3 -> 7500, < 0.6 -> 5000, else 0.
    function maxLtvFor(int256 scoreWad) public pure returns (uint16) {
        if (scoreWad < 0.3e18) return 7500;
        if (scoreWad < 0.6e18) return 5000;
        return 0;
    }

    /// @notice How much more `borrower` may borrow now; reverts ScoreMissing / ScoreExpired.
    function borrowLimit(address borrower) public view returns (uint256) {
        Score memory s = s_scores[borrower];
        if (!s.exists) revert ScoreMissing(borrower);
        if (block.number > uint256(s.scoredAt) + s_maxScoreAge) {
            revert ScoreExpired(borrower, s.scoredAt, s_maxScoreAge);
        }
        Account storage a = s_accounts[borrower];
        uint256 cap = (_value(a.collateral) * s.maxLtvBps) / BPS;
        return cap > a.debt ? cap - a.debt : 0;
    }

    /// @notice Value of `borrower`'s collateral in debt-token wei.
    function collateralValue(address borrower) external view returns (uint256) {
        return _value(s_accounts[borrower].collateral);
    }

    /// @notice A borrower's position and history.
    function getAccount(address borrower) external view returns (Account memory) {
        return s_accounts[borrower];
    }

    /// @notice A borrower's latest score (`exists` false if none).
    function getScore(address borrower) external view returns (Score memory) {
        return s_scores[borrower];
    }

    /// @notice Who asked for `requestId` (zero once answered or if unknown).
    function pendingBorrower(uint256 requestId) external view returns (address) {
        return s_requests[requestId].borrower;
    }

    /// @notice The borrower's latest score request still awaiting its answer (zero if none).
    function latestRequest(address borrower) external view returns (uint256) {
        return s_latestRequest[borrower];
    }

    /// @notice ETH owed to `borrower` (see `withdrawRefund`).
    function refundOf(address borrower) external view returns (uint256) {
        return s_refunds[borrower];
    }

    /// @notice A lender's deposit.
    function depositOf(address lender) external view returns (uint256) {
        return s_deposits[lender];
    }

    /// @notice Pool totals: deposited and borrowed debt tokens.
    function totals() external view returns (uint256 deposits, uint256 borrows) {
        return (s_totalDeposits, s_totalBorrows);
    }

    /// @notice The price history, oldest first.
    function priceHistory() external view returns (uint256[] memory) {
        return s_priceHistory;
    }

    /// @notice The valuation price (debt-token wei per whole collateral token).
    function price() external view returns (uint256) {
        return s_price;
    }

    /// @notice Blocks a score stays usable.
    function maxScoreAge() external view returns (uint64) {
        return s_maxScoreAge;
    }

    /// @notice The keeper allowed to push prices (besides the owner).
    function keeper() external view returns (address) {
        return s_keeper;
    }

    /// @notice The risk model id.
    function modelId() external view returns (bytes32) {
        return i_modelId;
    }

    /// @notice The collateral and debt tokens.
    function tokens() external view returns (address collateral, address debt) {
        return (address(i_collateral), address(i_debt));
    }

    /// @notice The fee `requestRiskScore` must be sent with.
    function quoteFee() external view returns (uint256) {
        return ICoordinator(coordinator()).quoteFee(i_modelId, MODE_ZK, CALLBACK_GAS_LIMIT);
    }

    function _coordinator() private view returns (Coordinator) {
        return Coordinator(payable(coordinator()));
    }

    /// @dev Add the blocks since the last update at the utilisation in force during them (before
    /// this block's change), and move the checkpoints once a window has passed. The older
    /// checkpoint is at most `UTILISATION_WINDOW` blocks back when the utilisation was constant
    /// since then (its running sum is known for every such block), else the previous newer one.
    // `now_ == last`: already accrued in this block (block numbers, not balances).
    // slither-disable-next-line incorrect-equality
    function _accrueUtilisation() private {
        uint64 now_ = uint64(block.number);
        uint64 last = s_utilUpdatedAt;
        if (now_ == last) return;
        uint256 spot = spotUtilisation();
        uint256 previous = s_utilCumulative;
        uint256 cumulative = previous + spot * (now_ - last);
        s_utilCumulative = cumulative;
        s_utilUpdatedAt = now_;
        if (now_ - s_utilNewer.at >= UTILISATION_WINDOW) {
            uint64 start = now_ - UTILISATION_WINDOW;
            s_utilOlder = start > last ? Checkpoint(previous + spot * (start - last), start) : s_utilNewer;
            s_utilNewer = Checkpoint({cumulative: cumulative, at: now_});
        }
    }

    function _accrueCollateral(Account storage a) private {
        a.collateralBlocks += a.collateral * (block.number - a.collateralUpdatedAt);
        a.collateralUpdatedAt = uint64(block.number);
    }

    function _creditRefund(address borrower, uint256 amount) private {
        s_refunds[borrower] += amount;
        emit RefundCredited(borrower, amount);
    }

    function _value(uint256 collateralAmount) private view returns (uint256) {
        return (collateralAmount * s_price) / WAD;
    }

    function _clip(uint256 wad) private pure returns (uint256) {
        return wad > WAD ? WAD : wad;
    }
}
