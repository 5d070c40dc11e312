"""Data augmentation on the training device, with kornia (imported only when augmentation is on).

Images (N, C, H, W) get the configured random flips, rotations, padded crops, brightness/contrast
jitter and Gaussian noise, drawn independently for every example of every step. Other float inputs
(points, tables, sequences) can only get noise; the rest of the settings are reported as ignored.
"""

from __future__ import annotations

from typing import Callable

import torch

from .config import AugmentationConfig


def build_augmentation(cfg: AugmentationConfig, sample_shape: tuple[int, ...],
                       is_float: bool) -> tuple[Callable[[torch.Tensor], torch.Tensor] | None, list[str]]:
    """The augmentation as a function of a batch, or None; and notes on settings that do not apply."""
    if not cfg.enabled:
        return None, []
    if not is_float:
        return None, ["augmentation is for float inputs (images, values); ignored for token ids"]
    if len(sample_shape) != 3:
        notes = []
        if cfg.hflip or cfg.vflip or cfg.rotation or cfg.crop_padding or cfg.color_jitter:
            notes.append(f"flips, rotations, crops and colour jitter need images (C, H, W); the input is "
                         f"shaped {sample_shape}, so only noise is applied")
        if not cfg.noise:
            return None, notes
        std = cfg.noise
        return (lambda x: x + std * torch.randn_like(x)), notes

    import kornia.augmentation as K

    c, h, w = sample_shape
    steps = []
    if cfg.hflip:
        steps.append(K.RandomHorizontalFlip(p=0.5))
    if cfg.vflip:
        steps.append(K.RandomVerticalFlip(p=0.5))
    if cfg.rotation:
        steps.append(K.RandomRotation(degrees=cfg.rotation, p=1.0))
    if cfg.crop_padding:
        steps.append(K.RandomCrop((h, w), padding=cfg.crop_padding, p=1.0))
    if cfg.color_jitter:
        j = cfg.color_jitter
        if c in (1, 3):
            steps.append(K.ColorJitter(brightness=j, contrast=j, p=1.0))
    if cfg.noise:
        steps.append(K.RandomGaussianNoise(mean=0.0, std=cfg.noise, p=1.0))
    notes = []
    if cfg.color_jitter and c not in (1, 3):
        notes.append(f"colour jitter needs 1 or 3 channels; the input has {c}, so it is skipped")
    if not steps:
        return None, notes
    pipeline = torch.nn.Sequential(*steps)

    def apply(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return pipeline(x)

    apply.pipeline = pipeline  # for inspection and tests
    return apply, notes
