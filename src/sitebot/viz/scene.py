"""What ``site_viz`` publishes for rviz2, as plain data (no ROS): the static site map as an
occupancy grid, the site registry (places, assets, surveyed AprilTags) as labelled markers,
and the live texts (safety state above the robot, task status, the latest gauge readings at
their gauges). The node turns :class:`MarkerSpec` into ``visualization_msgs/Marker``.

Everything comes from the site registry and the world's *static* map (what the supervisor and
navigation load too): nothing here reads the simulator's ground truth.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from sitebot.site.registry import AssetKind, SiteRegistry

__all__ = ["MarkerSpec", "GridSpec", "site_map", "registry_markers", "safety_text",
           "task_status_text", "gauge_text", "SAFETY_LEVEL_NAMES", "MODE_NAMES",
           "LEVEL_COLORS", "asset_positions", "parse_task_status"]

# Marker types (visualization_msgs/Marker constants, repeated here to keep the core ROS-free)
ARROW, CUBE, SPHERE, CYLINDER, LINE_STRIP, TEXT_VIEW_FACING = 0, 1, 2, 3, 4, 9

#: SafetyState.level -> name (as SafetyState.msg)
SAFETY_LEVEL_NAMES = {0: "NORMAL", 1: "REDUCED SPEED", 2: "PROTECTIVE STOP",
                      3: "EMERGENCY STOP"}
#: SafetyState.mode -> name
MODE_NAMES = {0: "automatic", 1: "manual", 2: "reduced speed"}
#: level -> RGBA: green, amber, red, magenta (an e-stop must not look like a protective stop)
LEVEL_COLORS = {0: (0.2, 0.9, 0.2, 1.0), 1: (1.0, 0.75, 0.0, 1.0), 2: (1.0, 0.15, 0.1, 1.0),
                3: (1.0, 0.0, 1.0, 1.0)}
UNKNOWN_COLOR = (0.6, 0.6, 0.6, 1.0)


@dataclass(frozen=True)
class MarkerSpec:
    """One rviz marker, ROS-free. ``pose`` = (x, y, z, yaw) in ``frame``."""
    ns: str
    id: int
    type: int
    frame: str
    pose: tuple[float, float, float, float]
    scale: tuple[float, float, float]
    color: tuple[float, float, float, float]
    text: str = ""
    points: tuple[tuple[float, float, float], ...] = ()


@dataclass(frozen=True)
class GridSpec:
    """nav_msgs/OccupancyGrid content: row-major from the origin cell, values 0/100."""
    frame: str
    resolution_m: float
    width: int
    height: int
    origin_x: float
    origin_y: float
    data: np.ndarray = field(repr=False, compare=False)     # int8, width * height


def site_map(site: Any, resolution_m: float = 0.1, keep_out: bool = False,
             frame: str = "map") -> GridSpec:
    """A site's static occupancy grid (a :class:`~sitebot.site.bundle.SiteBundle`'s map;
    with ``keep_out`` also the keep-out zones) as an OccupancyGrid: 100 occupied, 0 free."""
    grid = site.occupancy_grid(resolution_m, 0.0, keep_out=keep_out)
    occ = np.asarray(grid.occupied, dtype=bool)
    rows, cols = occ.shape
    data = np.where(occ, 100, 0).astype(np.int8).reshape(-1)
    return GridSpec(frame, float(grid.resolution_m), int(cols), int(rows),
                    float(grid.origin_x), float(grid.origin_y), data)


def asset_positions(registry: SiteRegistry) -> dict[str, tuple[float, float, float]]:
    """Where each asset is shown: its surveyed AprilTag (x, y, z) when it has one, else its
    place's (x, y) at 1 m."""
    tags = {m.tag: m for m in registry.markers}
    places = {p.id: p for p in registry.places}
    out = {}
    for a in registry.assets:
        m = tags.get(a.fiducial) if a.fiducial is not None else None
        if m is not None:
            out[a.id] = (m.x, m.y, m.z)
        elif a.place in places:
            p = places[a.place]
            out[a.id] = (p.x, p.y, 1.0)
    return out


def registry_markers(registry: SiteRegistry, frame: str = "map",
                     text_height_m: float = 0.25) -> list[MarkerSpec]:
    """Places (arrow at the pose + name), assets (sphere + name; gauges with their range),
    surveyed AprilTags (flat plate + 'tag N'), docks (marked on their place)."""
    out: list[MarkerSpec] = []
    docks = {d.place for d in registry.docks}
    for i, p in enumerate(registry.places):
        dock = p.id in docks
        col = (0.1, 0.8, 1.0, 0.9) if dock else (0.3, 0.6, 1.0, 0.9)
        out.append(MarkerSpec("places", i, ARROW, frame, (p.x, p.y, 0.05, p.yaw),
                              (0.5, 0.08, 0.08), col))
        out.append(MarkerSpec("place_labels", i, TEXT_VIEW_FACING, frame,
                              (p.x, p.y, 0.4, 0.0), (0.0, 0.0, text_height_m),
                              (1.0, 1.0, 1.0, 0.9), p.name + (" [dock]" if dock else "")))
    pos = asset_positions(registry)
    for i, a in enumerate(registry.assets):
        if a.id not in pos:
            continue
        x, y, z = pos[a.id]
        gauge = a.kind is AssetKind.GAUGE
        col = (1.0, 0.85, 0.2, 0.9) if gauge else (0.9, 0.5, 0.2, 0.9)
        out.append(MarkerSpec("assets", i, SPHERE, frame, (x, y, z, 0.0), (0.12, 0.12, 0.12),
                              col))
        label = a.name
        if gauge and a.gauge is not None:
            label += f" ({a.gauge.min_value:g}-{a.gauge.max_value:g} {a.gauge.unit})"
        out.append(MarkerSpec("asset_labels", i, TEXT_VIEW_FACING, frame,
                              (x, y, z + 0.25, 0.0), (0.0, 0.0, 0.8 * text_height_m),
                              (1.0, 0.9, 0.6, 1.0), label))
    for m in registry.markers:
        out.append(MarkerSpec("fiducials", int(m.tag), CUBE, frame, (m.x, m.y, m.z, m.yaw),
                              (0.01, m.size_m, m.size_m), (0.1, 0.1, 0.1, 0.9)))
        out.append(MarkerSpec("fiducial_labels", int(m.tag), TEXT_VIEW_FACING, frame,
                              (m.x, m.y, m.z + m.size_m, 0.0), (0.0, 0.0, 0.12),
                              (0.7, 0.9, 0.7, 0.9), f"tag {m.tag}"))
    return out


def _fmt_m(v: float) -> str:
    return f"{v:.2f} m" if math.isfinite(v) else "-"


def safety_text(level: int, mode: int, speed_scale: float, reasons: list[str],
                estop_latched: bool, closest_m: float, required_m: float,
                age_s: float | None, stale_s: float) -> tuple[str, tuple[float, ...]]:
    """Text and colour of the safety state shown above the robot. A state older than
    ``stale_s`` (or none) is shown as such, grey: an operator must never read an old
    'NORMAL' as current."""
    if age_s is None:
        return "SAFETY: no state from the supervisor", UNKNOWN_COLOR
    if not (0.0 <= age_s <= stale_s):
        return f"SAFETY: state stale ({age_s:.1f} s old)", UNKNOWN_COLOR
    name = SAFETY_LEVEL_NAMES.get(int(level), f"level {level}")
    head = f"{name} | {MODE_NAMES.get(int(mode), f'mode {mode}')}"
    if math.isfinite(speed_scale):
        head += f" | speed x{speed_scale:.2f}"
    lines = [head]
    if estop_latched:
        lines.append("E-STOP LATCHED (reset: safety/request, signed)")
    if reasons:
        lines.append(", ".join(str(r) for r in reasons[:4])
                     + (f" (+{len(reasons) - 4})" if len(reasons) > 4 else ""))
    if math.isfinite(closest_m):
        lines.append(f"closest {_fmt_m(closest_m)} / needs {_fmt_m(required_m)}")
    return "\n".join(lines), LEVEL_COLORS.get(int(level), UNKNOWN_COLOR)


def parse_task_status(data: str) -> dict[str, Any]:
    """The executor's ``task/status`` JSON object.

    :raises ValueError: not JSON or not an object (the message names what was wrong).
    """
    try:
        obj = json.loads(data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"task/status is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"task/status is a JSON {type(obj).__name__}, not an object")
    return obj


def task_status_text(status: Mapping[str, Any]) -> str:
    """One line per field that matters: plan, step i/n, skill, state, message or outcome."""
    plan = str(status.get("plan_id", "?"))
    state = str(status.get("state", "?"))
    if state == "finished":
        text = f"task {plan}: finished {status.get('code', '?')}"
        if status.get("reason"):
            text += f"\n{str(status['reason'])[:80]}"
        return text
    step, steps = status.get("step"), status.get("steps")
    text = f"task {plan}: step {step}/{steps} {status.get('skill', '')} {state}"
    if status.get("message"):
        text += f"\n{str(status['message'])[:80]}"
    return text


def gauge_text(asset_id: str, valid: bool, value: float, unit: str, confidence: float,
               failure_reason: str, age_s: float) -> tuple[str, tuple[float, ...]]:
    """The latest reading of a gauge, with its age (so an old reading shows as old)."""
    if valid and math.isfinite(value):
        return (f"{asset_id}: {value:.3g} {unit} ({confidence:.2f}), {age_s:.0f} s ago",
                (0.2, 1.0, 0.2, 1.0))
    return (f"{asset_id}: unreadable ({failure_reason or 'no reason'}), {age_s:.0f} s ago",
            (1.0, 0.5, 0.0, 1.0))
