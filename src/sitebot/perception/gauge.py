"""Analog gauge reading from one camera frame (core: no ROS).

The dial is located through its fiducial: the dial layout (:class:`DialLayout`) gives the
dial's centre and orientation in the frame of the tag mounted with it, its radius, its scale
(start/end angle, value range from the registry) and the needle's colour.  The reader

1. composes the tag pose with the layout to get the dial's pose in the camera, checks that
   the whole dial is in view, not too oblique and large enough in the image;
2. rectifies the dial to a fronto-parallel crop (every crop pixel is a point of the dial
   plane projected into the image, so lens distortion is honoured), after correcting the
   tag pose's error from the face's printed edge
   (:mod:`sitebot.perception.dial_registration`: a small tag's pose can put the face half
   a radius off and oblique);
3. finds the needle: a weighted principal-axis fit of the needle-coloured pixels inside the
   face (``red``: each pixel's share of needle, from its red chroma scaled between the
   face's and the needle core's, so the thin tip counts in any light; ``dark``: darkness
   inside the ring of numbers); the axis does not
   depend on the exact dial centre, the tip is the end of the axis farther from the pixels'
   centroid (the needle is a tapering triangle), and the needle's base must sit at the dial
   centre;
4. converts the angle to a value linearly along the scale;
5. refuses (``valid = False`` with a reason) rather than guess: dial partly out of view,
   too small, too oblique, blurred (edge sharpness), glare (clipped pixels on the face),
   occluded (face sectors that do not look like the face in brightness or, for pixels as
   bright as the face, in hue), needle missing, too short for the tip the image resolves,
   too fat or not at the centre, needle off the scale.

Angles follow :class:`sitebot.sim.world.DialSpec`: degrees on the face seen from the front,
counter-clockwise from 3 o'clock; the needle points at ``start_deg`` for ``min_value`` and
``end_deg`` for ``max_value``.  Radii in the layout are fractions of ``radius_m`` (the dial's
outer radius), like the simulator's textures (:mod:`sitebot.sim.textures`).

The dial frame is like the tag frame: x right, y down (12 o'clock is -y), z into the face.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sitebot.config.yamlio import Schema, key_path, load_yaml
from sitebot.errors import ConfigError
from sitebot.perception.dial_registration import REG_CROP_PX, REG_EXTENT, face_correction
from sitebot.perception.fiducials import TagDetection, marker_pose

__all__ = ["DialLayout", "GaugeReading", "GaugeReader", "GaugeReaderConfig",
           "layouts_from_world", "load_dial_layouts", "parse_dial_layouts", "value_of_angle",
           "angle_of_value"]


# ---------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DialLayout:
    """Where a gauge's dial is and how it is printed.

    :ivar asset_id: registry asset (kind gauge).
    :ivar tag_id: the AprilTag mounted with the dial.
    :ivar unit, min_value, max_value: the scale (from the registry's ``gauge``).
    :ivar radius_m: outer radius of the dial [m].
    :ivar T_tag_dial: 4x4 pose of the dial frame (x right, y down, z into the face, origin
        at the dial centre) in the tag frame [m].
    :ivar start_deg, end_deg: needle angle at min_value / max_value [deg, face convention].
    :ivar face_radius: radius of the printed face / radius_m [-].
    :ivar needle_length: needle tip radius / radius_m [-].
    :ivar needle_width: needle base width / radius_m [-].
    :ivar needle: needle colour, ``red`` or ``dark``.
    """
    asset_id: str
    tag_id: int
    unit: str
    min_value: float
    max_value: float
    radius_m: float
    T_tag_dial: np.ndarray = field(repr=False, compare=False)
    start_deg: float = 225.0
    end_deg: float = -45.0
    face_radius: float = 0.92
    needle_length: float = 0.80
    needle_width: float = 0.07
    needle: str = "red"

    @property
    def sweep_deg(self) -> float:
        """Signed sweep end - start [deg] (negative = clockwise)."""
        return self.end_deg - self.start_deg

    @property
    def span(self) -> float:
        """max_value - min_value."""
        return self.max_value - self.min_value


def angle_of_value(value: float, layout: DialLayout) -> float:
    """Needle angle [deg] for *value* (clamped to the scale)."""
    f = min(1.0, max(0.0, (value - layout.min_value) / layout.span))
    return layout.start_deg + f * layout.sweep_deg


def value_of_angle(angle_deg: float, layout: DialLayout,
                   tolerance_deg: float = 3.0) -> float | None:
    """Value for a needle at *angle_deg*; within *tolerance_deg* beyond either end of the
    scale the value is pinned to that end; further off the scale: None."""
    sweep = layout.sweep_deg
    sign = 1.0 if sweep > 0 else -1.0
    d = ((angle_deg - layout.start_deg) * sign) % 360.0
    f = d / abs(sweep)
    if f <= 1.0:
        return layout.min_value + f * layout.span
    over = d - abs(sweep)                 # past the end
    under = 360.0 - d                     # before the start
    if over <= tolerance_deg and over <= under:
        return layout.max_value
    if under <= tolerance_deg:
        return layout.min_value
    return None


def _translation(xyz: Sequence[float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = xyz
    return T


def layouts_from_world(world: Any) -> dict[str, DialLayout]:
    """Dial layouts of every gauge of a :class:`~sitebot.sim.world.WorldSpec` whose asset carries
    a fiducial, keyed by asset id (the simulator's ground truth of where dials are)."""
    out: dict[str, DialLayout] = {}
    reg = world.registry
    from sitebot.perception.fiducials import R_LOCAL_TAG
    for g in world.gauges:
        asset = reg.asset(g.asset)
        if asset.fiducial is None:
            continue
        try:
            fid = world.fiducial(asset.fiducial)
        except KeyError:
            continue
        T_w_tag = marker_pose(fid)
        T_w_dial = np.eye(4)
        T_w_dial[:3, :3] = g.pose.rotation() @ R_LOCAL_TAG
        T_w_dial[:3, 3] = g.pose.position
        T = np.linalg.inv(T_w_tag) @ T_w_dial
        T.setflags(write=False)
        f = g.face
        out[g.asset] = DialLayout(g.asset, asset.fiducial, f.unit, f.min_value, f.max_value,
                                  g.radius_m, T, f.start_deg, f.end_deg)
    return out


_DIAL_KEYS = ("asset", "tag", "offset", "rpy_deg", "radius", "sweep_deg", "face_radius",
              "needle_length", "needle_width", "needle")


def parse_dial_layouts(data: Any, registry: Any, file: str | Path | None = None
                       ) -> dict[str, DialLayout]:
    """Check a dial layout document::

        dials:
          - asset: t1_oil_temp_gauge      # registry gauge asset (unit and range from there)
            tag: 2                        # default: the asset's fiducial in the registry
            offset: [0.0, -0.30, -0.03]   # dial centre in the tag frame [m]
                                          # (x right, y down, z into the tag)
            rpy_deg: [0, 0, 0]            # dial frame rotation in the tag frame (optional)
            radius: 0.12                  # outer radius [m]
            sweep_deg: [225, -45]         # needle angle at min and at max (optional)
            needle: red                   # red | dark (optional)

    :raises ConfigError: naming *file* and the key path of the first problem.
    """
    s = Schema(file, ConfigError)
    if data is None:
        s.fail("the file is empty; expected a mapping with 'dials'", None)
    root = s.mapping(data, "")
    s.keys(root, "", allowed=("dials",), required=("dials",))
    out: dict[str, DialLayout] = {}
    for i, raw in enumerate(s.seq(root["dials"], "dials")):
        where = key_path("dials", i)
        m = s.mapping(raw, where)
        s.keys(m, where, allowed=_DIAL_KEYS, required=("asset", "offset", "radius"))
        aw = key_path(where, "asset")
        aid = s.string(m["asset"], aw)
        try:
            asset = registry.asset(aid)
        except KeyError:
            s.fail(f"unknown asset {aid!r}; gauges: "
                   + ", ".join(a.id for a in registry.gauges), aw)
        if asset.gauge is None:
            s.fail(f"asset {aid!r} is a {asset.kind.value}, not a gauge", aw)
        if aid in out:
            s.fail(f"asset {aid!r} already has a dial", aw)
        tag = asset.fiducial
        if m.get("tag") is not None:
            tag = s.integer(m["tag"], key_path(where, "tag"), min_value=0, max_value=586)
        if tag is None:
            s.fail(f"asset {aid!r} has no fiducial in the registry; give 'tag'", where)
        off = s.vector(m["offset"], key_path(where, "offset"), 3, names="[x, y, z] [m]")
        rpy = (0.0, 0.0, 0.0)
        if m.get("rpy_deg") is not None:
            rpy = s.vector(m["rpy_deg"], key_path(where, "rpy_deg"), 3,
                           names="[roll, pitch, yaw] [deg]")
        radius = s.number(m["radius"], key_path(where, "radius"), min_value=0.01,
                          max_value=1.0)
        start, end = 225.0, -45.0
        if m.get("sweep_deg") is not None:
            sw = key_path(where, "sweep_deg")
            start, end = s.vector(m["sweep_deg"], sw, 2, names="[start, end] [deg]")
            if not 10.0 <= abs(end - start) <= 350.0:
                s.fail(f"the sweep |end - start| must lie in [10, 350] deg, got "
                       f"{abs(end - start):g}", sw)
        kw: dict[str, Any] = {}
        for k, lo, hi in (("face_radius", 0.3, 1.0), ("needle_length", 0.2, 1.0),
                          ("needle_width", 0.005, 0.3)):
            if m.get(k) is not None:
                kw[k] = s.number(m[k], key_path(where, k), min_value=lo, max_value=hi)
        if m.get("needle") is not None:
            kw["needle"] = s.choice(m["needle"], ("red", "dark"), key_path(where, "needle"),
                                    what="needle colour")
        R = cv2.Rodrigues(np.zeros(3))[0]
        if any(rpy):
            r, p, y = (math.radians(v) for v in rpy)
            Rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
            Ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
            Rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
            R = Rz @ Ry @ Rx
        T = _translation(off)
        T[:3, :3] = R
        T.setflags(write=False)
        g = asset.gauge
        out[aid] = DialLayout(aid, int(tag), g.unit, g.min_value, g.max_value, radius, T,
                              start, end, **kw)
    return out


def load_dial_layouts(path: str | Path, registry: Any) -> dict[str, DialLayout]:
    """:func:`parse_dial_layouts` of a YAML file."""
    return parse_dial_layouts(load_yaml(path, error=ConfigError), registry, file=path)


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------
#: the needle's core colour is the mean of the face's this many reddest crop pixels (a
#: needle covers ~60 of the 96x96 crop)
_NEEDLE_CORE_PX = 12
#: a face whose reddest pixels are less red than this has no red needle in view
_RED_NEEDLE_MIN_CHROMA = 0.45
#: pixels less than this share needle are noise, not needle
_NEEDLE_WEIGHT_FLOOR = 0.2
#: a face pixel's chromaticity (r, g, b over their sum) is within this of the face's
_FACE_CHROMA_TOL = 0.04
@dataclass(frozen=True)
class GaugeReaderConfig:
    """Thresholds of :class:`GaugeReader` (tuned with ``sitebot eval perception``).

    :ivar crop_px: edge of the rectified crop [px].
    :ivar min_radius_px: dials with a smaller radius in the image are refused [px].
    :ivar max_view_angle_deg: dials seen more obliquely are refused [deg].
    :ivar min_sharpness: refuse below this edge sharpness (steepest grey step per pixel /
        grey range, ~0.5 for a sharp image) [-].
    :ivar max_glare_fraction: refuse when more of the face is clipped (near white) [-].
    :ivar min_sector_face: refuse when a 30-degree sector of the inner face has less
        face-coloured pixels than this [-].
    :ivar min_ring_face: the same for the outer ring (numbers and ticks) [-].
    :ivar min_confidence: readings below this confidence are refused [-].
    """
    crop_px: int = 96
    min_radius_px: float = 14.0
    max_view_angle_deg: float = 55.0
    min_sharpness: float = 0.22
    max_glare_fraction: float = 0.02
    min_sector_face: float = 0.7
    min_ring_face: float = 0.35
    min_confidence: float = 0.5


@dataclass(frozen=True)
class GaugeReading:
    """One gauge read from one frame.  ``value`` is NaN when not valid."""
    asset_id: str
    valid: bool
    value: float
    unit: str
    confidence: float
    failure_reason: str = ""
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)
    needle_deg: float = math.nan
    radius_px: float = math.nan
    checks: Mapping[str, float] = field(default_factory=dict, compare=False)


class GaugeReader:
    """Reads dials located by their tags; see the module docstring."""

    def __init__(self, config: GaugeReaderConfig | None = None) -> None:
        self.config = config or GaugeReaderConfig()
        n = self.config.crop_px
        c = (n - 1) / 2.0
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
        self._dx = xx - c
        self._dy = yy - c
        self._rho_px = np.hypot(self._dx, self._dy)
        self._theta = np.degrees(np.arctan2(-self._dy, self._dx))   # face convention

    # -- public --------------------------------------------------------------------------
    def read(self, image: np.ndarray, K: np.ndarray, layout: DialLayout,
             T_cam_tag: np.ndarray, dist: np.ndarray | None = None) -> GaugeReading:
        """Read *layout*'s dial in an RGB image given its tag's pose in the camera.

        :param image: uint8 (H, W, 3) RGB (or (H, W) grey for ``dark`` needles).
        """
        cfg = self.config
        T_cam_dial = np.asarray(T_cam_tag, dtype=np.float64) @ layout.T_tag_dial
        H, W = image.shape[:2]
        K = np.asarray(K, dtype=np.float64)
        d = np.zeros(5) if dist is None else np.asarray(dist, dtype=np.float64).reshape(-1)

        def refuse(reason: str, conf: float = 0.0, crop: np.ndarray | None = None,
                   radius_px: float = math.nan, **checks: float) -> GaugeReading:
            return GaugeReading(layout.asset_id, False, math.nan, layout.unit, conf, reason,
                                crop, math.nan, radius_px, checks)

        centre = T_cam_dial[:3, 3]
        if centre[2] <= 0.05:
            return refuse("not in view: the dial is behind the camera")
        a = np.radians(np.arange(0, 360, 30))
        rim = np.stack([np.cos(a), np.sin(a), np.zeros_like(a)], 1) * layout.radius_m
        pts = np.vstack([[0.0, 0.0, 0.0], rim])
        rvec = cv2.Rodrigues(T_cam_dial[:3, :3])[0]
        uv = cv2.projectPoints(pts, rvec, centre.reshape(3, 1), K, d)[0].reshape(-1, 2)
        radius_px = float(np.mean(np.linalg.norm(uv[1:] - uv[0], axis=1)))
        if not np.isfinite(uv).all():
            return refuse("not in view: projection failed")
        inside = (uv[:, 0] >= 0) & (uv[:, 0] <= W - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= H - 1)
        if not inside.all():
            return refuse("not in view: the dial is partly outside the image",
                          radius_px=radius_px)
        ray = centre / np.linalg.norm(centre)
        view = math.degrees(math.acos(min(1.0, abs(float(T_cam_dial[:3, 2] @ ray)))))
        if view > cfg.max_view_angle_deg:
            return refuse(f"too oblique: {view:.0f} deg > {cfg.max_view_angle_deg:.0f} deg",
                          radius_px=radius_px, view_deg=view)
        if radius_px < cfg.min_radius_px:
            return refuse(f"too small: dial radius {radius_px:.1f} px < "
                          f"{cfg.min_radius_px:.0f} px", radius_px=radius_px)
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        sharp = self._sharpness(gray, uv[0], radius_px)
        correction, shift = None, 0.0
        if sharp >= cfg.min_sharpness:
            correction = self._register(image, K, d, T_cam_dial, layout, radius_px)
        if correction is not None:
            shift = float(np.hypot(*correction[:, 2]))
            radius_px *= math.sqrt(abs(float(np.linalg.det(correction[:, :2]))))
        crop = self._rectify(image, K, d, T_cam_dial, layout, correction)
        if sharp < cfg.min_sharpness:
            return refuse(f"blurred: sharpness {sharp:.2f} < {cfg.min_sharpness:.2f}",
                          crop=crop, radius_px=radius_px, sharpness=sharp)
        if image.ndim == 2 and layout.needle == "red":
            return refuse("a red needle needs a colour image", crop=crop, radius_px=radius_px)
        reading = self._read_crop(crop, layout, radius_px, sharp, view)
        reading.checks["registration_shift"] = shift
        return reading

    # -- steps ---------------------------------------------------------------------------
    def _rectify(self, image: np.ndarray, K: np.ndarray, dist: np.ndarray,
                 T_cam_dial: np.ndarray, layout: DialLayout, correction: np.ndarray | None = None,
                 extent: float = 1.0, n: int | None = None) -> np.ndarray:
        """The dial plane out to ``extent`` dial radii, fronto-parallel, ``n`` x ``n`` px
        (default ``crop_px``).  ``correction`` (2x3, in dial radii) maps the crop's own
        coordinates to those the tag pose gives (:meth:`_register`)."""
        n = n or self.config.crop_px
        c = (n - 1) / 2.0
        if not np.any(dist):
            # no lens distortion: crop pixel -> dial plane (metres) -> image is a homography
            A = np.diag([extent / c, extent / c, 1.0])
            A[:2, 2] = -c * extent / c
            if correction is not None:
                A = np.vstack([correction, [0.0, 0.0, 1.0]]) @ A
            A[:2] *= layout.radius_m
            R, tv = T_cam_dial[:3, :3], T_cam_dial[:3, 3]
            H = K @ np.column_stack([R[:, 0], R[:, 1], tv]) @ A
            return cv2.warpPerspective(image, H, (n, n), flags=cv2.INTER_LINEAR |
                                       cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                                       borderValue=0)
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
        uv = np.stack([(xx - c).reshape(-1), (yy - c).reshape(-1)]) * (extent / c)
        if correction is not None:
            uv = correction[:, :2] @ uv + correction[:, 2:3]
        P = np.zeros((n * n, 3))
        P[:, :2] = uv.T * layout.radius_m
        rvec = cv2.Rodrigues(T_cam_dial[:3, :3])[0]
        uv = cv2.projectPoints(P, rvec, T_cam_dial[:3, 3].reshape(3, 1), K, dist)[0]
        maps = uv.reshape(n, n, 2).astype(np.float32)
        return cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def _register(self, image: np.ndarray, K: np.ndarray, dist: np.ndarray,
                  T_cam_dial: np.ndarray, layout: DialLayout, radius_px: float
                  ) -> np.ndarray | None:
        """The face's correction (:func:`sitebot.perception.dial_registration.face_correction`)
        from a crop wider than the dial."""
        wide = self._rectify(image, K, dist, T_cam_dial, layout, extent=REG_EXTENT,
                             n=REG_CROP_PX)
        return face_correction(wide, REG_EXTENT, layout.face_radius, radius_px)

    @staticmethod
    def _sharpness(gray: np.ndarray, centre: np.ndarray, radius_px: float) -> float:
        """Steepest grey step per pixel over the grey range, in the dial's box: the smaller
        of the x and y directions (motion blur smears one direction)."""
        r = int(math.ceil(radius_px * 0.95))
        cx, cy = int(round(centre[0])), int(round(centre[1]))
        roi = gray[max(0, cy - r):cy + r + 1, max(0, cx - r):cx + r + 1].astype(np.float32)
        if roi.shape[0] < 5 or roi.shape[1] < 5:
            return 0.0
        lo, hi = np.percentile(roi, (2, 98))
        rng = float(hi - lo)
        if rng < 10.0:
            return 0.0
        gx = np.abs(roi[:, 2:] - roi[:, :-2]) / 2.0
        gy = np.abs(roi[2:, :] - roi[:-2, :]) / 2.0
        return float(min(np.percentile(gx, 99.5), np.percentile(gy, 99.5)) / rng)

    @staticmethod
    def _red_needle_weights(img: np.ndarray, rho: np.ndarray, fr: float
                            ) -> np.ndarray | None:
        """How much of each crop pixel is red needle, in [0, 1], or None when nothing on the
        face is red enough to be one.

        Red chroma ``(R - max(G, B)) / R`` is scaled between the face's own level (its
        median: a tint of the light) and the needle's core (the face's reddest pixels).  A
        pixel half covered by a thin needle then counts about half, whatever the light: a
        fixed threshold counted only the core and lost the needle's tapering tip in bright
        or dim light."""
        R, G, B = img[..., 0], img[..., 1], img[..., 2]
        chroma = (R - np.maximum(G, B)) / np.maximum(R, 1.0)
        on_face = rho < 0.9 * fr
        c = chroma[on_face]
        base = float(np.median(c))
        core = float(np.mean(np.sort(c)[-_NEEDLE_CORE_PX:]))
        if core < _RED_NEEDLE_MIN_CHROMA or core - base < 0.3:
            return None
        w = (chroma - base) / (core - base)
        w = np.where(w < _NEEDLE_WEIGHT_FLOOR, 0.0, np.clip(w, 0.0, 1.0))
        return w * (R > 25.0) * on_face

    def _read_crop(self, crop: np.ndarray, layout: DialLayout, radius_px: float,
                   sharp: float, view_deg: float) -> GaugeReading:
        cfg = self.config
        n = cfg.crop_px
        r_px = (n - 1) / 2.0                                # dial radius in crop pixels
        rho = self._rho_px / r_px
        theta = self._theta
        img = crop.astype(np.float32)
        colour = img.ndim == 3
        grey = img.mean(axis=2) if colour else img
        fr = layout.face_radius
        face = rho < 0.97 * fr

        def refuse(reason: str, conf: float = 0.0, **checks: float) -> GaugeReading:
            checks.setdefault("sharpness", sharp)
            return GaugeReading(layout.asset_id, False, math.nan, layout.unit, conf, reason,
                                crop, math.nan, radius_px, checks)

        # glare: clipped pixels on the face
        if colour:
            clipped = (img.min(axis=2) >= 245) & face
        else:
            clipped = (img >= 250) & face
        glare = float(clipped.sum() / max(1, face.sum()))
        if glare > cfg.max_glare_fraction:
            return refuse(f"glare: {100 * glare:.0f}% of the face is clipped", glare=glare)

        # -- needle: weighted principal axis --------------------------------------------
        if layout.needle == "red" and colour:
            w = self._red_needle_weights(img, rho, fr)
            if w is None:
                return refuse("needle not found (no red on the face)", mass_ratio=0.0)
        else:
            ref = float(np.median(grey[(rho > 0.15) & (rho < 0.4)]))
            w = np.clip((ref * 0.6 - grey) / (ref * 0.4 + 1e-6), 0.0, 1.0)
            w = w * (rho < min(0.46, 0.9 * fr)) * (rho > 0.08)
        mass = float(w.sum())
        L_exp = layout.needle_length
        if layout.needle == "red":
            expected = 0.5 * layout.needle_width * L_exp * r_px ** 2
        else:
            expected = 0.5 * layout.needle_width * 0.46 * r_px ** 2 * (2 - 0.46 / L_exp)
        mass_ratio = mass / max(expected, 1e-6)
        if mass_ratio < 0.45:
            return refuse(f"needle not found ({100 * mass_ratio:.0f}% of its area seen)",
                          mass_ratio=mass_ratio)
        if mass_ratio > 2.5:
            return refuse(f"needle ambiguous: {mass_ratio:.1f}x its area is needle-coloured",
                          mass_ratio=mass_ratio)
        xs, ys = self._dx, self._dy
        cxw = float((w * xs).sum() / mass)
        cyw = float((w * ys).sum() / mass)
        ex, ey = xs - cxw, ys - cyw
        cxx = float((w * ex * ex).sum() / mass)
        cyy = float((w * ey * ey).sum() / mass)
        cxy = float((w * ex * ey).sum() / mass)
        evals, evecs = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
        l2, l1 = max(evals[0], 1e-9), max(evals[1], 1e-9)
        axis = evecs[:, 1]
        elong = math.sqrt(l1 / l2)
        s = ex * axis[0] + ey * axis[1]
        sel = w > 0.3
        if sel.sum() < 3:
            return refuse("needle not found", mass_ratio=mass_ratio)
        s_sel = s[sel]
        s_lo, s_hi = float(np.percentile(s_sel, 1)), float(np.percentile(s_sel, 99))
        if abs(s_hi) < abs(s_lo):          # the tip is the end farther from the centroid
            axis = -axis
            s_lo, s_hi = -s_hi, -s_lo
        length = (s_hi - s_lo) / r_px
        base_x, base_y = cxw + s_lo * axis[0], cyw + s_lo * axis[1]
        base_off = math.hypot(base_x, base_y) / r_px
        angle = math.degrees(math.atan2(-axis[1], axis[0]))
        checks = {"sharpness": sharp, "glare": glare, "mass_ratio": mass_ratio,
                  "elongation": elong, "needle_length": length, "base_offset": base_off,
                  "view_deg": view_deg}
        if layout.needle == "red":
            # the tapering tip fades where it is under ~0.6 image px wide
            seen = L_exp * max(0.4, 1.0 - 0.6 / max(1e-6, layout.needle_width * radius_px))
            if length < 0.7 * seen:
                return refuse(f"needle partly hidden: {length:.2f} r < "
                              f"{0.7 * seen:.2f} r", **checks)
            if length > 1.25 * L_exp:
                return refuse(f"needle too long: {length:.2f} r", **checks)
            if base_off > 0.32:
                return refuse(f"needle off the dial centre by {base_off:.2f} r", **checks)
        if elong < 3.0:
            return refuse(f"needle not a line (elongation {elong:.1f})", **checks)

        # -- occlusion: does the face look like a face all around? -----------------------
        dang = np.abs((theta - angle + 180.0) % 360.0 - 180.0)
        unit_box = (rho > 0.25) & (rho < 0.5) & (np.abs(theta + 90.0) < 30.0)
        inner = (rho > 0.12) & (rho < 0.46) & (dang > 20.0) & ~unit_box
        outer = (rho > 0.47) & (rho < 0.88 * fr / 0.92) & (dang > 15.0)
        if inner.sum() < 20:
            return refuse("face not resolved", **checks)
        if colour:
            ref = np.median(img[inner], axis=0)
            diff = np.abs(img - ref[None, None, :]).max(axis=2)
        else:
            ref = np.array([np.median(grey[inner])])
            diff = np.abs(grey - ref[0])
        tol = 0.22 * float(ref.max()) + 10.0
        facelike = diff < tol
        if colour:
            # and of the face's hue: a body as bright as the face in this light but of
            # another colour (a tan box on a grey face at low sun) is not face
            chrom = img / np.maximum(img.sum(axis=2, keepdims=True), 1.0)
            ref_chrom = ref / max(float(ref.sum()), 1.0)
            bright = grey >= 0.75 * float(ref.mean())   # darker: ink, its hue unreliable
            facelike &= ~bright | (np.abs(chrom - ref_chrom).max(axis=2) < _FACE_CHROMA_TOL)
        rim = (rho > fr + 0.02) & (rho < 0.99)
        rim_level = float(np.median(grey[rim])) if rim.any() else 0.0
        face_level = float(np.mean(ref))
        if face_level < 25.0:
            return refuse(f"too dark: face level {face_level:.0f}", **checks)
        if rim_level > 0.8 * face_level:
            return refuse("face not found: no dark rim around the face (occluded or "
                          "wrong dial)", rim_ratio=rim_level / face_level, **checks)
        sector = ((theta + 180.0) // 30.0).astype(int) % 12
        worst_in, worst_out = 1.0, 1.0
        for k in range(12):
            m_in = inner & (sector == k)
            if m_in.sum() >= 8:
                worst_in = min(worst_in, float(facelike[m_in].mean()))
            m_out = outer & (sector == k)
            if m_out.sum() >= 8:
                worst_out = min(worst_out, float(facelike[m_out].mean()))
        checks.update(face_inner=worst_in, face_outer=worst_out)
        if worst_in < cfg.min_sector_face or worst_out < cfg.min_ring_face:
            return refuse(f"occluded: a face sector is {100 * min(worst_in, worst_out):.0f}% "
                          "face-coloured", **checks)

        value = value_of_angle(angle, layout)
        if value is None:
            return refuse(f"needle off the scale at {angle:.0f} deg", **checks)
        conf = min(1.0,
                   min(1.0, sharp / (1.5 * cfg.min_sharpness)),
                   min(1.0, radius_px / (1.5 * cfg.min_radius_px)),
                   min(1.0, elong / 6.0),
                   min(1.0, worst_in / 0.9),
                   1.0 - min(1.0, base_off / 0.64))
        if conf < cfg.min_confidence:
            return refuse(f"low confidence {conf:.2f} < {cfg.min_confidence:.2f}", conf,
                          **checks)
        return GaugeReading(layout.asset_id, True, float(value), layout.unit, float(conf), "",
                            crop, angle, radius_px, checks)

    def read_all(self, image: np.ndarray, K: np.ndarray, detections: Iterable[TagDetection],
                 layouts: Mapping[str, DialLayout], dist: np.ndarray | None = None
                 ) -> list[GaugeReading]:
        """Read every dial whose tag is among *detections* and whose centre projects into
        the image (readings may be refusals)."""
        by_tag = {d.tag_id: d for d in detections}
        out = []
        H, W = image.shape[:2]
        for lay in layouts.values():
            det = by_tag.get(lay.tag_id)
            if det is None:
                continue
            T = det.T_cam_tag @ lay.T_tag_dial
            if T[2, 3] <= 0:
                continue
            u = K[0, 0] * T[0, 3] / T[2, 3] + K[0, 2]
            v = K[1, 1] * T[1, 3] / T[2, 3] + K[1, 2]
            if not (0 <= u <= W - 1 and 0 <= v <= H - 1):
                continue
            out.append(self.read_detection(image, K, lay, det, dist))
        return out

    def read_detection(self, image: np.ndarray, K: np.ndarray, layout: DialLayout,
                       det: TagDetection, dist: np.ndarray | None = None) -> GaugeReading:
        """Read with the tag's best pose; when that reading is refused for a reason a wrong
        planar pose explains (face or needle not where the pose puts them), is off-centre,
        or needed a large correction from the face's edge, try the tag's alternative
        pose(s) and keep the valid reading whose pose put the face nearest where its edge
        is (then: whose needle sits best on the centre).  A flipped pose can pass every
        check once the face is registered, with the needle's angle sheared by 9 deg."""
        first = self.read(image, K, layout, det.T_cam_tag, dist)
        if not det.alternatives:
            return first
        if first.valid and first.checks.get("base_offset", 1.0) < 0.1 \
                and first.checks.get("registration_shift", 1.0) < 0.1:
            return first
        if not first.valid and not first.failure_reason.startswith(
                ("occluded", "face not", "needle off", "needle partly", "needle not")):
            return first

        def rank(r: GaugeReading) -> tuple[bool, float, float]:
            return (not r.valid, round(r.checks.get("registration_shift", 1.0), 2),
                    r.checks.get("base_offset", 1.0))
        best = first
        for T in det.alternatives:
            r = self.read(image, K, layout, T, dist)
            if r.valid and rank(r) < rank(best):
                best = r
        return best
