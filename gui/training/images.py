"""Examples as pictures: NumPy images to ``QPixmap`` thumbnails, and a caption for examples that are not
images (2-D points, table rows, token ids)."""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtGui


def to_numpy(t) -> np.ndarray:
    """A CPU tensor (or array) as NumPy without running a PyTorch kernel in the UI thread (see
    ``gui.training.compute``): the array shares the tensor's memory."""
    if hasattr(t, "detach"):
        t = t.detach()
        try:
            return t.numpy()
        except (TypeError, RuntimeError):  # bfloat16 and friends have no NumPy twin
            return t.float().numpy()
    return np.asarray(t)


def as_image(sample) -> np.ndarray | None:
    """An (H, W) or (H, W, 3) float array for an example that is an image: (C, H, W) with 1 or 3
    channels, (H, W), or a flat vector whose length is a square (a flattened 28x28 digit). None else."""
    a = np.asarray(to_numpy(sample), dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3) and min(a.shape[1:]) >= 4:
        return a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] in (1, 3) and min(a.shape[:2]) >= 4:
        return a[..., 0] if a.shape[-1] == 1 else a
    if a.ndim == 2 and min(a.shape) >= 4:
        return a
    if a.ndim == 1 and a.size >= 16:
        side = math.isqrt(a.size)
        if side * side == a.size:
            return a.reshape(side, side)
    return None


def to_qimage(img: np.ndarray) -> QtGui.QImage:
    """Scale to [0, 255] by the image's own range (inputs may be standardized or in [-1, 1])."""
    a = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    a = np.ascontiguousarray((a * 255).round().astype(np.uint8))
    if a.ndim == 2:
        h, w = a.shape
        return QtGui.QImage(a.data, w, h, w, QtGui.QImage.Format.Format_Grayscale8).copy()
    h, w, _ = a.shape
    return QtGui.QImage(a.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


def pixmap(sample, size: int = 64) -> QtGui.QPixmap | None:
    img = as_image(sample)
    if img is None:
        return None
    qimg = to_qimage(img).scaled(size, size, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                                 QtCore.Qt.TransformationMode.FastTransformation)
    return QtGui.QPixmap.fromImage(qimg)


def describe(sample, dataset=None, limit: int = 40, mark: int | None = None) -> str:
    """A short text for an example that is not an image. Token ids read as the data set's vocabulary
    where it has one (else as ids); ``mark``: a position to bracket, with the text around it."""
    a = to_numpy(sample)
    if dataset is not None and getattr(dataset, "kind", "") == "tokens" and np.issubdtype(a.dtype, np.integer):
        meta = dataset.meta or {}
        vocab = meta.get("input_vocab") or meta.get("vocab")
        ids = [int(i) for i in a.reshape(-1)]
        if vocab:  # (line breaks shown as ↵: an item's text is a few short lines)
            parts, sep = [vocab[i].replace("\0", "").replace("\n", "↵") if 0 <= i < len(vocab) else "?"
                          for i in ids], ""
        else:
            parts, sep = [str(i) for i in ids], " "
        end = len(ids)
        while end and ids[end - 1] == 0 and (mark is None or end - 1 > mark):
            end -= 1  # trailing padding (id 0)
        parts = parts[:end]
        if mark is None or not 0 <= mark < len(parts):
            text = sep.join(parts)  # its end, where a text runs on: what a next-token model answers from
            return text if len(text) <= limit else "…" + text[-(limit - 1):]
        parts[mark] = f"[{parts[mark]}]"
        lo = hi = mark  # widen around the mark while the text fits
        while True:
            grew = False
            for side in (-1, 1):
                i = lo - 1 if side < 0 else hi + 1
                if 0 <= i < len(parts) and len(sep.join(parts[min(lo, i):max(hi, i) + 1])) + 2 <= limit:
                    lo, hi, grew = min(lo, i), max(hi, i), True
            if not grew:
                break
        return ("…" if lo > 0 else "") + sep.join(parts[lo:hi + 1]) + ("…" if hi < len(parts) - 1 else "")
    flat = a.reshape(-1)
    if np.issubdtype(a.dtype, np.floating):
        parts = [f"{v:.2f}" for v in flat[:6]]
    else:
        parts = [str(v) for v in flat[:8]]
    return "(" + ", ".join(parts) + (", …" if flat.size > len(parts) else "") + ")"
