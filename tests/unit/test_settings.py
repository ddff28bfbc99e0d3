from __future__ import annotations

from pathlib import Path

import pytest

from oracle.errors import ConfigError
from oracle.settings import load_settings


def test_environment_beats_file_and_arguments_beat_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("chain:\n  confirmations: 7\n  log_range: 9\n")
    monkeypatch.setenv("ORACLE_CHAIN__CONFIRMATIONS", "5")
    s = load_settings(cfg)
    assert (s.chain.confirmations, s.chain.log_range) == (5, 9)
    assert load_settings(cfg, chain={"confirmations": 2}).chain.confirmations == 2


def test_bad_combinations_are_rejected_with_a_clear_message() -> None:
    with pytest.raises(ConfigError, match="finality_depth"):
        load_settings(chain={"confirmations": 10, "finality_depth": 5})
    with pytest.raises(ConfigError, match=r"db\.url"):
        load_settings(db={"url": "mysql://x"})
    with pytest.raises(ConfigError, match="not both"):
        load_settings(signer={"private_key": "0x01", "keystore_path": "/k"})


def test_missing_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(bad)


def test_private_key_is_not_printed() -> None:
    key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
    s = load_settings(signer={"private_key": key})
    assert key not in repr(s) and key not in str(s.model_dump())


def test_coordinator_address_requires_a_source() -> None:
    with pytest.raises(ConfigError, match="no Coordinator address"):
        load_settings().coordinator_address()
