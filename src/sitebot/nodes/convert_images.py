"""Array-valued messages <-> numpy: images (rgb8, bgr8, mono8, depth 32FC1/16UC1),
camera_info and point clouds (no node logic here)."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

__all__ = ["image_rgb_msg", "image_depth_msg", "camera_info_msg", "points_to_cloud",
           "cloud_to_points", "image_to_array", "image_to_bgr", "ENCODINGS", "FrameError"]

# ---------------------------------------------------------------- point clouds
_XYZ_FIELDS = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
               for i, n in enumerate("xyz")]


# ---------------------------------------------------------------- images in
ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}


class FrameError(ValueError):
    """A frame that cannot be processed (the message says why)."""


def _image_msg(pixels: np.ndarray, dtype: type, encoding: str, stamp: Time,
               frame_id: str) -> Image:
    data = np.ascontiguousarray(pixels, dtype=dtype)
    m = Image()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.height, m.width = int(data.shape[0]), int(data.shape[1])
    m.encoding = encoding
    m.is_bigendian = 0
    m.step = m.width * data[0, 0].nbytes
    m.data = data.tobytes()
    return m


def image_rgb_msg(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """rgb8 image from an HxWx3 uint8 array."""
    return _image_msg(rgb, np.uint8, "rgb8", stamp, frame_id)


def image_depth_msg(depth_m: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """REP-118 depth image: 32FC1 in metres, NaN/inf where there is no return."""
    return _image_msg(depth_m, np.float32, "32FC1", stamp, frame_id)


def camera_info_msg(K: np.ndarray, width: int, height: int, stamp: Time,
                    frame_id: str) -> CameraInfo:
    """A distortion-free pinhole CameraInfo for intrinsics ``K`` (3x3)."""
    m = CameraInfo()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.width, m.height = int(width), int(height)
    m.distortion_model = "plumb_bob"
    m.d = [0.0] * 5
    k = np.asarray(K, dtype=np.float64).reshape(3, 3)
    m.k = k.reshape(9).tolist()
    m.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    p = np.zeros((3, 4))
    p[:, :3] = k
    m.p = p.reshape(12).tolist()
    return m


def points_to_cloud(points: np.ndarray, stamp: Time, frame_id: str) -> PointCloud2:
    """(N, 3) points -> PointCloud2 with x, y, z float32 (unordered, dense)."""
    p = np.ascontiguousarray(np.asarray(points, dtype=np.float32).reshape(-1, 3))
    m = PointCloud2()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.height, m.width = 1, len(p)
    m.fields = list(_XYZ_FIELDS)
    m.is_bigendian = False
    m.point_step, m.row_step = 12, 12 * len(p)
    m.is_dense = True
    m.data = p.tobytes()
    return m


def cloud_to_points(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 with float32 x, y, z fields (any point_step, either byte order) ->
    (N, 3) float32; ValueError naming what is missing or short."""
    off = {f.name: f for f in msg.fields}
    for n in "xyz":
        if n not in off or off[n].datatype != PointField.FLOAT32:
            raise ValueError(f"PointCloud2 has no float32 field '{n}'")
    n = msg.width * msg.height
    buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if buf.size < n * msg.point_step:
        raise ValueError(f"PointCloud2 data has {buf.size} B for {n} points of "
                         f"{msg.point_step} B")
    dt = np.dtype({"names": list("xyz"), "formats": [(">" if msg.is_bigendian else "<") + "f4"] * 3,
                   "offsets": [off[c].offset for c in "xyz"], "itemsize": msg.point_step})
    rec = np.frombuffer(buf[: n * msg.point_step].tobytes(), dtype=dt, count=n)
    return np.column_stack([rec["x"], rec["y"], rec["z"]]).astype(np.float32)


def image_to_array(msg: Image) -> tuple[np.ndarray, str]:
    """(uint8 RGB (H, W, 3) or grey (H, W) array, encoding) of an Image message.

    :raises FrameError: empty, truncated, unsupported encoding, inconsistent step.
    """
    enc = msg.encoding.lower()
    if enc not in ENCODINGS:
        raise FrameError(f"unsupported encoding '{msg.encoding}' (accepted: "
                         f"{', '.join(ENCODINGS)})")
    ch = ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise FrameError(f"empty image ({w}x{h})")
    if step < w * ch:
        raise FrameError(f"step {step} < width {w} x {ch} bytes")
    data = np.frombuffer(bytes(msg.data) if not isinstance(msg.data, (bytes, bytearray))
                         else msg.data, dtype=np.uint8)
    if data.size < step * h:
        raise FrameError(f"truncated image: {data.size} bytes < step {step} x height {h}")
    rows = data[:step * h].reshape(h, step)[:, :w * ch]
    if ch == 1:
        return np.ascontiguousarray(rows), enc
    arr = rows.reshape(h, w, 3)
    if enc == "bgr8":
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(arr), enc


def image_to_bgr(msg: Image) -> np.ndarray | None:
    """A BGR (H, W, 3) or grey (H, W) uint8 array of an Image message (for cv2.imwrite and
    encoders), None when the message is malformed (see :func:`image_to_array`)."""
    try:
        arr, enc = image_to_array(msg)
    except FrameError:
        return None
    return arr if arr.ndim == 2 else np.ascontiguousarray(arr[:, :, ::-1])
