"""AprilTag 36h11 detection and 6-DoF tag poses with covariance (core: no ROS).

:class:`FiducialDetector` finds tags with OpenCV's ArUco module (``DICT_APRILTAG_36h11``,
AprilTag corner refinement) and solves each tag's pose with ``solvePnPGeneric``
(``SOLVEPNP_IPPE_SQUARE``), which returns the two poses a small planar square allows; the one
with the lower reprojection error wins and is polished with Levenberg-Marquardt.  The ratio of
the two errors is kept (``ambiguity``: near 1 = the flip cannot be told apart).

Frames and conventions
----------------------
* Camera: the optical frame (x right, y down, z forward), pixels (u right, v down), pixel
  centres at integer coordinates (OpenCV, ROS ``camera_info``).
* Tag frame (``TagDetection.T_cam_tag``): origin at the centre of the black square, x right,
  y down, z into the tag face, as seen facing the tag (the frame OpenCV/AprilTag pose
  estimators report).  Corners are in detector order: top-left, top-right, bottom-right,
  bottom-left as seen facing the tag, i.e. (-h, -h), (h, -h), (h, h), (-h, h) in tag x, y.
* Covariance: 6x6 over (x, y, z, rotation about x, y, z) of the *parent* frame (the camera
  optical frame), the layout of ``geometry_msgs/PoseWithCovariance``.  It is
  ``sigma^2 (J^T J)^-1`` with ``J`` the Jacobian of the 8 corner coordinates with respect to a
  small motion of the tag (translation + rotation about the camera axes) and ``sigma`` the
  pixel noise (``max(pixel_noise_px, RMS reprojection error)``).

World poses: a :class:`~sitebot.sim.world.FiducialSpec` or registry
:class:`~sitebot.site.registry.Marker` faces along its local +x with +z up; :func:`marker_pose`
returns the tag frame above in the map.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

__all__ = [
    "TagDetection", "FiducialDetector", "detector_for_registry", "marker_pose",
    "camera_mount", "pose_in_base", "pose_in_map", "rotate_covariance", "robot_pose_matrix",
    "to_gray", "R_LOCAL_TAG", "TAG_FAMILY",
]

TAG_FAMILY = "tag36h11"
#: Rotation of the tag frame (x right, y down, z into the face) in a world fiducial's local
#: frame (face along +x, +z up): tag x = local +y, tag y = local -z, tag z = local -x.
R_LOCAL_TAG = np.array([[0.0, 0.0, -1.0],
                        [1.0, 0.0, 0.0],
                        [0.0, -1.0, 0.0]])
#: x and y flip: OpenCV's IPPE_SQUARE frame (y up, z out of the face) -> ours.
_FLIP = np.diag([1.0, -1.0, -1.0])
_MODULES = 8          # black square = 8 modules (6 data + 2 border)


# ---------------------------------------------------------------------------------------
# value type
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TagDetection:
    """One AprilTag in one image.

    :ivar tag_id: 36h11 id.
    :ivar corners_px: (4, 2) float64 corners (u, v): top-left, top-right, bottom-right,
        bottom-left as seen facing the tag.
    :ivar T_cam_tag: 4x4 pose of the tag frame (x right, y down, z into the face, origin
        at the centre) in the camera optical frame [m].
    :ivar reprojection_error_px: RMS reprojection error over the 4 corners [px].
    :ivar decision_margin: worst bit's distance from the black/white threshold [grey
        levels 0..255]; higher is better, <= 0 means a bit was misread (error corrected).
    :ivar size_m: black-square edge used for the pose [m].
    :ivar covariance: 6x6 pose covariance in the camera optical frame (x, y, z, rx, ry, rz).
    :ivar confidence: 0..1 summary (margin, size in the image, reprojection, ambiguity).
    :ivar ambiguity: best / second-best reprojection error of the two planar poses
        (0 = unambiguous, 1 = the mirror pose fits as well).
    """
    tag_id: int
    corners_px: np.ndarray = field(repr=False)
    T_cam_tag: np.ndarray = field(repr=False)
    reprojection_error_px: float
    decision_margin: float
    size_m: float
    covariance: np.ndarray = field(repr=False)
    confidence: float = 1.0
    ambiguity: float = 0.0
    family: str = TAG_FAMILY
    #: the other planar pose(s) of the square (4x4 each), worse by reprojection error or by
    #: the up hint; a consumer with more evidence (the gauge reader) may try them.
    alternatives: tuple[np.ndarray, ...] = field(default=(), repr=False, compare=False)

    @property
    def position(self) -> np.ndarray:
        """Tag centre in the camera optical frame [m]."""
        return self.T_cam_tag[:3, 3].copy()

    @property
    def distance_m(self) -> float:
        """Distance camera -> tag centre [m]."""
        return float(np.linalg.norm(self.T_cam_tag[:3, 3]))

    @property
    def side_px(self) -> float:
        """Mean edge length in the image [px]."""
        c = self.corners_px
        return float(np.mean(np.linalg.norm(c - np.roll(c, -1, axis=0), axis=1)))


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def to_gray(image: np.ndarray) -> np.ndarray:
    """A uint8 grey image from a grey (H, W) / (H, W, 1) or colour (H, W, 3|4) array
    (channel order does not matter much for tags: RGB and BGR weights differ slightly).

    :raises ValueError: for any other shape or dtype, naming it.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 numpy array, got "
                         f"{getattr(image, 'dtype', type(image).__name__)}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    raise ValueError(f"image shape {image.shape}: accepted (H, W), (H, W, 1), (H, W, 3), "
                     "(H, W, 4)")


def _check_K(K: Any) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K must be a finite 3x3 camera matrix with fx, fy > 0, got "
                         f"{K.tolist() if K.size <= 9 else K.shape}")
    return K


def _check_dist(dist: Any) -> np.ndarray:
    if dist is None:
        return np.zeros(5)
    d = np.asarray(dist, dtype=np.float64).reshape(-1)
    if d.size == 0:
        return np.zeros(5)
    if d.size not in (4, 5, 8, 12, 14) or not np.isfinite(d).all():
        raise ValueError(f"dist must hold 4, 5, 8, 12 or 14 finite coefficients, got "
                         f"{d.size}")
    return d


def _rodrigues(rvec: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))[0]


def _rot_angle(R: np.ndarray) -> float:
    return math.acos(max(-1.0, min(1.0, (float(np.trace(R)) - 1.0) / 2.0)))


def _skew(w: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def _project(K: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points (N, 3) -> (N, 2) (no distortion)."""
    uv = (K @ P.T).T
    return uv[:, :2] / uv[:, 2:3]


def pose_covariance(K: np.ndarray, T_cam_tag: np.ndarray, size_m: float,
                    sigma_px: float) -> np.ndarray:
    """6x6 covariance (x, y, z, rx, ry, rz in the camera frame) of a tag pose from the
    corners' reprojection Jacobian and isotropic pixel noise *sigma_px* [px]."""
    h = size_m / 2.0
    local = np.array([[-h, -h, 0.0], [h, -h, 0.0], [h, h, 0.0], [-h, h, 0.0]])
    R, t = T_cam_tag[:3, :3], T_cam_tag[:3, 3]
    P = local @ R.T + t                      # corners in the camera frame
    fx, fy = K[0, 0], K[1, 1]
    J = np.zeros((8, 6))
    for i, (x, y, z) in enumerate(P):
        # d(u, v)/d(P): pinhole
        dp = np.array([[fx / z, 0.0, -fx * x / z ** 2],
                       [0.0, fy / z, -fy * y / z ** 2]])
        # dP/d(dt) = I; dP/d(dtheta) (left perturbation about camera axes) = -[P - t]x
        J[2 * i:2 * i + 2, :3] = dp
        J[2 * i:2 * i + 2, 3:] = dp @ (-_skew(P[i] - t))
    info = J.T @ J
    try:
        cov = np.linalg.inv(info) * sigma_px ** 2
    except np.linalg.LinAlgError:
        cov = np.eye(6) * 1e6
    cov = 0.5 * (cov + cov.T)
    if not np.isfinite(cov).all():
        cov = np.eye(6) * 1e6
    return cov


def rotate_covariance(cov: np.ndarray, R: np.ndarray) -> np.ndarray:
    """A 6x6 pose covariance (x, y, z, rx, ry, rz) re-expressed in a frame rotated by *R*
    (child -> new parent); exact for a fixed change of parent frame."""
    A = np.zeros((6, 6))
    A[:3, :3] = R
    A[3:, 3:] = R
    return A @ cov @ A.T


def robot_pose_matrix(x: float, y: float, yaw: float, z: float = 0.0) -> np.ndarray:
    """4x4 pose of a planar robot (base_footprint) in the map."""
    c, s = math.cos(yaw), math.sin(yaw)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:3, 3] = (x, y, z)
    return T


def marker_pose(marker: Any) -> np.ndarray:
    """4x4 pose of the tag frame (x right, y down, z into the face) in the map for a world
    :class:`~sitebot.sim.world.FiducialSpec` (uses its full pose) or a registry
    :class:`~sitebot.site.registry.Marker` (x, y, z, yaw; face looking along yaw)."""
    T = np.eye(4)
    if hasattr(marker, "pose"):                 # world FiducialSpec
        T[:3, :3] = marker.pose.rotation() @ R_LOCAL_TAG
        T[:3, 3] = marker.pose.position
    else:
        T[:3, :3] = robot_pose_matrix(0, 0, marker.yaw)[:3, :3] @ R_LOCAL_TAG
        T[:3, 3] = (marker.x, marker.y, marker.z)
    return T


def camera_mount(description: Any = None, base_frame: str = "base_footprint",
                 camera_frame: str = "camera_color_optical_frame") -> np.ndarray:
    """4x4 pose of *camera_frame* in *base_frame* from the URDF's fixed joints
    (:func:`sitebot.description.urdf.load_robot_description` when *description* is None).

    :raises ValueError: when the camera frame is not fixed to the base frame.
    """
    from sitebot.description.kinematics import fixed_transform
    from sitebot.description.urdf import load_robot_description
    desc = description if description is not None else load_robot_description()
    prefix = getattr(desc, "prefix", "")
    base = base_frame if base_frame.startswith(prefix) else prefix + base_frame
    frame = camera_frame if camera_frame.startswith(prefix) else prefix + camera_frame
    return fixed_transform(desc, base, frame)


def pose_in_base(det: TagDetection, T_base_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T_base_tag, covariance in the base frame) from a detection and the camera mount."""
    T = np.asarray(T_base_cam, dtype=np.float64) @ det.T_cam_tag
    return T, rotate_covariance(det.covariance, T_base_cam[:3, :3])


def pose_in_map(det: TagDetection, T_base_cam: np.ndarray,
                robot_pose: np.ndarray | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(T_map_tag, covariance in the map frame, tag noise only) given the robot's map pose
    as a 4x4 matrix or (x, y, yaw)."""
    T_map_base = np.asarray(robot_pose, dtype=np.float64)
    if T_map_base.shape != (4, 4):
        T_map_base = robot_pose_matrix(*[float(v) for v in T_map_base.reshape(-1)[:3]])
    T_base_tag, cov_b = pose_in_base(det, T_base_cam)
    return T_map_base @ T_base_tag, rotate_covariance(cov_b, T_map_base[:3, :3])


# ---------------------------------------------------------------------------------------
# detector
# ---------------------------------------------------------------------------------------
class FiducialDetector:
    """AprilTag 36h11 detector with per-id tag sizes.

    :param tag_sizes: black-square edge [m] by tag id (from the registry's ``markers``).
    :param default_size_m: edge for ids not in *tag_sizes* [m].
    :param pixel_noise_px: 1-sigma corner noise assumed for the covariance [px].
    :param min_side_px: tags whose mean edge is shorter are dropped [px].
    :param max_reprojection_px: detections with a larger RMS error are dropped [px].
    :param refine: corner refinement: ``"edges"`` (default: :func:`refine_edges`, lines
        fitted to sub-pixel edge points of the black border), ``"apriltag"`` (OpenCV's
        AprilTag quad fitting: about as accurate, but it lost a third of the small tags in
        ``sitebot eval perception``), ``"subpix"`` or ``"contour"``.
    """

    def __init__(self, tag_sizes: Mapping[int, float] | None = None,
                 default_size_m: float = 0.16, *, pixel_noise_px: float = 0.5,
                 min_side_px: float = 8.0, max_reprojection_px: float = 3.0,
                 refine: str = "edges") -> None:
        if not (math.isfinite(default_size_m) and default_size_m > 0):
            raise ValueError(f"default_size_m must be > 0 m, got {default_size_m!r}")
        self.tag_sizes: dict[int, float] = {}
        for k, v in (tag_sizes or {}).items():
            if not (math.isfinite(float(v)) and float(v) > 0):
                raise ValueError(f"tag size of id {k} must be > 0 m, got {v!r}")
            self.tag_sizes[int(k)] = float(v)
        self.default_size_m = float(default_size_m)
        self.pixel_noise_px = float(pixel_noise_px)
        self.min_side_px = float(min_side_px)
        self.max_reprojection_px = float(max_reprojection_px)
        #: second look at undecoded candidate squares up to this many px across (upscaled)
        self.small_tag_px = 32.0
        self.small_tag_candidates = 6
        self._dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
        params = cv2.aruco.DetectorParameters()
        methods = {"edges": cv2.aruco.CORNER_REFINE_NONE,
                   "apriltag": cv2.aruco.CORNER_REFINE_APRILTAG,
                   "subpix": cv2.aruco.CORNER_REFINE_SUBPIX,
                   "contour": cv2.aruco.CORNER_REFINE_CONTOUR}
        if refine not in methods:
            raise ValueError(f"refine={refine!r}: accepted {', '.join(methods)}")
        params.cornerRefinementMethod = methods[refine]
        params.cornerRefinementWinSize = 3
        params.cornerRefinementMaxIterations = 50
        params.cornerRefinementMinAccuracy = 0.01
        params.minMarkerPerimeterRate = 0.02
        params.adaptiveThreshWinSizeMin = 5
        params.adaptiveThreshWinSizeMax = 25
        params.adaptiveThreshWinSizeStep = 10
        params.perspectiveRemovePixelPerCell = 8
        params.perspectiveRemoveIgnoredMarginPerCell = 0.2
        self.refine = refine
        #: unit vector of the world's "up" in the camera optical frame, or None.  When set
        #: (the camera's mount on a level robot), the planar-pose flip is resolved towards
        #: the pose whose tag "up" (-y) agrees with it, as long as that pose's reprojection
        #: error stays within ``ambiguity_ratio`` of the best one.
        self.up_hint_cam: np.ndarray | None = None
        self.ambiguity_ratio = 2.0
        self._detector = cv2.aruco.ArucoDetector(self._dictionary, params)
        self._bits: dict[int, np.ndarray] = {}

    def size_of(self, tag_id: int) -> float:
        """Black-square edge [m] used for *tag_id*."""
        return self.tag_sizes.get(int(tag_id), self.default_size_m)

    # -- detection -------------------------------------------------------------------
    def detect(self, image: np.ndarray, K: np.ndarray,
               dist: np.ndarray | None = None) -> list[TagDetection]:
        """All tags in *image* with their poses, sorted by id.

        :param image: uint8 grey or colour image.
        :param K: 3x3 camera matrix.
        :param dist: distortion coefficients (OpenCV order); None = none.
        :raises ValueError: malformed image, K or dist (naming which).
        """
        gray = to_gray(image)
        K = _check_K(K)
        d = _check_dist(dist)
        if gray.size == 0:
            return []
        corners, ids, rejected = self._detector.detectMarkers(gray)
        found = [] if ids is None else [(c.reshape(4, 2).astype(np.float64), int(t))
                                        for c, t in zip(corners, ids.reshape(-1))]
        found += self._small_tags(gray, rejected, found)
        out: list[TagDetection] = []
        for c, tag in found:
            if self.refine == "edges":
                c = refine_edges(gray, c)
            det = self._pose(gray, c, int(tag), K, d)
            if det is not None:
                out.append(det)
        out.sort(key=lambda t: t.tag_id)
        return out

    def _small_tags(self, gray: np.ndarray, rejected: Sequence[np.ndarray],
                    found: list[tuple[np.ndarray, int]]) -> list[tuple[np.ndarray, int]]:
        """A second look at small candidate squares the detector could not decode: a tag
        13-20 px across has cells under 2 px, which the bit sampling misses.  Each rejected
        quad up to ``small_tag_px`` across (at most ``small_tag_candidates``, smallest
        last) is cut out with a margin, upscaled to about 48 px across and detected again;
        its corners are mapped back to the image."""
        if self.small_tag_candidates <= 0 or rejected is None or not len(rejected):
            return []
        H, W = gray.shape
        quads = []
        for q in rejected:
            q = np.asarray(q, dtype=np.float64).reshape(4, 2)
            side = float(np.mean(np.linalg.norm(q - np.roll(q, -1, 0), axis=1)))
            if self.min_side_px <= side <= self.small_tag_px:
                quads.append((side, q))
        quads.sort(key=lambda sq: -sq[0])
        centres = [c.mean(axis=0) for c, _ in found]
        out: list[tuple[np.ndarray, int]] = []
        for side, q in quads[:self.small_tag_candidates]:
            centre = q.mean(axis=0)
            if any(np.linalg.norm(centre - c) < 0.5 * side for c in centres):
                continue                                  # already decoded
            m = 0.6 * side + 4.0                          # the white quiet zone and more
            x0, y0 = max(0, int(q[:, 0].min() - m)), max(0, int(q[:, 1].min() - m))
            x1, y1 = min(W, int(q[:, 0].max() + m) + 1), min(H, int(q[:, 1].max() + m) + 1)
            f = float(np.clip(48.0 / side, 2.0, 4.0))
            roi = cv2.resize(gray[y0:y1, x0:x1], None, fx=f, fy=f,
                             interpolation=cv2.INTER_CUBIC)
            c2, ids2, _ = self._detector.detectMarkers(roi)
            if ids2 is None:
                continue
            for cc, tag in zip(c2, ids2.reshape(-1)):
                # corners of pixel centres: x_roi = f (x - x0 + 0.5) - 0.5
                back = (cc.reshape(4, 2).astype(np.float64) + 0.5) / f - 0.5 + [x0, y0]
                if np.linalg.norm(back.mean(axis=0) - centre) < 0.5 * side:
                    out.append((back, int(tag)))
                    centres.append(back.mean(axis=0))
        return out

    def _pose(self, gray: np.ndarray, corners: np.ndarray, tag: int, K: np.ndarray,
              dist: np.ndarray) -> TagDetection | None:
        side = float(np.mean(np.linalg.norm(corners - np.roll(corners, -1, 0), axis=1)))
        if side < self.min_side_px or not np.isfinite(corners).all():
            return None
        size = self.size_of(tag)
        h = size / 2.0
        obj = np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])
        try:
            n, rvecs, tvecs, errs = cv2.solvePnPGeneric(
                obj, corners, K, dist, flags=cv2.SOLVEPNP_IPPE_SQUARE)
        except cv2.error:
            return None
        if n < 1:
            return None
        rvecs, tvecs = list(rvecs), list(tvecs)
        # our own RMS errors: IPPE_SQUARE degenerates (rvec = 0, both solutions) on an exactly
        # fronto-parallel square; then fall back to SQPnP
        errs = np.array([self._rms(obj, corners, r, t, K, dist) for r, t in zip(rvecs, tvecs)])
        if errs.min() > 1.0:
            try:
                ok, r, t = cv2.solvePnP(obj, corners, K, dist, flags=cv2.SOLVEPNP_SQPNP)
            except cv2.error:
                ok = False
            if ok:
                rvecs.append(r)
                tvecs.append(t)
                errs = np.append(errs, self._rms(obj, corners, r, t, K, dist))
                n = len(rvecs)
        order = np.argsort(errs)
        best = int(order[0])
        ambiguity = float(errs[best] / errs[order[1]]) if n > 1 and errs[order[1]] > 0 else 0.0
        if self.up_hint_cam is not None and n > 1:
            up = np.asarray(self.up_hint_cam, dtype=np.float64)
            # tag "up" is -y of the tag frame = +y of OpenCV's square frame
            align = [float(_rodrigues(rvecs[i])[:, 1] @ up) for i in range(n)]
            cand = [i for i in range(n) if errs[i] <= self.ambiguity_ratio * errs[best] + 0.05]
            best = max(cand, key=lambda i: align[i])
        rvec, tvec = rvecs[best].copy(), tvecs[best].copy()
        try:
            rvec, tvec = cv2.solvePnPRefineLM(obj, corners, K, dist, rvec, tvec)
        except cv2.error:
            pass
        err = self._rms(obj, corners, rvec, tvec, K, dist)
        if err > self.max_reprojection_px:
            return None
        T = np.eye(4)
        T[:3, :3] = _rodrigues(rvec) @ _FLIP
        T[:3, 3] = np.asarray(tvec).reshape(3)
        if T[2, 3] <= 0 or not np.isfinite(T).all():
            return None
        alts = []
        for i in range(n):
            if i == best or errs[i] > 4.0 * self.max_reprojection_px:
                continue
            A = np.eye(4)
            A[:3, :3] = _rodrigues(rvecs[i]) @ _FLIP
            A[:3, 3] = np.asarray(tvecs[i]).reshape(3)
            if A[2, 3] > 0 and np.isfinite(A).all() and \
                    _rot_angle(A[:3, :3].T @ T[:3, :3]) > math.radians(1.0):
                alts.append(A)
        margin, contrast = self._decision_margin(gray, corners, tag)
        sigma = max(self.pixel_noise_px, err)
        cov = pose_covariance(K, T, size, sigma)
        conf = self._confidence(side, err, margin, contrast, ambiguity)
        return TagDetection(tag, corners, T, err, margin, size, cov, conf, ambiguity,
                            alternatives=tuple(alts))

    @staticmethod
    def _rms(obj: np.ndarray, corners: np.ndarray, rvec: np.ndarray, tvec: np.ndarray,
             K: np.ndarray, dist: np.ndarray) -> float:
        proj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
        e = float(np.sqrt(np.mean(np.sum((proj.reshape(4, 2) - corners) ** 2, axis=1))))
        return e if math.isfinite(e) else math.inf

    def _expected_bits(self, tag: int) -> np.ndarray:
        bits = self._bits.get(tag)
        if bits is None:
            img = cv2.aruco.generateImageMarker(self._dictionary, tag, _MODULES, borderBits=1)
            bits = img > 127
            self._bits[tag] = bits
        return bits

    def _decision_margin(self, gray: np.ndarray, corners: np.ndarray,
                         tag: int) -> tuple[float, float]:
        """(worst bit's distance from the threshold, white-black contrast) [grey levels],
        sampling the centre of every module of the 8x8 black square."""
        cell = 4
        n = _MODULES * cell
        dst = np.array([[0, 0], [n, 0], [n, n], [0, n]], dtype=np.float32) - 0.5
        H = cv2.getPerspectiveTransform(dst, corners.astype(np.float32))
        warped = cv2.warpPerspective(gray, H, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REPLICATE)
        inner = warped.reshape(_MODULES, cell, _MODULES, cell)[:, 1:3, :, 1:3]
        means = inner.mean(axis=(1, 3))
        bits = self._expected_bits(tag)
        white, black = means[bits], means[~bits]
        if white.size == 0 or black.size == 0:
            return 0.0, 0.0
        thresh = 0.5 * (white.mean() + black.mean())
        margin = min(float(white.min() - thresh), float(thresh - black.max()))
        return margin, float(white.mean() - black.mean())

    @staticmethod
    def _confidence(side_px: float, err_px: float, margin: float, contrast: float,
                    ambiguity: float) -> float:
        size_f = min(1.0, max(0.0, (side_px - 8.0) / 16.0))
        err_f = math.exp(-(err_px / 1.0) ** 2)
        margin_f = min(1.0, max(0.0, 2.0 * margin / contrast)) if contrast > 1.0 else 0.0
        amb_f = 1.0 - 0.5 * max(0.0, min(1.0, ambiguity))
        return float(size_f * err_f * (0.5 + 0.5 * margin_f) * amb_f)


def refine_edges(gray: np.ndarray, corners: np.ndarray, reach_px: float = 2.5,
                 step_px: float = 0.25) -> np.ndarray:
    """Corners as intersections of the 4 border lines, each fitted to sub-pixel edge points.

    Along every edge the grey profile across the edge is sampled (bilinear) at many points;
    each point's edge lies at the centroid of the profile's derivative around its peak; a
    line is fitted to the points by total least squares.  Falls back to the input corners
    when a line cannot be fitted."""
    c = np.asarray(corners, dtype=np.float64)
    centre = c.mean(axis=0)
    img = gray.astype(np.float32)
    offsets = np.arange(-reach_px, reach_px + 1e-9, step_px)
    lines = []
    for k in range(4):
        a, b = c[k], c[(k + 1) % 4]
        length = float(np.linalg.norm(b - a))
        if length < 4.0:
            return c
        e = (b - a) / length
        n = np.array([-e[1], e[0]])
        if np.dot(n, (a + b) / 2 - centre) < 0:
            n = -n                                   # outward: black inside -> white outside
        m = max(4, int(length / 1.0))
        ts = np.linspace(0.15, 0.85, m)
        base = a[None, :] + ts[:, None] * (b - a)[None, :]
        pts = base[:, None, :] + offsets[None, :, None] * n[None, None, :]
        mapx = pts[..., 0].astype(np.float32)
        mapy = pts[..., 1].astype(np.float32)
        prof = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        der = np.diff(prof, axis=1)                  # positive going dark -> light
        der = np.clip(der, 0.0, None)
        pk = der.argmax(axis=1)
        w = max(2, int(round(1.0 / step_px)))
        idx = np.arange(der.shape[1])[None, :]
        win = (np.abs(idx - pk[:, None]) <= w) * der
        tot = win.sum(axis=1)
        ok = tot > 1e-3
        if ok.sum() < 3:
            return c
        s = (win * (idx + 0.5)).sum(axis=1)[ok] / tot[ok]
        off = offsets[0] + s * step_px
        edge_pts = base[ok] + off[:, None] * n[None, :]
        mean = edge_pts.mean(axis=0)
        _, _, vt = np.linalg.svd(edge_pts - mean)
        d = vt[0]
        lines.append((mean, d))
    out = np.empty_like(c)
    for k in range(4):
        p1, d1 = lines[(k - 1) % 4]
        p2, d2 = lines[k]
        A = np.column_stack([d1, -d2])
        if abs(np.linalg.det(A)) < 1e-6:
            return c
        t = np.linalg.solve(A, p2 - p1)
        out[k] = p1 + t[0] * d1
    if not np.isfinite(out).all() or np.abs(out - c).max() > 3.0:
        return c
    return out


def detector_for_registry(registry: Any, default_size_m: float = 0.16,
                          **kwargs: Any) -> FiducialDetector:
    """A detector whose tag sizes come from the registry's surveyed ``markers``."""
    sizes = {m.tag: m.size_m for m in getattr(registry, "markers", ())}
    return FiducialDetector(sizes, default_size_m, **kwargs)
