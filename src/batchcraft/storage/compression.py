"""Compressed input files, told by their extension: ``.gz``, ``.bz2``, ``.zst``, ``.xz``.

None of these can be split: a file is read whole, by one task, from its first byte. The
readers raise `CorruptInput` for a stream that is damaged or ends early (a truncated
download), so no row after the damage is lost without a record.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from typing import BinaryIO

import pyarrow as pa

CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".xz": "xz"}
"""Extension -> codec. gzip, bz2 and xz check the data they decode; zstd only when its
writer added a checksum (a frame without one can decode damaged bytes as garbage)."""
DECODE_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, pa.ArrowInvalid)
"""What a damaged or truncated stream raises while being read, per codec."""


class CorruptInput(ValueError):
    """A compressed file's stream is damaged or ends early."""


def codec_of(path: str) -> str | None:
    """The codec of a file name (``news.jsonl.gz`` -> ``gzip``), None when uncompressed."""
    for extension, codec in CODECS.items():
        if path.endswith(extension):
            return codec
    return None


def without_codec(path: str) -> str:
    """The name with its codec's extension removed (``news.jsonl.gz`` -> ``news.jsonl``)."""
    for extension in CODECS:
        if path.endswith(extension):
            return path[: -len(extension)]
    return path


def decompressing(stored: BinaryIO, codec: str) -> BinaryIO:
    """A reader of the decompressed content of ``stored`` (closing it closes ``stored``)."""
    if codec == "gzip":
        return gzip.GzipFile(fileobj=stored, mode="rb")  # type: ignore[return-value]
    if codec == "bz2":
        return bz2.BZ2File(stored)  # type: ignore[return-value]
    if codec == "xz":
        return lzma.LZMAFile(stored)  # type: ignore[return-value]
    import io

    return io.BufferedReader(pa.CompressedInputStream(stored, "zstd"))  # type: ignore[arg-type]


def damage(path: str, error: BaseException) -> CorruptInput:
    """The error of a damaged or truncated compressed file, naming it, in one line."""
    if isinstance(error, EOFError) or "runcated" in str(error):
        what = "its compressed stream ends early (a truncated file?)"
    else:
        what = f"its compressed stream is damaged ({' '.join(str(error).split())[:200]})"
    return CorruptInput(f"input {path} cannot be decompressed: {what}")
