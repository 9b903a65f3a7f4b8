"""Occupancy grids of a site (no ROS, no simulator): the one grid type that the static map,
the supervisor's map and the pictures share, and the operations on it.

Row = y, column = x (row 0 at the lowest y); cell (r, c) covers
``x in origin_x + [c, c+1) * resolution_m``, likewise y.  True = occupied.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from sitebot.site.geometry import point_in_polygon
from sitebot.site.registry import Zone, ZoneKind

__all__ = ["OccupancyGrid", "mark_keep_out", "resample", "inflate"]


@dataclass(frozen=True)
class OccupancyGrid:
    """A boolean grid over the site (see the module docstring for the cell convention)."""
    origin_x: float
    origin_y: float
    resolution_m: float
    occupied: np.ndarray = field(repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.occupied.shape

    @property
    def x_max(self) -> float:
        return self.origin_x + self.occupied.shape[1] * self.resolution_m

    @property
    def y_max(self) -> float:
        return self.origin_y + self.occupied.shape[0] * self.resolution_m

    def contains(self, x: float, y: float) -> bool:
        """(x, y) [m] lies on the grid."""
        return self.origin_x <= x < self.x_max and self.origin_y <= y < self.y_max

    def cell(self, x: float, y: float) -> tuple[int, int]:
        """(row, column) of the cell holding (x, y) [m]."""
        return (math.floor((y - self.origin_y) / self.resolution_m),
                math.floor((x - self.origin_x) / self.resolution_m))

    def is_occupied(self, x: float, y: float) -> bool:
        """Occupied, or outside the grid."""
        r, c = self.cell(x, y)
        rows, cols = self.occupied.shape
        return not (0 <= r < rows and 0 <= c < cols) or bool(self.occupied[r, c])

    def reachable_from(self, x: float, y: float) -> np.ndarray:
        """Cells connected (4-neighbour) to the free cell holding (x, y)."""
        rows, cols = self.occupied.shape
        seen = np.zeros_like(self.occupied, dtype=bool)
        r0, c0 = self.cell(x, y)
        if self.is_occupied(x, y):
            return seen
        stack = [(r0, c0)]
        seen[r0, c0] = True
        free = ~self.occupied
        while stack:
            r, c = stack.pop()
            for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= rr < rows and 0 <= cc < cols and free[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    stack.append((rr, cc))
        return seen


def mark_keep_out(occ: np.ndarray, origin_x: float, origin_y: float, resolution_m: float,
                  zones: Iterable[Zone]) -> None:
    """Set, in place, every cell of ``occ`` whose centre lies in a keep-out zone."""
    rows, cols = occ.shape
    for z in zones:
        if z.kind is not ZoneKind.KEEP_OUT:
            continue
        zx = [p[0] for p in z.polygon]
        zy = [p[1] for p in z.polygon]
        c0 = max(0, int((min(zx) - origin_x) / resolution_m))
        c1 = min(cols, int((max(zx) - origin_x) / resolution_m) + 1)
        r0 = max(0, int((min(zy) - origin_y) / resolution_m))
        r1 = min(rows, int((max(zy) - origin_y) / resolution_m) + 1)
        for r in range(r0, r1):
            yc = origin_y + (r + 0.5) * resolution_m
            for c in range(c0, c1):
                if point_in_polygon(origin_x + (c + 0.5) * resolution_m, yc, z.polygon):
                    occ[r, c] = True


def inflate(occ: np.ndarray, resolution_m: float, inflate_m: float) -> np.ndarray:
    """``occ`` grown by ``inflate_m`` [m]: a cell whose centre is within ``inflate_m`` of an
    occupied cell's centre becomes occupied (an occupied cell is one the structure touches,
    so this keeps every point within ``inflate_m`` of the structure, to half a cell).
    Outside the grid counts as occupied, so the edge grows too."""
    if inflate_m <= 0.0:
        return occ.copy()
    padded = np.pad(occ, 1, constant_values=True)
    dist = cv2.distanceTransform((~padded).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (dist[1:-1, 1:-1] * resolution_m <= inflate_m + 1e-9) | occ


def resample(grid: OccupancyGrid, resolution_m: float) -> OccupancyGrid:
    """``grid`` on cells of ``resolution_m`` [m] with the same origin: a cell is occupied
    when any finer cell whose centre it holds is (conservative; a coarser grid never loses
    an obstacle).  Finer target cells take the value of the cell holding their centre."""
    if abs(resolution_m - grid.resolution_m) < 1e-12:
        return grid
    rows, cols = grid.occupied.shape
    width, height = grid.x_max - grid.origin_x, grid.y_max - grid.origin_y
    out_cols, out_rows = math.ceil(width / resolution_m - 1e-9), math.ceil(height / resolution_m - 1e-9)
    if resolution_m > grid.resolution_m:
        r_src, c_src = np.nonzero(grid.occupied)
        out = np.zeros((out_rows, out_cols), dtype=bool)
        rr = np.minimum(((r_src + 0.5) * grid.resolution_m / resolution_m).astype(int), out_rows - 1)
        cc = np.minimum(((c_src + 0.5) * grid.resolution_m / resolution_m).astype(int), out_cols - 1)
        out[rr, cc] = True
    else:
        r_idx = np.minimum(((np.arange(out_rows) + 0.5) * resolution_m / grid.resolution_m
                            ).astype(int), rows - 1)
        c_idx = np.minimum(((np.arange(out_cols) + 0.5) * resolution_m / grid.resolution_m
                            ).astype(int), cols - 1)
        out = grid.occupied[np.ix_(r_idx, c_idx)]
    out.setflags(write=False)
    return OccupancyGrid(grid.origin_x, grid.origin_y, resolution_m, out)
