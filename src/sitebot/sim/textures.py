"""Textures for the simulated sites, drawn with OpenCV: AprilTags and gauge dials.

Everything here is deterministic: the same arguments give the same pixels and the same
file name, so textures can be cached in a directory shared by several scenes.

Images are ``uint8`` arrays in OpenCV's BGR channel order.  Dial angles follow
:class:`~sitebot.sim.world.DialSpec`: degrees on the face seen from the front,
counter-clockwise from 3 o'clock (90 = 12 o'clock); in image coordinates (y down) the point
at angle ``a`` and radius ``r`` from the centre is ``(cx + r cos a, cy - r sin a)``.
"""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import cv2
import numpy as np

from sitebot.sim.world import TAG_MODULES, TAG_QUIET_ZONE_MODULES, DialSpec

__all__ = [
    "tag_image", "write_tag_png", "needle_angle", "dial_ticks", "render_gauge_dial",
    "write_gauge_png", "DIAL_NEEDLE_BGR", "DIAL_FACE_RADIUS", "DIAL_NEEDLE_LENGTH",
]

#: Needle colour (BGR): a clear red.
DIAL_NEEDLE_BGR = (0, 0, 215)
#: Radius of the white face as a fraction of half the image size.
DIAL_FACE_RADIUS = 0.92
#: Needle length as a fraction of half the image size.
DIAL_NEEDLE_LENGTH = 0.80

_FACE_BGR = (255, 255, 255)
_INK_BGR = (0, 0, 0)
_RIM_BGR = (60, 60, 60)
_PLATE_BGR = (95, 95, 95)
_SHIFT = 4                       # fixed-point bits for sub-pixel drawing
_ONE = 1 << _SHIFT


# ---------------------------------------------------------------------------------------
# AprilTags
# ---------------------------------------------------------------------------------------
def tag_image(tag_id: int, module_px: int = 16,
              quiet_zone_modules: int = TAG_QUIET_ZONE_MODULES) -> np.ndarray:
    """An AprilTag 36h11 marker (BGR, 3 equal channels) with a white quiet zone.

    The black square spans ``8 * module_px`` pixels; the whole image
    ``(8 + 2 * quiet_zone_modules) * module_px``.
    """
    if not 0 <= tag_id < 587:
        raise ValueError(f"tag36h11 ids lie in 0..586, got {tag_id}")
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    inner = cv2.aruco.generateImageMarker(dictionary, tag_id, TAG_MODULES * module_px,
                                          borderBits=1)
    q = quiet_zone_modules * module_px
    gray = cv2.copyMakeBorder(inner, q, q, q, q, cv2.BORDER_CONSTANT, value=255)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def _write_png(image: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    if not cv2.imwrite(str(tmp), image):
        raise OSError(f"cannot write texture {path}")
    os.replace(tmp, path)
    return path


def write_tag_png(tag_id: int, directory: str | Path, module_px: int = 16) -> Path:
    """Write :func:`tag_image` to ``<directory>/tag36h11_<id>_<module_px>.png`` (once) and
    return the path."""
    path = Path(directory) / f"tag36h11_{tag_id:03d}_{module_px}.png"
    return _write_png(tag_image(tag_id, module_px), path)


# ---------------------------------------------------------------------------------------
# gauge dials
# ---------------------------------------------------------------------------------------
def needle_angle(value: float, spec: DialSpec) -> float:
    """Where the needle points for *value* [deg, face convention], linear from
    ``start_deg`` at ``min_value`` to ``end_deg`` at ``max_value``; values off the scale
    pin the needle at the nearer end."""
    f = (value - spec.min_value) / (spec.max_value - spec.min_value)
    f = min(1.0, max(0.0, f))
    return spec.start_deg + f * (spec.end_deg - spec.start_deg)


def _nice_step(min_value: float, max_value: float) -> float:
    """A step of 1, 2, 5 (or 2.5) x 10^k giving 4 to 10 intervals over the scale: steps that
    divide the span exactly first, then steps whose multiples include ``min_value`` (so the
    numbers are round), then about 6 intervals, then 1/2/5 over 2.5, then the larger step."""
    span = max_value - min_value
    best: tuple[tuple[float, ...], float] | None = None
    k0 = math.floor(math.log10(span)) - 2
    for k in range(k0, k0 + 4):
        for m in (1.0, 2.0, 2.5, 5.0):
            step = m * 10.0 ** k
            n = span / step
            if not 4 - 1e-9 <= n <= 10 + 1e-9:
                continue
            exact = abs(n - round(n)) < 1e-6
            q = min_value / step
            aligned = abs(q - round(q)) < 1e-6
            score = (0.0 if exact else 1.0, 0.0 if aligned else 1.0,
                     abs(n - 6.0) + (1.0 if m == 2.5 else 0.0), -step)
            if best is None or score < best[0]:
                best = (score, step)
    return best[1] if best is not None else span / 5.0


def dial_ticks(spec: DialSpec) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(major tick values, minor tick values) printed on the dial, in ``spec.unit``."""
    span = spec.max_value - spec.min_value
    major = spec.major_step or _nice_step(spec.min_value, spec.max_value)
    lead = major / 10.0 ** math.floor(math.log10(major))
    minor_per_major = 4 if abs(lead - 2.0) < 1e-9 else 5
    minor = major / minor_per_major
    eps = 1e-9 * span
    majors = []
    minors = []
    n_minor = math.floor(span / minor + 1e-9)
    for i in range(n_minor + 1):
        v = spec.min_value + i * minor
        if v > spec.max_value + eps:
            break
        v = round(v, 9)
        (majors if i % minor_per_major == 0 else minors).append(v)
    return tuple(majors), tuple(minors)


def _pt(cx: float, cy: float, r: float, deg: float) -> tuple[float, float]:
    a = math.radians(deg)
    return (cx + r * math.cos(a), cy - r * math.sin(a))


def _fx(p: tuple[float, float]) -> tuple[int, int]:
    return (round(p[0] * _ONE), round(p[1] * _ONE))


def _label(v: float) -> str:
    text = f"{v:.6g}"
    return "0" if text in ("-0", "0.0") else text


def render_gauge_dial(spec: DialSpec, value: float, size_px: int = 512) -> np.ndarray:
    """A square ``size_px`` x ``size_px`` BGR image of a dial face: grey plate, dark rim,
    white face, black major/minor ticks, numerals at the major ticks, the unit under the
    centre, and a red needle from the centre at :func:`needle_angle` (value, spec)."""
    if size_px < 64:
        raise ValueError(f"size_px must be >= 64, got {size_px}")
    s = size_px
    img = np.full((s, s, 3), _PLATE_BGR, np.uint8)
    c = (s - 1) / 2.0
    half = s / 2.0
    face_r = DIAL_FACE_RADIUS * half
    k = s / 512.0   # line widths and fonts scale with the image
    cv2.circle(img, _fx((c, c)), round(0.995 * half * _ONE), _RIM_BGR, -1,
               cv2.LINE_AA, _SHIFT)
    cv2.circle(img, _fx((c, c)), round(face_r * _ONE), _FACE_BGR, -1, cv2.LINE_AA,
               _SHIFT)

    majors, minors = dial_ticks(spec)
    for v in minors:
        a = needle_angle(v, spec)
        cv2.line(img, _fx(_pt(c, c, 0.80 * half, a)), _fx(_pt(c, c, 0.88 * half, a)),
                 _INK_BGR, max(1, round(2 * k)), cv2.LINE_AA, _SHIFT)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.95 * k
    thick = max(1, round(2 * k))
    for v in majors:
        a = needle_angle(v, spec)
        cv2.line(img, _fx(_pt(c, c, 0.74 * half, a)), _fx(_pt(c, c, 0.88 * half, a)),
                 _INK_BGR, max(1, round(5 * k)), cv2.LINE_AA, _SHIFT)
        text = _label(v)
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        px, py = _pt(c, c, 0.58 * half, a)
        cv2.putText(img, text, (round(px - tw / 2), round(py + th / 2)), font,
                    scale, _INK_BGR, thick, cv2.LINE_AA)
    # the sweep arc, for legibility
    arc_r = round(0.88 * half)
    lo, hi = sorted((-spec.start_deg, -spec.end_deg))
    cv2.ellipse(img, (round(c), round(c)), (arc_r, arc_r), 0.0, lo, hi, _INK_BGR,
                max(1, round(2 * k)), cv2.LINE_AA)
    unit_scale = 1.1 * k
    (tw, th), _ = cv2.getTextSize(spec.unit, font, unit_scale, thick)
    cv2.putText(img, spec.unit, (round(c - tw / 2), round(c + 0.38 * half + th / 2)),
                font, unit_scale, _INK_BGR, thick, cv2.LINE_AA)

    # needle: a slim triangle from the hub to the tip
    a = needle_angle(value, spec)
    tip = _pt(c, c, DIAL_NEEDLE_LENGTH * half, a)
    w = 0.035 * half
    left = _pt(c, c, w, a + 90.0)
    right = _pt(c, c, w, a - 90.0)
    poly = np.array([_fx(left), _fx(tip), _fx(right)], np.int32)
    cv2.fillPoly(img, [poly], DIAL_NEEDLE_BGR, cv2.LINE_AA, _SHIFT)
    cv2.circle(img, _fx((c, c)), round(0.06 * half * _ONE), _INK_BGR, -1, cv2.LINE_AA,
               _SHIFT)
    return img


def write_gauge_png(spec: DialSpec, value: float, directory: str | Path,
                    size_px: int = 512) -> Path:
    """Write :func:`render_gauge_dial` to ``<directory>/dial_<hash>.png`` (the hash covers
    the spec, value and size, so equal inputs share one file) and return the path."""
    key = repr((spec, float(value), int(size_px))).encode()
    digest = hashlib.sha1(key).hexdigest()[:16]
    path = Path(directory) / f"dial_{digest}.png"
    return _write_png(render_gauge_dial(spec, value, size_px), path)
