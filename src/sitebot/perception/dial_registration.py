"""Where a dial's face really is in a crop rectified with its tag's pose (core: no ROS).

A small tag's pose is a few per cent off in position and scale and some degrees in tilt:
the face lands off centre in the rectified crop, and oblique, and the reader's face and
needle checks then refuse a readable dial.  :func:`face_correction` finds the face's printed
edge (a light face inside a dark rim) and returns the map that puts it back.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["face_correction", "REG_CROP_PX", "REG_EXTENT"]

#: the wide crop searched: this many px, covering this many dial radii each side of the
#: tag pose's centre (room for a face half a radius off)
REG_CROP_PX, REG_EXTENT = 160, 1.8
_RAYS = 64              # rays from a centre, searched for the face's edge
_MIN_POINTS = 24        # edge points that agree, for a fit


def face_correction(crop: np.ndarray, ext: float, fr: float, radius_px: float
                    ) -> np.ndarray | None:
    """A 2x3 map from the corrected crop's coordinates to the tag pose's (in dial radii),
    or None when the face's edge cannot be found well enough to correct anything.

    Light-to-dark steps are found along 64 rays; the centre that best explains them is
    chosen on a grid up to half a radius from the tag pose's, each ray's step nearest the
    circle so far is kept within a shrinking tolerance, and an ellipse fitted to those
    points gives the correction: its centre and axes (the rotation about the face stays
    the tag's).  Refused when too few rays agree, the ellipse is implausible (axes outside
    0.75-1.35 of the face, centre over 0.6 radii off) or the points scatter by more than
    about an image pixel.

    :param crop: the dial plane rectified out to ``ext`` dial radii each side (square,
        grey or RGB), the tag pose's dial centre in the middle.
    :param ext: dial radii from the crop's centre to its edge.
    :param fr: the printed face's radius / the dial's radius.
    :param radius_px: the dial's radius in the camera image [px] (edge noise scales with
        its pixels).
    """
    n = crop.shape[0]
    grey = crop.astype(np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    c = (n - 1) / 2.0
    ppr = c / ext                                     # crop pixels per dial radius
    a = np.radians(np.arange(0.0, 360.0, 360.0 / _RAYS))
    u = np.column_stack([np.cos(a), np.sin(a)])
    t = np.arange(0.55 * fr, 1.25 * fr, 0.5 / ppr)
    yy, xx = np.mgrid[0:n, 0:n]
    rr = np.hypot(xx - c, yy - c) / ppr
    face = float(np.median(grey[(rr > 0.2 * fr) & (rr < 0.5 * fr)]))
    # the rim's level: dark pixels of the ring the rays search (the whole crop's outer part)
    dark = float(np.percentile(grey[rr > 0.55 * fr], 10))
    if face - dark < 25.0:
        return None
    mid = 0.5 * (face + dark)
    k = max(2, int(round(0.06 * ppr)))               # 0.03 radii of samples

    def steps(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Light-to-dark steps along rays from ``centre`` (dial radii): where (ray,
        sample) steps, and how far out [dial radii]; the face's edge, but also ticks,
        text, or the plate's edge behind a far-off dial."""
        xs = (c + ppr * (centre[0] + np.outer(u[:, 0], t))).astype(np.float32)
        ys = (c + ppr * (centre[1] + np.outer(u[:, 1], t))).astype(np.float32)
        prof = cv2.remap(grey, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        above = (prof >= mid).astype(np.int32)
        run = np.cumsum(np.pad(above, ((0, 0), (1, 0))), axis=1)   # run[:, j] = sum[:j]
        m = prof.shape[1]
        j = np.arange(k - 1, m - k)
        light_before = (run[:, j + 1] - run[:, j + 1 - k]) == k
        dark_after = (run[:, j + 1 + k] - run[:, j + 1]) == 0
        hit = light_before & dark_after
        g0, g1 = prof[:, j], prof[:, j + 1]
        frac = (g0 - mid) / np.where(hit, g0 - g1, 1.0)
        return hit, t[j] + frac * (t[1] - t[0])

    def nearest(centre: np.ndarray, radius: float, tol: float) -> np.ndarray:
        """Each ray's step nearest the circle (centre, radius), within tol: points."""
        hit, where = steps(centre)
        d = np.where(hit, np.abs(where - radius), np.inf)
        j = np.argmin(d, axis=1)
        ok = d[np.arange(len(d)), j] < tol
        return centre + where[np.arange(len(d)), j][ok, None] * u[ok]

    # a tag pose can be half a dial radius off: start from the centre that best
    # explains the steps, on a grid around the tag's
    # (a tag pose near right needs no search: most rays find the edge where it says)
    cen, rad = np.zeros(2), fr
    if len(nearest(cen, fr, 0.12)) < 0.75 * _RAYS:
        grid = np.arange(-0.5, 0.51, 0.125)
        starts = [np.array([x, y]) for x in grid for y in grid if math.hypot(x, y) <= 0.55]
        counts = [len(nearest(s0, fr, 0.12)) for s0 in starts]
        cen = starts[int(np.argmax(counts))]
    px_r = 1.0 / max(radius_px, 1.0)                   # one image pixel, in dial radii
    for tol in (0.15, 0.08, max(0.05, 1.5 * px_r), max(0.04, 1.5 * px_r)):
        p = nearest(cen, rad, tol)
        if len(p) < _MIN_POINTS:
            return None
        sol = np.linalg.lstsq(np.column_stack([p, np.ones(len(p))]), (p ** 2).sum(1),
                              rcond=None)[0]
        cen = sol[:2] / 2.0
        rad = math.sqrt(max(1e-9, sol[2] + cen @ cen))
    (ex, ey), (w, h), ang = cv2.fitEllipse((100.0 * p).astype(np.float32))
    ex, ey, ea, eb = ex / 100.0, ey / 100.0, w / (200.0 * fr), h / (200.0 * fr)
    if not (0.75 <= ea <= 1.35 and 0.75 <= eb <= 1.35 and math.hypot(ex, ey) <= 0.6):
        return None
    th = math.radians(ang)
    e1, e2 = np.array([math.cos(th), math.sin(th)]), np.array([-math.sin(th), math.cos(th)])
    S = ea * np.outer(e1, e1) + eb * np.outer(e2, e2)
    q = np.linalg.solve(S, (p - [ex, ey]).T)            # edge points on the true face
    # the edge points scatter by about an image pixel (the face is 15-40 px in radius)
    noise = max(0.03 * fr, 1.2 * px_r)
    if float(np.sqrt(np.mean((np.linalg.norm(q, axis=0) - fr) ** 2))) > noise:
        return None
    return np.column_stack([S, [ex, ey]])
