"""Map building from a survey (sitebot.commissioning.mapping) on a synthetic survey: a 2D
lidar ray-cast against the substation's true 5 cm map along a loop the navigation planner
drives, with wheel odometry that drifts (2 % scale, a yaw bias).  The issue's targets:
>= 95 % of the true structure the lidar saw within 10 cm of built structure, <= 2 % of built
structure with no true structure within 15 cm, trajectory RMS < 5 cm."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from sitebot.commissioning.mapping import MapperConfig, ScanMapper
from sitebot.navigation.costmap import Costmap
from sitebot.navigation.planner import GlobalPlanner
from sitebot.site.bundle import load_bundle
from sitebot.types import Pose2D, se2_compose, se2_inverse

BEAMS, FOV, RANGE = 360, 2 * math.pi, 12.0


def ray_cast(occ, origin, res, x, y, angles, rng):
    """Distance to the first occupied cell along each angle (coarse march, then bisection),
    ``inf`` when none within RANGE."""
    rows, cols = occ.shape

    def blocked(px, py):
        r = ((py - origin[1]) / res).astype(int)
        c = ((px - origin[0]) / res).astype(int)
        out = (r < 0) | (r >= rows) | (c < 0) | (c >= cols)
        return out | occ[np.clip(r, 0, rows - 1), np.clip(c, 0, cols - 1)]
    d = np.arange(0.05, RANGE, 0.05)
    ca, sa = np.cos(angles), np.sin(angles)
    hit = blocked(x + d[None, :] * ca[:, None], y + d[None, :] * sa[:, None])
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    lo = np.where(first > 0, d[np.maximum(first - 1, 0)], 0.0)
    hi = np.where(first >= 0, d[np.maximum(first, 0)], np.inf)
    for _ in range(6):
        mid = (lo + np.where(np.isfinite(hi), hi, 0.0)) / 2
        b = blocked(x + mid * ca, y + mid * sa) & np.isfinite(hi)
        hi = np.where(b, mid, hi)
        lo = np.where(b | ~np.isfinite(hi), lo, mid)
    return np.where(np.isfinite(hi), hi + rng.normal(0, 0.01, len(hi)), np.inf)


@pytest.fixture(scope="module")
def survey():
    site = load_bundle("substation")
    truth = site.map.occupancy()
    cm = Costmap.from_site(site)
    planner = GlobalPlanner()
    start = site.initial_pose("")
    stops = [start] + [site.registry.place(p).pose for p in
                       ("t1_bay", "t2_bay", "t3_bay", "yard_east", "t2_bay", "yard_southwest")]
    stops.append(start)
    path = []
    for a, b in zip(stops, stops[1:]):
        plan = planner.plan(cm, tuple(a), tuple(b))
        path += [(float(px), float(py), float(pyaw)) for (px, py), pyaw in
                 zip(plan.xy, plan.yaw)]
    # resample every 0.12 m
    poses, acc = [Pose2D(*path[0])], 0.0
    for p, q in zip(path, path[1:]):
        acc += math.dist(p[:2], q[:2])
        if acc >= 0.12:
            poses.append(Pose2D(*q))
            acc = 0.0
    rng = np.random.default_rng(7)
    odom = [poses[0]]
    for p, q in zip(poses, poses[1:]):             # drifting odometry increments
        dx, dy, dyaw = se2_compose(se2_inverse(p), q)
        step = math.hypot(dx, dy)
        odom.append(Pose2D(*se2_compose(odom[-1], (dx * 1.02, dy * 1.02,
                                                   dyaw + 0.004 * step + rng.normal(0, 1e-4)))))
    angles = -math.pi + np.arange(BEAMS) * FOV / BEAMS
    scans = [ray_cast(truth.occupied, (truth.origin_x, truth.origin_y), truth.resolution_m,
                      p.x, p.y, angles + p.yaw, rng) for p in poses]
    return site, truth, poses, odom, scans


def test_a_drifting_survey_gives_an_accurate_map(survey):
    site, truth, poses, odom, scans = survey
    mapper = ScanMapper(MapperConfig())
    for i, (o, r) in enumerate(zip(odom, scans)):
        mapper.add_scan(i * 0.2, o, r, -math.pi, 2 * math.pi / BEAMS, 0.05, RANGE)
    result = mapper.build()
    by_t = {round(i * 0.2, 6): p for i, p in enumerate(poses)}
    err = [math.dist((p.x, p.y), (by_t[round(t, 6)].x, by_t[round(t, 6)].y))
           for t, p in result.trajectory]
    odo = [math.dist((o.x, o.y), (p.x, p.y)) for o, p in zip(odom, poses)]
    rms = math.sqrt(sum(e * e for e in err) / len(err))
    print(f"\n{len(poses)} scans, {len(result.trajectory)} keyframes, path "
          f"{sum(math.dist(p[:2], q[:2]) for p, q in zip(poses, poses[1:])):.0f} m; odometry "
          f"drift max {max(odo):.2f} m; optimised trajectory RMS {rms * 100:.1f} cm, max "
          f"{max(err) * 100:.1f} cm; loops {result.loops_kept}/{result.loops_proposed}; "
          f"ICP fell back to odometry {mapper.rejected}x")
    assert max(odo) > 0.5                          # the odometry alone would not do
    assert rms < 0.05
    assert mapper.reliability_problem() == "", mapper.unreliable()
    # the map against the truth the lidar saw (cells within 5 cm of a true beam end)
    built = result.values >= 65
    res = result.resolution_m
    seen = np.zeros_like(truth.occupied)
    for p, r in zip(poses, scans):
        a = -math.pi + np.arange(BEAMS) * 2 * math.pi / BEAMS + p.yaw
        ok = np.isfinite(r)
        hx, hy = p.x + r[ok] * np.cos(a[ok]), p.y + r[ok] * np.sin(a[ok])
        rr = ((hy - truth.origin_y) / res).astype(int)
        cc = ((hx - truth.origin_x) / res).astype(int)
        inside = (rr >= 0) & (rr < seen.shape[0]) & (cc >= 0) & (cc < seen.shape[1])
        seen[rr[inside], cc[inside]] = True
    seen &= truth.occupied
    ox, oy = result.origin

    def dist_to(mask, m_origin):
        """Distance [m] from every truth-grid cell centre to the nearest True cell of
        ``mask`` (a grid at ``m_origin``)."""
        d = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5) * res
        rows, cols = truth.occupied.shape
        yy = truth.origin_y + (np.arange(rows) + 0.5) * res
        xx = truth.origin_x + (np.arange(cols) + 0.5) * res
        r = np.clip(((yy - m_origin[1]) / res).astype(int), 0, mask.shape[0] - 1)
        c = np.clip(((xx - m_origin[0]) / res).astype(int), 0, mask.shape[1] - 1)
        return d[np.ix_(r, c)]
    covered = float((dist_to(built, (ox, oy))[seen] <= 0.10).mean())
    d_truth = cv2.distanceTransform((~truth.occupied).astype(np.uint8), cv2.DIST_L2, 5) * res
    br, bc = np.nonzero(built)
    tr = ((oy + (br + 0.5) * res - truth.origin_y) / res).astype(int)
    tc = ((ox + (bc + 0.5) * res - truth.origin_x) / res).astype(int)
    ins = (tr >= 0) & (tr < d_truth.shape[0]) & (tc >= 0) & (tc < d_truth.shape[1])
    spurious = float(((~ins) | (d_truth[np.clip(tr, 0, d_truth.shape[0] - 1),
                                        np.clip(tc, 0, d_truth.shape[1] - 1)] > 0.15)).mean())
    print(f"seen true structure within 10 cm of the map: {100 * covered:.1f} %; built "
          f"structure with no truth within 15 cm: {100 * spurious:.2f} % "
          f"({int(seen.sum())} seen cells, {len(br)} built)")
    assert covered >= 0.95
    assert spurious <= 0.02


def _map(odom, scans, n=None):
    mapper = ScanMapper(MapperConfig())
    for i, (o, r) in enumerate(zip(odom[:n], scans[:n])):
        mapper.add_scan(i * 0.2, o, r, -math.pi, 2 * math.pi / BEAMS, 0.05, RANGE)
    return mapper


def test_a_blinded_stretch_is_reported_and_refused(survey):
    """30 scans (3.6 m of travel) with no returns (the lidar covered): no keyframe can be
    made there, the next one follows a 3.6 m gap; the survey is refused, naming where."""
    site, truth, poses, odom, scans = survey
    blind = [np.full(BEAMS, np.inf) if 100 <= i < 130 else r for i, r in enumerate(scans)]
    mapper = _map(odom, blind, 200)
    bad = mapper.unreliable()
    problem = mapper.reliability_problem()
    print(f"\n{bad[:2]}\n{problem}")
    assert len(bad) >= 1 and "without a usable scan" in bad[0]["reasons"][0]
    gap_end = poses[130]
    assert math.dist(bad[0]["to"], (gap_end.x, gap_end.y)) < 0.5
    assert "stretch(es) longer than 2 m" not in problem or bad[0]["length_m"] > 2.0
    assert problem and f"({bad[0]['from'][0]:.1f}, {bad[0]['from'][1]:.1f})" in problem


def test_wheel_slip_beyond_what_matching_accepts_is_reported(survey):
    """At scan 120 the odometry jumps 1 m sideways (a wheel slipping on gravel): the scan
    matcher refuses a 1 m correction (max 0.5 m), so that keyframe rests on odometry alone
    and is named with its time; the clean survey up to scan 100 has no doubtful keyframe."""
    site, truth, poses, odom, scans = survey
    assert _map(odom, scans, 100).unreliable() == []
    slid = [Pose2D(o.x, o.y + (1.0 if i >= 120 else 0.0), o.yaw) for i, o in enumerate(odom)]
    mapper = _map(slid, scans, 200)
    bad = mapper.unreliable()
    print(f"\n{bad[:2]}\n{mapper.reliability_problem()}")
    assert bad and bad[0]["t"][0] == pytest.approx(120 * 0.2, abs=0.5)
    assert "moved the odometry guess" in bad[0]["reasons"][0] or \
        "overlap" in bad[0]["reasons"][0]
