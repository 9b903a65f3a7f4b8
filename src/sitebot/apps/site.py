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
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

from sitebot.errors import BundleError
from sitebot.paths import data_path
from sitebot.site.bundle import MASK_FILE, SiteBundle, installed_sites, load_bundle
from sitebot.site.mapfile import load_map

__all__ = ["main", "check_bundle"]


def check_bundle(spec: str) -> tuple[SiteBundle, list[str], dict]:
    """Load ``spec`` as the nodes do, plus what only some nodes read (the dial layouts, the
    keep-out mask against the zones).  Returns the bundle and a summary; raises the first
    problem as a :class:`~sitebot.errors.ConfigError` naming file and key."""
    from sitebot.perception.gauge import load_dial_layouts
    b = load_bundle(spec)
    dials = load_dial_layouts(b.gauges_file, b.registry) if b.gauges_file else {}
    if b.mask_file is not None:
        mask = load_map(b.mask_file)
        if mask.values.shape != b.map.values.shape or (
                abs(mask.resolution_m - b.map.resolution_m) > 1e-9
                or abs(mask.origin_x - b.map.origin_x) > 1e-9
                or abs(mask.origin_y - b.map.origin_y) > 1e-9):
            raise BundleError("the keep-out mask's grid differs from map.yaml's (size, "
                              "resolution or origin); re-export it", file=b.mask_file)
        differ = int(np.count_nonzero((mask.values >= 65) != (b.keep_out_mask() >= 65)))
        if differ:
            raise BundleError(f"{differ} cells differ from the keep-out zones of site.yaml; "
                              "re-export the mask", file=b.mask_file)
    r, m = b.registry, b.map
    lines = [f"site '{b.site}' ({b.folder})",
             f"  map: {m.width} x {m.height} cells of {m.resolution_m:g} m, origin "
             f"({m.origin_x:g}, {m.origin_y:g}), {int((m.values >= 65).sum())} occupied, "
             f"{int((m.values < 0).sum())} unknown",
             f"  registry: {len(r.places)} places, {len(r.assets)} assets, {len(r.objects)} "
             f"objects, {len(r.zones)} zones, {len(r.routes)} routes, {len(r.docks)} docks, "
             f"{len(r.markers)} markers",
             f"  starts: {', '.join(b.starts) or 'none'}; default initial pose "
             f"{tuple(round(v, 3) for v in b.initial_pose())}",
             f"  scene: {len(b.scene)} collision objects; gauges: {len(dials)} dial layouts; "
             f"keep-out mask: {'checked' if b.mask_file else f'none ({MASK_FILE})'}"]
    return b, lines, dials


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
    a = ap.parse_args(list(sys.argv[1:] if argv is None else argv))
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
