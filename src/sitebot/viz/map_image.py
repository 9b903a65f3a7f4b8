"""A site's map as a picture (no ROS): the ``map.png`` of ``sitebot demo``.

Obstacles of the static map, the registry's zones (filled and outlined in their kind's
colour), the true path and the estimated path, and a legend; north up, ``px_per_m`` pixels
per metre.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from sitebot.site.registry import ZoneKind

__all__ = ["draw_map", "ZONE_COLORS", "TRUE_PATH_COLOR", "ESTIMATE_COLOR"]

#: BGR colour of each zone kind
ZONE_COLORS = {ZoneKind.KEEP_OUT: (60, 60, 220), ZoneKind.SLOW: (40, 200, 230),
               ZoneKind.RESTRICTED: (220, 120, 40)}
TRUE_PATH_COLOR = (40, 160, 40)
ESTIMATE_COLOR = (200, 90, 30)


def draw_map(world: Any, truth: list, odom_map: list, px_per_m: float = 20.0
             ) -> np.ndarray:
    """A BGR picture of a site (a world or a site bundle: anything with ``occupancy_grid``
    and ``registry``): obstacles, zones, the true and the odometry (estimated)
    paths, each a list of (t, x, y, yaw) in the map frame."""
    grid = world.occupancy_grid(0.05, 0.0)
    img = np.flipud(np.where(grid.occupied, 70, 245).astype(np.uint8))  # row 0 = top = y_max
    scale = px_per_m * grid.resolution_m
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h = img.shape[0]

    def px(x: float, y: float) -> tuple[int, int]:
        return (int((x - grid.origin_x) * px_per_m), int(h - (y - grid.origin_y) * px_per_m))

    colors = ZONE_COLORS
    overlay = img.copy()
    for z in world.registry.zones:
        pts = np.array([px(x, y) for x, y in z.polygon], np.int32)
        cv2.fillPoly(overlay, [pts], colors[z.kind])
    img = cv2.addWeighted(overlay, 0.35, img, 0.65, 0)
    for z in world.registry.zones:
        pts = np.array([px(x, y) for x, y in z.polygon], np.int32)
        cv2.polylines(img, [pts], True, colors[z.kind], 2)
    for path, color in ((odom_map, ESTIMATE_COLOR), (truth, TRUE_PATH_COLOR)):
        if len(path) > 1:
            pts = np.array([px(x, y) for _, x, y, _ in path], np.int32)
            cv2.polylines(img, [pts], False, color, 2, cv2.LINE_AA)
    legend = [("true path", TRUE_PATH_COLOR), ("odometry", ESTIMATE_COLOR),
              ("keep-out", colors[ZoneKind.KEEP_OUT]), ("slow", colors[ZoneKind.SLOW]),
              ("restricted", colors[ZoneKind.RESTRICTED])]
    for i, (label, color) in enumerate(legend):
        cv2.rectangle(img, (10, 10 + 18 * i), (24, 22 + 18 * i), color, -1)
        cv2.putText(img, label, (30, 21 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (20, 20, 20), 1, cv2.LINE_AA)
    return img
