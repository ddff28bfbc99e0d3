"""The consumer guide's example is the code `make test-contracts` runs, and the Zk fixture
it uses still belongs to the example model."""

from __future__ import annotations

import hashlib
import re

from oracle.paths import ROOT

GUIDE = ROOT / "docs" / "consumer-guide.md"
GUIDE_DIR = ROOT / "solidity" / "test" / "guide"
FIXTURES = ROOT / "solidity" / "src" / "mocks" / "fixtures"


def _section(title: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _without_sync_notes(source: str) -> str:
    """The repository copies carry comments tying them to the guide; the guide does not."""
    lines = [
        line
        for line in source.splitlines()
        if not re.match(r"// (The (consumer|test) of docs/consumer-guide|`forge test` prov)", line)
        and not line.startswith("// Keep the two in step")
        and not line.startswith("// Keep in step")
    ]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def test_the_guides_example_is_the_tested_code() -> None:
    blocks = re.findall(r"```solidity\n(.*?)```", _section("6. Test your consumer"), re.S)
    assert len(blocks) == 2
    consumer = _without_sync_notes((GUIDE_DIR / "MyConsumer.sol").read_text())
    test = _without_sync_notes((GUIDE_DIR / "MyConsumer.t.sol").read_text()).replace(
        '"./MyConsumer.sol"', '"../src/MyConsumer.sol"'
    )
    assert blocks[0].strip() == consumer
    assert blocks[1].strip() == test


def test_the_documented_remapping_names_the_contracts_folder() -> None:
    install = _section("0. Install the contracts")
    pattern = r"^@onchain-ai-oracle/contracts/=lib/onchain-ai-oracle/(\S+)$"
    (target,) = re.findall(pattern, install, re.M)
    units = (
        "InferenceConsumer.sol",
        "mocks/MockCoordinator.sol",
        "mocks/fixtures/ExampleMlpProof.sol",
    )
    for unit in units:
        assert (ROOT / target / unit).is_file(), unit


def test_the_zk_fixture_is_for_the_example_model() -> None:
    digest = hashlib.sha256((ROOT / "models" / "example_mlp.onnx").read_bytes()).hexdigest()
    library = (FIXTURES / "ExampleMlpProof.sol").read_text()
    assert f"ONNX_HASH = 0x{digest};" in library
    assert "INSECURE" in library and "INSECURE" in (FIXTURES / "ExampleMlpVerifier.sol").read_text()
