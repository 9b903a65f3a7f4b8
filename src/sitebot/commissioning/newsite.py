"""A new site's bundle, from arrival to the first survey's results (no ROS;
docs/commissioning.md).

:func:`new_bundle` writes the bundle a robot needs before anything is known about a site:
``bundle.yaml`` (the site id and the start pose that anchors the map frame), an empty
registry and a small map that is free only around the start (the robot stands there;
everything else is unknown), so that the safety supervisor and teleop run as always during
the survey.  :func:`adopt_survey` puts what ``sitebot map build`` made from the survey into
the bundle: the map (replacing the placeholder), and the surveyed markers as drafts of the
registry (replacing earlier drafts with the same tag; confirmed markers stay and are
reported when the survey disagrees with them).

Every file is written atomically (a temporary file in the folder, then renamed), so a
failed write leaves the previous file intact.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from sitebot.errors import BundleError
from sitebot.fileio import write_atomic
from sitebot.site.mapfile import save_map
from sitebot.types import Pose2D

__all__ = ["new_bundle", "adopt_survey", "start_of"]

#: the free square around the start in a new bundle's placeholder map [m]
START_FREE_M = 1.0


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)


def new_bundle(folder: str | Path, site: str, start: Sequence[float] = (0.0, 0.0, 0.0),
               description: str = "", resolution_m: float = 0.05) -> Path:
    """Create the bundle of a site not surveyed yet in ``folder`` (created; must not hold a
    bundle already).  ``start`` [x, y, yaw] is where the robot stands when the survey
    begins: the map frame of everything the survey produces."""
    folder = Path(folder)
    if (folder / "bundle.yaml").exists():
        raise BundleError("a bundle exists here already (sitebot map build updates it)",
                          file=folder / "bundle.yaml")
    x, y, yaw = (float(v) for v in start)
    if not all(math.isfinite(v) for v in (x, y, yaw)):
        raise BundleError(f"start {tuple(start)} is not three finite numbers")
    folder.mkdir(parents=True, exist_ok=True)
    n = int(round(START_FREE_M / resolution_m)) + 1
    values = np.zeros((n, n), np.int8)                # free around the start ...
    pad = 2 * n
    grid = np.full((n + 2 * pad, n + 2 * pad), -1, np.int8)   # ... unknown beyond
    grid[pad:pad + n, pad:pad + n] = values
    half = (n + 2 * pad) * resolution_m / 2.0
    save_map(folder / "map.yaml", grid, resolution_m, (x - half, y - half))
    write_atomic(folder / "site.yaml", _dump({"site": site, "name": site.replace("_", " "),
                                               "description": description or
                                               "new site: survey it (docs/commissioning.md)"}))
    write_atomic(folder / "bundle.yaml", _dump({
        "format": 1, "site": site,
        "description": description or f"site '{site}' (being commissioned)",
        "initial_pose": "survey_start",
        "starts": {"survey_start": [round(x, 4), round(y, 4), round(yaw, 6)]}}))
    return folder


def adopt_survey(folder: str | Path, markers: Sequence[dict] = ()) -> list[str]:
    """Merge a survey's draft ``markers`` (registry entries) into ``folder``'s site.yaml
    (the map files are written by the map build itself).  Returns notes for the operator:
    a confirmed marker the survey places differently, drafts replaced or added."""
    folder = Path(folder)
    path = folder / "site.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    if not isinstance(doc, dict):
        raise BundleError("site.yaml must be a mapping (create the bundle with sitebot site "
                          "new)", file=path)
    old = {int(m["tag"]): m for m in doc.get("markers") or [] if isinstance(m, dict)
           and "tag" in m}
    notes: list[str] = []
    for m in markers:
        tag = int(m["tag"])
        prev = old.get(tag)
        if prev is not None and not prev.get("draft", False):
            d = math.dist(prev.get("pose", [0, 0, 0])[:3], m["pose"][:3])
            notes.append(f"marker {tag}: confirmed entry kept; the survey places it "
                         f"{100 * d:.1f} cm away")
            continue
        notes.append(f"marker {tag}: {'draft replaced' if prev else 'draft added'} "
                     f"({m.get('sightings', '?')} sightings)")
        old[tag] = dict(m)
    doc["markers"] = [old[t] for t in sorted(old)]
    write_atomic(path, _dump(doc))
    return notes


def start_of(folder: str | Path) -> Pose2D | None:
    """The ``survey_start`` of a bundle made by :func:`new_bundle` (None otherwise)."""
    p = Path(folder) / "bundle.yaml"
    if not p.exists():
        return None
    doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    s = (doc.get("starts") or {}).get("survey_start")
    return Pose2D(*map(float, s)) if s else None
