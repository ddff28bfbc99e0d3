"""``oracle watch`` and the watcher's settings: bad values get a message and exit 2."""

from __future__ import annotations

import pytest

from oracle.errors import ConfigError
from oracle.settings import load_settings
from tests.unit.test_cli import oracle

KEY = "0x" + "11" * 32
ON = {"ORACLE_WATCHER__ENABLED": "true", "ORACLE_WATCHER__SIGNER__PRIVATE_KEY": KEY}


@pytest.mark.parametrize(
    "args,env,message",
    [
        (["watch"], {}, "the watcher is off"),
        (["watch", "--model", "0x12"], ON, "is not a 0x-prefixed 32-byte id"),
        (["watch", "--own-node", "nope"], ON, "is not a 0x-prefixed address"),
        (["watch", "--budget-wei", "-1"], ON, "greater than or equal to 0"),
        (["watch"], {"ORACLE_WATCHER__ENABLED": "true"}, "watcher.enabled needs a key"),
    ],
)
def test_bad_watch_arguments_exit_2_with_a_message(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = oracle(*args, env=env)
    assert result.returncode == 2, result.stderr
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_watcher_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    model = "0x" + "AB" * 32
    for name, value in {
        **ON,
        "ORACLE_WATCHER__MODELS": f'["{model}"]',
        "ORACLE_WATCHER__BUDGET_WEI": "5",
    }.items():
        monkeypatch.setenv(name, value)
    watcher = load_settings().watcher
    assert watcher.models == [model.lower()]
    assert watcher.budget_wei == 5
    assert watcher.signer.private_key is not None
    assert watcher.signer.private_key.get_secret_value() == KEY
    assert KEY not in repr(watcher)


def test_watcher_settings_refuse_both_key_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORACLE_WATCHER__SIGNER__PRIVATE_KEY", KEY)
    monkeypatch.setenv("ORACLE_WATCHER__SIGNER__KEYSTORE_PATH", "/tmp/key.json")
    with pytest.raises(ConfigError, match="not both"):
        load_settings()
