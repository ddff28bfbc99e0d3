"""The shared object store: model files and circuits fetched by hash into a local cache.

With ``store.s3`` set, ``store.path`` is this host's cache and the object store is the one
every host of the node shares. Keys follow the local store's layout under ``store.s3.prefix``:
``<onnx hash>.onnx``, ``zk/<onnx hash>/<file>`` (``manifest.json`` last) and
``srs/<sha256>.srs``. Whatever is fetched is checked before it is used: a model file against
its ONNX hash, a circuit's files against its manifest, an SRS against the SHA-256 in its
name. A download lands in a temporary file in the cache and is renamed into place only once
it is checked, so the cache never holds a wrong or half-written file.

Without ``store.s3`` (the default) nothing here runs: the store is a plain directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

import structlog

from oracle.errors import ModelError
from oracle.models.circuits import MANIFEST, Manifest, circuit_dir, srs_dir
from oracle.models.store import ArtifactStore, onnx_hash_of, sha256_file
from oracle.settings import S3StoreSettings, StoreSettings

log = structlog.get_logger(__name__)


class ObjectStore(Protocol):
    """Where artifacts are shared: whole files under keys."""

    def upload(self, src: Path, key: str) -> None: ...

    def download(self, key: str, dest: Path) -> bool:
        """Write the object to ``dest``; False when there is no such key."""
        ...


class S3ObjectStore:
    """An S3-compatible bucket through boto3 (AWS S3, MinIO, Ceph, ...)."""

    def __init__(self, settings: S3StoreSettings) -> None:
        import boto3  # only a host configured with store.s3 needs it
        from botocore.config import Config

        keys: dict[str, Any] = {}
        if settings.access_key_id is not None and settings.secret_access_key is not None:
            keys = {
                "aws_access_key_id": settings.access_key_id.get_secret_value(),
                "aws_secret_access_key": settings.secret_access_key.get_secret_value(),
            }
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            **keys,
        )

    def upload(self, src: Path, key: str) -> None:
        try:
            self._client.upload_file(str(src), self.bucket, self.prefix + key)
        except Exception as exc:  # boto3 raises botocore's and s3transfer's own errors
            raise ModelError(f"cannot upload {key} to s3://{self.bucket}: {exc}") from exc

    def download(self, key: str, dest: Path) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.download_file(self.bucket, self.prefix + key, str(dest))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey"):
                return False
            raise ModelError(f"cannot fetch {key} from s3://{self.bucket}: {exc}") from exc
        except Exception as exc:
            raise ModelError(f"cannot fetch {key} from s3://{self.bucket}: {exc}") from exc
        return True


def _bare(digest: str) -> str:
    return digest.lower().removeprefix("0x")


class SharedStore:
    """A local :class:`ArtifactStore` used as the cache of a shared :class:`ObjectStore`."""

    def __init__(self, cache: ArtifactStore, objects: ObjectStore) -> None:
        self.cache = cache
        self.objects = objects

    # -- publishing (the host that registers or onboards a model) -----------------------
    def publish_model(self, onnx_hash: str) -> None:
        """Upload the cache's model file ``onnx_hash``."""
        path = self.cache.path_for(onnx_hash)
        if not path.is_file() or onnx_hash_of(path) != "0x" + _bare(onnx_hash):
            raise ModelError(f"no model file {onnx_hash} in {self.cache.root} to publish")
        self.objects.upload(path, path.name)

    def publish_circuit(self, onnx_hash: str) -> None:
        """Upload the circuit of ``onnx_hash``, its SRS, then its manifest (last: a reader
        that finds the manifest finds every file it names)."""
        root = circuit_dir(self.cache, onnx_hash)
        manifest = Manifest.read(root)
        self.objects.upload(srs_dir(self.cache) / manifest.srs, f"srs/{manifest.srs}")
        for name in manifest.files:
            self.objects.upload(root / name, f"zk/{root.name}/{name}")
        self.objects.upload(root / MANIFEST, f"zk/{root.name}/{MANIFEST}")

    # -- fetching (any worker) ----------------------------------------------------------
    def model(self, onnx_hash: str) -> Path:
        """The cache's path of model file ``onnx_hash``, fetched and checked if missing."""
        dest = self.cache.path_for(onnx_hash)
        if dest.is_file():
            return dest  # the session cache checks its hash when it loads it
        self.cache.root.mkdir(parents=True, exist_ok=True)
        self._fetch_checked(dest.name, dest, _bare(onnx_hash))
        log.info("store.fetched_model", onnx_hash=onnx_hash)
        return dest

    def circuit(self, onnx_hash: str) -> None:
        """Make sure the cache holds the circuit of ``onnx_hash`` and its SRS, fetching and
        checking what is missing. The circuit directory appears whole or not at all."""
        final = circuit_dir(self.cache, onnx_hash)
        if (final / MANIFEST).is_file():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            prefix = f"zk/{final.name}/"
            if not self.objects.download(prefix + MANIFEST, scratch / MANIFEST):
                raise ModelError(f"no zk circuit for ONNX file {onnx_hash} in the shared store")
            manifest = Manifest.read(scratch)
            for name, digest in manifest.files.items():
                self._fetch_checked(prefix + name, scratch / name, digest)
            srs = srs_dir(self.cache) / manifest.srs
            if not srs.is_file():
                srs.parent.mkdir(parents=True, exist_ok=True)
                self._fetch_checked(f"srs/{manifest.srs}", srs, Path(manifest.srs).stem)
            try:
                os.replace(scratch, final)
            except OSError:
                if not (final / MANIFEST).is_file():  # not a concurrent fetch that won
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("store.fetched_circuit", onnx_hash=onnx_hash)

    def _fetch_checked(self, key: str, dest: Path, sha256: str) -> None:
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if not self.objects.download(key, tmp):
                raise ModelError(f"{key} is not in the shared store")
            got = sha256_file(tmp)
            if got != _bare(sha256):
                raise ModelError(f"{key} from the shared store hashes to 0x{got}, not 0x{sha256}")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)


def shared_store(settings: StoreSettings) -> SharedStore | None:
    """The shared store ``settings`` configure, or None for a plain directory."""
    if settings.s3 is None:
        return None
    return SharedStore(ArtifactStore(Path(settings.path)), S3ObjectStore(settings.s3))
