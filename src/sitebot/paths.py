"""Where the package's data (launch, config, urdf, worlds) lives.

In a source checkout or an editable install the data sits at the repository root; in a
pip/colcon install it is installed under ``<prefix>/share/sitebot``.  ``SITEBOT_SHARE``
overrides both.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

__all__ = ["share_dir", "data_path", "DATA_DIRS"]

DATA_DIRS = ("launch", "config", "urdf", "worlds")


def _looks_like_share(p: Path) -> bool:
    return all((p / d).is_dir() for d in ("launch", "config", "urdf", "worlds"))


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """The directory holding ``launch/``, ``config/``, ``urdf/`` and ``worlds/``."""
    env = os.environ.get("SITEBOT_SHARE")
    if env:
        return Path(env)
    source_root = Path(__file__).resolve().parents[2]
    if _looks_like_share(source_root):
        return source_root
    candidates = [Path(sys.prefix) / "share" / "sitebot"]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "sitebot")
    for c in candidates:
        if _looks_like_share(c):
            return c
    return source_root


def data_path(*parts: str) -> Path:
    """A path inside the share directory, e.g. ``data_path('worlds', 'substation.yaml')``."""
    return share_dir().joinpath(*parts)
