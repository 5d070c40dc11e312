"""Image grids of samples (a GAN's generated images, a VAE's reconstructions) and saving them as PNG.

    grid = image_grid(images)                  # (k, C, H, W) in [0, 1] -> (C, H', W'), rows of ``columns``
    save_png(grid, run_dir / "samples" / "generated_000200.png")

Pillow writes the PNG; the bytes go through ``engine.fileio.write_atomic``, so a reader never sees half
a file. Small images (8x8 digits) are enlarged by whole pixels so the grid is readable.
"""

from __future__ import annotations

import io
import math
import os

import torch


def image_grid(images: torch.Tensor, columns: int | None = None, padding: int = 2, pad_value: float = 1.0
               ) -> torch.Tensor:
    """Tile (k, C, H, W) images with values in [0, 1] into one (C, H', W') image, ``columns`` per row
    (default: a near square), separated by ``padding`` pixels of ``pad_value``."""
    if images.ndim != 4:
        raise ValueError(f"expects images shaped (k, C, H, W), got {tuple(images.shape)}")
    k, c, h, w = images.shape
    columns = max(1, min(columns or math.ceil(math.sqrt(k)), k))
    rows = math.ceil(k / columns)
    grid = torch.full((c, rows * (h + padding) + padding, columns * (w + padding) + padding), float(pad_value))
    images = images.detach().float().clamp(0, 1).cpu()
    for i in range(k):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = images[i]
    return grid


def png_bytes(grid: torch.Tensor, min_size: int = 400) -> bytes:
    """A (C, H, W) image in [0, 1] (C = 1 or 3) as PNG bytes, enlarged by a whole factor (nearest
    neighbour) until its longer side is at least ``min_size`` pixels."""
    from PIL import Image

    if grid.ndim != 3 or grid.shape[0] not in (1, 3):
        raise ValueError(f"expects a grey (1, H, W) or colour (3, H, W) image, got {tuple(grid.shape)}")
    scale = max(1, math.ceil(min_size / max(grid.shape[1:])))
    pixels = (grid.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    if scale > 1:
        pixels = pixels.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).contiguous().numpy()
    image = Image.fromarray(array)  # uint8 (H, W) is grey ("L"), (H, W, 3) colour ("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(grid: torch.Tensor, path: str | os.PathLike, min_size: int = 400) -> str:
    """Write a (C, H, W) image in [0, 1] as a PNG file (atomically); returns the path."""
    from ..fileio import write_atomic

    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    write_atomic(path, png_bytes(grid, min_size))
    return os.fspath(path)


def to_display(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Map images from ``value_range`` (e.g. a tanh's (-1, 1)) to [0, 1] for display."""
    lo, hi = value_range
    return ((images.detach().float() - lo) / (hi - lo)).clamp(0, 1)
