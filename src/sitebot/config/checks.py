"""Argument checks of core config dataclasses and value types (sensor configs, lighting,
perception configs): each raises ``ValueError`` naming the owner, the field and what is
accepted. (ROS parameters are checked against their ParamSpec: :mod:`sitebot.config.params`.)
"""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:  # numpy is imported where it is used: the YAML loader imports this module
    import numpy as np

__all__ = ["check_range", "check_ranges", "finite_vector", "check_name", "SITE_EXTENT_M",
           "SITE_HEIGHT_M", "ANGLE_LIMIT_RAD", "MAX_MASS_KG", "MAX_FRICTION"]

# Bounds of physical quantities in data files (site registries, worlds, robot descriptions,
# controller files): a value beyond them is a typo or a hostile file, never a real site.
#: |x|, |y| of a site coordinate [m] (places, markers, zones, spawn poses, bodies).
SITE_EXTENT_M = 10_000.0
#: |z| of a site coordinate [m].
SITE_HEIGHT_M = 1_000.0
#: |roll|, |pitch|, |yaw| [rad]: two turns either way (degrees written as radians fail).
ANGLE_LIMIT_RAD = 4.0 * math.pi
#: Heaviest body or link [kg] (10 t).
MAX_MASS_KG = 10_000.0
#: Largest friction coefficient [-] (rubber on concrete is about 1).
MAX_FRICTION = 10.0


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


def check_name(owner: str, name: str, value: Any) -> str:
    """``owner.name`` must be a name (of a controller, joint, node, frame): a non-blank
    string of printable characters (no NUL, no control or format characters, no line
    breaks or tabs), without leading or trailing spaces.  Returns it."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{owner}.{name}={value!r}: accepted: a non-empty name")
    if not value.isprintable() or value != value.strip():
        raise ValueError(f"{owner}.{name}={value!r}: accepted: printable characters only "
                         "(no NUL, control characters, line breaks, tabs or surrounding "
                         "spaces)")
    return value


def check_ranges(config: object, checks: Iterable[tuple[str, float, float]]) -> None:
    """Each field ``name`` of ``config`` in ``checks`` ((name, lo, hi), ...) in [lo, hi]
    (:func:`check_range`, owner: the config's class name)."""
    for name, lo, hi in checks:
        check_range(type(config).__name__, name, getattr(config, name), lo, hi)


def finite_vector(name: str, value: Sequence[float], n: int) -> np.ndarray:
    """*value* as a float array of exactly *n* finite numbers."""
    import numpy as np
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (n,) or not np.isfinite(arr).all():
        raise ValueError(f"{name}={value!r}: accepted: {n} finite numbers")
    return arr
