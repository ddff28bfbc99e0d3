"""Typed settings for every part of the node.

Values come, in rising priority, from defaults, an optional YAML file (``--config`` or
``ORACLE_CONFIG``), and environment variables prefixed ``ORACLE_`` with ``__`` between
levels (``ORACLE_CHAIN__RPC_URL``). Nothing is read at import time: call
:func:`load_settings`.
"""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from oracle.errors import ConfigError
from oracle.paths import ROOT

_FILE_VALUES: ContextVar[dict[str, Any]] = ContextVar("oracle_settings_file", default={})


class ChainSettings(BaseModel):
    """Which chain and Coordinator the node serves, and how carefully it reads them."""

    rpc_url: str = "http://127.0.0.1:8545"
    coordinator: str | None = Field(
        default=None, description="Coordinator address; read from deployment_file when unset."
    )
    deployment_file: Path | None = Field(
        default=None, description="JSON written by `oracle up` / deploy: chain id, RPC, addresses."
    )
    confirmations: int = Field(default=1, ge=0, le=256)
    finality_depth: int = Field(
        default=64, ge=1, description="Reorgs deeper than this halt the node instead of guessing."
    )
    poll_interval_s: float = Field(default=0.25, gt=0, le=60)
    log_range: int = Field(default=500, ge=1, le=100_000, description="Max blocks per eth_getLogs.")
    start_block: int | None = Field(default=None, ge=0)
    rpc_timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _finality_covers_confirmations(self) -> ChainSettings:
        if self.finality_depth < self.confirmations:
            raise ValueError(
                f"finality_depth ({self.finality_depth}) must be >= confirmations "
                f"({self.confirmations})"
            )
        return self


class SignerSettings(BaseModel):
    """Where the node's key comes from: an encrypted keystore, or the environment."""

    private_key: SecretStr | None = None
    keystore_path: Path | None = None
    keystore_password: SecretStr | None = None
    keystore_password_file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SignerSettings:
        if self.private_key is not None and self.keystore_path is not None:
            raise ValueError("set either signer.private_key or signer.keystore_path, not both")
        return self


class DatabaseSettings(BaseModel):
    url: str = f"sqlite:///{ROOT / 'var' / 'oracle.db'}"
    echo: bool = False


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"


class WorkerSettings(BaseModel):
    """Inference workers: execution provider and the poison-message cap."""

    provider: Literal["auto", "cpu", "cuda"] = "auto"
    max_attempts: int = Field(default=3, ge=1, le=100)
    requeue_after_s: float = Field(
        default=300.0, gt=0, description="A queued job not started after this is sent again."
    )
    max_abs_input_bits: int = Field(
        default=62, ge=8, le=250, description="Inputs must satisfy |x| < 2**bits (fixed point)."
    )
    batch_size: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="A job also takes up to this many - 1 other queued requests for the same "
        "model and runs them as one onnxruntime batch; 1 runs each request alone.",
    )


class RelayerSettings(BaseModel):
    gas_limit_multiplier: float = Field(default=1.25, ge=1.0, le=5.0)
    priority_fee_gwei: float | None = Field(default=None, ge=0)
    max_fee_multiplier: float = Field(default=2.0, ge=1.0)
    receipt_poll_s: float = Field(default=0.2, gt=0)
    idle_wait_s: float = Field(default=0.5, gt=0)
    bump_after_blocks: int = Field(
        default=3, ge=1, description="Replace a tx still unmined after this many blocks."
    )
    bump_factor: float = Field(
        default=1.25, ge=1.1, le=10, description="Fee multiplier for a replacement (>= 1.1)."
    )
    rebroadcast_after_s: float = Field(
        default=15.0, gt=0, description="Re-send a broadcast tx no node knows after this long."
    )
    batch_max_items: int = Field(
        default=100,
        ge=1,
        le=256,
        description="Most answers one fulfillBatch transaction carries (1: one tx per answer).",
    )
    batch_gas_budget: int = Field(
        default=12_000_000,
        ge=500_000,
        description="Gas limit a batch transaction may reach; more answers go in the next one.",
    )
    max_answer_gas: int = Field(
        default=15_000_000,
        ge=500_000,
        description="Most gas one answer's transaction may carry: an answer that still runs out "
        "of gas at this limit is sent as an error answer (answers are allowed the gas their "
        "input, output, proof and callback gas need; more only when a simulation runs short).",
    )
    max_transient_retries: int = Field(
        default=12,
        ge=1,
        le=1000,
        description="Times an answer refused for a reason that passes by waiting (another "
        "node's exclusive window, our stake not active) is tried again before it is given up.",
    )
    retry_backoff_max_blocks: int = Field(
        default=32,
        ge=1,
        description="Longest wait between two tries of such an answer (the wait doubles from "
        "one block).",
    )


class ZkSettings(BaseModel):
    """EZKL circuits: how onboarding builds them, the budget it refuses past, and proving."""

    target: Literal["resources", "accuracy"] = Field(
        default="resources", description="Calibration target: smaller circuit or closer output."
    )
    num_inner_cols: int = Field(default=1, ge=1, le=8, description="Fewer columns, less gas.")
    decomp_base: int = Field(default=128, ge=2, le=1 << 20)
    decomp_legs: int = Field(default=4, ge=1, le=16)
    max_logrows: int = Field(default=20, ge=6, le=26, description="Refuse bigger circuits.")
    max_prover_memory_mb: int = Field(
        default=8192, ge=64, description="Refuse circuits whose prover would need more."
    )
    proof_timeout_s: float = Field(
        default=600.0, gt=0, description="A proof job older than this is handed out again."
    )
    prover_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Niceness of a prover worker's process: on a host it shares with the node "
        "and inference workers, plain requests get the CPU first (0: same priority).",
    )


class S3StoreSettings(BaseModel):
    """An S3-compatible object store shared by the hosts of one node (AWS S3, MinIO, ...)."""

    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="", description="Key prefix, e.g. 'oracle/'.")
    endpoint_url: str | None = Field(
        default=None, description="For a store other than AWS S3, e.g. http://minio:9000."
    )
    region: str = "us-east-1"
    access_key_id: SecretStr | None = Field(
        default=None, description="None: boto3's own chain (environment, profile, role)."
    )
    secret_access_key: SecretStr | None = None

    @model_validator(mode="after")
    def _keys_together(self) -> S3StoreSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both store.s3.access_key_id and store.s3.secret_access_key")
        return self


class StoreSettings(BaseModel):
    """Model artifacts, addressed by hash. Point several hosts at one shared path, or give
    each host its own ``path`` as a cache and one shared ``s3`` store: a worker whose cache
    lacks a model (or, for a prover, its circuit) fetches it by hash and checks the hash."""

    path: Path = ROOT / "var" / "models"
    s3: S3StoreSettings | None = None


class MetricsSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535, description="0 disables the endpoint.")
    latency_window_s: float = Field(
        default=3600.0,
        gt=0,
        description="The latency histograms on /metrics count requests from this recent window.",
    )


class WatcherSettings(BaseModel):
    """The watcher (``oracle watch``): re-runs other nodes' optimistic answers through the
    circuits this host holds and challenges the wrong ones, with its own key and a budget."""

    enabled: bool = Field(default=False, description="`oracle watch` refuses to run when off.")
    signer: SignerSettings = Field(
        default_factory=SignerSettings,
        description="The challenger's key (ORACLE_WATCHER__SIGNER__PRIVATE_KEY or a keystore); "
        "never the node's own signer.",
    )
    budget_wei: int = Field(
        default=10**17, ge=0, description="Most challenger bonds at risk in open challenges."
    )
    models: list[str] | None = Field(
        default=None,
        description="Model ids to watch; unset: every model whose circuit the store holds.",
    )
    own_node: str | None = Field(
        default=None, description="The operator's node address: its answers are not checked."
    )
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    withdraw: bool = Field(
        default=False, description="Withdraw bond and share (withdrawFees) after each win."
    )
    workdir: Path = Field(
        default=ROOT / "var" / "watcher", description="Scratch files for circuit witnesses."
    )

    @field_validator("models")
    @classmethod
    def _model_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for model_id in value:
            if not _is_hex(model_id, 32):
                raise ValueError(f"watcher.models: {model_id!r} is not a 0x-prefixed 32-byte id")
        return [m.lower() for m in value]

    @field_validator("own_node")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _is_hex(value, 20):
            raise ValueError(f"watcher.own_node: {value!r} is not a 0x-prefixed address")
        return value

    @model_validator(mode="after")
    def _key_when_enabled(self) -> WatcherSettings:
        if self.enabled and self.signer.private_key is None and self.signer.keystore_path is None:
            raise ValueError(
                "watcher.enabled needs a key: ORACLE_WATCHER__SIGNER__PRIVATE_KEY or "
                "ORACLE_WATCHER__SIGNER__KEYSTORE_PATH"
            )
        return self


def _is_hex(value: str, length: int) -> bool:
    body = value.removeprefix("0x")
    if not value.startswith("0x") or len(body) != 2 * length:
        return False
    try:
        int(body, 16)
    except ValueError:
        return False
    return True


class Settings(BaseSettings):
    """All of the node's settings. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="ORACLE_", env_nested_delimiter="__", extra="forbid"
    )

    chain: ChainSettings = ChainSettings()
    signer: SignerSettings = SignerSettings()
    db: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    worker: WorkerSettings = WorkerSettings()
    zk: ZkSettings = ZkSettings()
    relayer: RelayerSettings = RelayerSettings()
    store: StoreSettings = StoreSettings()
    metrics: MetricsSettings = MetricsSettings()
    watcher: WatcherSettings = WatcherSettings()

    # Keys for the operator's one-off commands, never the node's own signer (see ``signer``).
    # Their environment names are the historical ones: ORACLE_DEPLOYER_KEY and so on.
    deployer_key: SecretStr | None = Field(
        default=None, description="`oracle deploy`: deploys and owns the Coordinator."
    )
    registrar_key: SecretStr | None = Field(
        default=None, description="`oracle model register`: pays for registration."
    )
    requester_key: SecretStr | None = Field(
        default=None, description="`oracle request`: pays for requests."
    )

    @field_validator("db")
    @classmethod
    def _db_url_known(cls, value: DatabaseSettings) -> DatabaseSettings:
        if not value.url.startswith(("sqlite", "postgresql")):
            raise ValueError(f"db.url must be sqlite:// or postgresql://, got {value.url!r}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Priority: explicit arguments, then the environment, then the YAML file.
        file_source = InitSettingsSource(settings_cls, _FILE_VALUES.get())
        return (init_settings, env_settings, file_source)

    def coordinator_address(self) -> str:
        """The Coordinator to serve: explicit setting first, then the deployment file."""
        if self.chain.coordinator:
            return self.chain.coordinator
        deployment = self.deployment()
        if deployment is None:
            raise ConfigError(
                "no Coordinator address: set chain.coordinator (ORACLE_CHAIN__COORDINATOR) or "
                "chain.deployment_file (ORACLE_CHAIN__DEPLOYMENT_FILE)"
            )
        return str(deployment["coordinator"])

    def deployment(self) -> dict[str, Any] | None:
        path = self.chain.deployment_file
        if path is None:
            return None
        try:
            data: dict[str, Any] = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"deployment file {path} does not exist") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"deployment file {path} is not JSON: {exc}") from exc
        return data


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional YAML file, the environment and explicit overrides.

    Raises :class:`ConfigError` with every problem listed, never a raw traceback.
    """
    file_values: dict[str, Any] = {}
    env_path = os.environ.get("ORACLE_CONFIG")
    path = config_file or (Path(env_path) if env_path else None)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        file_values = loaded
    token = _FILE_VALUES.set(file_values)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
    finally:
        _FILE_VALUES.reset(token)
    return settings
