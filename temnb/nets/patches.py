"""Training patches: random crops of clean images, flipped, turned, rotated and rescaled in one
bilinear resampling (:func:`augment`), before the Poisson noise is drawn.  Used by :mod:`temnb.nets.train`.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .config import TrainConfig

__all__ = ["crop_size", "augment", "sample_clean_patches"]


def crop_size(config: TrainConfig, patch_size: int | None = None) -> int:
    """Side of the clean crop one training patch is cut from: big enough that a patch rotated by up
    to max_rotation_deg and scaled by up to max(scale_range) never reaches outside it (+2 pixels for
    the bilinear neighbours), with (crop - patch) even so that no-rotation patches hit pixel centres."""
    p = config.patch_size if patch_size is None else patch_size
    if not config.augment:
        return p
    angle = math.radians(min(config.max_rotation_deg, 45.0))  # a square's extent peaks at 45 degrees
    size = math.ceil(p * config.scale_range[1] * (math.cos(angle) + math.sin(angle))) + 2
    return size + (size - p) % 2


def augment(crops, patch_size: int, *, flip=None, quarter_turns=None, angle_deg=None, scale=None) -> torch.Tensor:
    """Centre *patch_size* patches of (B, L, L) *crops*, each mirrored (left-right, if flip[i]), turned by
    quarter_turns[i] x 90 degrees counter-clockwise (as np.rot90), rotated by angle_deg[i] and showing
    scale[i] times the field of view, in ONE bilinear resampling (affine_grid + grid_sample).
    Defaults: no change.  Returns (B, patch_size, patch_size) float32."""
    crops = torch.as_tensor(np.asarray(crops, dtype=np.float32))
    n, size = crops.shape[0], crops.shape[-1]
    flip = np.zeros(n, bool) if flip is None else np.asarray(flip, bool)
    turns = np.zeros(n) if quarter_turns is None else np.asarray(quarter_turns, float)
    angle = np.radians((0.0 if angle_deg is None else np.asarray(angle_deg, float)) + 90.0 * turns)
    scale = np.ones(n) if scale is None else np.asarray(scale, float)
    # Output pixel (x, y) in [-1, 1] reads the crop at scale * R(angle) @ mirror @ (x, y), shrunk by
    # patch/crop because both use normalised coordinates.
    c, s = np.cos(angle), np.sin(angle)
    mirror = np.where(flip, -1.0, 1.0)
    k = scale * patch_size / size
    theta = np.zeros((n, 2, 3))
    theta[:, 0, 0], theta[:, 0, 1] = k * c * mirror, -k * s
    theta[:, 1, 0], theta[:, 1, 1] = k * s * mirror, k * c
    grid = F.affine_grid(torch.as_tensor(theta, dtype=torch.float32), (n, 1, patch_size, patch_size),
                         align_corners=False)
    return F.grid_sample(crops[:, None], grid, mode="bilinear", align_corners=False)[:, 0]


def _random_crops(images, rng, n, shape):
    """n crops of (h, w) pixels at random places in random images, and which image each came from."""
    h, w = shape
    index = rng.integers(0, len(images), n)
    ys = rng.integers(0, images.shape[1] - h + 1, n)
    xs = rng.integers(0, images.shape[2] - w + 1, n)
    return np.stack([images[i, y:y + h, x:x + w] for i, y, x in zip(index, ys, xs)]), index


def sample_clean_patches(images, rng, config: TrainConfig) -> np.ndarray:
    """One batch (batch_size, p, p) of clean training patches, augmented when config.augment."""
    crops, _ = _random_crops(images, rng, config.batch_size, (crop_size(config),) * 2)
    if not config.augment:
        return crops.astype(np.float32)
    n, (low, high) = config.batch_size, config.scale_range
    return augment(crops, config.patch_size, flip=rng.integers(0, 2, n).astype(bool),
                   quarter_turns=rng.integers(0, 4, n), angle_deg=rng.uniform(-1, 1, n) * config.max_rotation_deg,
                   scale=rng.uniform(low, high, n)).numpy()
