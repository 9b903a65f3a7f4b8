"""Template variables drawn from the world (sitebot.regress.world_draws): places, free
floor, people's paths, clutter and displaced objects, checked against the world's real
obstacle footprints, keep-out zones and places."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from sitebot.regress.prepare import _world_doc, base_world, check_world
from sitebot.regress.scenario import ScenarioError
from sitebot.regress.template import load_template
from sitebot.site.geometry import point_in_polygon
from sitebot.site.registry import ZoneKind

BASE = """\
scenario: world_draws
world: construction
robot: {start: [0.0, 0.0, 0.0]}
duration: 10
sim: {}
mission: {kind: none}
actors: {replace: true, add: []}
"""


def _template(tmp_path: Path, random: str, base: str = BASE):
    p = tmp_path / "t.yaml"
    p.write_text(textwrap.dedent(base) + "random:\n" + textwrap.indent(
        textwrap.dedent(random), "  "))
    return load_template(p)


def _free(world, x: float, y: float) -> float:
    """Clearance of (x, y) [m] from static obstacles, -1 inside a keep-out zone."""
    for z in world.registry.zones:
        if z.kind == ZoneKind.KEEP_OUT and point_in_polygon(x, y, z.polygon):
            return -1.0
    return world.clearance(x, y)[0]


def test_places_and_free_poses(tmp_path):
    world = base_world("construction")
    places = {p.id: p for p in world.registry.places}
    t = _template(tmp_path, """\
        robot.start: {place: "*", jitter: 0.4}
        sim.start_hint: {free_pose: {region: [[-10, -10], [0, 0]], clearance: 0.8,
                                     away_from_places: 2.0}}
        """)
    seen = set()
    for seed in range(40):
        d = t.explain(seed)
        x, y, yaw = d["robot.start"]
        near = min(places.values(), key=lambda p: math.hypot(p.x - x, p.y - y))
        assert math.hypot(near.x - x, near.y - y) <= 0.4 + 1e-6
        assert yaw == pytest.approx(near.pose.yaw, abs=1e-4)
        seen.add(near.id)
        fx, fy, fyaw = d["sim.start_hint"]
        assert -10 <= fx <= 0 and -10 <= fy <= 0 and -math.pi <= fyaw <= math.pi
        assert _free(world, fx, fy) >= 0.8
        assert min(math.hypot(p.x - fx, p.y - fy) for p in places.values()) >= 2.0
        check_world(t.sample(seed))          # a valid start for the simulator too
    assert len(seen) >= min(6, len(places))  # the places are all in play


def test_people_walk_free_floor_and_cross_where_asked(tmp_path):
    world = base_world("construction")
    t = _template(tmp_path, """\
        actors.add: {people: {count: [2, 4], speed: [0.6, 1.2], yields: 0.5,
                              crosses: [[-6.0, -2.0], [-2.0, -2.0]], length: [3, 6]}}
        """)
    counts, yields = [], []
    for seed in range(30):
        people = t.explain(seed)["actors.add"]
        counts.append(len(people))
        for p in people:
            (ax, ay), (bx, by) = p["path"]
            assert 3.0 - 1e-3 <= math.hypot(bx - ax, by - ay) <= 6.0 + 1e-3
            assert 0.6 <= p["speed"] <= 1.2 and 0.0 <= p["start_delay"] <= 5.0
            # the path crosses y = -2 between x = -6 and -2
            assert (ay + 2.0) * (by + 2.0) <= 0.0
            xc = ax + (bx - ax) * (-2.0 - ay) / (by - ay)
            assert -6.0 - 1e-6 <= xc <= -2.0 + 1e-6
            for k in range(21):
                x, y = ax + (bx - ax) * k / 20, ay + (by - ay) * k / 20
                assert _free(world, x, y) >= 0.35 - 1e-6
            yields.append(p["yields"])
        check_world(t.sample(seed))          # the simulator's own path check agrees
    assert set(counts) == {2, 3, 4}
    assert 0.25 < sum(yields) / len(yields) < 0.75


def test_clutter_leaves_places_start_and_people_clear(tmp_path):
    world = base_world("construction")
    t = _template(tmp_path, """\
        actors.add: {people: {count: [2, 2], length: [4, 8]}}
        bodies: {clutter: {count: [3, 6], size: [[0.3, 0.3, 0.2], [0.9, 0.7, 0.8]],
                           clearance: 0.9, away_from_places: 1.5, away_from_start: 2.0}}
        """)
    for seed in range(25):
        sc = t.sample(seed)
        boxes = sc.bodies
        assert 3 <= len(boxes) <= 6
        for i, b in enumerate(boxes):
            x, y, _ = b["pose"]
            half = math.hypot(b["size"][0], b["size"][1]) / 2
            assert all(0.3 <= s <= 0.9 for s in b["size"][:2])
            assert _free(world, x, y) >= 0.9 + half - 1e-6
            assert math.hypot(x, y) >= 2.0 + half - 1e-6         # the robot's start
            assert all(math.hypot(x - p.x, y - p.y) >= 1.5 + half - 1e-6
                       for p in world.registry.places)
            for o in boxes[i + 1:]:
                oh = math.hypot(o["size"][0], o["size"][1]) / 2
                assert math.hypot(x - o["pose"][0], y - o["pose"][1]) >= 0.9 + half + oh - 1e-6
            for a in sc.actors_add:                                # no box on a path
                (ax, ay), (bx, by) = a["path"]
                for k in range(41):
                    px, py = ax + (bx - ax) * k / 40, ay + (by - ay) * k / 40
                    assert math.hypot(px - x, py - y) >= half + 0.25


def test_a_displaced_object_lies_moved_in_the_run_world(tmp_path):
    t = _template(tmp_path, """\
        objects: {choice: [{}]}
        objects.torque_wrench: {displace: {object: torque_wrench, offset: 0.05, turn: 30}}
        """)
    world = base_world("construction")
    body = next(b for b in world.bodies if b.object == "torque_wrench")
    offsets, turns = [], []
    for seed in range(30):
        sc = t.sample(seed)
        mv = sc.objects["torque_wrench"]
        offsets.append(math.hypot(*mv["offset"]))
        turns.append(mv["turn"])
        doc = _world_doc(sc)
        b = next(b for b in doc["bodies"] if b.get("object") == "torque_wrench")
        assert b["pose"][0] == pytest.approx(body.pose.x + mv["offset"][0], abs=1e-9)
        assert b["pose"][1] == pytest.approx(body.pose.y + mv["offset"][1], abs=1e-9)
        assert b["pose"][2] == pytest.approx(body.pose.z, abs=1e-9)
        assert b["pose"][-1] == pytest.approx(body.pose.yaw + math.radians(mv["turn"]),
                                              abs=1e-9)
        check_world(sc)
    assert max(offsets) <= 0.05 + 1e-9 and max(offsets) > 0.03
    assert max(abs(x) for x in turns) <= 30.0 and max(turns) > 15 and min(turns) < -15


def test_world_draws_are_reproducible_and_independent(tmp_path):
    t = _template(tmp_path, """\
        actors.add: {people: {count: [1, 3]}}
        bodies: {clutter: {count: [1, 3]}}
        """)
    assert t.explain(11) == t.explain(11)
    assert t.explain(11) != t.explain(12)
    # a variable added before leaves the people's draw alone
    t2 = _template(tmp_path, """\
        duration: {uniform: [5, 20]}
        actors.add: {people: {count: [1, 3]}}
        bodies: {clutter: {count: [1, 3]}}
        """)
    assert t2.explain(11)["actors.add"] == t.explain(11)["actors.add"]


@pytest.mark.parametrize("random, words", [
    ("robot.start: {place: [no_such_place]}", "no place 'no_such_place'"),
    ("robot.start: {free_pose: {region: [[0, 0], [-1, 5]]}}", "min < max"),
    ("robot.start: {free_pose: {clearance: 0.6, radius: 3}}", "unknown parameter 'radius'"),
    ("actors.add: {people: {count: [3, 1]}}", "low 3 is above high 1"),
    ("actors.add: {people: {length: [60, 90], region: [[-5, -5], [5, 5]]}}",
     "no straight path of 60-90 m"),
    ("bodies: {clutter: {size: [[0.5, 0.5, 0.5], [0.2, 0.9, 0.9]]}}", "0 < low <= high"),
    ("objects.x: {displace: {object: no_such_object}}", "no object 'no_such_object'"),
    ("robot.start: {place: '*', jitter: 0.2, round: 2}", "unknown option 'round'"),
])
def test_bad_world_variables_name_the_key_and_why(tmp_path, random, words):
    base = BASE + "objects: {}\n"
    with pytest.raises(ScenarioError) as e:
        _template(tmp_path, random + "\n", base)
    assert words in str(e.value)
    assert "random." in str(e.value) and "t.yaml" in str(e.value)


def test_a_scenario_moves_an_object_only_if_the_world_has_it(tmp_path):
    from sitebot.regress.scenario import load_scenario
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(BASE) + "objects: {hammer_of_thor: {offset: [0.01, 0]}}\n")
    sc = load_scenario(p)[0]
    with pytest.raises(ScenarioError, match="no object 'hammer_of_thor'.*objects: .*torque_wrench"):
        _world_doc(sc)
    p.write_text(textwrap.dedent(BASE) + "objects: {torque_wrench: {offset: [2.0, 0]}}\n")
    with pytest.raises(ScenarioError, match=r"objects\.torque_wrench\.offset.*at most 1 m"):
        load_scenario(p)


def test_nobody_starts_on_the_robot_or_ends_on_a_place(tmp_path):
    """The first campaign drew a worker's walk starting 0.6 m from the robot's start: a
    'contact' at t = 0 that no robot could avoid.  Walks begin and end clear of both."""
    world = base_world("construction")
    t = _template(tmp_path, """\
        robot.start: {place: [site_office_entrance, site_centre, tool_crib], jitter: 0.4}
        actors.add: {people: {count: [3, 5], length: [3, 10]}}
        """)
    for seed in range(40):
        sc = t.sample(seed)
        sx, sy = sc.start[0], sc.start[1]
        for a in sc.actors_add:
            for q in (a["path"][0], a["path"][-1]):
                assert math.hypot(q[0] - sx, q[1] - sy) >= 1.5 - 1e-9
                assert min(math.hypot(q[0] - p.x, q[1] - p.y)
                           for p in world.registry.places) >= 1.0 - 1e-9
