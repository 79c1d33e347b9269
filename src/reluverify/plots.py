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


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def side_by_side(images, scale: int = 8, gap: int = 4) -> np.ndarray:
    """Grayscale pixels of several [0, 1] images in a row (perturbations should be mapped to [0, 1])."""
    tiles = [image_to_pixels(im, scale) for im in images]
    h = tiles[0].shape[0]
    sep = np.full((h, gap), 128, dtype=np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [sep, t]
    return np.hstack(row)


def adversarial_figure(path: str | os.PathLike, result, image_shape=(28, 28), title: str | None = None) -> str:
    """Original | perturbation | adversarial image, with the network's class probabilities.

    Uses matplotlib when installed (the ``plots`` extra); otherwise writes the three images side by
    side (perturbation mapped so that grey is no change) with NumPy only.
    """
    x = np.asarray(result.x).reshape(image_shape)
    xa = np.asarray(result.x_adv).reshape(image_shape)
    d = xa - x
    m = max(float(np.max(np.abs(d))), 1e-12)  # not a tolerance: keeps the colour scale finite
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        write_png(path, side_by_side([x, 0.5 + 0.5 * d / m, xa]))
        return os.fspath(path)
    p0, p1 = softmax(result.logits), softmax(result.adv_logits)
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), gridspec_kw={"width_ratios": [1, 1, 1, 1.4]})
    axes[0].imshow(x, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"original: class {result.original_class} (p={p0[result.original_class]:.3f})")
    im = axes[1].imshow(d, cmap="RdBu_r", vmin=-m, vmax=m)
    dist = getattr(result, "distances", {}) or {}
    axes[1].set_title(f"change: L1 {dist.get('l1', 0):.3g}, L∞ {dist.get('linf', 0):.3g}, L0 {dist.get('l0', 0)}")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[2].imshow(xa, cmap="gray", vmin=0, vmax=1)
    axes[2].set_title(f"adversarial: class {result.adversarial_class} (p={p1[result.adversarial_class]:.3f})")
    for a in axes[:3]:
        a.set_xticks([]); a.set_yticks([])
    k = np.arange(len(p0))
    axes[3].bar(k - 0.2, p0, width=0.4, label="original")
    axes[3].bar(k + 0.2, p1, width=0.4, label="adversarial")
    axes[3].set_xticks(k); axes[3].set_ylim(0, 1); axes[3].set_title("class probabilities (softmax)")
    axes[3].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return os.fspath(path)


def image_grid(path: str | os.PathLike, images, titles, image_shape=(28, 28), cmap="gray", vmin=0.0, vmax=1.0) -> str:
    """A row of images with titles (matplotlib), or side by side with NumPy only."""
    images = [np.asarray(im).reshape(image_shape) for im in images]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        write_png(path, side_by_side([(im - vmin) / (vmax - vmin) for im in images]))
        return os.fspath(path)
    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.6))
    axes = np.atleast_1d(axes)
    for a, im, t in zip(axes, images, titles):
        a.imshow(im, cmap=cmap, vmin=vmin, vmax=vmax)
        a.set_title(t, fontsize=9)
        a.set_xticks([]); a.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return os.fspath(path)
