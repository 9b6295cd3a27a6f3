"""A minimal PNG reader (8-bit RGB/RGBA/grey, non-interlaced) so tests need no Pillow."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def _average_or_paeth(kind: int, row: bytes, prior: bytes, bpp: int) -> bytes:
    """Undo filter 3 (Average) or 4 (Paeth): sequential in x, so plain Python ints."""
    out = bytearray(row)
    for x in range(len(out)):
        left = out[x - bpp] if x >= bpp else 0
        up = prior[x]
        if kind == 3:
            out[x] = (out[x] + ((left + up) >> 1)) & 255
            continue
        corner = prior[x - bpp] if x >= bpp else 0
        estimate = left + up - corner
        to_left, to_up, to_corner = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
        if to_left <= to_up and to_left <= to_corner:
            predictor = left
        elif to_up <= to_corner:
            predictor = up
        else:
            predictor = corner
        out[x] = (out[x] + predictor) & 255
    return bytes(out)


def _unfilter_row(kind: int, row: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    if kind == 0:
        return row
    if kind == 1:  # Sub: a cumulative sum per channel
        lanes = row.reshape(-1, bpp).astype(np.uint64).cumsum(axis=0) % 256
        return lanes.astype(np.uint8).reshape(-1)
    if kind == 2:  # Up
        return row + prior
    restored = _average_or_paeth(kind, row.tobytes(), prior.tobytes(), bpp)
    return np.frombuffer(restored, dtype=np.uint8)


def read_png(path: Path) -> np.ndarray:
    """Pixels of an 8-bit PNG as a (height, width, channels) uint8 array."""
    chunks = _chunks(Path(path).read_bytes())
    header = next(body for kind, body in chunks if kind == b"IHDR")
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or interlace or color not in CHANNELS:
        raise ValueError(f"unsupported PNG: {depth=} {color=} {interlace=}")
    channels = CHANNELS[color]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * channels
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)
    pixels = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        prior = pixels[y] = _unfilter_row(int(rows[y, 0]), rows[y, 1:], prior, channels)
    return pixels.reshape(height, width, channels)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Write a (height, width, 3|4) uint8 array as a PNG (for looking at crops)."""
    height, width, channels = pixels.shape
    color = {3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
