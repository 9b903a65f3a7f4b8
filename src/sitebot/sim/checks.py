"""Argument checks shared by the simulation's value types (sensor configs, lighting).

Each raises ``ValueError`` naming the field and what is accepted.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["check_range", "finite_vector"]


def check_range(owner: str, name: str, value: Any, lo: float, hi: float, *,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """``owner.name`` must be a finite number (not a bool) in [lo, hi] (``lo_open`` /
    ``hi_open``: the bound itself excluded)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ValueError(f"{owner}.{name}={value!r}: accepted range {lb}{lo}, {hi}{rb}")


def finite_vector(name: str, value: Sequence[float], n: int) -> np.ndarray:
    """*value* as a float array of exactly *n* finite numbers."""
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (n,) or not np.isfinite(arr).all():
        raise ValueError(f"{name}={value!r}: accepted: {n} finite numbers")
    return arr
