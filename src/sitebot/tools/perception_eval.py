"""``sitebot eval perception``: the camera evaluation (this package's
:mod:`.camera_eval`), then the spatial one (:mod:`.spatial_eval`) when it is installed.

Usage: ``sitebot eval perception [--views N] [--seed S] [--json FILE] [--width W --height H]
[--camera-only]``.  Exit code 1 when an aim is missed, 0 otherwise.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
from typing import Any


def _camera(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    from sitebot.tools.camera_eval import AIMS, format_table, run_camera_eval, summarize
    res = run_camera_eval(args.views, args.seed, args.width, args.height)
    s = summarize(res)
    print(format_table(s, args.width, args.height))
    g, f = s["gauge"], s["fiducials"]
    ok = (g["unreadable_reports"] == 0
          and (math.isnan(g["p95_err_pct_fs"]) or g["p95_err_pct_fs"] <= AIMS["gauge_p95_pct_fs"]))
    s["aims"] = dict(AIMS)
    s["gauge_aims_met"] = ok
    s["fiducial_aims_met"] = bool(f["pos_p95_cm"] < AIMS["tag_pos_cm"]
                                  and f["rot_p95_deg"] < AIMS["tag_rot_deg"])
    print(f"\ngauge aims met: {ok}; fiducial pose aims (p95) met: {s['fiducial_aims_met']}")
    return s, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot eval perception",
                                 description="perception against simulator ground truth")
    ap.add_argument("--views", type=int, default=24, help="views per world (camera part)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="", help="write the figures to this JSON file")
    ap.add_argument("--width", type=int, default=640, help="camera image width [px]")
    ap.add_argument("--height", type=int, default=480, help="camera image height [px]")
    ap.add_argument("--camera-only", action="store_true", help="skip the spatial evaluation")
    args, rest = ap.parse_known_args(argv)
    if args.views < 1:
        ap.error("--views must be >= 1")
    out: dict[str, Any] = {}
    cam, ok = _camera(args)
    out["camera"] = cam
    rc = 0 if ok else 1
    if not args.camera_only:
        try:
            spatial = importlib.import_module("sitebot.tools.spatial_eval")
        except ImportError:
            spatial = None
        if spatial is not None:
            print()
            sub = list(rest) + ["--seed", str(args.seed), "--views", str(args.views)]
            if args.json:
                sub += ["--json", args.json + ".spatial.json"]
            rc = max(rc, int(spatial.main(sub) or 0))
            out["spatial_json"] = args.json + ".spatial.json" if args.json else ""
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2, default=float)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
