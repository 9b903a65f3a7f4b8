"""Argument checks of core config dataclasses and value types (sensor configs, lighting,
perception configs): each raises ``ValueError`` naming the owner, the field and what is
accepted. (ROS parameters are checked against their ParamSpec: :mod:`sitebot.config.params`.)
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["check_range", "check_ranges", "finite_vector"]


def check_range(owner: str, name: str, value: Any, lo: float, hi: float, *,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """``owner.name`` must be a finite number (not a bool) in [lo, hi] (``lo_open`` /
    ``hi_open``: the bound itself excluded)."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value))
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ValueError(f"{owner}.{name}={value!r}: accepted range {lb}{lo}, {hi}{rb}")


def check_ranges(config: object, checks: Iterable[tuple[str, float, float]]) -> None:
    """Each field ``name`` of ``config`` in ``checks`` ((name, lo, hi), ...) in [lo, hi]
    (:func:`check_range`, owner: the config's class name)."""
    for name, lo, hi in checks:
        check_range(type(config).__name__, name, getattr(config, name), lo, hi)


def finite_vector(name: str, value: Sequence[float], n: int) -> np.ndarray:
    """*value* as a float array of exactly *n* finite numbers."""
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (n,) or not np.isfinite(arr).all():
        raise ValueError(f"{name}={value!r}: accepted: {n} finite numbers")
    return arr
