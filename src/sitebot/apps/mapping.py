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
import sys
from pathlib import Path
from typing import Sequence

from sitebot.commissioning.build import build_from_bag
from sitebot.commissioning.survey import pose_at, read_survey

__all__ = ["main", "build_from_bag", "read_survey", "pose_at"]



def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot map", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="build a survey bag's occupancy map")
    b.add_argument("bag", help="rosbag2 folder with /scan and /odom")
    b.add_argument("--start", default="", help="'x y yaw': the map pose where the survey "
                   "began (e.g. the dock), so the map lines up with a registry; default: the "
                   "odometry frame")
    b.add_argument("--out", required=True, help="folder for map.yaml, map.pgm, map.png, "
                   "survey.json: a bundle folder (sitebot site new), whose site.yaml then "
                   "gets the surveyed markers as drafts; elsewhere they go to markers.yaml")
    b.add_argument("--tag-size", type=float, default=0.16, help="black-square edge [m] of "
                   "the site's AprilTags (default 0.16)")
    b.add_argument("--tag-sizes", default="", help="per-tag edges: 'ID:M,ID:M,...' or a "
                   "YAML file {ID: M}")
    a = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    sizes = _tag_sizes(a.tag_sizes, ap)

    def progress(stage: str, f: float) -> None:
        print(f"[{'#' * int(20 * f):<20}] {100 * f:5.1f} % {stage}", flush=True)
    start = None
    if a.start:
        from sitebot.site.bundle import parse_pose_text
        start = parse_pose_text(a.start)
        if start is None:
            ap.error(f"--start {a.start!r}: give 'x y yaw'")
    s = build_from_bag(a.bag, a.out, progress=progress, start=start, tag_size_m=a.tag_size,
                       tag_sizes=sizes)
    err = s["trajectory_error"]
    print(f"map {s['map']['width']} x {s['map']['height']} cells of "
          f"{s['map']['resolution_m']:g} m from {s['scans_used']} scans ({s['keyframes']} "
          f"keyframes, loop closures {s['loops_kept']}/{s['loops_proposed']}) in "
          f"{s['wall_s']} s" + (f"; trajectory error against ground truth RMS "
                                f"{100 * err['rms_m']:.1f} cm, max {100 * err['max_m']:.1f} "
                                f"cm (odometry alone: max {100 * err['odometry_max_m']:.1f} "
                                f"cm)" if err else "") + f"\nwrote {a.out}/map.yaml, map.pgm, "
          "map.png, survey.json")
    print(s["markers_note"])
    out = Path(a.out)
    if s["markers"]:
        if (out / "site.yaml").exists():
            from sitebot.commissioning.newsite import adopt_survey
            for note in adopt_survey(out, s["markers"]):
                print(f"  {note}")
            print(f"the markers are drafts in {out}/site.yaml: check each (std, sightings) "
                  "and confirm it in the console's site editor")
        else:
            import yaml

            from sitebot.commissioning.newsite import write_atomic
            write_atomic(out / "markers.yaml", yaml.safe_dump({"markers": s["markers"]},
                                                              sort_keys=False))
            print(f"wrote {out}/markers.yaml (draft registry markers)")
    return 0


def _tag_sizes(text: str, ap: argparse.ArgumentParser) -> dict[int, float]:
    if not text:
        return {}
    if Path(text).is_file():
        from sitebot.config.yamlio import load_yaml
        raw = load_yaml(text)
        items = raw.items() if isinstance(raw, dict) else None
    else:
        items = [kv.split(":", 1) for kv in text.split(",") if kv.strip()]
    try:
        sizes = {int(k): float(v) for k, v in (items or [])}
    except (TypeError, ValueError):
        sizes = {}
    if not sizes or not all(0.0 < v < 2.0 for v in sizes.values()):
        ap.error(f"--tag-sizes {text!r}: give 'ID:M,...' or a YAML file {{ID: M}} with "
                 "edges in metres (0 < M < 2)")
    return sizes
