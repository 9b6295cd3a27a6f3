"""Create a file only if it does not exist yet, whole or not at all: what a lease needs.

Of several processes creating the same name at once exactly one must succeed, on any
host. Locally (and on NFS) a temporary is hard-linked to the name (``link`` fails when
the name exists). On S3 a ``PutObject`` with ``If-None-Match: *`` is refused (412) when
the key exists: AWS has honoured it since August 2024, as do current S3-compatible
servers (moto 5 among them; older MinIO and Ceph releases may not — they must be checked
before leases are trusted to them). pyarrow's S3 filesystem cannot send that header, so
the request goes through boto3 (``pip install boto3``), which reads the same ``AWS_*``
variables and profiles. Other stores (GCS, HDFS, fsspec) are refused: `exclusive_create`
raises rather than writing a lease two replicas could both believe they hold.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from batchcraft.errors import StorageError
from batchcraft.storage.locations import Location

_SCHEMES_WITH_CONDITIONAL_CREATE = ("", "s3://")
"""`Location.root` of the stores `exclusive_create` supports (the local filesystem, S3)."""


def supports_exclusive_create(location: Location) -> str | None:
    """None if `exclusive_create` works below ``location``, else why not (one line)."""
    if location.root not in _SCHEMES_WITH_CONDITIONAL_CREATE:
        return (
            f"{location.root} offers no conditional create that batchcraft uses "
            "(leases need one: a local or shared POSIX directory, or s3://)"
        )
    if location.root == "s3://":
        try:
            import boto3  # noqa: F401
        except ImportError:
            return "leases on s3:// send a conditional PutObject through boto3: pip install boto3"
    return None


def exclusive_create(location: Location, data: bytes, *, fsync: bool = True) -> bool:
    """Create the file ``location`` holding ``data`` unless it exists; whether it was created.

    Raises:
        StorageError: the store offers no conditional create, or the request failed.
        OSError: a local file could not be written.
    """
    reason = supports_exclusive_create(location)
    if reason is not None:
        raise StorageError(f"cannot create {location.url} exclusively: {reason}")
    if location.is_local:
        return _link_create(Path(location.path), data, fsync)
    return _conditional_put(location, data)


def _link_create(path: Path, data: bytes, fsync: bool) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    # not named like a checkpoint temporary: the job's holder removes those of its directory
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".claim.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.link(name, path)
        return True
    except FileExistsError:
        return False
    finally:
        Path(name).unlink(missing_ok=True)


def _conditional_put(location: Location, data: bytes) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = location.path.partition("/")
    try:
        client = _s3_client(*(os.environ.get(name) for name in _CLIENT_ENVIRONMENT))
        client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        return True
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code", "")
        if status == 412 or code == "PreconditionFailed":
            return False
        if status == 409 or code == "ConditionalRequestConflict":
            return False  # a concurrent conditional write to the key won
        raise StorageError(f"cannot create {location.url}: {code or error}") from None
    except BotoCoreError as error:
        raise StorageError(f"cannot reach {location.url}: {error}") from None


_CLIENT_ENVIRONMENT = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
)


@lru_cache(maxsize=4)
def _s3_client(*environment: str | None) -> Any:
    """One client per store and identity (``environment``: the values of
    ``_CLIENT_ENVIRONMENT``, which boto3 reads itself), with a short connect timeout."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})
    return boto3.client("s3", config=config)
