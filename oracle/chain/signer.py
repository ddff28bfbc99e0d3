"""Load the node's signing key from an encrypted keystore or the environment.

The key never reaches a log: settings hold it as a ``SecretStr`` and only the derived
address is ever printed.
"""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.errors import ConfigError
from oracle.settings import SignerSettings


def load_signer(settings: SignerSettings) -> LocalAccount:
    """Return the node's account, or raise :class:`ConfigError` saying what is missing."""
    if settings.private_key is not None:
        try:
            account: LocalAccount = Account.from_key(settings.private_key.get_secret_value())
        except (ValueError, TypeError):
            raise ConfigError("signer.private_key is not a valid secp256k1 key") from None
        return account
    if settings.keystore_path is not None:
        return _from_keystore(settings)
    raise ConfigError(
        "no signing key: set ORACLE_SIGNER__PRIVATE_KEY, or ORACLE_SIGNER__KEYSTORE_PATH with "
        "ORACLE_SIGNER__KEYSTORE_PASSWORD (or ..._PASSWORD_FILE)"
    )


def _from_keystore(settings: SignerSettings) -> LocalAccount:
    path = Path(settings.keystore_path or "")
    if settings.keystore_password is not None:
        password = settings.keystore_password.get_secret_value()
    elif settings.keystore_password_file is not None:
        try:
            password = Path(settings.keystore_password_file).read_text().rstrip("\n")
        except OSError as exc:
            raise ConfigError(f"cannot read keystore password file: {exc.strerror}") from None
    else:
        raise ConfigError("signer.keystore_path is set but no keystore password was given")
    try:
        keyfile = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read keystore {path}: {exc}") from None
    try:
        key = Account.decrypt(keyfile, password)
    except ValueError:
        raise ConfigError(f"wrong password for keystore {path}") from None
    account: LocalAccount = Account.from_key(key)
    return account
