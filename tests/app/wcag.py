"""WCAG 2.1's contrast ratio, for the screens' contrast tests (test_screens_contrast.py, test_screens_readable.py)."""

from __future__ import annotations

import numpy as np


def _linear(c: np.ndarray) -> np.ndarray:
    x = c / 255.0
    return np.where(x <= 0.03928, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)  # WCAG 2.1, relative luminance


def luminance(rgb: np.ndarray) -> np.ndarray:
    lin = _linear(np.asarray(rgb, dtype=float))
    return lin[..., 0] * 0.2126 + lin[..., 1] * 0.7152 + lin[..., 2] * 0.0722


def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    la, lb = luminance(a), luminance(b)
    return (np.maximum(la, lb) + 0.05) / (np.minimum(la, lb) + 0.05)


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """:func:`ratio` of two colours."""
    return float(ratio(np.array(a), np.array(b)))
