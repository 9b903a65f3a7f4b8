"""The map build pipeline (no ROS): a survey bag in, a bundle's map, the corrected
trajectory, the draft markers and a picture out (``sitebot map build``,
:mod:`sitebot.apps.mapping`; methods: :mod:`sitebot.commissioning.mapping` and
:mod:`sitebot.commissioning.markers`)."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from sitebot.commissioning.mapping import MapperConfig, ScanMapper
from sitebot.commissioning.survey import pose_at, pose_series, read_survey, stamp_s
from sitebot.description.kinematics import planar_frame_pose
from sitebot.description.urdf import load_robot_description
from sitebot.errors import SitebotError
from sitebot.site.mapfile import save_map
from sitebot.types import Pose2D, se2_compose, se2_inverse

__all__ = ["build_from_bag"]


def build_from_bag(bag: str | Path, out: str | Path, config: MapperConfig = MapperConfig(),
                   progress=None, start: Sequence[float] | None = None,
                   tag_size_m: float = 0.16, tag_sizes: dict[int, float] | None = None) -> dict:
    """Build the map of a survey bag into ``out`` (see the module doc); the summary.

    ``start``: the map pose where the survey began (e.g. the dock's surveyed pose, so the
    map lines up with an existing registry); None: a bundle made by ``sitebot site new`` in
    ``out`` gives its ``survey_start``, else the odometry frame is the map frame.
    ``tag_size_m``, ``tag_sizes``: the black-square edge [m] of the site's AprilTags (all,
    and per tag id) for the marker survey."""
    from sitebot.commissioning.newsite import start_of
    t0 = time.monotonic()
    if start is None:
        start = start_of(out)
    scans, odom, truth = read_survey(bag)
    if start is not None:                 # re-anchor odometry: its first pose -> start
        first = Pose2D(*odom[0, 1:])
        moved = [se2_compose(start, se2_compose(se2_inverse(first), row[1:]))
                 for row in odom]
        odom = pose_series(np.column_stack([odom[:, 0], np.array(moved)]))
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
        pose = pose_at(odom, stamp_s(s))
        if pose is None:
            continue
        mapper.add_scan(stamp_s(s), pose, s.ranges, s.angle_min, s.angle_increment,
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
    markers, marker_note = [], ""
    t_markers = time.monotonic()
    if not problem:
        markers, marker_note = _survey_markers(bag, odom, result.trajectory, tag_size_m,
                                               tag_sizes or {}, progress)
    t_markers = time.monotonic() - t_markers
    cv2.imwrite(str(out / "map.png"), _picture(result, odom, mapper.unreliable(), markers))
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
        "markers": markers, "markers_note": marker_note,
        "markers_wall_s": round(t_markers, 2),
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


def _survey_markers(bag, odom: np.ndarray, trajectory, tag_size_m: float,
                    tag_sizes: dict[int, float], progress) -> tuple[list[dict], str]:
    """The draft registry markers of the survey's camera images placed by the optimised
    trajectory (:mod:`sitebot.commissioning.markers`); ([], why) without images."""
    from sitebot.commissioning.markers import (corrected_poses, markers_document,
                                               read_camera_frames, survey_markers)
    from sitebot.perception.fiducials import camera_mount
    try:
        frames = read_camera_frames(bag)
    except SitebotError as e:
        return [], f"no marker survey: {e}"
    try:
        mount = camera_mount(None, "base_footprint", frames.info.frame_id)
    except (KeyError, ValueError) as e:
        return [], (f"no marker survey: the camera frame {frames.info.frame_id!r} is not "
                    f"fixed to the robot's base in its URDF ({e})")
    est = survey_markers(frames, frames.info, mount, corrected_poses(odom, trajectory),
                         tag_size_m, tag_sizes, progress=progress)
    return markers_document(est), (f"{len(est)} markers from {len(frames)} images"
                                   + (f" ({frames.skipped} undecodable)" if frames.skipped
                                      else ""))


def _picture(result, odom: np.ndarray, unreliable: Sequence[dict] = (),
             markers: Sequence[dict] = (), px_per_m: float = 20.0) -> np.ndarray:
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
    for m in markers:                        # surveyed tags: a dot and the facing
        x, y, _, yaw = m["pose"]
        cv2.circle(img, px(x, y), 5, (160, 40, 160), -1, cv2.LINE_AA)
        cv2.line(img, px(x, y), px(x + 0.5 * math.cos(yaw), y + 0.5 * math.sin(yaw)),
                 (160, 40, 160), 2, cv2.LINE_AA)
        cv2.putText(img, str(m["tag"]), px(x + 0.15, y + 0.15), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (160, 40, 160), 1, cv2.LINE_AA)
    for r in unreliable:                     # stretches resting on odometry alone
        cv2.line(img, px(*r["from"]), px(*r["to"]), (30, 30, 220), 5, cv2.LINE_AA)
        cv2.circle(img, px(*r["from"]), 6, (30, 30, 220), 2, cv2.LINE_AA)
    return img
