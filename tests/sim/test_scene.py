"""The PyBullet scene: builds fast, keeps clients apart, animates people by script, and
renders fiducials and gauge dials that a detector reads back correctly."""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pybullet as pb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitebot.errors import SimulationError
from sitebot.sim.scene import Scene
from sitebot.sim.textures import (dial_ticks, needle_angle, render_gauge_dial, tag_image,
                                  write_gauge_png, write_tag_png)
from sitebot.sim.world import DialSpec, Pose3D, ValveState
from sitebot.sim.world_loader import load_world

WORLDS = ("substation", "construction", "datacentre")


@pytest.fixture
def client() -> Iterator[int]:
    cid = pb.connect(pb.DIRECT)
    yield cid
    pb.disconnect(physicsClientId=cid)


def render(cid: int, eye: tuple[float, float, float], target: tuple[float, float, float],
           fov_deg: float, size: tuple[int, int], scene: Scene) -> np.ndarray:
    """An RGB image (H, W, 3) from ER_TINY_RENDERER, lit as the scene's world says."""
    w, h = size
    view = pb.computeViewMatrix(list(eye), list(target), [0, 0, 1])
    proj = pb.computeProjectionMatrixFOV(fov_deg, w / h, 0.05, 50.0)
    _, _, rgb, _, _ = pb.getCameraImage(w, h, view, proj, renderer=pb.ER_TINY_RENDERER,
                                        physicsClientId=cid,
                                        **scene.lighting().camera_kwargs())
    return np.reshape(np.asarray(rgb, np.uint8), (h, w, 4))[:, :, :3]


def looking_at(pose: Pose3D, distance_m: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Eye and target for a camera *distance_m* in front of a face at *pose* (local +x)."""
    r = pose.rotation()
    n = r[:, 0]
    eye = tuple(float(v) for v in np.array(pose.position) + distance_m * n)
    return eye, pose.position


def needle_from_image(bgr: np.ndarray, center: tuple[float, float],
                      max_radius_px: float) -> float:
    """Needle angle [deg, dial convention] from the red pixels' centroid about *center*."""
    b, g, r = (bgr[:, :, i].astype(float) for i in range(3))
    red = (r > 80) & (r > 1.8 * g) & (r > 1.8 * b)
    ys, xs = np.nonzero(red)
    keep = np.hypot(xs - center[0], ys - center[1]) <= max_radius_px
    xs, ys = xs[keep], ys[keep]
    assert len(xs) > 20, "no needle found"
    return math.degrees(math.atan2(-(ys.mean() - center[1]), xs.mean() - center[0]))


def angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


# --------------------------------------------------------------------------- building
@pytest.mark.parametrize("name", WORLDS)
def test_world_builds_quickly(name: str, client: int, tmp_path: Path) -> None:
    world = load_world(name)
    t0 = time.perf_counter()
    scene = Scene(client, world, tmp_path / "tex")
    build_s = time.perf_counter() - t0
    assert build_s < 3.0
    n_bodies = pb.getNumBodies(physicsClientId=client)
    expected = (1 + len(world.bodies) + len(world.fiducials) + 2 * len(world.gauges)
                + 3 * len(world.valves) + len(world.actors))
    assert n_bodies == expected == len(scene.handles)
    assert len(scene.body_ids) == n_bodies - len(world.fiducials) - len(world.gauges) \
        - len(scene.movable_body_ids) - len(world.actors)
    # a movable body sits where the world puts it and has its mass
    for b in world.bodies:
        if not b.static:
            bid = scene.body_id(b.id)
            pos, _ = pb.getBasePositionAndOrientation(bid, physicsClientId=client)
            assert pos == pytest.approx(b.pose.position, abs=1e-9)
            assert pb.getDynamicsInfo(bid, -1, physicsClientId=client)[0] == \
                pytest.approx(b.mass_kg)
    assert len(list(tmp_path.joinpath("tex").glob("*.png"))) >= len(world.gauges)


def test_body_orientation_matches_pybullet_euler(client: int, tmp_path: Path) -> None:
    world = load_world("substation")
    scene = Scene(client, world, tmp_path)
    body = world.body("t1_conservator")              # cylinder laid along x (pitch 90 deg)
    _, orn = pb.getBasePositionAndOrientation(scene.body_id(body.id), physicsClientId=client)
    want = pb.getQuaternionFromEuler([body.pose.roll, body.pose.pitch, body.pose.yaw])
    assert abs(float(np.dot(orn, want))) == pytest.approx(1.0, abs=1e-6)
    aabb_min, aabb_max = pb.getAABB(scene.body_id(body.id), physicsClientId=client)
    assert aabb_max[0] - aabb_min[0] == pytest.approx(1.6, abs=0.05)   # length along x


def test_two_scenes_in_two_clients(tmp_path: Path) -> None:
    a = pb.connect(pb.DIRECT)
    b = pb.connect(pb.DIRECT)
    try:
        sa = Scene(a, load_world("substation"), tmp_path)
        sb = Scene(b, load_world("datacentre"), tmp_path)
        na = pb.getNumBodies(physicsClientId=a)
        nb = pb.getNumBodies(physicsClientId=b)
        assert na == len(sa.handles) and nb == len(sb.handles) and na != nb
        sa.update(4.0)
        sb.update(1.0)
        worker = sa.people()[0]
        tech = sb.people()[0]
        assert (worker.x, worker.y) == pytest.approx((-10.0 + 4 * 1.1, -4.5))
        assert (tech.x, tech.y) == pytest.approx((-6.0 + 0.8, -0.6))
        pos_a, _ = pb.getBasePositionAndOrientation(sa.actor_body_ids["worker1"],
                                                    physicsClientId=a)
        assert pos_a[:2] == pytest.approx((worker.x, worker.y))
        sa.set_gauge_value("t1_oil_temp_gauge", 90.0)
        assert sa.gauge_value("t1_oil_temp_gauge") == 90.0
        pb.disconnect(physicsClientId=a)
        sb.update(2.0)                     # the other client is unaffected
        assert sb.people()[0].x == pytest.approx(-6.0 + 1.6)
        assert pb.getNumBodies(physicsClientId=b) == nb
    finally:
        for c in (a, b):
            if pb.isConnected(physicsClientId=c):
                pb.disconnect(physicsClientId=c)


# --------------------------------------------------------------------------- people
def test_actor_moves_along_its_path(client: int, tmp_path: Path) -> None:
    world = load_world("substation")
    scene = Scene(client, world, tmp_path)
    w2 = world.actor("worker2")      # (-11,5.5) -> (-6,5.5) -> (-6,1) -> (-11,1), 0.9 m/s
    cases = [(0.0, (-11.0, 5.5), (0.0, 0.0)),
             (1.9, (-11.0, 5.5), (0.0, 0.0)),            # still waiting (start_delay 2 s)
             (4.0, (-11.0 + 1.8, 5.5), (0.9, 0.0)),
             (2.0 + 5.0 / 0.9 + 1.0, (-6.0, 5.5 - 0.9), (0.0, -0.9))]
    for t, (x, y), (vx, vy) in cases:
        scene.update(t)
        st_ = {p.id: p for p in scene.people()}["worker2"]
        assert (st_.x, st_.y) == pytest.approx((x, y), abs=1e-9)
        assert (st_.vx, st_.vy) == pytest.approx((vx, vy), abs=1e-9)
        pos, orn = pb.getBasePositionAndOrientation(scene.actor_body_ids["worker2"],
                                                    physicsClientId=client)
        assert pos[:2] == pytest.approx((x, y), abs=1e-6)
        assert pos[2] > 0.5
        if vx or vy:                   # the person faces where they walk
            yaw = pb.getEulerFromQuaternion(orn)[2]
            assert angle_diff(math.degrees(yaw), math.degrees(math.atan2(vy, vx))) < 1e-3
    # one full lap later the person is back at the same spot
    scene.update(2.0 + w2.period_s + 2.0)
    again = {p.id: p for p in scene.people()}["worker2"]
    assert (again.x, again.y) == pytest.approx((-11.0 + 1.8, 5.5), abs=1e-9)
    # deterministic: a second scene gives bit-identical truth
    scene.update(37.25)
    other = pb.connect(pb.DIRECT)
    try:
        twin = Scene(other, world, tmp_path)
        twin.update(37.25)
        assert twin.people() == scene.people()
    finally:
        pb.disconnect(physicsClientId=other)


def test_person_walks_around_a_robot_standing_in_their_way(client: int, tmp_path: Path) -> None:
    """worker2 walks east along y = 5.5 from (-11, 5.5) at 0.9 m/s after a 2 s delay; a
    robot standing at (-8, 5.5) is walked around (sitebot.sim.people) at the pass distance,
    in the scene's PyBullet bodies too; a robot beside the path changes nothing."""
    from sitebot.sim.people import ROBOT_EXTENT_M, Crowd
    world = load_world("substation")
    scene = Scene(client, world, tmp_path)
    robot = (-8.0, 5.5)
    dt = 1.0 / 60.0
    t, dist, offs, beside = 0.0, [], [], []
    body = scene._actors["worker2"]
    while t < 9.0:                    # (it turns south at (-6, 5.5), about 7.6 s in)
        t += dt
        scene.update(t, [robot])
        w2 = {p.id: p for p in scene.people()}["worker2"]
        dist.append(math.hypot(w2.x - robot[0], w2.y - robot[1]))
        offs.append(abs(w2.y - 5.5))
        if abs(w2.x - robot[0]) < 0.1:
            beside.append(abs(w2.y - 5.5))
        pos, _ = pb.getBasePositionAndOrientation(body, physicsClientId=client)
        assert (pos[0], pos[1]) == pytest.approx((w2.x, w2.y), abs=1e-9)
    need = ROBOT_EXTENT_M + world.actor("worker2").radius_m + Crowd.ROBOT_MARGIN_M
    assert min(dist) >= need - 0.05, f"came within {min(dist):.2f} m of the robot"
    assert max(offs) >= need - 0.05            # it stepped aside ...
    assert beside and min(beside) >= need - 0.05   # ... passed the robot at that distance
    assert w2.x >= -6.0 - 1e-6                     # and walked its leg to the end
    # a robot 2 m beside the path does not stop anyone
    scene.reset()
    scene.update(4.0, [(-9.0, 3.5)])
    w2 = {p.id: p for p in scene.people()}["worker2"]
    assert (w2.x, w2.vx) == pytest.approx((-11.0 + 1.8, 0.9), abs=1e-9)


# --------------------------------------------------------------------------- fiducials
@pytest.mark.parametrize("world_name,tag", [("substation", 1), ("substation", 13),
                                            ("substation", 19), ("construction", 38),
                                            ("datacentre", 61), ("datacentre", 71)])
def test_rendered_fiducial_decodes_to_its_id(world_name: str, tag: int, client: int,
                                            tmp_path: Path) -> None:
    world = load_world(world_name)
    scene = Scene(client, world, tmp_path)
    f = world.fiducial(tag)
    eye, target = looking_at(f.pose, 0.6)
    rgb = render(client, eye, target, 40.0, (320, 240), scene)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    detector = cv2.aruco.ArucoDetector(
        cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11),
        cv2.aruco.DetectorParameters())
    corners, ids, _ = detector.detectMarkers(gray)
    assert ids is not None
    found = {int(i): c.reshape(4, 2) for i, c in zip(ids.ravel(), corners, strict=True)}
    assert tag in found
    tl, tr, br, bl = found[tag]
    # upright and not mirrored: corner 0 is top-left in the image
    assert tl[0] < tr[0] and bl[0] < br[0]
    assert tl[1] < bl[1] and tr[1] < br[1]
    # centred in the image (the camera looks at the tag's centre)
    centre = found[tag].mean(axis=0)
    assert centre == pytest.approx((159.5, 119.5), abs=3.0)
    # side length matches the pinhole model: f = (h/2) / tan(fov/2)
    focal_px = 120.0 / math.tan(math.radians(20.0))
    assert np.linalg.norm(tr - tl) == pytest.approx(focal_px * f.size_m / 0.6, rel=0.08)


def test_tag_texture_has_quiet_zone_and_decodes(tmp_path: Path) -> None:
    img = tag_image(42, module_px=10)
    assert img.shape == (100, 100, 3)
    assert (img[:10] == 255).all() and (img[:, :10] == 255).all()     # white quiet zone
    assert (img[10:20, 10:90] == 0).all()                               # black border
    path = write_tag_png(42, tmp_path, module_px=10)
    assert path.name == "tag36h11_042_10.png"
    assert np.array_equal(cv2.imread(str(path)), img)
    detector = cv2.aruco.ArucoDetector(
        cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11),
        cv2.aruco.DetectorParameters())
    big = cv2.copyMakeBorder(cv2.resize(img, (300, 300), interpolation=cv2.INTER_NEAREST),
                             50, 50, 50, 50, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    _, ids, _ = detector.detectMarkers(cv2.cvtColor(big, cv2.COLOR_BGR2GRAY))
    assert ids is not None and ids.ravel().tolist() == [42]


# --------------------------------------------------------------------------- gauges
SPECS = [DialSpec("bar", 0.0, 10.0), DialSpec("degC", -30.0, 50.0),
         DialSpec("bar", 0.0, 2.5, start_deg=180.0, end_deg=0.0)]


def test_needle_angle_definition() -> None:
    s = SPECS[0]
    assert needle_angle(0.0, s) == 225.0
    assert needle_angle(10.0, s) == -45.0
    assert needle_angle(5.0, s) == 90.0                 # straight up at mid-scale
    assert needle_angle(12.0, s) == -45.0               # pinned at the stop
    assert needle_angle(1.25, SPECS[2]) == 90.0
    majors, minors = dial_ticks(SPECS[1])
    assert majors == (-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0)
    assert len(minors) == 8 * 4


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(range(len(SPECS))), st.floats(0.0, 1.0))
def test_dial_texture_needle_matches_needle_angle(i: int, frac: float) -> None:
    spec = SPECS[i]
    value = spec.min_value + frac * (spec.max_value - spec.min_value)
    img = render_gauge_dial(spec, value, 512)
    c = (512 - 1) / 2.0
    measured = needle_from_image(img, (c, c), 0.9 * 256)
    assert angle_diff(measured, needle_angle(value, spec)) < 2.0


def test_dial_texture_is_deterministic(tmp_path: Path) -> None:
    a = render_gauge_dial(SPECS[1], 21.5, 256)
    b = render_gauge_dial(SPECS[1], 21.5, 256)
    assert a.shape == (256, 256, 3) and np.array_equal(a, b)
    assert not np.array_equal(a, render_gauge_dial(SPECS[1], 22.5, 256))
    p1 = write_gauge_png(SPECS[1], 21.5, tmp_path, 256)
    p2 = write_gauge_png(SPECS[1], 21.5, tmp_path, 256)
    assert p1 == p2 and np.array_equal(cv2.imread(str(p1)), a)
    assert write_gauge_png(SPECS[1], 22.5, tmp_path, 256) != p1
    # white face, grey plate in the corner
    assert (a[128, 40] == 255).all() and a[2, 2].max() < 120


def test_rendered_gauge_needle_and_set_value(client: int, tmp_path: Path) -> None:
    world = load_world("substation")
    scene = Scene(client, world, tmp_path)
    dial = world.gauge("t1_oil_temp_gauge")
    eye, target = looking_at(dial.pose, 0.45)
    size = (320, 320)
    # dial radius in pixels at 0.45 m with a 40 deg field of view
    radius_px = 160.0 / math.tan(math.radians(20.0)) * dial.radius_m / 0.45
    for value in (dial.value, 5.0, 117.0):
        if value != dial.value:
            scene.set_gauge_value(dial.asset, value)
        assert scene.gauge_value(dial.asset) == value
        rgb = render(client, eye, target, 40.0, size, scene)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        measured = needle_from_image(bgr, (159.5, 159.5), 0.9 * radius_px)
        assert angle_diff(measured, needle_angle(value, dial.face)) < 3.0, value
    with pytest.raises(SimulationError, match=r"0\.\.120"):
        scene.set_gauge_value(dial.asset, 130.0)
    with pytest.raises(SimulationError, match="t1_oil_temp_gauge"):
        scene.gauge_value("nope")
    scene.reset()
    assert scene.gauge_value(dial.asset) == dial.value


# --------------------------------------------------------------------------- valves, lighting
def test_valve_state_turns_the_lever(client: int, tmp_path: Path) -> None:
    world = load_world("substation")
    scene = Scene(client, world, tmp_path)
    handle = next(h.body_id for h in scene.handles
                  if h.kind == "valve_handle" and h.name == "t1_cooling_valve")

    def lever_yaw() -> float:
        _, orn = pb.getBasePositionAndOrientation(handle, physicsClientId=client)
        return math.degrees(pb.getEulerFromQuaternion(orn)[2])

    assert scene.valve_state("t1_cooling_valve") is ValveState.OPEN
    assert angle_diff(lever_yaw(), 90.0) < 1e-3              # along the north-south pipe
    scene.set_valve_state("t1_cooling_valve", "closed")
    assert scene.valve_state("t1_cooling_valve") is ValveState.CLOSED
    assert angle_diff(lever_yaw(), 180.0) < 1e-3             # across it
    with pytest.raises(SimulationError, match="open, closed"):
        scene.set_valve_state("t1_cooling_valve", "ajar")
    with pytest.raises(SimulationError, match="fire_main_valve"):
        scene.valve_state("t9_valve")
    scene.reset()
    assert scene.valve_state("t1_cooling_valve") is ValveState.OPEN
    assert scene.valve_state("t3_cooling_valve") is ValveState.CLOSED


def test_lighting_presets_and_reset(client: int, tmp_path: Path) -> None:
    world = load_world("construction")
    scene = Scene(client, world, tmp_path)
    assert scene.lighting() == world.lighting
    glare = scene.lighting("low_sun")
    assert glare.specular > 0.5 and glare.shadow
    assert (glare.direction, glare.color, glare.ambient, glare.diffuse) != \
        (world.lighting.direction, world.lighting.color, world.lighting.ambient,
         world.lighting.diffuse)
    with pytest.raises(SimulationError, match="bright, dim, low_sun, coloured"):
        scene.lighting("disco")
    # the dim preset renders a darker image than bright
    dock = world.registry.place("tool_crib")
    eye = (dock.x, dock.y, 1.2)
    target = (dock.x - 1.0, dock.y, 1.0)
    mean = {}
    for preset in ("bright", "dim"):
        view = pb.computeViewMatrix(eye, target, [0, 0, 1])
        proj = pb.computeProjectionMatrixFOV(60, 4 / 3, 0.05, 50)
        _, _, rgb, _, _ = pb.getCameraImage(160, 120, view, proj,
                                            renderer=pb.ER_TINY_RENDERER,
                                            physicsClientId=client,
                                            **scene.lighting(preset).camera_kwargs())
        mean[preset] = float(np.asarray(rgb, np.uint8).reshape(120, 160, 4)[:, :, :3].mean())
    assert mean["dim"] < 0.8 * mean["bright"]
    # a knocked-over tool returns on reset
    drill = scene.object_body_id("drill")
    pb.resetBasePositionAndOrientation(drill, [0, 0, 3], [0, 0, 0, 1], physicsClientId=client)
    scene.reset()
    pos, _ = pb.getBasePositionAndOrientation(drill, physicsClientId=client)
    assert pos == pytest.approx(world.body("drill_body").pose.position)
    assert scene.describe(drill).name == "drill_body"
    assert scene.describe(scene.ground_id).kind == "ground"


def test_exported_lever_boxes_are_named_for_the_state_that_puts_the_lever_there(
        client: int, tmp_path: Path) -> None:
    """The site bundle's scene (the arm's collision objects) names each lever box by its
    valve state: the box named ``_open`` is where the simulator puts an open valve's lever."""
    from sitebot.sim.export import scene_objects
    world = load_world("datacentre")
    scene = Scene(client, world, tmp_path)
    objs = {o.id: o for o in scene_objects(world)}
    for v in world.valves:
        handle = next(h.body_id for h in scene.handles
                      if h.kind == "valve_handle" and h.name == v.asset)
        for state in ("open", "closed"):
            scene.set_valve_state(v.asset, state)
            pos, _ = pb.getBasePositionAndOrientation(handle, physicsClientId=client)
            box = objs[f"valve_handle_{v.asset}_{state}"]
            assert np.allclose(box.xyz, pos, atol=1e-4), (state, box.xyz, pos)
