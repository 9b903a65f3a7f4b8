"""How simulated people walk among robots and each other (no PyBullet, no ROS).

People are kinematic: each follows a script (``ActorSpec``: a path walked at a speed after
a delay), and :class:`Crowd` bends the script the way people bend their own:

* **Giving way.** A person who ``yields`` and sees a robot *driving toward them* within
  :attr:`Crowd.YIELD_DISTANCE_M` ahead stands still (their script is delayed by the time
  waited), for at most :attr:`Crowd.PATIENCE_S`.
* **Walking around.** Anything standing in their way (a robot at rest, a robot they lost
  patience with, another person) within :attr:`Crowd.LOOKAHEAD_M` ahead, closer to their
  line than the pass distance (the two radii plus a personal margin), makes them step
  sideways, at :attr:`Crowd.SIDESTEP_MPS`, to the side that needs the smaller step and is
  free floor (the world's static obstacles), and back onto their line once past it.
  While the step is not yet wide enough and the obstacle is near, they stand (a person
  does not walk into a robot while side-stepping it). The step stops at
  :attr:`Crowd.MAX_SIDESTEP_M`; something still in the way then (a robot driving along
  the step's direction) is let pass standing. Nobody walks on, or back to their line,
  into a robot's pass distance. Two people meeting head-on both keep right.
* **Making way when asked.** A robot held by a person (the supervisor's protective stop)
  asks them to let it pass (``hri/say``, :meth:`Crowd.hear`). A person who yields, has
  ended their walk and stands within :attr:`Crowd.HEARING_M` of the robot and closer than
  the pass distance steps straight away from it (or up to 90 degrees aside where a wall is
  behind them), at :attr:`Crowd.SIDESTEP_MPS`, until :attr:`Crowd.MAKE_WAY_M` beyond the
  pass distance, and stands there. Nobody moves for a robot that did not ask: a person
  finishing their walk next to a robot does not know it waits for them.
* **Letting a robot pass.** A person who yields and stands mid-walk, held by a robot they
  cannot get round (a narrow aisle), and is asked by it, walks back along their own path
  (free floor: they came that way) until :attr:`Crowd.MAKE_WAY_M` beyond the pass distance
  and waits there, walking back further while the robot comes on. They walk on once it
  has passed them, is that much further off again, has not moved for
  :attr:`Crowd.LET_PASS_IDLE_S`, or after :attr:`Crowd.LET_PASS_S`; at
  the start of their path they can go no further back and walk round it as usual.
* People who do not yield (``yields: false``) keep to their script whatever is in the way
  and do not make way when asked (for separation tests: the robot must protect itself, and
  a person who stands holds the robot until its navigation gives up).

Deterministic for the same inputs; the robot positions come with every step and their
velocities are estimated from consecutive steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from sitebot.sim.world import ActorSpec, PersonState

__all__ = ["Crowd"]

#: the robot's footprint radius as people keep clear of it [m] (a 0.35 m base plus its
#: arm's overhang)
ROBOT_EXTENT_M = 0.45


@dataclass
class _Walker:
    waited: float = 0.0          # script delay from giving way and standing [s]
    waiting: float = 0.0         # current wait for one robot [s]
    # off the scripted line [m], in the world frame: a step aside taken before the line
    # turns a corner stays where it is and is walked back, it does not swing round with
    # the heading (a 0.9 m step swung across a robot in one step, into it)
    disp: tuple[float, float] = (0.0, 0.0)
    side: float = 0.0            # the side chosen around the current obstacle (+1/-1/0)
    heading: tuple[float, float] = (1.0, 0.0)
    shift: tuple[float, float] = (0.0, 0.0)   # stepped away from a robot that asked [m]
    letting_since: float | None = None        # letting a robot pass (walking back) since [s]
    letting_robot: tuple[float, float] = (0.0, 0.0)   # where the robot was when it last moved
    letting_came: float = 0.0                 # when it last moved by LET_PASS_COME_M [s]
    state: PersonState | None = field(default=None)


class Crowd:
    """The people of a world, stepped with the robots' positions (module docstring)."""

    #: a person gives way while a robot driving toward them is this close ahead [m]
    YIELD_DISTANCE_M = 1.3
    #: ... for at most this long [s] (people do not wait forever)
    PATIENCE_S = 8.0
    #: how far ahead a person looks for things to walk around [m]
    LOOKAHEAD_M = 3.0
    #: personal margin kept to a robot's footprint and to another person [m]
    ROBOT_MARGIN_M = 0.45
    PERSON_MARGIN_M = 0.2
    #: sideways walking speed [m/s]
    SIDESTEP_MPS = 0.9
    #: the farthest a person steps off their line round something in the way [m]: further
    #: than that they stand and let it pass (a robot driving along the step's direction
    #: had a worker walk 8 m sideways ahead of it, then back through it)
    MAX_SIDESTEP_M = 1.5
    #: a robot slower than this is at rest [m/s]
    ROBOT_AT_REST_MPS = 0.05
    #: a robot's request to pass is heard this far from it [m], for this long [s]
    HEARING_M = 5.0
    REQUEST_S = 3.0
    #: how far beyond the pass distance a person steps away from a robot that asked [m]:
    #: well clear of the supervisor's protective field and its restart margin (0.3 m left
    #: a campaign's worker at the field's edge, and the stop flickered for a minute)
    MAKE_WAY_M = 1.0
    #: the longest a person walks back and waits to let a robot pass [s]
    LET_PASS_S = 60.0
    #: ... and how long they wait for a robot that does not move (by LET_PASS_COME_M): a
    #: robot whose goal is where they stepped back to waits for them, and they for it (a
    #: campaign's patrol stood 60 s so at the construction compressor stand) [s, m]
    LET_PASS_IDLE_S = 10.0
    LET_PASS_COME_M = 0.2

    def __init__(self, clearance: Callable[[float, float], float]) -> None:
        """``clearance(x, y)``: distance [m] from a point to the nearest static obstacle."""
        self._clearance = clearance
        self._walkers: dict[str, _Walker] = {}
        self._robots: list[tuple[float, float]] = []
        self._robot_v: list[tuple[float, float]] = []
        self._requests: list[tuple[float, float, float]] = []     # (x, y, t) of each ask
        self._t = 0.0

    def reset(self) -> None:
        self._walkers.clear()
        self._robots, self._robot_v, self._requests, self._t = [], [], [], 0.0

    def hear(self, x: float, y: float, t_s: float) -> None:
        """A robot at (x, y) asked the people near it to let it pass, at sim time ``t_s``."""
        self._requests = [r for r in self._requests if t_s - r[2] <= self.REQUEST_S]
        self._requests.append((float(x), float(y), float(t_s)))

    def waited(self, actor_id: str) -> float:
        """How far [s] a person's script runs behind from giving way and standing."""
        w = self._walkers.get(actor_id)
        return w.waited if w else 0.0

    def step(self, t_s: float, actors: Sequence[ActorSpec],
             robots_xy: Sequence[tuple[float, float]] = ()) -> list[PersonState]:
        """Every person's state at sim time ``t_s`` [s], given the robots' positions then."""
        t = float(t_s)
        dt = max(0.0, t - self._t)
        self._t = t
        robots = [(float(x), float(y)) for x, y in robots_xy]
        if dt > 0 and len(robots) == len(self._robots):
            self._robot_v = [((x - px) / dt, (y - py) / dt)
                             for (x, y), (px, py) in zip(robots, self._robots)]
        elif len(robots) != len(self._robot_v):
            self._robot_v = [(0.0, 0.0)] * len(robots)
        self._robots = robots
        before = {aid: w.state for aid, w in self._walkers.items() if w.state is not None}
        out = []
        for a in actors:
            w = self._walkers.setdefault(a.id, _Walker())
            others = [(s.x, s.y, self._radius(actors, aid) + a.radius_m + self.PERSON_MARGIN_M,
                       False) for aid, s in before.items() if aid != a.id]
            w.state = self._walk(a, w, t, dt, others) if a.yields else \
                a.state_at(t - w.waited)
            if a.yields:
                w.state = self._make_way(a, w, t, dt, w.state)
            out.append(w.state)
        return out

    def _pass_distance(self, a: ActorSpec) -> float:
        """How far [m] person ``a`` keeps a robot's centre when walking past it."""
        return ROBOT_EXTENT_M + a.radius_m + self.ROBOT_MARGIN_M

    @staticmethod
    def _ended(a: ActorSpec, w: _Walker, t: float) -> bool:
        """Whether person ``a`` has walked the whole of a one-way script."""
        return not a.loop and t - w.waited >= a.start_delay_s + a.period_s

    def _make_way(self, a: ActorSpec, w: _Walker, t: float, dt: float,
                  st: PersonState) -> PersonState:
        """A person who ended their walk, shifted away from a robot that asked (module doc)."""
        self._requests = [r for r in self._requests if t - r[2] <= self.REQUEST_S]
        x, y = st.x + w.shift[0], st.y + w.shift[1]
        ended = self._ended(a, w, t)
        need = self._pass_distance(a) + self.MAKE_WAY_M
        asked = [(rx, ry) for rx, ry, _ in self._requests
                 if math.hypot(x - rx, y - ry) < min(need, self.HEARING_M)]
        if not ended or not asked:
            return PersonState(a.id, x, y, st.vx, st.vy)
        rx, ry = min(asked, key=lambda r: math.hypot(x - r[0], y - r[1]))
        d = math.hypot(x - rx, y - ry)
        base = math.atan2(y - ry, x - rx) if d > 1e-6 else math.atan2(-w.heading[1],
                                                                     -w.heading[0])
        step = min(self.SIDESTEP_MPS * dt, need - d)
        for turn in (0.0, 0.5, -0.5, 1.0, -1.0, 1.5708, -1.5708):
            ux, uy = math.cos(base + turn), math.sin(base + turn)
            nx, ny = x + step * ux, y + step * uy
            if self._clearance(nx, ny) >= a.radius_m and math.hypot(nx - rx, ny - ry) > d:
                w.shift = (w.shift[0] + step * ux, w.shift[1] + step * uy)
                v = step / dt if dt > 0 else 0.0
                return PersonState(a.id, nx, ny, v * ux, v * uy)
        return PersonState(a.id, x, y, 0.0, 0.0)            # walled in: stays

    @staticmethod
    def _radius(actors: Sequence[ActorSpec], actor_id: str) -> float:
        for a in actors:
            if a.id == actor_id:
                return a.radius_m
        return 0.25

    # ------------------------------------------------------------------------ one person
    def _walk(self, a: ActorSpec, w: _Walker, t: float, dt: float,
              others: list[tuple[float, float, float, bool]]) -> PersonState:
        back = self._let_pass(a, w, t, dt)
        if back is not None:
            return back
        st = a.state_at(t - w.waited)
        speed = math.hypot(st.vx, st.vy)
        if speed > 0.0:
            heading = (st.vx / speed, st.vy / speed)
            if heading[0] * w.heading[0] + heading[1] * w.heading[1] < 0.99:
                w.side = 0.0            # a new leg: the side round an obstacle is chosen anew
            w.heading = heading
        ux, uy = w.heading
        nx, ny = -uy, ux                                   # left of the walking direction
        offset = w.disp[0] * nx + w.disp[1] * ny          # sideways, + = left
        need_r = self._pass_distance(a)
        obstacles = [(rx, ry, need_r, True) for rx, ry in self._robots] + others
        # giving way to a robot that drives toward them
        oncoming = False
        if speed > 0.0:
            for (rx, ry), (vx, vy) in zip(self._robots, self._robot_v):
                dx, dy = rx - st.x, ry - st.y
                d = math.hypot(dx, dy)
                if d < self.YIELD_DISTANCE_M and dx * ux + dy * uy > 0.0 and \
                        -(vx * dx + vy * dy) / max(d, 1e-6) > self.ROBOT_AT_REST_MPS:
                    oncoming = True
        if oncoming and w.waiting < self.PATIENCE_S:
            w.waiting += dt
            return self._stand(a, w, t, dt)
        if not oncoming:
            w.waiting = 0.0
        # walking around what stands in the way
        target, hold, chosen = 0.0, False, False
        for ox, oy, need, _ in obstacles:
            dx, dy = ox - st.x, oy - st.y                  # from the scripted point
            s, lat = dx * ux + dy * uy, dx * nx + dy * ny
            in_way = abs(lat) < need or abs(offset - lat) < need
            if not in_way or s <= -need or s > self.LOOKAHEAD_M:
                continue
            if not w.side:
                w.side = math.copysign(1.0, offset - lat) \
                    if offset and abs(offset - lat) < need \
                    else self._pick_side(st, nx, ny, lat, need, a.radius_m)
            want = lat + w.side * need
            if not chosen or abs(want) > abs(target):
                target = want
            chosen = True
            # too near to pass yet: stand while stepping aside
            hold = hold or (abs(offset - lat) < need - 1e-9 and s < need + 0.3)
        if not chosen:
            w.side = 0.0
        if abs(target) > self.MAX_SIDESTEP_M:
            target, hold = math.copysign(self.MAX_SIDESTEP_M, target), True
        # toward target x the left normal, at sidestep pace (what is left along the line
        # from before a corner is walked back at the same pace)
        ex, ey = target * nx - w.disp[0], target * ny - w.disp[1]
        e = math.hypot(ex, ey)
        if e <= self.SIDESTEP_MPS * dt:            # there (exactly: no rounding left over)
            new = (target * nx, target * ny)
        else:
            k = self.SIDESTEP_MPS * dt / e
            new = (w.disp[0] + k * ex, w.disp[1] + k * ey)
        if new != w.disp and self._clearance(st.x + new[0], st.y + new[1]) < a.radius_m:
            new, hold = w.disp, chosen                     # a wall: go no further aside
        if not hold and self._into_robot(a, w, st.x + new[0], st.y + new[1]):
            return self._stand(a, w, t, dt)                # walking on or back: not into it
        w.disp = new
        if hold:
            return self._stand(a, w, t, dt)
        return PersonState(a.id, st.x + new[0], st.y + new[1], st.vx, st.vy)

    def _into_robot(self, a: ActorSpec, w: _Walker, x: float, y: float) -> bool:
        """Whether (x, y) is inside a robot's pass distance and nearer to it than where the
        person stands now (a person does not walk into a robot, whatever their script)."""
        prev = w.state
        if prev is None:
            return False
        need = self._pass_distance(a)
        return any(math.hypot(x - rx, y - ry) < need and
                   math.hypot(x - rx, y - ry) < math.hypot(prev.x - rx, prev.y - ry)
                   for rx, ry in self._robots)

    def _let_pass(self, a: ActorSpec, w: _Walker, t: float, dt: float) -> PersonState | None:
        """Walking back along their path to let a robot pass (module doc), or None."""
        prev = w.state
        if prev is None or not self._robots:
            return None
        rx, ry = min(self._robots, key=lambda r: math.hypot(prev.x - r[0], prev.y - r[1]))
        d = math.hypot(prev.x - rx, prev.y - ry)
        clear = self._pass_distance(a) + self.MAKE_WAY_M
        can_back = t - w.waited > a.start_delay_s
        if w.letting_since is None:
            held = prev.vx == 0.0 == prev.vy and can_back and d < clear
            ended = self._ended(a, w, t)
            asked = any(math.hypot(prev.x - qx, prev.y - qy) < self.HEARING_M and
                        t - qt <= self.REQUEST_S for qx, qy, qt in self._requests)
            if not (held and asked and not ended):
                return None
            w.letting_since, w.letting_robot, w.letting_came = t, (rx, ry), t
        if math.hypot(rx - w.letting_robot[0], ry - w.letting_robot[1]) > self.LET_PASS_COME_M:
            w.letting_robot, w.letting_came = (rx, ry), t
        ux, uy = w.heading
        passed = (rx - prev.x) * ux + (ry - prev.y) * uy < -self._pass_distance(a)
        idle = t - w.letting_came > self.LET_PASS_IDLE_S     # it does not use the way made
        if passed or d > clear + 1.0 or t - w.letting_since > self.LET_PASS_S or idle or (
                not can_back and d < clear):
            w.letting_since = None               # walk on (round it, at the path's start)
            return None
        if d < clear and can_back:               # back along the path, at walking pace
            st = a.state_at(t - w.waited - 2.0 * dt)
            x, y = st.x + w.disp[0], st.y + w.disp[1]
            if math.hypot(x - rx, y - ry) > d:   # only where that takes them away from it
                w.waited += 2.0 * dt
                return PersonState(a.id, x, y, -st.vx, -st.vy)
        return self._stand(a, w, t, dt)

    def _stand(self, a: ActorSpec, w: _Walker, t: float, dt: float) -> PersonState:
        w.waited += dt
        st = a.state_at(t - w.waited)
        return PersonState(a.id, st.x + w.disp[0], st.y + w.disp[1], 0.0, 0.0)

    def _pick_side(self, st: PersonState, nx: float, ny: float, lat: float, need: float,
                   radius: float) -> float:
        """The side to pass on: the smaller step that lands on free floor; keep right
        (-1) on a tie (people meeting head-on)."""
        sides = sorted((-1.0, 1.0), key=lambda sd: (round(abs(lat + sd * need), 3), sd))
        for sd in sides:
            off = lat + sd * need
            if self._clearance(st.x + off * nx, st.y + off * ny) >= radius:
                return sd
        return sides[0]
