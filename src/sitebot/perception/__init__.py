"""Perception (core, no ROS): fiducials and gauge reading from the camera
(:mod:`.fiducials`, :mod:`.gauge`), point clouds, obstacles, local map and people from depth
and lidar.  Nodes: ``camera_perception``, ``spatial_perception``.  Submodules are imported
on demand (nothing heavy here): this module holds only :func:`check_ranges`, the range check
of the perception configs."""
from __future__ import annotations

import math
import numbers
from typing import Iterable

__all__ = ["check_ranges"]


def check_ranges(config: object, checks: Iterable[tuple[str, float, float]]) -> None:
    """Each field ``name`` of ``config`` in ``checks`` ((name, lo, hi), ...) must be a
    finite number within [lo, hi].

    :raises ValueError: naming the config class, the field, its value and the range.
    """
    for name, lo, hi in checks:
        v = getattr(config, name)
        if not (isinstance(v, numbers.Real) and math.isfinite(v) and lo <= v <= hi):
            raise ValueError(f"{type(config).__name__}.{name}={v!r}: accepted [{lo}, {hi}]")
