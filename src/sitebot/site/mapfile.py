"""Occupancy maps in the nav2 map_server format (no ROS): a YAML file naming an image.

A map file, as nav2_map_server and slam_toolbox's map saver write and read it::

    image: map.pgm            # PGM or PNG, relative to this file (or absolute)
    mode: trinary             # trinary (default) | scale | raw
    resolution: 0.05          # edge of a cell (a pixel) [m]
    origin: [x, y, yaw]       # pose of the lower-left pixel's corner in the map frame
    negate: 0                 # 1: white is occupied
    occupied_thresh: 0.65     # occupancy above this is occupied
    free_thresh: 0.25         # occupancy below this is free

A pixel's occupancy is ``1 - brightness`` (``brightness`` with ``negate``), brightness the
mean of its colour channels in [0, 1]; the image's top row is the map's highest y.  Values
follow nav_msgs/OccupancyGrid: 0 free, 100 occupied, -1 unknown (``scale`` gives 1..99
between the thresholds, ``raw`` takes the grey level as the value).  :func:`load_map` checks
every key and the image and raises :class:`~sitebot.errors.BundleError` naming the file and
the key; :func:`save_map` writes a map the way nav2's map saver does in trinary mode (0
occupied, 254 free, 205 unknown).  Rotated origins are refused (no sitebot or nav2 costmap
uses one).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sitebot.config.yamlio import Schema, load_yaml
from sitebot.errors import BundleError
from sitebot.fileio import write_atomic
from sitebot.site.occupancy import OccupancyGrid

__all__ = ["SiteMap", "load_map", "parse_map_yaml", "save_map", "MODES", "MAX_MAP_CELLS"]

MODES = ("trinary", "scale", "raw")
_KEYS = ("image", "mode", "resolution", "origin", "negate", "occupied_thresh", "free_thresh")
_REQUIRED = ("image", "resolution", "origin", "negate", "occupied_thresh", "free_thresh")
#: the largest map accepted (8000 x 8000 cells: 400 m square at 5 cm, 800 m at 10 cm); a
#: bigger image is refused from its header, before it is decoded
MAX_MAP_CELLS = 8000 * 8000
#: the largest cell edge accepted [m] (a coarser grid cannot hold a robot's surroundings)
MAX_RESOLUTION_M = 1.0


@dataclass(frozen=True)
class SiteMap:
    """A loaded map: ``values`` (rows = y, row 0 at ``origin_y``; nav_msgs/OccupancyGrid
    values), the cell edge and the origin, and the files it came from."""
    values: np.ndarray = field(repr=False, compare=False)
    resolution_m: float
    origin_x: float
    origin_y: float
    file: Path | None = None
    image: Path | None = None

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    @property
    def height(self) -> int:
        return int(self.values.shape[0])

    def occupancy(self, unknown_occupied: bool = True) -> OccupancyGrid:
        """The map as an :class:`OccupancyGrid`: cells >= 65 (nav2's occupied threshold on
        values) are occupied, and unknown cells too unless ``unknown_occupied`` is off (a
        robot does not plan through what nobody mapped)."""
        occ = self.values >= 65
        if unknown_occupied:
            occ = occ | (self.values < 0)
        occ.setflags(write=False)
        return OccupancyGrid(self.origin_x, self.origin_y, self.resolution_m, occ)

    def contains(self, x: float, y: float) -> bool:
        """(x, y) [m] lies on the map."""
        return (self.origin_x <= x < self.origin_x + self.width * self.resolution_m
                and self.origin_y <= y < self.origin_y + self.height * self.resolution_m)


def parse_map_yaml(data, file: str | Path | None = None) -> dict:
    """The checked keys of a map YAML document (``image`` resolved against the file's
    folder)."""
    s = Schema(file, BundleError)
    if data is None:
        s.fail("the file is empty; expected a nav2 map (image, resolution, origin, negate, "
               "occupied_thresh, free_thresh)", None)
    m = s.mapping(data, "")
    s.keys(m, "", allowed=_KEYS, required=_REQUIRED)
    image = s.string(m["image"], "image")
    img_path = Path(image)
    if not img_path.is_absolute() and file is not None:
        img_path = Path(file).parent / img_path
    res = s.number(m["resolution"], "resolution", min_value=0.0, min_exclusive=True,
                   max_value=MAX_RESOLUTION_M)
    origin = s.vector(m["origin"], "origin", 3, names="[x, y, yaw]")
    if abs(math.remainder(origin[2], 2 * math.pi)) > 1e-6:
        s.fail(f"a rotated map (yaw {origin[2]:g} rad) is not supported; use yaw 0", "origin")
    mode = "trinary" if m.get("mode") is None else s.choice(m["mode"], MODES, "mode",
                                                             what="map mode")
    negate = m["negate"]
    if isinstance(negate, bool):
        negate = int(negate)
    if not isinstance(negate, int) or negate not in (0, 1):
        s.fail(f"must be 0 or 1 (or a boolean), got {negate!r}", "negate")
    occ_t = s.number(m["occupied_thresh"], "occupied_thresh", min_value=0.0, max_value=1.0)
    free_t = s.number(m["free_thresh"], "free_thresh", min_value=0.0, max_value=1.0)
    if free_t >= occ_t:
        s.fail(f"must be smaller than occupied_thresh ({occ_t:g}), got {free_t:g}",
               "free_thresh")
    return {"image": img_path, "mode": mode, "resolution": res, "origin": origin,
            "negate": negate, "occupied_thresh": occ_t, "free_thresh": free_t}


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PGM, PNG or BMP header without decoding the image; None when
    the header is not one of those."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:2] == b"BM" and len(head) >= 26:
        return (abs(int.from_bytes(head[18:22], "little", signed=True)),
                abs(int.from_bytes(head[22:26], "little", signed=True)))
    if head[:2] in (b"P2", b"P5"):
        tokens: list[bytes] = []
        for line in head[2:].split(b"\n"):
            tokens += line.split(b"#", 1)[0].split()
            if len(tokens) >= 2:
                break
        if len(tokens) >= 2 and tokens[0].isdigit() and tokens[1].isdigit():
            return int(tokens[0]), int(tokens[1])
    return None


def _read_image(path: Path, file: str | Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(brightness in [0, 1], alpha in [0, 1] or None) of an 8- or 16-bit grey, RGB or RGBA
    image."""
    s = Schema(file, BundleError)
    if not path.is_file():
        s.fail(f"image {str(path)!r} does not exist", "image")
    size = image_size(path)
    if size is None:
        s.fail(f"image {str(path)!r} is not a PGM, PNG or BMP image", "image")
    if size[0] * size[1] > MAX_MAP_CELLS:
        s.fail(f"image {str(path)!r} has {size[0]} x {size[1]} pixels; at most "
               f"{MAX_MAP_CELLS} are accepted", "image")
    img = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim not in (2, 3) or img.size == 0 or \
            (img.shape[1], img.shape[0]) != size:
        s.fail(f"image {str(path)!r} is not a readable PGM/PNG/BMP image", "image")
    top = float(np.iinfo(img.dtype).max) if np.issubdtype(img.dtype, np.integer) else 1.0
    f = img.astype(np.float32) / np.float32(top)
    if f.ndim == 2:
        return f, None
    alpha = f[:, :, 3] if f.shape[2] == 4 else None
    return f[:, :, :3].mean(axis=2), alpha


def load_map(path: str | Path) -> SiteMap:
    """Read a nav2 map YAML file and its image (see the module docstring).

    :raises BundleError: naming the file and the key (or the image) of the first problem.
    """
    meta = parse_map_yaml(load_yaml(path, error=BundleError), path)
    shade, alpha = _read_image(meta["image"], path)
    mode = meta["mode"]
    if mode == "trinary" and alpha is not None:
        shade = (shade * 3.0 + alpha) / 4.0          # nav2 averages alpha in, as a channel
    occ = shade if meta["negate"] else 1.0 - shade
    hi, lo = meta["occupied_thresh"], meta["free_thresh"]
    values = np.full(occ.shape, -1, dtype=np.int8)
    if mode == "raw":
        grey = np.rint(shade * 255.0)
        ok = (grey >= 0) & (grey <= 100)
        values[ok] = grey[ok].astype(np.int8)
    else:
        values[occ > hi] = 100
        values[occ < lo] = 0
        if mode == "scale":
            mid = (occ >= lo) & (occ <= hi)
            values[mid] = np.rint((occ[mid] - lo) / (hi - lo) * 100.0).astype(np.int8)
            if alpha is not None:
                values[alpha < 1.0] = -1
    values = np.flipud(values).copy()                # image top row = highest y
    values.setflags(write=False)
    return SiteMap(values, meta["resolution"], meta["origin"][0], meta["origin"][1],
                   Path(path), meta["image"])


def save_map(path: str | Path, values: np.ndarray, resolution_m: float,
             origin_xy: tuple[float, float], image_name: str | None = None,
             mode: str = "trinary") -> Path:
    """Write ``values`` (rows = y, nav_msgs values) as ``path`` (YAML) and a PGM image
    beside it (``image_name``, default the YAML's stem + ``.pgm``), as nav2's map saver
    does: ``trinary`` writes 0 for occupied (>= 65), 254 for free (<= 25), 205 otherwise
    (free_thresh 0.196, so that 205 reads back as unknown);
    ``scale`` writes ``255 * (100 - value) / 100`` (unknown: 205, read back as a value
    between the thresholds).  Returns the image's path.  Writes each file atomically."""
    path = Path(path)
    v = np.asarray(values)
    if v.ndim != 2 or v.size == 0:
        raise BundleError(f"map values must be a non-empty 2-D grid, got shape {v.shape}",
                          file=path)
    if mode == "trinary":
        img = np.full(v.shape, 205, dtype=np.uint8)
        img[(v >= 0) & (v <= 25)] = 254
        img[v >= 65] = 0
        # 0.196: grey 205 (unknown) reads as unknown, not free (with nav2's default 0.25 it
        # would read as free: occupancy 1 - 205/255 = 0.196 < 0.25)
        occ_t, free_t = 0.65, 0.196
    elif mode == "scale":
        img = np.full(v.shape, 205, dtype=np.uint8)
        known = (v >= 0) & (v <= 100)
        img[known] = np.rint(255.0 * (100 - v[known].astype(np.float64)) / 100.0).astype(np.uint8)
        occ_t, free_t = 1.0, 0.0
    else:
        raise BundleError(f"mode {mode!r}: save_map writes trinary or scale maps", file=path)
    image_name = image_name or path.stem + ".pgm"
    image = path.parent / image_name
    ok, buf = cv2.imencode(".pgm", np.flipud(img).copy())
    if not ok:
        raise BundleError("could not encode the map image", file=image)
    write_atomic(image, buf.tobytes())
    doc = (f"image: {image_name}\nmode: {mode}\nresolution: {resolution_m!r}\n"
           f"origin: [{float(origin_xy[0])!r}, {float(origin_xy[1])!r}, 0.0]\nnegate: 0\n"
           f"occupied_thresh: {occ_t}\nfree_thresh: {free_t}\n")
    write_atomic(path, doc.encode())
    return image
