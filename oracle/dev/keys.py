"""Anvil's well-known development accounts.

DEVELOPMENT ONLY. These keys are derived from anvil's public default mnemonic
("test test test ... junk"); every bot on every public chain knows them. They exist here
so the local stack and the tests can run without any secret. Never fund them anywhere real.
"""

from __future__ import annotations

from typing import Final

ANVIL_DEV_KEYS: Final[tuple[str, ...]] = (
    # account 0: deployer / Coordinator owner in the local stack
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    # account 1: the node's signer in the local stack
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    # account 2: the demo / test requester
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    # account 3: a second requester / an outsider in tests
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    # account 4: a second node in tests
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    # account 5: the watcher (challenger) in the local stack and tests
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    # account 6: the cheating test-double node (posts wrong optimistic answers)
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    # account 7: a third node in tests
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
)

DEPLOYER_KEY: Final = ANVIL_DEV_KEYS[0]
NODE_KEY: Final = ANVIL_DEV_KEYS[1]
REQUESTER_KEY: Final = ANVIL_DEV_KEYS[2]
WATCHER_KEY: Final = ANVIL_DEV_KEYS[5]
CHEATER_KEY: Final = ANVIL_DEV_KEYS[6]
