"""Planar polygon geometry of site zones (registry and world files): area, containment,
self-intersection. Points are (x, y) in metres."""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Point", "polygon_area", "point_in_polygon", "segments_intersect",
           "polygon_self_intersection"]

Point = tuple[float, float]


def polygon_area(poly: Sequence[Point]) -> float:
    """Signed area [m^2] (positive for counter-clockwise vertex order)."""
    a = 0.0
    n = len(poly)
    for i in range(n):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % n]
        a += x0 * y1 - x1 * y0
    return 0.5 * a


def point_in_polygon(x: float, y: float, poly: Sequence[Point]) -> bool:
    """True when (x, y) is inside *poly* or on its boundary (even-odd rule)."""
    n = len(poly)
    inside = False
    for i in range(n):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % n]
        # on the edge?
        cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        if abs(cross) <= 1e-12 * max(1.0, abs(x1 - x0) + abs(y1 - y0)) and \
                min(x0, x1) - 1e-12 <= x <= max(x0, x1) + 1e-12 and \
                min(y0, y1) - 1e-12 <= y <= max(y0, y1) + 1e-12:
            return True
        if (y0 > y) != (y1 > y):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            if x < x_cross:
                inside = not inside
    return inside


def _orient(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return (min(a[0], b[0]) <= p[0] <= max(a[0], b[0])
            and min(a[1], b[1]) <= p[1] <= max(a[1], b[1]))


def segments_intersect(a: Point, b: Point, c: Point, d: Point) -> bool:
    """True when the closed segments ab and cd share at least one point."""
    o1, o2 = _orient(a, b, c), _orient(a, b, d)
    o3, o4 = _orient(c, d, a), _orient(c, d, b)
    if ((o1 > 0 > o2) or (o1 < 0 < o2)) and ((o3 > 0 > o4) or (o3 < 0 < o4)):
        return True
    return ((o1 == 0 and _on_segment(a, b, c)) or (o2 == 0 and _on_segment(a, b, d))
            or (o3 == 0 and _on_segment(c, d, a)) or (o4 == 0 and _on_segment(c, d, b)))


def polygon_self_intersection(poly: Sequence[Point]) -> tuple[int, int] | None:
    """The first pair of edge indices (i, j) that intersect although not adjacent (edge i
    runs from vertex i to vertex i+1), or None for a simple polygon.  Adjacent edges that
    overlap (a spike back along the previous edge) also count."""
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        for j in range(i + 1, n):
            c, d = poly[j], poly[(j + 1) % n]
            adjacent = j == i + 1 or (i == 0 and j == n - 1)
            if adjacent:
                # shared vertex is fine; collinear overlap beyond it is not
                shared = b if j == i + 1 else a
                other_i = a if j == i + 1 else b
                other_j = d if j == i + 1 else c
                if _orient(other_i, shared, other_j) == 0 and (
                        _on_segment(shared, other_i, other_j)
                        or _on_segment(shared, other_j, other_i)):
                    return (i, j)
                continue
            if segments_intersect(a, b, c, d):
                return (i, j)
    return None
