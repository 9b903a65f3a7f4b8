"""``sitebot map build BAG --out DIR``: a survey's occupancy map (docs/sites.md, "Where
bundles come from"; the method: :mod:`sitebot.commissioning.mapping`).

Reads a rosbag2 (MCAP or SQLite, as ``ros2 bag record`` or a regression run writes it) with
``sensor_msgs/LaserScan`` on ``/scan`` and ``nav_msgs/Odometry`` on ``/odom`` (each scan
takes the odometry interpolated at its stamp; the laser's mount comes from the robot's URDF
by the scan's frame id), builds the map and writes into ``DIR``: ``map.yaml`` +
``map.pgm`` (nav2 map_server format, the bundle's pair), ``map.png`` (the map with the
corrected trajectory, and the odometry's for comparison) and ``survey.json`` (keyframes,
loop closures, time taken; with ``/ground_truth/odom`` in the bag, as in simulation, the
trajectory error against it).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from sitebot.commissioning.mapping import MapperConfig, ScanMapper
from sitebot.description.kinematics import planar_frame_pose
from sitebot.description.urdf import load_robot_description
from sitebot.errors import SitebotError
from sitebot.site.mapfile import save_map
from sitebot.types import Pose2D, quaternion_to_yaw, se2_compose, se2_inverse

__all__ = ["main", "build_from_bag", "read_survey", "pose_at"]

SCAN, ODOM, TRUTH = "/scan", "/odom", "/ground_truth/odom"


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _planar(msg) -> tuple[float, float, float, float]:
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return _stamp(msg), p.x, p.y, quaternion_to_yaw((q.x, q.y, q.z, q.w))


def _series(rows) -> np.ndarray:
    """(N, 4) t x y yaw with the yaw unwrapped (continuous), for :func:`pose_at`."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    a[:, 3] = np.unwrap(a[:, 3])
    return a


def read_survey(bag: str | Path) -> tuple[list, np.ndarray, np.ndarray | None]:
    """(scans, odometry, ground truth or None) of a survey bag, the poses as
    :func:`_series`; a bag without scans or odometry is refused naming what it has."""
    from rosbags.rosbag2 import Reader

    from sitebot.bag import read_bag
    p = Path(bag)
    if not (p / "metadata.yaml").is_file():
        raise SitebotError(f"{p}: not a rosbag2 folder (no metadata.yaml)")
    with Reader(p) as r:
        have = {c.topic: c.msgtype for c in r.connections}
    for topic, typ in ((SCAN, "sensor_msgs/msg/LaserScan"), (ODOM, "nav_msgs/msg/Odometry")):
        if have.get(topic) != typ:
            raise SitebotError(f"{p}: the survey needs {typ} on {topic}; the bag has "
                               + (", ".join(f"{t} ({m})" for t, m in sorted(have.items()))
                                  or "no topics"))
    msgs = read_bag(p, [SCAN, ODOM, TRUTH])
    odom = _series([_planar(m) for _, m in msgs[ODOM]])
    truth = _series([_planar(m) for _, m in msgs[TRUTH]]) if msgs.get(TRUTH) else None
    if len(odom) < 2 or len(msgs[SCAN]) < 2:
        raise SitebotError(f"{p}: {len(msgs[SCAN])} scans and {len(odom)} odometry "
                           "messages: too short a survey to map")
    return [m for _, m in msgs[SCAN]], odom, truth


def pose_at(series: np.ndarray, t: float) -> Pose2D | None:
    """The pose of a :func:`_series` interpolated at ``t``; None outside it."""
    ts = series[:, 0]
    if t < ts[0] or t > ts[-1]:
        return None
    return Pose2D(float(np.interp(t, ts, series[:, 1])), float(np.interp(t, ts, series[:, 2])),
                  math.remainder(float(np.interp(t, ts, series[:, 3])), math.tau))


def build_from_bag(bag: str | Path, out: str | Path, config: MapperConfig = MapperConfig(),
                   progress=None, start: Sequence[float] | None = None) -> dict:
    """Build the map of a survey bag into ``out`` (see the module doc); the summary.

    ``start``: the map pose where the survey began (e.g. the dock's surveyed pose, so the
    map lines up with an existing registry); None: the odometry frame is the map frame."""
    t0 = time.monotonic()
    scans, odom, truth = read_survey(bag)
    if start is not None:                 # re-anchor odometry: its first pose -> start
        first = Pose2D(*odom[0, 1:])
        moved = [se2_compose(start, se2_compose(se2_inverse(first), row[1:]))
                 for row in odom]
        odom = _series(np.column_stack([odom[:, 0], np.array(moved)]))
    desc = load_robot_description()
    frame = scans[0].header.frame_id or "laser_link"
    try:
        laser = planar_frame_pose(desc, "base_footprint", frame)
    except (KeyError, ValueError) as e:
        raise SitebotError(f"{bag}: the scans' frame {frame!r} is not a frame of the robot's "
                           f"URDF ({e})") from None
    mapper = ScanMapper(config, laser)
    used = 0
    for n, s in enumerate(scans):
        pose = pose_at(odom, _stamp(s))
        if pose is None:
            continue
        mapper.add_scan(_stamp(s), pose, s.ranges, s.angle_min, s.angle_increment,
                        s.range_min, s.range_max)
        used += 1
        if progress and n % 200 == 0:
            progress("scan matching", n / len(scans))
    result = mapper.build(progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problem = mapper.reliability_problem()
    if not problem:
        save_map(out / "map.yaml", result.values, result.resolution_m, result.origin)
    err = None
    if truth is not None:
        # without a start the map frame is the odometry's: compare in the truth's frame
        # through the first keyframe (the usual absolute trajectory error, anchored there)
        t_first, p_first = result.trajectory[0]
        anchor = Pose2D(0.0, 0.0, 0.0)
        if start is None and (q0 := pose_at(truth, t_first)) is not None:
            anchor = Pose2D(*se2_compose(q0, se2_inverse(p_first)))
        e = [math.dist(se2_compose(anchor, p)[:2], q[:2]) for t, p in result.trajectory
             if (q := pose_at(truth, t)) is not None]
        err = {"rms_m": round(math.sqrt(sum(x * x for x in e) / len(e)), 4),
               "max_m": round(max(e), 4), "poses": len(e)}
        o = [math.dist(se2_compose(anchor, xy)[:2], q[:2]) for t, *xy in odom.tolist()
             if (q := pose_at(truth, t)) is not None]
        err["odometry_max_m"] = round(max(o), 4)
    cv2.imwrite(str(out / "map.png"), _picture(result, odom, mapper.unreliable()))
    summary = {
        "bag": str(bag), "scans": len(scans), "scans_used": used,
        "keyframes": len(result.trajectory), "icp_fell_back": mapper.rejected,
        "loops_proposed": result.loops_proposed, "loops_kept": result.loops_kept,
        "map": {"width": int(result.values.shape[1]), "height": int(result.values.shape[0]),
                "resolution_m": result.resolution_m, "origin": list(result.origin),
                "occupied": int((result.values >= 65).sum()),
                "free": int((result.values == 0).sum())},
        "trajectory_error": err, "wall_s": round(time.monotonic() - t0, 2),
        "unreliable": mapper.unreliable(), "refused": problem,
        "trajectory": [[round(t, 3), round(p.x, 4), round(p.y, 4), round(p.yaw, 4)]
                       for t, p in result.trajectory],
    }
    (out / "survey.json").write_text(json.dumps(summary, indent=1))
    if problem:
        raise SitebotError(
            f"{bag}: the survey does not support a reliable map: {problem}. No map written; "
            f"{out}/map.png shows the doubtful stretches in red, {out}/survey.json lists "
            "them: drive them again, slower and within range of structure, and rebuild")
    return summary


def _picture(result, odom: np.ndarray, unreliable: Sequence[dict] = (),
             px_per_m: float = 20.0) -> np.ndarray:
    v = result.values
    img = np.full(v.shape, 205, np.uint8)
    img[v == 0], img[v >= 65] = 250, 40
    res = result.resolution_m
    scale = px_per_m * res
    img = cv2.cvtColor(cv2.resize(np.flipud(img), None, fx=scale, fy=scale,
                                  interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
    h = img.shape[0]
    ox, oy = result.origin

    def px(x: float, y: float) -> tuple[int, int]:
        return int((x - ox) * px_per_m), int(h - (y - oy) * px_per_m)
    for pts, color in (([px(x, y) for _, x, y, _ in odom.tolist()], (200, 90, 30)),
                       ([px(p.x, p.y) for _, p in result.trajectory], (40, 160, 40))):
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, color, 2, cv2.LINE_AA)
    for r in unreliable:                     # stretches resting on odometry alone
        cv2.line(img, px(*r["from"]), px(*r["to"]), (30, 30, 220), 5, cv2.LINE_AA)
        cv2.circle(img, px(*r["from"]), 6, (30, 30, 220), 2, cv2.LINE_AA)
    return img


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot map", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="build a survey bag's occupancy map")
    b.add_argument("bag", help="rosbag2 folder with /scan and /odom")
    b.add_argument("--start", default="", help="'x y yaw': the map pose where the survey "
                   "began (e.g. the dock), so the map lines up with a registry; default: the "
                   "odometry frame")
    b.add_argument("--out", required=True, help="folder for map.yaml, map.pgm, map.png, "
                   "survey.json (a bundle folder)")
    a = ap.parse_args(list(sys.argv[1:] if argv is None else argv))

    def progress(stage: str, f: float) -> None:
        print(f"[{'#' * int(20 * f):<20}] {100 * f:5.1f} % {stage}", flush=True)
    start = None
    if a.start:
        from sitebot.site.bundle import parse_pose_text
        start = parse_pose_text(a.start)
        if start is None:
            ap.error(f"--start {a.start!r}: give 'x y yaw'")
    s = build_from_bag(a.bag, a.out, progress=progress, start=start)
    err = s["trajectory_error"]
    print(f"map {s['map']['width']} x {s['map']['height']} cells of "
          f"{s['map']['resolution_m']:g} m from {s['scans_used']} scans ({s['keyframes']} "
          f"keyframes, loop closures {s['loops_kept']}/{s['loops_proposed']}) in "
          f"{s['wall_s']} s" + (f"; trajectory error against ground truth RMS "
                                f"{100 * err['rms_m']:.1f} cm, max {100 * err['max_m']:.1f} "
                                f"cm (odometry alone: max {100 * err['odometry_max_m']:.1f} "
                                f"cm)" if err else "") + f"\nwrote {a.out}/map.yaml, map.pgm, "
          "map.png, survey.json")
    return 0
