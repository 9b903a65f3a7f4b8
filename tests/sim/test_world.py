"""World files: the three shipped worlds load and make sense; bad worlds are rejected with
an error naming the file and the key path."""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sitebot.errors import RegistryError, WorldError
from sitebot.paths import data_path
from sitebot.sim.world import (LIGHTING_PRESETS, ROBOT_RADIUS_M, ActorSpec, Lighting, Pose3D, Shape,
                               ValveState, unit_vector)
from sitebot.sim.world_loader import available_worlds, load_world, world_path
from sitebot.site.registry import AssetKind, ZoneKind

WORLDS = ("substation", "construction", "datacentre")
#: A 0.6 m robot (radius 0.3 m) with 0.5 m of clearance around it.
PLACE_CLEARANCE_M = 0.3 + 0.5


@pytest.fixture(scope="module", params=WORLDS)
def world(request: pytest.FixtureRequest):
    return load_world(request.param)


# --------------------------------------------------------------------------- shipped worlds
def test_available_worlds() -> None:
    assert set(WORLDS) <= set(available_worlds())
    assert world_path("substation") == data_path("worlds", "substation.world.yaml")
    assert world_path("x/y.world.yaml") == Path("x/y.world.yaml")


def test_world_loads_with_registry(world) -> None:
    reg = world.registry
    assert world.id == reg.site
    assert 30 <= len(world.bodies) < 150
    assert {"robot1", "robot2"} <= set(world.spawn_poses)
    assert set(world.lighting_presets) == {"bright", "dim", "low_sun", "coloured"}
    assert world.lighting_preset in world.lighting_presets
    assert math.isclose(math.hypot(*world.lighting.direction), 1.0)
    w, d = world.bounds.size
    assert 15.0 <= w <= 40.0 and 15.0 <= d <= 40.0
    assert len(world.actors) >= 1


def test_every_asset_has_a_fiducial_and_every_gauge_a_dial(world) -> None:
    reg = world.registry
    for a in reg.assets:
        tags = world.fiducials_of(a.id)
        assert len(tags) == 1, a.id
        assert tags[0].tag_id == a.fiducial
    tag_ids = [f.tag_id for f in world.fiducials]
    assert len(set(tag_ids)) == len(tag_ids)
    assert {g.asset for g in world.gauges} == {a.id for a in reg.gauges}
    for g in world.gauges:
        spec = reg.asset(g.asset).gauge
        assert spec is not None
        assert spec.min_value <= g.value <= spec.max_value
        assert (g.face.unit, g.face.min_value, g.face.max_value) == \
            (spec.unit, spec.min_value, spec.max_value)
        assert g.radius_m >= 0.08       # readable from ~1.3 m
    assert {v.asset for v in world.valves} == {a.id for a in reg.assets
                                                if a.kind is AssetKind.VALVE}
    for o in reg.objects:
        bodies = [b for b in world.bodies if b.object == o.id]
        assert len(bodies) == 1, o.id
        # the registry's measured size is the modelled box's (long side first)
        sx, sy, sz = bodies[0].size
        assert o.size == pytest.approx((max(sx, sy), min(sx, sy), sz), abs=1e-9), o.id


def test_places_are_free_floor_with_clearance(world) -> None:
    for p in world.registry.places:
        clearance, near = world.clearance(p.x, p.y)
        assert clearance >= PLACE_CLEARANCE_M - 1e-9, (p.id, near, clearance)
        assert not any(z.kind is ZoneKind.KEEP_OUT for z in world.registry.zones_at(p.x, p.y))


def test_places_and_spawns_are_reachable(world) -> None:
    grid = world.occupancy_grid(resolution_m=0.1, inflate_m=ROBOT_RADIUS_M, keep_out=True)
    start = world.spawn_poses["robot1"]
    reach = grid.reachable_from(start.x, start.y)
    assert reach.sum() > 1000
    points = [(p.id, p.x, p.y) for p in world.registry.places]
    points += [(k, s.x, s.y) for k, s in world.spawn_poses.items()]
    for name, x, y in points:
        r, c = grid.cell(x, y)
        assert reach[r, c], f"{name} at ({x}, {y}) is not reachable from robot1's spawn"


def test_places_face_their_assets(world) -> None:
    """Each asset's place stands 0.9-1.6 m from the asset's tag (and dial), turned towards
    it within 40 deg, and the tag faces back at the place."""
    reg = world.registry
    for a in reg.assets:
        p = reg.place(a.place)
        targets = [(f.pose, f.normal) for f in world.fiducials_of(a.id)]
        if a.kind is AssetKind.GAUGE:
            g = world.gauge(a.id)
            r = g.pose.rotation()
            targets.append((g.pose, (r[0, 0], r[1, 0], r[2, 0])))
        for pose, normal in targets:
            dx, dy = pose.x - p.x, pose.y - p.y
            dist = math.hypot(dx, dy)
            bearing = math.degrees(math.atan2(dy, dx) - p.yaw)
            bearing = (bearing + 180.0) % 360.0 - 180.0
            facing = -(normal[0] * dx + normal[1] * dy) / dist
            assert 0.9 <= dist <= 1.6, (a.id, dist)
            assert abs(bearing) <= 40.0, (a.id, bearing)
            assert facing >= 0.75, (a.id, facing)
            assert 0.2 <= pose.z <= 1.9, (a.id, pose.z)


def test_spawn_poses_are_apart_and_free(world) -> None:
    poses = list(world.spawn_poses.values())
    for i, a in enumerate(poses):
        assert world.clearance(a.x, a.y)[0] >= ROBOT_RADIUS_M
        for b in poses[i + 1:]:
            assert math.hypot(a.x - b.x, a.y - b.y) >= 1.0


def test_substation_content() -> None:
    w = load_world("substation")
    assert w.gauge("t1_oil_pressure_gauge").value == 1.2
    assert w.valve("t3_cooling_valve").state is ValveState.CLOSED
    assert w.fiducial(3).asset == "t1_oil_pressure_gauge"
    # repeat expands with offsets: three bushings 0.7 m apart
    xs = [w.body(f"t1_bushing_{k}").pose.x for k in (1, 2, 3)]
    assert xs == pytest.approx([-6.7, -6.0, -5.3])
    assert w.body("fence_north").shape is Shape.BOX
    # two workers, the second starts after 2 s
    assert [a.id for a in w.actors] == ["worker1", "worker2"]
    assert w.actor("worker2").start_delay_s == 2.0


def test_fiducial_corners_follow_the_detector_order() -> None:
    w = load_world("substation")
    f = w.fiducial(1)                          # on T1's tank, facing north (+y)
    tl, tr, _br, bl = f.corners()
    assert f.normal == pytest.approx((0.0, 1.0, 0.0), abs=1e-4)
    # seen from the north looking south, the viewer's right is -x
    assert tl[0] > tr[0] and tl[2] > bl[2]
    assert math.dist(tl, tr) == pytest.approx(0.16)
    assert f.outer_size_m == pytest.approx(0.2)


def test_actor_state_follows_path() -> None:
    a = ActorSpec("p", ((0.0, 0.0), (4.0, 0.0), (4.0, 3.0)), speed_mps=1.0, loop=True,
                  start_delay_s=1.0)
    assert a.length_m == pytest.approx(12.0)
    assert a.period_s == pytest.approx(12.0)
    s = a.state_at(0.5)                        # waiting at the start
    assert (s.x, s.y, s.vx, s.vy) == (0.0, 0.0, 0.0, 0.0)
    s = a.state_at(3.0)                        # 2 m along the first leg
    assert (s.x, s.y, s.vx, s.vy) == pytest.approx((2.0, 0.0, 1.0, 0.0))
    s = a.state_at(6.5)                        # 1.5 m up the second leg
    assert (s.x, s.y, s.vx, s.vy) == pytest.approx((4.0, 1.5, 0.0, 1.0))
    s = a.state_at(1.0 + 12.0 + 2.0)           # one lap later: same as t = 3
    assert (s.x, s.y) == pytest.approx((2.0, 0.0))
    s = a.state_at(1.0 + 9.5)                  # on the closing leg back to the start
    assert (s.x, s.y) == pytest.approx((4.0 - 0.8 * 2.5, 3.0 - 0.6 * 2.5))
    assert s.speed_mps == pytest.approx(1.0)
    once = ActorSpec("q", ((0.0, 0.0), (2.0, 0.0)), speed_mps=0.5, loop=False)
    assert once.state_at(100.0).x == 2.0 and once.state_at(100.0).vx == 0.0


def test_pose3d_quaternion_matches_rotation() -> None:
    p = Pose3D(1.0, 2.0, 3.0, 0.3, -0.2, 1.1)
    x, y, z, w = p.quaternion()
    r = p.rotation()
    # rotation matrix from the quaternion
    rq = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
          [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
          [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    assert np.abs(r - np.array(rq)).max() < 1e-12
    assert p.apply((0, 0, 0)) == (1.0, 2.0, 3.0)


def test_lighting_presets_are_distinct() -> None:
    assert LIGHTING_PRESETS["low_sun"].specular > 0.5 > LIGHTING_PRESETS["bright"].specular
    assert LIGHTING_PRESETS["dim"].ambient < LIGHTING_PRESETS["bright"].ambient
    assert LIGHTING_PRESETS["low_sun"].direction[2] < 0.3          # low elevation
    assert LIGHTING_PRESETS["coloured"].color[2] < 0.5             # orange light
    kw = LIGHTING_PRESETS["bright"].camera_kwargs()
    assert set(kw) == {"lightDirection", "lightColor", "lightAmbientCoeff",
                       "lightDiffuseCoeff", "lightSpecularCoeff", "shadow"}


def test_one_lighting_type_for_worlds_and_cameras() -> None:
    """The camera's render argument and the world's presets are one validated type."""
    assert Lighting() == Lighting((0.4, 0.3, 1.0), (1.0, 1.0, 1.0), 0.6, 0.5, 0.05, False)
    assert unit_vector((3.0, 0.0, 4.0)) == pytest.approx((0.6, 0.0, 0.8))
    for preset in LIGHTING_PRESETS.values():
        assert isinstance(preset, Lighting)
        assert math.hypot(*preset.direction) == pytest.approx(1.0)
    assert Lighting(ambient=1).camera_kwargs()["lightAmbientCoeff"] == 1
    with pytest.raises(ValueError, match=r"Lighting\.specular=1\.5: accepted range \[0\.0, 1\.0\]"):
        Lighting(specular=1.5)
    with pytest.raises(ValueError, match="Lighting.color"):
        Lighting(color=(1.0, 2.0, 0.0))


# --------------------------------------------------------------------------- rejections
MINI_SITE: dict[str, Any] = {
    "site": "mini",
    "places": [
        {"id": "p_gauge", "name": "gauge spot", "pose": [0.0, 0.0, 0.0]},
        {"id": "p_valve", "name": "valve spot", "pose": [0.0, 3.0, 0.0]},
        {"id": "p_dock", "name": "dock spot", "pose": [-3.0, 0.0, 3.1416]},
    ],
    "assets": [
        {"id": "gauge1", "name": "gauge one", "kind": "gauge", "place": "p_gauge",
         "gauge": {"unit": "bar", "min_value": 0, "max_value": 10}, "fiducial": 1},
        {"id": "valve1", "name": "valve one", "kind": "valve", "place": "p_valve",
         "fiducial": 2},
        {"id": "wall1", "name": "wall panel", "kind": "panel", "place": "p_gauge",
         "fiducial": 3},
    ],
    "objects": [{"id": "tool1", "name": "tool one", "kind": "tool", "place": "p_valve"}],
    "zones": [{"id": "keep", "name": "hole", "kind": "keep_out",
               "polygon": [[3, -5], [5, -5], [5, -3], [3, -3]]}],
    "docks": [{"id": "d1", "place": "p_dock"}],
}

MINI_WORLD: dict[str, Any] = {
    "world": "mini",
    "site": "mini.site.yaml",
    "ground": {"size": [12, 12]},
    "lighting": "dim",
    "spawn": {"robot1": [-3.0, 3.0, 0.0], "robot2": [-3.0, 4.5, 0.0]},
    "bodies": [
        {"id": "wall", "shape": "box", "size": [0.2, 2.0, 1.5], "pose": [1.6, 0.0, 0.75],
         "asset": "wall1"},
        {"id": "table", "shape": "box", "size": [0.6, 0.6, 0.8], "pose": [1.0, 3.6, 0.4]},
        {"id": "tool", "shape": "box", "size": [0.1, 0.1, 0.1], "pose": [1.0, 3.6, 0.85],
         "mass": 0.5, "object": "tool1"},
        {"id": "post", "shape": "cylinder", "size": [0.05, 1.0], "pose": [-4.0, -4.0, 0.5],
         "repeat": {"count": 3, "step": [1.0, 0.0, 0.0]}},
    ],
    "fiducials": [
        {"tag": 1, "asset": "gauge1", "size": 0.06, "pose": [1.495, 0.3, 1.2, 3.1416]},
        {"tag": 2, "asset": "valve1", "size": 0.08, "pose": [1.0, 3.295, 0.6, -1.5708]},
        {"tag": 3, "asset": "wall1", "size": 0.12, "pose": [1.495, -0.4, 1.2, 3.1416]},
        {"tag": 200, "size": 0.2, "pose": [1.495, 0.0, 0.5, 3.1416]},
    ],
    "gauges": [{"asset": "gauge1", "pose": [1.465, 0.0, 1.3, 3.1416], "radius": 0.1,
                "value": 4.0}],
    "valves": [{"asset": "valve1", "pose": [1.0, 2.4, 0.9, 0.0], "state": "open"}],
    "actors": [{"id": "walker", "path": [[-4.0, -2.0], [2.0, -2.0]], "speed": 1.0}],
}


def write_mini(tmp_path: Path, world: dict[str, Any], site: dict[str, Any] | None = None
               ) -> Path:
    (tmp_path / "mini.site.yaml").write_text(yaml.safe_dump(site or MINI_SITE, sort_keys=False))
    path = tmp_path / "mini.world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False))
    return path


def reject(tmp_path: Path, mutate: Callable[[dict[str, Any]], None]) -> WorldError:
    data = copy.deepcopy(MINI_WORLD)
    mutate(data)
    path = write_mini(tmp_path, data)
    with pytest.raises(WorldError) as info:
        load_world(path)
    assert info.value.file == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_mini_world_loads(tmp_path: Path) -> None:
    w = load_world(write_mini(tmp_path, MINI_WORLD))
    assert [b.id for b in w.bodies][-3:] == ["post_1", "post_2", "post_3"]
    assert w.body("post_3").pose.x == pytest.approx(-2.0)
    assert w.lighting == LIGHTING_PRESETS["dim"] and w.lighting_preset == "dim"
    assert w.body("tool").mass_kg == 0.5 and not w.body("tool").static
    assert w.fiducial(200).asset is None
    assert w.bounds.contains(5.9, -5.9) and not w.bounds.contains(6.1, 0.0)


def test_lighting_overrides(tmp_path: Path) -> None:
    data = copy.deepcopy(MINI_WORLD)
    data["lighting"] = {"preset": "low_sun", "ambient": 0.2, "direction": [0, 0, 2],
                        "shadow": False}
    w = load_world(write_mini(tmp_path, data))
    assert w.lighting.ambient == 0.2 and w.lighting.direction == (0.0, 0.0, 1.0)
    assert w.lighting.shadow is False
    assert w.lighting.specular == LIGHTING_PRESETS["low_sun"].specular


def test_reject_unknown_asset_reference(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["fiducials"][0].__setitem__("asset", "gauge9"))
    assert err.where == "fiducials[0].asset"
    assert "gauge1" in err.message          # lists the known assets


def test_reject_duplicate_fiducial_id(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["fiducials"][3].__setitem__("tag", 2))
    assert err.where == "fiducials[3].tag"
    assert "duplicate" in err.message


def test_reject_fiducial_not_matching_registry(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["fiducials"][0].__setitem__("tag", 9))
    assert err.where == "fiducials[0].tag"
    assert "carries fiducial 1" in err.message


def test_reject_gauge_value_outside_range(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["gauges"][0].__setitem__("value", 10.5))
    assert err.where == "gauges[0].value"
    assert "[0, 10] bar" in err.message


def test_reject_gauge_on_non_gauge_and_missing_dial(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["gauges"][0].__setitem__("asset", "valve1"))
    assert err.where == "gauges[0].asset"
    err = reject(tmp_path, lambda d: d.__setitem__("gauges", []))
    assert err.where == "gauges"
    assert "gauge1" in err.message


@pytest.mark.parametrize("speed", [0.0, -1.0, 3.5])
def test_reject_actor_speed(tmp_path: Path, speed: float) -> None:
    err = reject(tmp_path, lambda d: d["actors"][0].__setitem__("speed", speed))
    assert err.where == "actors[0].speed"


def test_reject_actor_walking_through_a_body(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["actors"][0].__setitem__(
        "path", [[-4.0, 0.0], [4.0, 0.0]]))
    assert err.where == "actors[0].path[0]"
    assert "wall" in err.message


def test_reject_spawn_inside_body(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["spawn"].__setitem__("robot1", [1.6, 0.0, 0.0]))
    assert err.where == "spawn.robot1"
    assert "wall" in err.message


def test_reject_spawn_in_keep_out_zone(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["spawn"].__setitem__("robot2", [4.0, -4.0, 0.0]))
    assert err.where == "spawn.robot2"
    assert "keep" in err.message


def test_reject_overlapping_and_missing_spawns(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["spawn"].__setitem__("robot2", [-3.0, 3.5, 0.0]))
    assert err.where == "spawn.robot2"
    assert "apart" in err.message
    err = reject(tmp_path, lambda d: d["spawn"].pop("robot2"))
    assert err.where == "spawn.robot2"


def test_reject_bad_bodies(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["bodies"][0].__setitem__("shape", "cone"))
    assert err.where == "bodies[0].shape"
    assert "box, cylinder, sphere" in err.message
    err = reject(tmp_path, lambda d: d["bodies"][0].__setitem__("size", [1.0, 2.0]))
    assert err.where == "bodies[0].size"
    err = reject(tmp_path, lambda d: d["bodies"][1].__setitem__("pose", [7.0, 0.0, 0.4]))
    assert err.where == "bodies[1].pose"
    err = reject(tmp_path, lambda d: d["bodies"][1].__setitem__("id", "wall"))
    assert err.where == "bodies[1].id"
    err = reject(tmp_path, lambda d: d["bodies"][2].__setitem__("mass", 0))
    assert err.where == "bodies[2].mass"


def test_reject_object_without_body(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["bodies"].pop(2))
    assert err.where == "bodies"
    assert "tool1" in err.message


def test_reject_unknown_lighting_preset(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d.__setitem__("lighting", {"preset": "disco"}))
    assert err.where == "lighting.preset"
    assert "bright, dim, low_sun, coloured" in err.message


def test_reject_bad_valve_state(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d["valves"][0].__setitem__("state", "half"))
    assert err.where == "valves[0].state"
    assert "open, closed" in err.message


def test_reject_place_not_free(tmp_path: Path) -> None:
    site = copy.deepcopy(MINI_SITE)
    site["places"][1]["pose"] = [1.0, 3.6, 0.0]          # on the table
    path = write_mini(tmp_path, MINI_WORLD, site)
    with pytest.raises(WorldError) as info:
        load_world(path)
    assert info.value.where == "site" and "p_valve" in info.value.message


def test_reject_unknown_top_key_and_site_mismatch(tmp_path: Path) -> None:
    err = reject(tmp_path, lambda d: d.__setitem__("weather", "rain"))
    assert err.where == "weather"
    err = reject(tmp_path, lambda d: d.__setitem__("world", "other"))
    assert err.where == "site"
    err = reject(tmp_path, lambda d: d.__setitem__("site", "missing.site.yaml"))
    assert err.where == "site" and "not found" in err.message


def test_broken_registry_raises_registry_error(tmp_path: Path) -> None:
    site = copy.deepcopy(MINI_SITE)
    site["assets"][0]["place"] = "nowhere"
    path = write_mini(tmp_path, MINI_WORLD, site)
    with pytest.raises(RegistryError) as info:
        load_world(path)
    assert info.value.where == "assets[0].place"
    assert info.value.file == str(tmp_path / "mini.site.yaml")


def test_yaml_error_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.world.yaml"
    path.write_text("world: bad\nsite: [unclosed\n")
    with pytest.raises(WorldError) as info:
        load_world(path)
    assert isinstance(info.value.where, int)
    with pytest.raises(WorldError, match="substation"):
        load_world("atlantis")
