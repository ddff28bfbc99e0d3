"""The operator's one-off keys come through Settings, from their historical env names."""

from __future__ import annotations

import pytest

from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.settings import load_settings


def test_keys_are_read_from_their_env_names_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ("ORACLE_DEPLOYER_KEY", "ORACLE_REGISTRAR_KEY", "ORACLE_REQUESTER_KEY")
    for name, key in zip(names, ANVIL_DEV_KEYS, strict=False):
        monkeypatch.setenv(name, key)
    s = load_settings()
    assert s.deployer_key is not None and s.registrar_key is not None
    assert s.requester_key is not None
    got = (
        s.deployer_key.get_secret_value(),
        s.registrar_key.get_secret_value(),
        s.requester_key.get_secret_value(),
    )
    assert got == ANVIL_DEV_KEYS[:3]
    shown = repr(s) + str(s) + s.model_dump_json()
    assert not any(key[2:] in shown for key in ANVIL_DEV_KEYS[:3])


def test_keys_default_to_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ORACLE_DEPLOYER_KEY", "ORACLE_REGISTRAR_KEY", "ORACLE_REQUESTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert (s.deployer_key, s.registrar_key, s.requester_key) == (None, None, None)
