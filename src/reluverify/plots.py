"""Pictures. Grayscale images are written as PNG with NumPy and zlib only (no plotting library)."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: str | os.PathLike, pixels: np.ndarray) -> None:
    """Write a 2-D uint8 array (grayscale) or a (h, w, 3) uint8 array (RGB) as a PNG file."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError("write_png takes uint8 pixels")
    if pixels.ndim == 2:
        colour, rows = 0, pixels
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        colour, rows = 2, pixels.reshape(pixels.shape[0], -1)
    else:
        raise ValueError(f"write_png takes (h, w) or (h, w, 3) pixels, got shape {pixels.shape}")
    h, w = pixels.shape[:2]
    raw = b"".join(b"\x00" + rows[r].tobytes() for r in range(h))
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
    png += _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    with open(path, "wb") as fh:
        fh.write(png)


def image_to_pixels(image: np.ndarray, scale: int = 8, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Map values in ``[lo, hi]`` to uint8 gray levels, each pixel enlarged to ``scale × scale``."""
    img = np.clip((np.asarray(image, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)
    pix = np.round(img * 255).astype(np.uint8)
    return np.kron(pix, np.ones((scale, scale), dtype=np.uint8))


def save_image(path: str | os.PathLike, image: np.ndarray, scale: int = 8) -> str:
    """Save a [0, 1] grayscale image (e.g. an MNIST digit, shape (28, 28)) as an enlarged PNG."""
    write_png(path, image_to_pixels(image, scale))
    return os.fspath(path)
