"""Simulated people among robots and each other (sitebot.sim.people.Crowd): they give way
to a robot driving at them, walk around one at rest and around each other, never into a
wall, and people who do not yield keep to their script."""
from __future__ import annotations

import math

import pytest

from sitebot.sim.people import ROBOT_EXTENT_M, Crowd
from sitebot.sim.world import ActorSpec

DT = 1.0 / 50.0
OPEN = (lambda x, y: 10.0)                         # an open yard


def _walk(crowd: Crowd, actors, robot_at, t_end: float):
    """Step the crowd to ``t_end``; ``robot_at(t)`` gives the robots' positions."""
    t, log = 0.0, []
    while t < t_end - 1e-9:
        t += DT
        states = crowd.step(t, actors, robot_at(t))
        log.append((t, {s.id: s for s in states}, robot_at(t)))
    return log


def _min_dist(log, pid: str) -> float:
    return min(math.hypot(st[pid].x - r[0][0], st[pid].y - r[0][1]) for _, st, r in log)


def test_a_person_walks_around_a_robot_at_rest_without_waiting_it_out():
    worker = ActorSpec("w", ((0.0, 0.0), (10.0, 0.0)), 1.2, loop=False, radius_m=0.25)
    crowd = Crowd(OPEN)
    log = _walk(crowd, [worker], lambda t: [(5.0, 0.1)], 14.0)
    need = ROBOT_EXTENT_M + 0.25 + Crowd.ROBOT_MARGIN_M            # 1.15 m
    assert _min_dist(log, "w") >= need - 0.05
    standing = sum(DT for _, st, _ in log if st["w"].vx == 0 == st["w"].vy
                   and 0.0 < st["w"].x < 9.99)
    assert standing < 1.5                        # a short pause, not PATIENCE_S (8 s)
    end = log[-1][1]["w"]
    assert (end.x, end.y) == pytest.approx((10.0, 0.0), abs=1e-6)   # back on its line
    # it passed on the side away from the robot (the robot is 0.1 m left of the line)
    passing = [st["w"].y for _, st, _ in log if abs(st["w"].x - 5.0) < 0.2]
    assert max(passing) < -0.9


def test_a_person_gives_way_to_a_robot_driving_at_them_then_walks_around_it():
    worker = ActorSpec("w", ((0.0, 0.0), (10.0, 0.0)), 1.0, loop=False, radius_m=0.25)
    crowd = Crowd(OPEN)

    def robot(t: float):                # drives west at 0.4 m/s from x = 4, stops at t = 4
        return [(4.0 - 0.4 * min(t, 4.0), 0.0)]
    log = _walk(crowd, [worker], robot, 16.0)
    waits = [t for t, st, _ in log if st["w"].vx == 0 == st["w"].vy and st["w"].x > 0.5]
    assert waits and min(waits) < 4.0            # it stood while the robot came on
    assert crowd.waited("w") < Crowd.PATIENCE_S
    assert _min_dist(log, "w") >= 0.25 + ROBOT_EXTENT_M + 0.2
    assert log[-1][1]["w"].x == pytest.approx(10.0, abs=1e-6)


def test_two_people_meeting_head_on_both_keep_right_and_pass():
    a = ActorSpec("a", ((0.0, 0.0), (10.0, 0.0)), 1.2, loop=False, radius_m=0.25)
    b = ActorSpec("b", ((10.0, 0.0), (0.0, 0.0)), 1.0, loop=False, radius_m=0.25)
    crowd = Crowd(OPEN)
    log = _walk(crowd, [a, b], lambda t: [], 14.0)
    sep = min(math.hypot(st["a"].x - st["b"].x, st["a"].y - st["b"].y) for _, st, _ in log)
    assert sep >= 0.5 + Crowd.PERSON_MARGIN_M - 0.1
    meet = min(log, key=lambda e: abs(e[1]["a"].x - e[1]["b"].x))[1]
    assert meet["a"].y < -0.1 and meet["b"].y > 0.1     # each on its own right
    assert log[-1][1]["a"].x == pytest.approx(10.0, abs=1e-6)
    assert log[-1][1]["b"].x == pytest.approx(0.0, abs=1e-6)


def test_in_a_narrow_aisle_a_person_stands_rather_than_walk_through_a_wall_or_robot():
    def aisle(x: float, y: float) -> float:       # walls at y = +-0.9
        return 0.9 - abs(y)
    worker = ActorSpec("w", ((0.0, 0.0), (10.0, 0.0)), 1.2, loop=False, radius_m=0.25)
    crowd = Crowd(aisle)
    log = _walk(crowd, [worker], lambda t: [(5.0, 0.0)], 20.0)
    assert min(aisle(st["w"].x, st["w"].y) for _, st, _ in log) >= 0.25 - 1e-9
    assert _min_dist(log, "w") >= ROBOT_EXTENT_M + 0.25 + 0.3
    assert log[-1][1]["w"].x < 5.0                # it waits for the robot to clear


def test_people_who_do_not_yield_keep_to_their_script():
    walker = ActorSpec("w", ((0.0, 0.0), (10.0, 0.0)), 1.2, loop=False, yields=False)
    crowd = Crowd(OPEN)
    for t, st, _ in _walk(crowd, [walker], lambda t: [(5.0, 0.0)], 10.0):
        assert st["w"] == walker.state_at(t)


def test_the_crowd_is_deterministic():
    actors = [ActorSpec("a", ((0.0, 0.0), (10.0, 0.0)), 1.2, loop=False),
              ActorSpec("b", ((10.0, 0.3), (0.0, 0.0)), 0.9, loop=False)]
    logs = [[(t, st) for t, st, _ in _walk(Crowd(OPEN), actors, lambda t: [(5.0, 1.0)], 12.0)]
            for _ in range(2)]
    assert logs[0] == logs[1]


def test_a_person_who_ended_their_walk_by_a_robot_makes_way_only_when_asked():
    """In an aisle too narrow to step round a robot (walls at |y| = 0.7 m), a worker finishes
    a walk and a robot comes to rest 0.6 m ahead of them: inside the supervisor's protective
    field. Unasked, they stand there; asked (the robot's speaker), they step straight away
    along the aisle to the pass distance plus MAKE_WAY_M, at walking pace, and stand. Someone
    who does not yield, or out of earshot, stays; walled in at a dead end, nobody moves."""
    need = ROBOT_EXTENT_M + 0.25 + Crowd.ROBOT_MARGIN_M + Crowd.MAKE_WAY_M     # 2.15 m
    aisle = (lambda x, y: 0.7 - abs(y))
    worker = ActorSpec("w", ((-3.0, 0.0), (0.9, 0.0)), 1.0, loop=False, radius_m=0.25)
    stubborn = ActorSpec("s", ((-3.0, 0.3), (1.5, 0.3)), 0.5, loop=False, radius_m=0.25,
                         yields=False, start_delay_s=0.5)
    far = ActorSpec("f", ((9.0, 0.0), (6.1, 0.0)), 1.0, loop=False, radius_m=0.25)
    # the robot comes up after they stopped and rests 0.6 m ahead of the worker; they step
    # aside as far as the aisle allows (0.45 m), which is not far enough
    robot = lambda t: [(1.5, 0.0) if t > 5.0 else (1.5, -6.0)]              # noqa: E731
    crowd = Crowd(aisle)
    actors = [worker, far]
    log = _walk(crowd, actors, robot, 8.0)
    w0 = log[-1][1]["w"]                 # stepped aside as far as the wall lets them: stuck
    assert (w0.x, w0.y) == pytest.approx((0.9, -0.45)) and w0.vx == w0.vy == 0.0
    assert math.hypot(w0.x - 1.5, w0.y) < 0.8
    crowd.hear(1.5, 0.0, 8.0)
    t, moved = 8.0, []
    while t < 13.0 - 1e-9:
        t += DT
        moved.append((t, {s.id: s for s in crowd.step(t, actors, robot(t))}))
    end = moved[-1][1]
    assert math.hypot(end["w"].x - 1.5, end["w"].y) == pytest.approx(need, abs=0.02)
    assert all(abs(st["w"].y) <= 0.45 + 1e-9 for _, st in moved)   # never into a wall
    assert end["w"].x < 0.9                                          # back along the aisle
    reached = min(t for t, st in moved if math.hypot(st["w"].x - 1.5, st["w"].y) >= need - 0.02)
    assert reached - 8.0 < 2.0 * (need - 0.75) / Crowd.SIDESTEP_MPS  # at walking pace
    assert end["w"].vx == end["w"].vy == 0.0                        # and stands there
    assert (end["f"].x, end["f"].y) == pytest.approx((6.1, 0.0))     # 4.6 m: not in the way

    # who does not yield keeps to the script, asked or not
    crowd = Crowd(aisle)
    log = _walk(crowd, [stubborn], lambda t: [(2.0, 0.0)], 12.0)
    crowd.hear(2.0, 0.0, 12.0)
    st = crowd.step(13.0, [stubborn], [(2.0, 0.0)])[0]
    assert (st.x, st.y) == pytest.approx((1.5, 0.3))

    # a dead end behind them (x < 0.6) and the aisle's walls: nowhere far enough to go; they
    # never step into a wall
    dead_end = (lambda x, y: min(0.7 - abs(y), x - 0.6))
    crowd = Crowd(dead_end)
    worker2 = ActorSpec("w", ((0.9, 0.0), (0.9, 0.0)), 1.0, loop=False, radius_m=0.25)
    _walk(crowd, [worker2], robot, 6.0)
    crowd.hear(1.5, 0.0, 6.0)
    path = [crowd.step(6.0 + k * DT, [worker2], [(1.5, 0.0)])[0] for k in range(1, 100)]
    assert all(dead_end(p.x, p.y) >= 0.25 - 1e-9 for p in path)
    assert all(math.hypot(p.x - 1.5, p.y) < 0.8 for p in path)
    assert path[-1].vx == path[-1].vy == 0.0



@pytest.mark.parametrize("robot", [(3.4, 0.0), (3.0, 0.0), (3.4, 0.3), (4.0, 0.6), (3.6, -0.8)])
def test_a_step_aside_taken_before_a_corner_is_walked_back_not_swung_round(robot):
    """The script turns 90 degrees right at (4, 0) while the walker is still stepped aside
    round a robot standing near the corner. Found in a regression run: the step swung round
    with the heading, 0.9 m across the robot in one step and into it; and the side chosen
    on the first leg was kept on the second, so the walker stepped across the robot's
    position. Now the step stays where it is in the world and is walked back, and a new
    leg chooses its side anew: at most walking plus sidestep pace, never into the robot
    (contact is 0.45 + 0.25 = 0.70 m; without the corner they keep 1.15 m)."""
    worker = ActorSpec("w", ((0.0, 0.0), (4.0, 0.0), (4.0, -6.0)), 1.0, loop=False,
                       radius_m=0.25)
    crowd = Crowd(OPEN)
    log = _walk(crowd, [worker], lambda t: [robot], 14.0)
    pos = [(st["w"].x, st["w"].y) for _, st, _ in log]
    jumps = [math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(pos, pos[1:])]
    assert max(jumps) <= (1.0 + Crowd.SIDESTEP_MPS) * DT + 1e-9
    assert _min_dist(log, "w") >= 1.0
    assert pos[-1] == pytest.approx((4.0, -6.0), abs=1e-6)         # back on its line



def test_a_person_held_mid_walk_in_an_aisle_walks_back_to_let_an_asking_robot_pass():
    """An aisle too narrow to pass a robot (walls at |y| = 0.7 m, a side opening at x = -3).
    A worker walking along it stands when they see a robot in the aisle ahead that they
    cannot step round; the robot comes up and stops 1.2 m from them (mid-walk: making way
    does not apply, and each would wait for the other). Asked, they walk back along their
    own path to the pass distance plus MAKE_WAY_M (2.15 m) and keep that distance while
    the robot comes on; once it has left by the opening they walk on and finish their
    walk. Never into a wall, never nearer the robot than where they were asked."""
    need = ROBOT_EXTENT_M + 0.25 + Crowd.ROBOT_MARGIN_M + Crowd.MAKE_WAY_M     # 2.15 m
    aisle = (lambda x, y: 0.7 - abs(y) if y > -0.7 or abs(x + 3.0) > 0.6 else 1.0)
    worker = ActorSpec("w", ((-6.0, 0.0), (5.0, 0.0)), 1.0, loop=False, radius_m=0.25)

    def robot(t: float):  # rests, comes up to 1.2 m of them, then along to x = -3, out south
        if t < 6.0:
            return [(1.5, 0.0)]
        if t < 11.2:
            return [(1.5 - 0.25 * (t - 6.0), 0.0)]
        if t < 14.0:
            return [(0.2, 0.0)]
        if t < 26.8:
            return [(0.2 - 0.25 * (t - 14.0), 0.0)]
        return [(-3.0, -0.25 * (t - 26.8))]
    crowd = Crowd(aisle)
    log = _walk(crowd, [worker], robot, 12.0)
    held = log[-1][1]["w"]
    asked_at = math.hypot(held.x - 0.2, held.y)
    assert held.vx == held.vy == 0.0 and asked_at < need - 0.5       # standing, too near
    crowd.hear(0.2, 0.0, 12.0)
    t, after = 12.0, []
    while t < 60.0 - 1e-9:
        t += DT
        after.append((t, {s.id: s for s in crowd.step(t, [worker], robot(t))}, robot(t)))
    d = [(t, math.hypot(st["w"].x - r[0][0], st["w"].y - r[0][1])) for t, st, r in after]
    assert min(v for _, v in d) >= asked_at - 1e-9               # never nearer than asked
    back = min(t for t, v in d if v >= need - 0.02)
    assert back - 12.0 < 2.0                                     # walked back at once
    assert all(v >= need - 0.1 for t, v in d if back <= t <= 26.8)   # kept clear of it
    assert all(abs(st["w"].y) <= 0.45 + 1e-9 for _, st, _ in after)  # never into a wall
    end = after[-1][1]["w"]
    assert (end.x, end.y) == pytest.approx((5.0, 0.0), abs=1e-6)   # then finished the walk


def test_a_robot_driving_along_a_persons_step_aside_is_not_walked_ahead_of_for_metres():
    """A campaign run (substation_fetch_random seed 4): the robot drove north across a
    worker's line just ahead of them; the worker stepped aside north, and on, ahead of the
    robot for 7.9 m (the robot stayed 'in the way' of the growing step), then walked back
    to their line through the robot, which stood (separation -0.57 m).  Here: a worker walks
    east along y = 0; a robot ahead-right of them drives north at 0.25 m/s for 40 s.  Before:
    the worker ended 10.8-11.3 m off their line and never finished the walk.  Now the step
    stops at MAX_SIDESTEP_M, they stand until the robot has gone, and walk on."""
    for lag in (2.0, 3.0, 4.0):
        worker = ActorSpec("w", ((-5.0, 0.0), (10.0, 0.0)), 0.9, loop=False, radius_m=0.25)
        crowd = Crowd(OPEN)
        log = _walk(crowd, [worker], lambda t: [(0.0, -0.6 + 0.25 * max(0.0, t - lag))],
                    45.0)
        assert max(abs(st["w"].y) for _, st, _ in log) <= Crowd.MAX_SIDESTEP_M + 1e-9
        assert _min_dist(log, "w") >= ROBOT_EXTENT_M + 0.25 + 0.5
        end = log[-1][1]["w"]
        assert (end.x, end.y) == pytest.approx((10.0, 0.0), abs=1e-6)



def test_a_person_letting_a_robot_pass_walks_on_when_it_does_not_move():
    """An open yard. A robot drives at a worker, who stands to give way; it stops 1.2 m
    from them and asks them to let it pass; they walk back along their path and wait. The
    robot then stays where it stopped (its goal is where the worker stepped back to: a
    campaign's patrol and a worker waited 60 s for each other so). After LET_PASS_IDLE_S
    without the robot moving they walk on round it as round any robot at rest, and finish
    their walk; never nearer the robot than the pass distance."""
    worker = ActorSpec("w", ((-6.0, 0.0), (6.0, 0.0)), 1.0, loop=False, radius_m=0.25)

    def robot(t: float):      # drives at them along their line from x = 3, stops at 0.6
        return [(3.0 - 0.4 * min(max(t - 1.0, 0.0), 6.0), 0.0)]
    crowd = Crowd(OPEN)
    log = _walk(crowd, [worker], robot, 7.0)
    asked = log[-1][1]["w"]
    assert asked.vx == asked.vy == 0.0                       # giving way, standing
    crowd.hear(0.6, 0.0, 7.0)
    t, after = 7.0, []
    while t < 45.0 - 1e-9:
        t += DT
        after.append((t, crowd.step(t, [worker], robot(t))[0]))
    back = min(st.x for _, st in after)
    assert back < asked.x - 0.5                              # walked back first
    on = min(t for t, st in after if t > 7.5 and st.vx > 0.0)
    assert 7.0 + Crowd.LET_PASS_IDLE_S - 0.5 <= on <= 7.0 + Crowd.LET_PASS_IDLE_S + 1.0, on
    need = ROBOT_EXTENT_M + 0.25 + Crowd.ROBOT_MARGIN_M
    assert min(math.hypot(st.x - 0.6, st.y) for _, st in after) >= need - 0.05
    assert (after[-1][1].x, after[-1][1].y) == pytest.approx((6.0, 0.0), abs=1e-6)
