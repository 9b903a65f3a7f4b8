"""People detection (geometric classifier, fusion) and tracking on synthetic scans."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sitebot.perception.people import (DepthView, Detection, PeopleTracker, PersonDetector,
                                       ScanError, StaticMap, TrackerConfig, scan_beam_count,
                                       scan_points, segment_features, segment_scan, transform_state)
from sitebot.sim.world import OccupancyGrid
from sitebot.tools.spatial_synth import render_scan

LASER = (0.24, 0.0, 0.0)


def detect(circles=(), boxes=(), seed=0, view=None, static_ok=None, noise=0.01):
    rng = np.random.default_rng(seed)
    r, amin, inc = render_scan(LASER, circles=circles, boxes=boxes, noise_m=noise, rng=rng)
    xy, idx, rr = scan_points(r, amin, inc, 0.1, 20.0)
    xy = xy + np.array(LASER[:2])
    det = PersonDetector()
    cand, feats = det.scan_candidates(xy, idx, rr, len(r), inc, LASER[:2])
    return det.detect(cand, feats, view, static_ok), det


@pytest.mark.parametrize("dist", [0.8, 1.5, 2.5, 3.5, 4.5, 5.0])
@pytest.mark.parametrize("bearing_deg", [0, 70, 180, -120])
def test_a_person_body_is_detected_at_its_centre(dist, bearing_deg):
    b = math.radians(bearing_deg)
    x, y = LASER[0] + dist * math.cos(b), dist * math.sin(b)
    dets, _ = detect(circles=[(x, y, 0.225)], seed=int(dist * 10) + bearing_deg + 200)
    assert len(dets) == 1
    assert math.hypot(dets[0].x - x, dets[0].y - y) < 0.12


@pytest.mark.parametrize("seed", range(6))
def test_crates_pallets_carts_and_racks_are_not_people(seed):
    rng = np.random.default_rng(seed)
    boxes = []
    for k in range(6):
        d, b = rng.uniform(1.0, 5.0), rng.uniform(-math.pi, math.pi)
        sx, sy = rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2)
        boxes.append((d * math.cos(b), d * math.sin(b), sx, sy, rng.uniform(-math.pi, math.pi)))
    # a rack row end-on and a row of crates with 20 cm gaps
    boxes += [(3.0 + 0.6 * i, 2.5, 0.6, 1.2, 0.0) for i in range(5)]
    boxes += [(-2.0 - 0.8 * i, -2.0, 0.6, 0.6, 0.0) for i in range(3)]
    dets, det = detect(boxes=boxes, seed=seed)
    assert dets == [], [(d.x, d.y) for d in dets]
    r, _, _ = render_scan(LASER, boxes=boxes)
    assert np.isfinite(r).sum() > 150               # the clutter was seen, and rejected


def test_a_person_between_crates_is_found_and_the_crates_are_not():
    boxes = [(2.0, 1.0, 0.6, 0.6, 0.3), (2.0, -1.0, 0.6, 0.6, -0.2)]
    dets, _ = detect(circles=[(2.2, 0.0, 0.225)], boxes=boxes)
    assert len(dets) == 1 and abs(dets[0].y) < 0.1


def test_two_legs_make_one_person():
    dets, det = detect(circles=[(2.5, 0.15, 0.07), (2.55, -0.15, 0.07)], noise=0.005)
    assert len(dets) == 1
    assert abs(dets[0].x - 2.52) < 0.1 and abs(dets[0].y) < 0.1
    assert sorted(k for _, k in det.last_segments if k) == ["leg", "leg"]


def test_static_map_rejects_a_person_shaped_post():
    occ = np.zeros((50, 50), bool)
    occ[25, 30] = True                              # the cell x in [3.0, 3.1), y in [0, 0.1)
    grid = OccupancyGrid(0.0, -2.5, 0.1, occ)
    sm = StaticMap(grid, margin_m=0.2)
    post = (3.05, 0.05, 0.2)
    dets, _ = detect(circles=[post])
    assert len(dets) == 1
    dets, _ = detect(circles=[post], static_ok=lambda xy: ~sm.occupied(xy))
    assert dets == []


def test_depth_camera_vetoes_a_low_round_thing_and_confirms_a_person():
    barrel = (2.0, 0.0, 0.25)
    low = np.column_stack([np.full(50, 1.85), np.linspace(-0.2, 0.2, 50), np.linspace(0.1, 0.8, 50)])
    view = DepthView(low, np.zeros((0, 3)), np.zeros((0, 3)), lambda xy: np.ones(len(xy), bool))
    dets, _ = detect(circles=[barrel], view=view)
    assert dets == []                                # the camera sees it is 0.8 m tall
    tall = low.copy()
    tall[:, 2] = np.linspace(0.1, 1.7, 50)
    view = DepthView(tall, np.zeros((0, 3)), np.zeros((0, 3)), lambda xy: np.ones(len(xy), bool),
                     candidates=np.array([[2.05, 0.0]]))
    dets, _ = detect(circles=[barrel], view=view)
    assert len(dets) == 1 and dets[0].source == "fused"


def test_bad_scans_are_refused_with_the_reason():
    with pytest.raises(ScanError, match="empty"):
        scan_points(np.zeros(0), 0.0, 0.01, 0.1, 10.0)
    with pytest.raises(ScanError, match="expected"):
        scan_points(np.ones(10), 0.0, 0.01, 0.1, 10.0, expected_beams=12)
    with pytest.raises(ScanError, match="angles"):
        scan_points(np.ones(10), math.nan, 0.01, 0.1, 10.0)
    xy, idx, _ = scan_points(np.array([1.0, np.nan, np.inf, -np.inf, 0.05, 2.0]), 0.0, 0.1,
                             0.1, 10.0)
    assert list(idx) == [0, 5]


def test_scan_beam_count_from_the_angles():
    assert scan_beam_count(-math.pi, math.pi, 0.1) == 64
    assert scan_beam_count(0.0, 1.0, 0.25) == 5
    assert scan_beam_count(1.0, 0.0, -0.25) == 5
    for args in ((math.nan, 1.0, 0.1), (0.0, math.inf, 0.1), (0.0, 1.0, 0.0)):
        with pytest.raises(ScanError, match="scan angles not finite or zero increment"):
            scan_beam_count(*args)


def test_transform_state_moves_positions_and_rotates_velocity_and_covariance():
    x = np.array([1.0, 0.0, 0.5, 0.0])
    P = np.diag([1.0, 4.0, 9.0, 16.0])
    P[0, 1] = P[1, 0] = 0.5
    out, P2 = transform_state((1.0, 2.0, math.pi / 2), x, P)
    np.testing.assert_allclose(out, [1.0, 3.0, 0.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(np.diag(P2), [4.0, 1.0, 16.0, 9.0], atol=1e-12)
    assert P2[0, 1] == pytest.approx(-0.5)
    np.testing.assert_array_equal(x, [1.0, 0.0, 0.5, 0.0])         # the input is kept
    back, P3 = transform_state((-2.0, 1.0, -math.pi / 2), out, P2)  # the inverse pose
    np.testing.assert_allclose(back, x, atol=1e-12)
    np.testing.assert_allclose(P3, P, atol=1e-12)


def test_tracker_transform_re_expresses_every_track():
    trk = PeopleTracker(TrackerConfig(birth_hits=1))
    trk.update([Detection(1.0, 0.0, 0.1, 0.9, "scan")], 0.0)
    t = trk.tracks[0]
    t.x[2:] = (0.5, 0.0)
    want = transform_state((1.0, 2.0, math.pi / 2), t.x, t.P)
    trk.transform((1.0, 2.0, math.pi / 2))
    np.testing.assert_allclose(trk.tracks[0].x, [1.0, 3.0, 0.0, 0.5], atol=1e-12)
    np.testing.assert_array_equal(trk.tracks[0].x, want[0])
    np.testing.assert_array_equal(trk.tracks[0].P, want[1])


def test_segments_join_across_the_seam_of_a_full_circle():
    r, amin, inc = render_scan((0.0, 0.0, 0.0), circles=[(-2.0, 0.0, 0.225)])
    xy, idx, rr = scan_points(r, amin, inc, 0.1, 20.0)
    segs = segment_scan(xy, idx, rr, len(r), inc)
    assert len(segs) == 1
    f = segment_features(xy[segs[0]])
    assert f.radius_m == pytest.approx(0.225, abs=0.02)


# ------------------------------------------------------------------ tracker
def _det(x, y):
    return Detection(x, y, 0.05, 0.8, "scan")


def test_track_birth_after_n_hits_and_death_after_m_misses():
    tr = PeopleTracker(TrackerConfig(birth_hits=3, death_misses=4))
    assert tr.update([_det(1, 1)], 0.0) == []
    assert tr.update([_det(1.05, 1)], 0.1) == []
    out = tr.update([_det(1.1, 1)], 0.2)
    assert len(out) == 1 and out[0].id == 1
    for k in range(3):
        assert len(tr.update([], 0.3 + 0.1 * k)) == 1     # coasting
    assert tr.update([], 0.6) == []                       # 4th miss: gone
    assert tr.tracks == []


def test_velocity_is_estimated():
    tr = PeopleTracker()
    rng = np.random.default_rng(1)
    for k in range(30):
        t = 0.1 * k
        out = tr.update([_det(1.2 * t + rng.normal(0, 0.03), -0.5 * t + rng.normal(0, 0.03))], t)
    vx, vy = out[0].velocity
    assert vx == pytest.approx(1.2, abs=0.15) and vy == pytest.approx(-0.5, abs=0.15)
    assert out[0].P[0, 0] < 0.05 ** 2 * 2


def test_ids_are_kept_through_crossing_tracks():
    """Two people cross at right angles; for 0.3 s around the crossing the lidar sees one
    merged blob (no detection). Identities must survive."""
    tr = PeopleTracker()
    ids_a, ids_b = set(), set()
    rng = np.random.default_rng(2)
    for k in range(60):
        t = 0.1 * k
        a = (-3.0 + 1.0 * t, 0.0)                       # walking +x
        b = (0.0, -3.0 + 1.0 * t)                       # walking +y, crossing at t = 3
        dets = [] if abs(t - 3.0) < 0.2 else \
            [_det(a[0] + rng.normal(0, 0.03), a[1] + rng.normal(0, 0.03)),
             _det(b[0] + rng.normal(0, 0.03), b[1] + rng.normal(0, 0.03))]
        out = tr.update(dets, t)
        if math.dist(a, b) < 1.0:                       # too close to tell who is who
            continue
        for trk in out:
            pa = math.dist(trk.position, a)
            pb = math.dist(trk.position, b)
            (ids_a if pa < pb else ids_b).add(trk.id)
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b, (ids_a, ids_b)


def test_clutter_flicker_never_becomes_a_track():
    tr = PeopleTracker(TrackerConfig(birth_hits=3))
    for k in range(30):                                 # a detection every third scan
        out = tr.update([_det(2.0, 2.0)] if k % 3 == 0 else [], 0.1 * k)
        assert out == []


def test_time_going_backwards_resets():
    tr = PeopleTracker(TrackerConfig(birth_hits=1))
    tr.update([_det(0, 0)], 5.0)
    assert tr.update([_det(3, 3)], 1.0)[0].id == 2
    assert len(tr.tracks) == 1
