"""``sitebot site``: site bundles (the folder a robot carries for its site; format in
:mod:`sitebot.site.bundle`).

  sitebot site export --world NAME|FILE --out DIR   write the bundle of a simulated world
  sitebot site export --all [--out DIR]             every shipped world, one folder each
                                                    (default: the installed sites folder)
  sitebot site check SITE [--role R]                load and check a bundle (a folder or an
                                                    installed name): exit 2 naming the file
                                                    and key of the first invalid entry; then
                                                    what a first mission still lacks (no
                                                    dock, unreachable places, route legs
                                                    without a path, unreadable gauges):
                                                    exit 1 when anything is missing
  sitebot site list                                 the installed sites
  sitebot site new NAME --out DIR [--start 'x y yaw']
                                                    the bundle of a site not surveyed yet:
                                                    its id, the start that anchors the map
                                                    frame, an empty registry, a map free
                                                    only around the start (commissioning:
                                                    docs/commissioning.md)
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from sitebot.commissioning.readiness import check_bundle
from sitebot.paths import data_path
from sitebot.site.bundle import installed_sites, load_bundle

__all__ = ["main", "check_bundle"]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot site", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("export", help="write the bundle of a simulated world")
    ex.add_argument("--world", default="", help="world name or file")
    ex.add_argument("--all", action="store_true", help="every shipped world")
    ex.add_argument("--out", default="", help="bundle folder (--all: parent folder)")
    ck = sub.add_parser("check", help="load and check a bundle")
    ck.add_argument("site", help="bundle folder or installed site name")
    ck.add_argument("--role", default="", help="the role the robot works for (restricted "
                    "zones it may enter)")
    sub.add_parser("list", help="the installed sites")
    nw = sub.add_parser("new", help="the bundle of a site not surveyed yet")
    nw.add_argument("name", help="site id (snake_case)")
    nw.add_argument("--out", required=True, help="bundle folder to create")
    nw.add_argument("--start", default="0 0 0", help="'x y yaw': the robot's pose when the "
                    "survey starts, in the map frame it defines (default 0 0 0)")
    nw.add_argument("--description", default="")
    a = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
    if a.action == "new":
        from sitebot.commissioning.newsite import new_bundle
        from sitebot.site.bundle import parse_pose_text
        from sitebot.site.registry import ID_PATTERN
        start = parse_pose_text(a.start)
        if start is None:
            ap.error(f"--start {a.start!r}: give 'x y yaw'")
        if not ID_PATTERN.fullmatch(a.name):
            ap.error(f"site id {a.name!r}: use snake_case (letters, digits, _)")
        folder = new_bundle(a.out, a.name, start, a.description)
        load_bundle(str(folder))                      # what every node will read
        print(f"created site '{a.name}' in {folder}: next, start the robot with "
              f"site:={folder}, then `sitebot survey start`")
        return 0
    if a.action == "list":
        for name, path in installed_sites().items():
            print(f"{name}\t{path}")
        return 0
    if a.action == "check":
        from sitebot.commissioning.readiness import readiness
        b, lines, dials = check_bundle(a.site)
        for line in lines:
            print(line)
        findings = readiness(b, dials, role=a.role)
        for f in findings:
            print(f"  {f}")
        errors = sum(f.level == "error" for f in findings)
        print(f"not ready: {errors} error(s) before a first mission" if errors else
              f"ok ({len(findings)} warning(s))")
        return 1 if errors else 0
    from sitebot.sim.export import export_all, export_bundle
    if a.all == bool(a.world):
        ap.error("export: give --world NAME or --all")
    if a.all:
        for p in export_all(a.out or data_path("sites")):
            print(f"exported {p}")
        return 0
    if not a.out:
        ap.error("export --world: give --out DIR")
    print(f"exported {export_bundle(a.world, a.out)}")
    return 0
