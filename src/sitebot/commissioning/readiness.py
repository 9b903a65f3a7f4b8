"""What a site bundle still lacks before the first mission (``sitebot site check``).

The bundle loader refuses what is *invalid* (a place in a wall, a gauge without a range, a
dangling reference: :mod:`sitebot.site.bundle`).  A valid bundle can still be unusable:
these checks ask what a mission would need, with the navigation planner the robot itself
uses (:mod:`sitebot.navigation`), and report one finding per problem, each naming the
registry entry:

errors (a mission would fail)
  * no dock (nothing to return to, no default start);
  * a place where the robot may not stand (an obstacle's inflation, a keep-out zone);
  * a place the robot cannot reach from its start (walled in, only through keep-out);
  * a route leg with no path that avoids keep-out zones;
  * a gauge without a dial layout (``read_gauge`` cannot read it) or without a fiducial;
warnings (a mission would be worse)
  * no surveyed markers (localization dead-reckons), draft markers not yet confirmed, an
    asset tag that is not a surveyed marker, a place that only the roles of a restricted
    zone may reach.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from sitebot.errors import BundleError
from sitebot.navigation.costmap import Costmap, CostmapConfig
from sitebot.navigation.planner import GlobalPlanner, PlanError, PlannerConfig
from sitebot.site.bundle import MASK_FILE, SiteBundle, load_bundle
from sitebot.site.mapfile import load_map
from sitebot.site.registry import AssetKind

__all__ = ["Finding", "readiness", "check_bundle"]


@dataclass(frozen=True)
class Finding:
    """One problem: ``level`` error or warning, ``where`` the registry entry
    (``places.t1_bay``, ``routes.patrol[2]``), and what is wrong."""
    level: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


def readiness(bundle: Any, dials: Mapping[str, Any], role: str = "",
              costmap: CostmapConfig | None = None,
              planner: PlannerConfig | None = None) -> list[Finding]:
    """The findings for ``bundle`` (a :class:`~sitebot.site.bundle.SiteBundle`) with its dial
    layouts ``dials`` (asset id -> layout), planning as a robot working for ``role``."""
    reg = bundle.registry
    out: list[Finding] = []
    err = lambda where, text: out.append(Finding("error", where, text))      # noqa: E731
    warn = lambda where, text: out.append(Finding("warning", where, text))   # noqa: E731
    if not reg.docks:
        err("docks", "the site has no dock: the robot has nothing to return to and no "
                     "default start")
    if not reg.markers:
        warn("markers", "no surveyed markers: localization can only dead-reckon")
    drafts = sorted(m.tag for m in reg.markers if m.draft)
    if drafts:
        warn("markers", f"{len(drafts)} draft marker(s) from the survey (tags "
                        f"{', '.join(map(str, drafts[:12]))}{' ...' if len(drafts) > 12 else ''})"
                        ": review and confirm them in the console's site editor")
    tags = {m.tag for m in reg.markers}
    for a in reg.assets:
        if a.kind is AssetKind.GAUGE:
            if a.fiducial is None:
                err(f"assets.{a.id}", "a gauge without a fiducial cannot be read (its dial "
                                      "is found relative to its tag)")
            elif a.id not in dials:
                err(f"assets.{a.id}", "a gauge without a dial layout (gauges.yaml) cannot be "
                                      "read")
        if a.fiducial is not None and a.fiducial not in tags:
            warn(f"assets.{a.id}", f"its tag {a.fiducial} is not a surveyed marker "
                                   "(localization cannot use it)")
    cm = Costmap.from_site(bundle, costmap or CostmapConfig(role=role))
    plan = GlobalPlanner(planner or PlannerConfig())
    start = bundle.initial_pose("")
    standable: set[str] = set()
    for p in reg.places:
        why = cm.forbidden_reason(p.x, p.y)
        if why is None:
            standable.add(p.id)
        elif why.code == "restricted":
            warn(f"places.{p.id}", f"{why.message} (reachable only for those roles)")
        else:
            err(f"places.{p.id}", f"the robot may not stand there: {why.message}")
    reached: dict[tuple[str, str], str | None] = {}

    def path(a: tuple[float, float, float], b: tuple[float, float, float],
             key: tuple[str, str]) -> str | None:
        if key not in reached:
            try:
                plan.plan(cm, a, b)
                reached[key] = None
            except PlanError as e:
                reached[key] = str(e)
        return reached[key]

    for p in reg.places:
        if p.id in standable:
            why = path(tuple(start), tuple(p.pose), ("<start>", p.id))
            if why is not None:
                err(f"places.{p.id}", f"unreachable from the start {tuple(start)}: {why}")
    for r in reg.routes:
        legs = list(zip(r.waypoints, r.waypoints[1:]))
        if r.loop and len(r.waypoints) > 1:
            legs.append((r.waypoints[-1], r.waypoints[0]))
        for i, (a, b) in enumerate(legs):
            if a not in standable or b not in standable:
                continue                       # reported with the place
            why = path(tuple(reg.place(a).pose), tuple(reg.place(b).pose), (a, b))
            if why is not None:
                err(f"routes.{r.id}[{i}]", f"no path from {a} to {b} that avoids keep-out "
                                           f"zones: {why}")
    return out


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
