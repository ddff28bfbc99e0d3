"""Workers on other hosts: a worker with an empty local cache fetches the model (a prover
also the circuit) by hash from a shared S3-compatible store and checks it. The store here
is a real S3 endpoint: moto's server, started as a process by the fixture."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from oracle.dev.processes import ManagedProcess, free_port
from oracle.errors import ModelError
from oracle.fixedpoint import to_fixed
from oracle.models import circuits, onboarding, zk
from oracle.models.remote import S3ObjectStore, SharedStore
from oracle.models.store import ArtifactStore, onnx_hash_of
from oracle.paths import ROOT
from oracle.settings import S3StoreSettings
from tests.support.models import EXAMPLE_CALIBRATION, EXAMPLE_MODEL, onnx_variant
from tests.support.node import new_node
from tests.support.stack import started_stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

KEYS = {"access_key_id": "testing", "secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    server = ManagedProcess(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        tmp_path_factory.mktemp("s3") / "moto.log",
    )
    server.start()
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        server.check_alive()
        try:
            _client(url).list_buckets()
        except Exception:
            return False
        return True

    try:
        wait_for(answers, 30, "moto_server answering")
        yield url
    finally:
        server.stop()


def _client(url: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3(s3_endpoint: str) -> S3StoreSettings:
    """A fresh bucket on the server."""
    bucket = f"oracle-{uuid.uuid4().hex[:12]}"
    _client(s3_endpoint).create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    return S3StoreSettings(bucket=bucket, prefix="node/", endpoint_url=s3_endpoint, **KEYS)


def _shared(cache: Path, s3: S3StoreSettings) -> SharedStore:
    return SharedStore(ArtifactStore(cache), S3ObjectStore(s3))


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_an_empty_cache_fetches_the_model_by_hash_and_refuses_a_wrong_file(
    s3: S3StoreSettings, tmp_path: Path
) -> None:
    node = _shared(tmp_path / "node", s3)
    onnx_hash, _ = node.cache.put(EXAMPLE_MODEL)
    node.publish_model(onnx_hash)

    worker = _shared(tmp_path / "worker", s3)
    path = worker.model(onnx_hash)
    assert path.parent == tmp_path / "worker" and onnx_hash_of(path) == onnx_hash
    assert _files(tmp_path / "worker") == [path.name]  # nothing else left behind

    # Someone replaces the object: a fresh cache refuses it and keeps nothing.
    other = tmp_path / "other.onnx"
    other.write_bytes(EXAMPLE_MODEL.read_bytes() + b"\0")
    node.objects.upload(other, path.name)
    fresh = _shared(tmp_path / "fresh", s3)
    with pytest.raises(ModelError, match="hashes to"):
        fresh.model(onnx_hash)
    assert _files(tmp_path / "fresh") == []
    with pytest.raises(ModelError, match="not in the shared store"):
        fresh.model("0x" + "00" * 32)
    # The worker that fetched before keeps its checked copy.
    assert onnx_hash_of(worker.model(onnx_hash)) == onnx_hash


def test_a_prover_cache_fetches_the_circuit_and_checks_every_file(
    s3: S3StoreSettings, tmp_path: Path
) -> None:
    node = _shared(tmp_path / "node", s3)
    onnx_hash, manifest = onboarding.build(
        node.cache,
        EXAMPLE_MODEL,
        EXAMPLE_CALIBRATION,
        onboarding.SrsChoice(dev=True),
        zk.CircuitParams(),
        lambda _: None,
    )
    node.publish_circuit(onnx_hash)

    prover = _shared(tmp_path / "prover", s3)
    prover.circuit(onnx_hash)
    files, fetched = circuits.check_circuit(prover.cache, onnx_hash)  # hashes checked
    assert fetched == manifest
    assert (circuits.srs_dir(prover.cache) / manifest.srs).is_file()
    assert _files(prover.cache.root) == _files(node.cache.root)

    # A proving key swapped in the store: the fetch fails and leaves no circuit behind.
    bad = tmp_path / "bad.key"
    bad.write_bytes(files.pk.read_bytes()[:-1] + b"\x00")
    node.objects.upload(bad, f"zk/{files.root.name}/pk.key")
    fresh = _shared(tmp_path / "fresh", s3)
    with pytest.raises(ModelError, match=r"pk\.key from the shared store hashes to"):
        fresh.circuit(onnx_hash)
    assert not circuits.circuit_dir(fresh.cache, onnx_hash).exists()


def test_two_inference_workers_with_separate_caches_serve_one_node(
    s3: S3StoreSettings, tmp_path: Path, redis_server: object
) -> None:
    env = {
        "ORACLE_STORE__S3__BUCKET": s3.bucket,
        "ORACLE_STORE__S3__PREFIX": s3.prefix,
        "ORACLE_STORE__S3__ENDPOINT_URL": str(s3.endpoint_url),
        "ORACLE_STORE__S3__ACCESS_KEY_ID": "testing",
        "ORACLE_STORE__S3__SECRET_ACCESS_KEY": "testing",
        "ORACLE_WORKER__BATCH_SIZE": "1",
    }
    redis_url = redis_server.url(0)  # type: ignore[attr-defined]
    with started_stack(
        tmp_path / "stack", f"sqlite:///{tmp_path / 'node.db'}", redis_url, worker=False
    ) as stack:
        # The node registered the model into its own store; publishing puts it in the
        # shared one (what `oracle model register` does when store.s3 is set).
        onnx_hash = onnx_hash_of(EXAMPLE_MODEL)
        _shared(stack.settings.store.path, s3).publish_model(onnx_hash)
        caches = [tmp_path / "host-a", tmp_path / "host-b"]
        node = new_node(stack.settings)
        node.start()
        try:
            for i, cache in enumerate(caches):
                assert not cache.exists()
                worker = stack.start_worker(f"worker-{i}", ORACLE_STORE__PATH=str(cache), **env)
                values = [to_fixed(v, 16) for v in (0.5, -0.25, 0.125 * i, 0.75)]
                request_id = stack.request(values)
                fulfilled, output, err = stack.wait_result(request_id, timeout=60)
                assert fulfilled and err == b"" and len(output) == 1
                # This worker answered from its own cache, filled by hash from the store.
                fetched = ArtifactStore(cache).path_for(onnx_hash)
                assert fetched.is_file() and onnx_hash_of(fetched) == onnx_hash
                worker.kill()
                worker.stop()
                wait_for(
                    lambda rid=request_id: stack.row_status(rid) == "confirmed", what="confirmed"
                )
        finally:
            node.stop()


def test_cli_registration_publishes_the_model_and_circuit_for_other_hosts(
    s3: S3StoreSettings, tmp_path: Path, redis_server: object
) -> None:
    onnx = onnx_variant(tmp_path / "published.onnx", "published")
    env = {
        **os.environ,
        "ORACLE_STORE__S3__BUCKET": s3.bucket,
        "ORACLE_STORE__S3__PREFIX": s3.prefix,
        "ORACLE_STORE__S3__ENDPOINT_URL": str(s3.endpoint_url),
        "ORACLE_STORE__S3__ACCESS_KEY_ID": "testing",
        "ORACLE_STORE__S3__SECRET_ACCESS_KEY": "testing",
    }
    redis_url = redis_server.url(0)  # type: ignore[attr-defined]
    db_url = f"sqlite:///{tmp_path / 'node.db'}"
    with started_stack(tmp_path / "stack", db_url, redis_url, worker=False) as stack:
        argv = [sys.executable, "-m", "oracle.cli", "model", "register", str(onnx), "--zk"]
        argv += ["--calibration", str(EXAMPLE_CALIBRATION), "--dev-srs", "--json"]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env={**env, **stack.worker_env},
            cwd=ROOT,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    onnx_hash = json.loads(done.stdout)["onnx_hash"]
    other_host = _shared(tmp_path / "other-host", s3)
    assert onnx_hash_of(other_host.model(onnx_hash)) == onnx_hash == onnx_hash_of(onnx)
    other_host.circuit(onnx_hash)
    circuits.check_circuit(other_host.cache, onnx_hash)  # every file against the manifest
