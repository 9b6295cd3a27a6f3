"""Any URL a user gives (inputs, ``--out``, datasets) as a pyarrow filesystem and a path in it.

Plain paths and ``file://`` are the local filesystem; ``s3://``, ``gs://`` and ``hdfs://``
are pyarrow's own filesystems; any other scheme goes through fsspec (``abfs://`` with
``adlfs``, for instance), wrapped as a pyarrow filesystem. Credentials come the standard
way of each store (for S3 the ``AWS_*`` variables, ``AWS_ENDPOINT_URL`` for an S3-compatible
server, ``AWS_PROFILE``), and ``storage_options`` (the ``[curate.storage_options]`` table of
the config file) passes anything else to the filesystem's constructor.
"""

from __future__ import annotations

import functools
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs

from batchcraft.errors import StorageError

StorageOptions = Mapping[str, Any]
_S3_TIMEOUTS = {"connect_timeout": 5.0, "request_timeout": 60.0}
"""Seconds; an unreachable endpoint fails in seconds rather than the SDK's minutes."""
_REFUSED = ("ACCESS_DENIED", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
            "403", "credentials")  # fmt: skip
"""Words of a store's error that mean the credentials were refused or missing."""
_SECRET_WORDS = ("secret", "key", "token", "password", "credential", "sas")


@dataclass(frozen=True)
class Location:
    """A file or directory: its filesystem, its path there, and the URL prefix of that store.

    Attributes:
        filesystem: The pyarrow filesystem holding it.
        path: Its path in ``filesystem`` (``bucket/key`` on S3, absolute locally).
        root: What comes before ``path`` in its URL (``s3://``, ``hdfs://host:8020``);
            empty for the local filesystem, whose URLs are plain paths.
    """

    filesystem: pafs.FileSystem
    path: str
    root: str = ""

    @property
    def url(self) -> str:
        """The location as a user would write it (a plain path when local)."""
        return self.root + self.path

    @property
    def is_local(self) -> bool:
        """Whether this is the local filesystem (where rename is atomic)."""
        return not self.root

    @property
    def name(self) -> str:
        """The last part of the path."""
        return posixpath.basename(self.path.rstrip("/"))

    def join(self, *parts: str) -> Location:
        """The location of ``parts`` below this one."""
        return Location(self.filesystem, posixpath.join(self.path, *parts), self.root)

    def sibling(self, name: str) -> Location:
        """The location ``name`` beside this one (in the same directory or prefix)."""
        parent = posixpath.dirname(self.path.rstrip("/"))
        return Location(self.filesystem, posixpath.join(parent, name), self.root)

    def info(self) -> pafs.FileInfo:
        """What the store says about this path (``type`` NotFound when absent)."""
        return call_store(self.url, self.filesystem.get_file_info, self.path)


def is_url(given: str) -> bool:
    """Whether ``given`` names a store by scheme (``s3://…``) rather than a plain path."""
    scheme = urlparse(given).scheme
    return len(scheme) > 1 and "://" in given  # a Windows drive letter is no scheme


def resolve(given: str, options: StorageOptions | None = None) -> Location:
    """The filesystem and path of a URL or plain path.

    Args:
        given: ``s3://bucket/key``, ``gs://…``, ``hdfs://host:port/path``, ``file:///…``,
            any fsspec URL, or a local path.
        options: Extra keyword arguments of the store's filesystem (endpoint, region, keys).

    Raises:
        StorageError: the scheme's filesystem is not installed, or an option is unknown.
    """
    if not is_url(given):
        return Location(pafs.LocalFileSystem(), os.path.abspath(given))
    parsed = urlparse(given)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        return Location(pafs.LocalFileSystem(), os.path.abspath(parsed.path))
    settings = dict(options or {})
    if scheme == "s3":  # the environment's endpoint is part of what the cache is keyed on
        settings = _s3_options(settings)
    try:
        filesystem = _filesystem(scheme, parsed.netloc, tuple(sorted(settings.items())))
    except TypeError:  # lru_cache hashes the options: a list or table cannot be one
        raise StorageError(
            f"storage_options {sorted(settings)} must hold strings, numbers or booleans"
        ) from None
    if scheme in ("s3", "gs", "gcs"):
        return Location(filesystem, (parsed.netloc + parsed.path).rstrip("/"), f"{scheme}://")
    if scheme == "hdfs":
        return Location(filesystem, parsed.path.rstrip("/") or "/", f"hdfs://{parsed.netloc}")
    return Location(filesystem, (parsed.netloc + parsed.path).rstrip("/"), f"{scheme}://")


@functools.lru_cache(maxsize=32)
def _filesystem(scheme: str, netloc: str, items: tuple[tuple[str, Any], ...]) -> pafs.FileSystem:
    """One filesystem per store and options in a process (executors read many chunks)."""
    options = dict(items)
    try:
        if scheme == "s3":
            return pafs.S3FileSystem(**options)
        if scheme in ("gs", "gcs"):
            return pafs.GcsFileSystem(**options)
        if scheme == "hdfs":
            host, _, port = netloc.partition(":")
            return pafs.HadoopFileSystem(host or "default", int(port or 0), **options)
    except TypeError as error:  # an option the constructor does not take
        raise StorageError(f"storage_options for {scheme}:// are not accepted: {error}") from None
    except (OSError, ValueError) as error:
        raise StorageError(f"cannot open the {scheme}:// store: {_one_line(error)}") from None
    return _fsspec_filesystem(scheme, options)


def _s3_options(options: dict[str, Any]) -> dict[str, Any]:
    """S3FileSystem's arguments: the options, with the endpoint of ``endpoint_url`` or
    ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` (which not every pyarrow reads) and timeouts."""
    endpoint = (
        options.pop("endpoint_url", None)
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    if endpoint and "endpoint_override" not in options:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parsed.netloc
        options.setdefault("scheme", parsed.scheme)
    for name, seconds in _S3_TIMEOUTS.items():
        options.setdefault(name, seconds)
    return options


def _fsspec_filesystem(scheme: str, options: dict[str, Any]) -> pafs.FileSystem:
    try:
        import fsspec
    except ImportError:
        raise StorageError(
            f"{scheme}:// needs fsspec and its {scheme} implementation: pip install fsspec"
        ) from None
    try:
        implementation = fsspec.filesystem(scheme, **options)
    except (ImportError, ValueError) as error:  # unknown protocol, or its package missing
        raise StorageError(f"the {scheme}:// store is not installed: {_one_line(error)}") from None
    except TypeError as error:
        raise StorageError(f"storage_options for {scheme}:// are not accepted: {error}") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(implementation))


def call_store(url: str, action: Any, *args: Any, **kwargs: Any) -> Any:
    """``action(*args, **kwargs)`` on a store, its failures as one-line StorageErrors that
    name ``url`` (the SDKs' messages run to several lines)."""
    try:
        return action(*args, **kwargs)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        text = _one_line(error)
        if any(sign in text for sign in _REFUSED):
            raise StorageError(
                f"access to {url} refused: {text} (credentials missing or wrong? for S3: "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or storage_options)"
            ) from None
        raise StorageError(f"cannot reach {url}: {text}") from None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:300] + "…"


def redacted(options: StorageOptions) -> dict[str, Any]:
    """``options`` fit for a manifest or a log: values of secret-looking keys hidden."""
    return {
        key: "<redacted>" if any(word in key.lower() for word in _SECRET_WORDS) else value
        for key, value in options.items()
    }
