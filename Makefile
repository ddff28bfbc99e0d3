# The two commands a newcomer needs:  make demo   and   make test
# Each installs what it needs first (virtualenv, npm toolchain, redis-server).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get)

.PHONY: help setup test-setup demo demo-defi demo-dao demo-optimistic up test test-contracts gas-snapshot test-unit test-integration faults lint fmt typecheck bench bench-zk bench-gas bench-load bench-flagship bench-worker bench-answer-gas contracts clean

help:
	@echo "make demo     local chain + whole node + 20 demo requests answered"
	@echo "make test     the whole test suite (anvil, redis, workers, SQLite, PostgreSQL)"
	@echo "make up       run the local stack until Ctrl-C"
	@echo "make faults   the fault suite (reorgs, crashes, stuck txs) as a table"
	@echo "make demo-defi lending market: loan limits from a Zk-proved risk model"
	@echo "make demo-dao DAO proposals screened by a Zk-proved model before queuing"
	@echo "make demo-optimistic optimistic mode: a cheating node challenged, slashed, answered again in Zk"
	@echo "make bench    latency benchmark against anvil with 1 s blocks"
	@echo "make bench-zk zk benchmark: proof latency, verifier gas and size, calibration"
	@echo "make bench-gas gas of request and fulfil (None, Zk, Zk error) with a real proof"
	@echo "make bench-load bursts and a steady rate on 1 s and 250 ms blocks, per-stage profile, var/bench-load.png"
	@echo "make bench-flagship the digits model in Zk mode: prove time, prover memory, gas, accuracy"
	@echo "make bench-worker inference worker time per request (micro-batched) vs bare onnxruntime"
	@echo "make bench-answer-gas gas an answer of 1 to 1,000 elements needs on the Coordinator vs what the node allows"
	@echo "make lint     ruff + mypy"
	@echo "make test-contracts forge tests, gas snapshot check and Slither (part of make test)"
	@echo "make gas-snapshot record the contracts' gas figures after a deliberate change"

setup: $(BIN)/.installed node_modules/.installed solidity/node_modules .redis-ok contracts

# requirements-dev.lock: the runtime lock (requirements.lock, what the node and the Docker
# image run) plus the tools for tests, training, benchmarks and lint.
$(BIN)/.installed: requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# npm ci: exactly the committed lock, which it never rewrites (a fresh clone stays clean).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# forge resolves imports inside its project (solidity/): give it the npm packages there.
solidity/node_modules:
	ln -sfn ../node_modules $@

# Slither has its own virtualenv (it pins web3 < 8; the node uses web3 8).
SLITHER_VENV := .venv-slither
$(SLITHER_VENV)/.installed: requirements-slither.lock
	$(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/pip install --quiet --upgrade pip
	$(SLITHER_VENV)/bin/pip install --quiet -r requirements-slither.lock
	touch $@

# redis-server: use one on PATH, else Debian's package.
.redis-ok:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq redis-server >/dev/null; }
	@command -v redis-server >/dev/null 2>&1 && touch $@

# PostgreSQL server binaries for the test suite (the tests start their own cluster).
# Debian packages one after another (apt-get holds one lock), also under `make -j`.
.postgres-ok: | .redis-ok
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "installing PostgreSQL (Debian package)"; \
	  $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq postgresql >/dev/null; }
	@touch $@

# promtool (Debian's prometheus package) for the alert-rule tests in tests/unit/test_ops.py.
.promtool-ok: | .postgres-ok
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing promtool (Debian package prometheus)"; \
	  $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq --no-install-recommends prometheus >/dev/null; }
	@command -v promtool >/dev/null 2>&1 && touch $@

contracts: $(BIN)/.installed node_modules/.installed
	$(BIN)/python -m oracle.chain.compile

demo: setup
	$(BIN)/oracle demo --requests 20

up: setup
	$(BIN)/oracle up

# `make test`: everything under pytest-xdist (TEST_WORKERS processes, each with its own anvil,
# redis-server, PostgreSQL cluster and ports): the contracts' own suite (tests/contracts: forge
# tests, the gas snapshot, Slither) on one worker while the Python tests run on the others. It
# leaves out the soak and the slow fault scenarios (markers soak and slow_fault, excluded by
# pyproject's addopts; `make faults`, -m faults, runs every fault scenario, those included) and
# fails on any skipped test: the set-up installs everything the tests need.
TEST_WORKERS ?= 4
# The set-up steps are independent downloads and installs: run them side by side.
test: test-setup
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup --fail-on-skip

test-setup:
	$(MAKE) --no-print-directory -j4 setup .postgres-ok .promtool-ok $(SLITHER_VENV)/.installed

# The contracts on their own (tests/contracts/test_foundry.py): Foundry's unit, fuzz and
# invariant tests (solidity/test), the checked-in gas snapshot (solidity/.gas-snapshot; a gas
# change fails here until `make gas-snapshot` records it, so it shows in review), then Slither
# over the same build, which fails on any medium or high finding not explained in the code with
# a `slither-disable-next-line` comment that says why.
# forge's npm launcher (node_modules/.bin/forge) exits 0 whatever forge returns: the tests run
# the platform binary it launches, so a failing test fails the target.
FORGE = $(firstword $(wildcard $(CURDIR)/node_modules/@foundry-rs/forge-*/bin/forge))
# Unit tests only: invariant runs report revert counts that vary from run to run, and fuzz
# averages move with the fuzz dictionary (constants of every contract's bytecode).
SNAPSHOT_ARGS := --no-match-test '^(testFuzz_|invariant_)'
test-contracts: setup $(SLITHER_VENV)/.installed
	$(BIN)/pytest -q -p no:xdist tests/contracts

# Record the contracts' gas figures (solidity/.gas-snapshot) after a deliberate change.
gas-snapshot: setup
	cd solidity && $(FORGE) snapshot $(SNAPSHOT_ARGS)

test-unit: setup .promtool-ok
	$(BIN)/pytest -q -n $(TEST_WORKERS) tests/unit

test-integration: setup .postgres-ok
	$(BIN)/pytest -q -n $(TEST_WORKERS) tests/integration

faults: setup .postgres-ok
	mkdir -p var
	-$(BIN)/pytest -q -m faults --junitxml=var/faults.xml
	$(BIN)/python -m tests.faults.report var/faults.xml

demo-defi: setup
	$(BIN)/oracle demo-defi

demo-dao: setup
	$(BIN)/oracle demo-dao

demo-optimistic: setup
	$(BIN)/oracle demo-optimistic

bench: setup
	$(BIN)/python bench/latency.py

bench-zk: setup
	$(BIN)/python bench/zk.py

bench-gas: setup
	$(BIN)/python bench/gas.py

bench-load: setup
	$(BIN)/python bench/load.py

bench-flagship: setup
	$(BIN)/python bench/flagship.py

bench-worker: setup
	$(BIN)/python bench/worker.py

bench-answer-gas: setup
	$(BIN)/python bench/answer_gas.py

lint: setup typecheck
	$(BIN)/ruff check oracle workers tests bench migrations
	$(BIN)/ruff format --check oracle workers tests bench migrations

typecheck: setup
	$(BIN)/mypy

fmt: setup
	$(BIN)/ruff format oracle workers tests bench migrations
	$(BIN)/ruff check --fix oracle workers tests bench migrations

clean:
	rm -rf $(VENV) $(SLITHER_VENV) node_modules solidity/node_modules solidity/out solidity/forge-out solidity/forge-cache var .redis-ok .postgres-ok .promtool-ok
