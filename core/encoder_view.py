"""The encoder E_T at any T in closed form: what the T slider shows instantly.

E_T(x) = N(alpha(T) x, sigma^2(T) I). With noise drawn once and kept fixed, alpha(T) x + sigma(T) eps moves
smoothly as T changes, so the slider animates E_T#P without sampling anything new (docs/diffusion-model.md#encoder).
"""

from __future__ import annotations

import numpy as np

from .data.image_transforms import LOGIT_LAMBDA
from .sde import VPSDE


def fixed_noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Standard normal noise for the encoder view, drawn once."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def encoder_view(points: np.ndarray, T: float, noise: np.ndarray, sde: VPSDE = VPSDE()) -> np.ndarray:
    """One draw of E_T(x) per point: alpha(T) x + sigma(T) eps, with eps = ``noise`` of the same shape."""
    if T <= 0:
        return np.asarray(points, dtype=np.float32).copy()
    return (sde.alpha(T) * points + np.sqrt(sde.var(T)) * noise).astype(np.float32)



def encoder_view_images(pixels: np.ndarray, T: float, noise: np.ndarray, sde: VPSDE = VPSDE()) -> np.ndarray:
    """E_T for images, shown in pixel space: logit-transform (as training does), encode, map back to [0, 1]."""
    s = LOGIT_LAMBDA + (1 - 2 * LOGIT_LAMBDA) * np.asarray(pixels, dtype=np.float32)
    encoded = encoder_view(np.log(s) - np.log1p(-s), T, noise, sde)
    return np.clip((1.0 / (1.0 + np.exp(-encoded)) - LOGIT_LAMBDA) / (1 - 2 * LOGIT_LAMBDA), 0.0, 1.0).astype(np.float32)
