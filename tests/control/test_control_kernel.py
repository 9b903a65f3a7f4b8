"""One suite for both control kernels (C and pure Python), as CPython tests heapq.

Contract: docs/control.md.  Every test that takes ``kernel_cls`` runs against both
implementations; the C one must be built (``scripts/setup_env.sh``) and is skipped only when
the extension is missing.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitebot.control import kernel as kmod
from sitebot.control.kernel import (Interface, KernelConfig, KernelOutput, Reject, Status,
                                    kernel_config_from_description, kernel_joint_names)
from sitebot.control.kernel_py import ControlKernel as PyKernel
from sitebot.control.types import Heartbeat, Latch
from sitebot.types import StopCategory

NONE, CAT0, CAT1, CAT2 = StopCategory.NONE, StopCategory.CAT0, StopCategory.CAT1, StopCategory.CAT2
SUP = 0x5AFE_0001            # the supervisor source a Rig pins

CFG = KernelConfig(
    n_joints=3,
    pos_min=(-2.0, -2.0, -1.0), pos_max=(2.0, 2.0, 1.0),
    vel_max=(1.0, 1.5, 0.5), acc_max=(2.0, 3.0, 1.0), effort_max=(10.0, 20.0, 5.0),
    kp=(10.0, 10.0, 10.0), kd=(1.0, 1.0, 1.0), interface=Interface.VELOCITY,
    wheel_radius_m=0.1, wheel_separation_m=0.5, wheel_vel_max=20.0,
    base_lin_acc_max=1.0, base_ang_acc_max=2.0, base_lin_vel_max=1.0, base_ang_vel_max=1.5,
    cmd_timeout_s=0.5, heartbeat_timeout_s=0.5, max_points=16)
N = CFG.n_joints
TOL = 1e-12


def _classes() -> dict[str, type | None]:
    return {"python": PyKernel, "c": kmod.CControlKernel}


def both_classes() -> list[type]:
    return [c for c in _classes().values() if c is not None]


class Rig:
    """A kernel, its arrays, a clock t = i * dt, a heartbeat each tick and perfect tracking."""

    def __init__(self, cls, cfg: KernelConfig = CFG, dt: float = 1e-3) -> None:
        self.k = cls(cfg)
        self.cfg = cfg
        self.out = KernelOutput(cfg)
        n = cfg.n_joints
        self.q = np.zeros(n)
        self.qd = np.zeros(n)
        self.wq = np.zeros(2)
        self.wqd = np.zeros(2)
        self.i = 0
        self.dt = dt
        self.t = 0.0
        self.scale = 1.0
        self.cat = NONE
        self.heartbeat = True
        self.track = True
        self.base_cmd: tuple[float, float] | None = None   # sent fresh every tick when set
        self.seq = 0
        self.releases = 1            # the first heartbeat (category NONE) releases START
        assert self.k.pin_supervisor(SUP) is True

    def heartbeat_now(self) -> Heartbeat:
        """One heartbeat from the pinned supervisor: sequence + 1, the current releases."""
        self.seq += 1
        return self.k.set_supervisor(SUP, self.seq, self.releases, self.t, self.scale, self.cat)

    def release(self) -> bool:
        """The supervisor issues a release (a heartbeat with one more release)."""
        self.releases += 1
        return self.heartbeat_now() is Heartbeat.RELEASED

    def tick(self, count: int = 1) -> Status:
        status = Status.OK
        for _ in range(count):
            self.i += 1
            self.t = self.i * self.dt
            if self.heartbeat:
                self.heartbeat_now()
            if self.base_cmd is not None:
                self.k.set_base_command(*self.base_cmd, self.t)
            status = self.k.step(self.t, self.dt, self.q, self.qd, self.wq, self.wqd, self.out)
            assert status == self.out.status
            if self.track:
                self.q[:] = self.out.position
                self.qd[:] = self.out.setpoint_velocity
            self.wq += self.out.wheel_velocity * self.dt
            self.wqd[:] = self.out.wheel_velocity
        return status

    def sample(self, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q, qd, qdd = np.zeros(self.cfg.n_joints), np.zeros(self.cfg.n_joints), \
            np.zeros(self.cfg.n_joints)
        assert self.k.sample(tau, q, qd, qdd)
        return q, qd, qdd


# ======================================================================================
# types and configuration
# ======================================================================================

def test_enums_match_the_contract():
    assert [int(s) for s in Status] == list(range(7))
    assert [int(r) for r in Reject] == list(range(7))
    assert (int(NONE), int(CAT0), int(CAT1), int(CAT2)) == (255, 0, 1, 2)
    assert [int(i) for i in Interface] == [0, 1, 2]


@pytest.mark.parametrize("field, value", [
    ("vel_max", (1.0, -1.0, 1.0)), ("acc_max", (1.0, 1.0)), ("kp", (1.0, math.nan, 1.0)),
    ("pos_min", (3.0, -2.0, -1.0)), ("interface", 7), ("cmd_timeout_s", 0.0),
    ("wheel_radius_m", math.inf), ("max_points", 0), ("n_joints", 0), ("limit_margin", -1.0),
])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        KernelConfig(**{**CFG.__dict__, field: value})


def test_config_from_description():
    from sitebot.description.urdf import load_robot_description
    desc = load_robot_description()
    cfg = kernel_config_from_description(desc)
    names = kernel_joint_names(desc)
    assert names == tuple(desc.arm_joints) + (desc.gripper_joints[0],)
    assert cfg.n_joints == 7
    for i, name in enumerate(names):
        j = desc.joints[name]
        assert (cfg.pos_min[i], cfg.pos_max[i]) == (j.lower, j.upper)
        assert cfg.vel_max[i] == j.velocity_limit
        assert cfg.acc_max[i] == 2.0 * j.velocity_limit
        assert cfg.effort_max[i] == j.effort_limit
    assert cfg.interface is Interface.VELOCITY and cfg.kp == (10.0,) * 7
    assert cfg.wheel_radius_m == desc.wheel_radius_m
    assert cfg.wheel_separation_m == desc.wheel_separation_m
    assert (cfg.base_lin_vel_max, cfg.base_ang_vel_max) == (1.0, 1.5)
    assert (cfg.base_lin_acc_max, cfg.base_ang_acc_max) == (1.0, 2.0)
    assert cfg.cmd_timeout_s == cfg.heartbeat_timeout_s == 0.5
    over = kernel_config_from_description(desc, kp=5.0, interface=Interface.EFFORT,
                                          cmd_timeout_s=0.2)
    assert over.kp == (5.0,) * 7 and over.interface is Interface.EFFORT
    assert over.cmd_timeout_s == 0.2 and over.kd[0] > 0
    with pytest.raises(ValueError, match="valid"):
        kernel_config_from_description(desc, no_such_field=1)


def test_output_layout_is_one_buffer():
    out = KernelOutput(CFG)
    arrays = [out.position, out.velocity, out.effort, out.position_error,
              out.setpoint_velocity, out.wheel_velocity, out.base_velocity, out.odometry]
    assert [a.shape for a in arrays] == [(N,)] * 5 + [(2,), (2,), (5,)]
    assert all(np.shares_memory(a, out._buf) for a in arrays)
    assert out.status is Status.OK and out.trajectory_time_s == 0.0
    assert out.trajectory_active is False


def test_implementation_selection():
    code = "from sitebot.control import kernel as k; print(k.IMPLEMENTATION, k.ControlKernel.__name__)"
    env = dict(os.environ)
    env["SITEBOT_PURE_PYTHON"] = "1"
    forced = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True).stdout.split()
    assert forced[0] == "python"
    env.pop("SITEBOT_PURE_PYTHON")
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
    assert default[0] == ("c" if kmod.CControlKernel is not None else "python")


def test_c_extension_is_built():
    """The extension must be built in this environment (setup_env.sh / pip install -e .)."""
    import importlib
    mod = importlib.import_module("sitebot.control._control_kernel")
    assert mod.MAX_JOINTS == kmod.MAX_JOINTS_C


def test_enums_and_output_layout_have_one_source_the_c_header():
    """The extension builds Status/Reject/Interface from control_kernel.h and exports the
    stop categories and the output layout; the Python fallback tables (used only without
    the extension) and sitebot.types.StopCategory must equal them."""
    ext = pytest.importorskip("sitebot.control._control_kernel")
    from sitebot.control import types as ctypes
    assert Status is ext.Status and Reject is ext.Reject and Interface is ext.Interface
    assert Heartbeat is ext.Heartbeat and Latch is ext.Latch
    assert Status.__module__ == "sitebot.control.types" and Status.__qualname__ == "Status"
    for cls, table in ((ext.Status, ctypes.FALLBACK_STATUS), (ext.Reject, ctypes.FALLBACK_REJECT),
                       (ext.Interface, ctypes.FALLBACK_INTERFACE),
                       (ext.Heartbeat, ctypes.FALLBACK_HEARTBEAT),
                       (ext.Latch, ctypes.FALLBACK_LATCH)):
        assert [(m.name, int(m)) for m in cls] == list(table)
    assert ext.STOP_CATEGORY == {c.name: int(c) for c in StopCategory}
    assert (ext.MAX_JOINTS, ext.MAX_POINTS, ext.SPEED_SLACK) == (
        ctypes.FALLBACK_MAX_JOINTS, ctypes.FALLBACK_MAX_POINTS, ctypes.FALLBACK_SPEED_SLACK)
    for n in (1, 3, 7, 32, 100):
        layout = ext.output_layout(n)
        fallback = {name: (a * n + b, c * n + d) for name, (a, b, c, d) in ctypes.FALLBACK_LAYOUT}
        assert layout == fallback
        spans = sorted(layout.values())            # the fields tile the buffer
        assert spans[0][0] == 0 and sum(length for _, length in spans) == ext.output_size(n)
        assert all(o1 + l1 == o2 for (o1, l1), (o2, _) in zip(spans, spans[1:]))
        assert ctypes.output_layout(n)["size"] == (0, 5 * n + 13)
    out = KernelOutput(CFG)                        # the views follow the layout
    for name, (off, length) in ext.output_layout(N).items():
        if name in ("trajectory_time_s", "trajectory_active", "status", "latch"):
            continue
        assert np.shares_memory(getattr(out, name), out._buf[off:off + length])
        assert getattr(out, name).shape == (length,)
    out._buf[ext.output_layout(N)["status"][0]] = 6.0
    assert out.status is Status.LIMIT_VIOLATION
    k = kmod.CControlKernel(CFG)                   # the C methods return those members
    assert k.set_base_command(0.0, 0.0, 0.0) is Reject.ACCEPTED
    assert k.step(0.0, 1e-3, np.zeros(N), np.zeros(N), np.zeros(2), np.zeros(2),
                  KernelOutput(CFG)) is Status.HEARTBEAT_TIMEOUT


_NO_EXTENSION = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "sitebot.control._control_kernel":
            raise ModuleNotFoundError("blocked for the test", name=name)
sys.meta_path.insert(0, Block())
"""


def test_the_python_reference_runs_without_the_extension():
    code = _NO_EXTENSION + """
import numpy as np
from sitebot.control import kernel as k, types as t
from sitebot.types import StopCategory
assert t._ext is None and k.CControlKernel is None and k.RtLoop is None
assert k.IMPLEMENTATION == "python" and k.ControlKernel is k.PyControlKernel
assert [(m.name, int(m)) for m in t.Status] == list(t.FALLBACK_STATUS)
assert t.output_layout(3)["odometry"] == (19, 5) and t.MAX_POINTS == 100000
cfg = t.KernelConfig(n_joints=3, pos_min=(-1.0,) * 3, pos_max=(1.0,) * 3, vel_max=(1.0,) * 3,
                     acc_max=(2.0,) * 3, effort_max=(1.0,) * 3, kp=(10.0,) * 3, kd=(0.0,) * 3,
                     interface=t.Interface.VELOCITY, wheel_radius_m=0.1,
                     wheel_separation_m=0.5, wheel_vel_max=20.0, base_lin_acc_max=1.0,
                     base_ang_acc_max=2.0, base_lin_vel_max=1.0, base_ang_vel_max=1.5,
                     cmd_timeout_s=0.5, heartbeat_timeout_s=0.5)
kern, out = k.ControlKernel(cfg), t.KernelOutput(cfg)
kern.pin_supervisor(3)
kern.set_supervisor(3, 1, 1, 0.0, 1.0, StopCategory.NONE)
assert kern.set_trajectory([0.5], [[0.5, 0.0, 0.0]]) is t.Reject.ACCEPTED
z = np.zeros(3)
for i in range(1000):
    s = kern.step(i * 1e-3, 1e-3, out.position.copy(), z, np.zeros(2), np.zeros(2), out)
    kern.set_supervisor(3, i + 2, 1, i * 1e-3, 1.0, StopCategory.NONE)
assert s is t.Status.OK and out.position[0] == 0.5, (s, out)
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_no_import_cycle_between_the_selector_and_the_implementations():
    """types and kernel_py never import the selector (kernel.py), which imports them."""
    import ast

    import sitebot.control.kernel_py
    import sitebot.control.types
    for mod in (sitebot.control.kernel_py, sitebot.control.types):
        tree = ast.parse(open(mod.__file__).read())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                     for a in n.names}
        assert "sitebot.control.kernel" not in imported, mod.__name__
    assert kmod.PyControlKernel is sitebot.control.kernel_py.ControlKernel


# ======================================================================================
# trajectory sampling
# ======================================================================================

def _hermite_cubic(t0, t1, p0, v0, p1, v1, tau):
    a = np.array([[1, t0, t0**2, t0**3], [0, 1, 2 * t0, 3 * t0**2],
                  [1, t1, t1**2, t1**3], [0, 1, 2 * t1, 3 * t1**2]], dtype=float)
    c = np.linalg.solve(a, np.array([p0, v0, p1, v1]))
    return (c[0] + c[1] * tau + c[2] * tau**2 + c[3] * tau**3,
            c[1] + 2 * c[2] * tau + 3 * c[3] * tau**2)


def _quintic(t0, t1, p0, v0, a0, p1, v1, a1, tau):
    def rows(t):
        return [[1, t, t**2, t**3, t**4, t**5], [0, 1, 2 * t, 3 * t**2, 4 * t**3, 5 * t**4],
                [0, 0, 2, 6 * t, 12 * t**2, 20 * t**3]]
    c = np.linalg.solve(np.array(rows(t0) + rows(t1), dtype=float),
                        np.array([p0, v0, a0, p1, v1, a1]))
    return (sum(c[i] * tau**i for i in range(6)),
            sum(i * c[i] * tau**(i - 1) for i in range(1, 6)),
            sum(i * (i - 1) * c[i] * tau**(i - 2) for i in range(2, 6)))


def test_cubic_with_velocities(kernel_cls):
    rig = Rig(kernel_cls)
    rig.k.reset(np.array([0.1, -0.2, 0.0]))
    times = np.array([0.5, 1.0, 2.0])
    pos = np.array([[0.3, 0.1, 0.2], [0.6, 0.4, 0.3], [0.2, 0.9, 0.1]])
    vel = np.array([[0.4, 0.6, 0.1], [0.0, 0.3, -0.1], [0.0, 0.0, 0.0]])
    assert rig.k.set_trajectory(times, pos, vel) == Reject.ACCEPTED
    rig.tick()
    q0, qd0, _ = rig.sample(0.0)
    assert np.array_equal(q0, [0.1, -0.2, 0.0]) and np.array_equal(qd0, np.zeros(N))
    for k, t in enumerate(times):           # a point at its time samples to exactly the point
        q, qd, _ = rig.sample(t)
        assert np.array_equal(q, pos[k])
        np.testing.assert_allclose(qd, vel[k], atol=1e-12)
    knots = [(0.0, [0.1, -0.2, 0.0], [0, 0, 0])] + list(zip(times, pos, vel))
    for (ta, pa, va), (tb, pb, vb) in zip(knots, knots[1:]):
        for tau in np.linspace(ta, tb, 7)[1:-1]:
            q, qd, _ = rig.sample(tau)
            for i in range(N):
                eq, eqd = _hermite_cubic(ta, tb, pa[i], va[i], pb[i], vb[i], tau)
                assert q[i] == pytest.approx(eq, abs=1e-12)
                assert qd[i] == pytest.approx(eqd, abs=1e-9)


def test_quintic_with_accelerations(kernel_cls):
    rig = Rig(kernel_cls)
    rig.k.reset(np.zeros(N))
    times = np.array([0.0, 1.0, 2.5])          # point 0 at time 0 is the start
    pos = np.array([[0.0, 0.0, 0.0], [0.5, -0.3, 0.2], [1.0, 0.4, -0.2]])
    vel = np.array([[0.0, 0.0, 0.0], [0.5, 0.2, -0.1], [0.0, 0.0, 0.0]])
    acc = np.array([[0.0, 0.0, 0.0], [-0.5, 0.8, 0.3], [0.0, 0.0, 0.0]])
    assert rig.k.set_trajectory(times, pos, vel, acc) == Reject.ACCEPTED
    rig.tick()
    for k, t in enumerate(times):
        q, qd, qdd = rig.sample(t)
        assert np.array_equal(q, pos[k])
        np.testing.assert_allclose(qd, vel[k], atol=1e-12)
        np.testing.assert_allclose(qdd, acc[k], atol=1e-9)
    for seg in range(2):
        for tau in np.linspace(times[seg], times[seg + 1], 9)[1:-1]:
            q, qd, qdd = rig.sample(tau)
            for i in range(N):
                eq, eqd, eqdd = _quintic(times[seg], times[seg + 1], pos[seg, i], vel[seg, i],
                                         acc[seg, i], pos[seg + 1, i], vel[seg + 1, i],
                                         acc[seg + 1, i], tau)
                assert (q[i], qd[i], qdd[i]) == pytest.approx((eq, eqd, eqdd), abs=1e-9)


def test_estimated_velocities_are_monotone_and_end_at_rest(kernel_cls):
    rig = Rig(kernel_cls)
    rig.k.reset(np.zeros(N))
    times = np.array([0.5, 1.0, 1.5, 2.0])
    pos = np.array([[0.2, 0.0, 0.1], [0.5, -0.3, 0.1], [0.6, -0.2, 0.15], [0.9, 0.0, 0.2]])
    assert rig.k.set_trajectory(times, pos) == Reject.ACCEPTED
    rig.tick()
    for k, t in enumerate(times):
        q, _, _ = rig.sample(t)
        assert np.array_equal(q, pos[k])
    _, qd_end, _ = rig.sample(2.0)
    assert np.array_equal(qd_end, np.zeros(N))
    _, qd1, _ = rig.sample(1.0)              # joint 0 rises through point 1: positive slope
    assert 0.0 < qd1[0] <= 3 * min(0.3 / 0.5, 0.1 / 0.5) + 1e-12
    assert qd1[1] == 0.0                      # joint 1 turns at point 1: zero velocity
    grid = np.linspace(0.0, 2.0, 401)
    j0 = [rig.sample(t)[0][0] for t in grid]
    assert np.all(np.diff(j0) >= -1e-12)     # monotone data stays monotone (no overshoot)


def test_trajectory_runs_to_the_exact_end_point(kernel_cls):
    rig = Rig(kernel_cls)
    rig.k.reset(np.zeros(N))
    end = np.array([0.7, -0.4, 0.3])
    assert rig.k.set_trajectory([1.0, 2.0], [[0.3, -0.2, 0.1], end]) == Reject.ACCEPTED
    rig.tick()
    assert rig.out.trajectory_active
    assert abs(rig.out.position[0]) < 1e-6     # starts where the setpoint was
    rig.tick(2100)
    assert np.array_equal(rig.out.position, end)
    assert np.array_equal(rig.out.setpoint_velocity, np.zeros(N))
    assert not rig.out.trajectory_active and rig.out.trajectory_time_s == 2.0
    assert rig.out.status is Status.OK


def test_start_time_in_the_future_waits(kernel_cls):
    rig = Rig(kernel_cls)
    rig.k.reset(np.zeros(N))
    assert rig.k.set_trajectory([0.5], [[0.5, 0.0, 0.0]], start_time_s=0.3) == Reject.ACCEPTED
    rig.tick(299)
    assert rig.out.trajectory_active and rig.out.trajectory_time_s == 0.0
    assert rig.out.position[0] == 0.0
    rig.tick(2)
    assert rig.out.trajectory_time_s > 0.0 and rig.out.position[0] > 0.0


# ======================================================================================
# limits
# ======================================================================================

def _check_limits(cfg: KernelConfig, out: KernelOutput, prev_spv: np.ndarray, dt: float,
                  accel_exempt: bool = False) -> None:
    lo, hi = np.array(cfg.pos_min), np.array(cfg.pos_max)
    vmax, amax, emax = np.array(cfg.vel_max), np.array(cfg.acc_max), np.array(cfg.effort_max)
    assert np.all(out.position >= lo) and np.all(out.position <= hi)
    assert np.all(np.abs(out.velocity) <= vmax)
    assert np.all(np.abs(out.setpoint_velocity) <= vmax)
    assert np.all(np.abs(out.effort) <= emax)
    dv = np.abs(out.setpoint_velocity - prev_spv)
    ok = dv <= amax * dt * (1 + 1e-9) + TOL
    if accel_exempt:
        ok |= out.setpoint_velocity == 0.0
    assert np.all(ok), (dv, amax * dt)
    assert np.all(np.abs(out.wheel_velocity) <= cfg.wheel_vel_max * (1 + 1e-12))
    assert abs(out.base_velocity[0]) <= cfg.base_lin_vel_max * (1 + 1e-12)
    assert abs(out.base_velocity[1]) <= cfg.base_ang_vel_max * (1 + 1e-12)
    assert np.all(np.isfinite(out._buf))


@pytest.mark.parametrize("interface", [Interface.VELOCITY, Interface.EFFORT])
def test_limits_are_never_exceeded(kernel_cls, interface):
    cfg = KernelConfig(**{**CFG.__dict__, "interface": interface,
                          "kp": (300.0, 300.0, 300.0), "kd": (20.0, 20.0, 20.0)})
    rig = Rig(kernel_cls, cfg)
    rig.k.reset(np.zeros(N))
    rig.track = False
    # feasible on average, but the cubic's peaks exceed vel_max and acc_max
    assert rig.k.set_trajectory([1.0, 2.0, 2.6, 4.0],
                                [[0.95, 1.35, 0.45], [0.0, -0.1, -0.05],
                                 [0.5, 0.7, 0.2], [1.8, 1.9, 0.85]]) == Reject.ACCEPTED
    rig.k.set_base_command(3.0, 4.0, 0.0)
    peak = np.zeros(N)
    for i in range(4000):
        prev = rig.out.setpoint_velocity.copy()
        if i % 400 == 0:
            rig.k.set_base_command(3.0 * (-1) ** (i // 400), 4.0, rig.t)
        rig.tick()
        _check_limits(cfg, rig.out, prev, rig.dt)
        peak = np.maximum(peak, np.abs(rig.out.setpoint_velocity))
        rig.q += 0.3 * (rig.out.position - rig.q) + 0.01 * math.sin(i)  # lagging, noisy
        rig.qd[:] = rig.out.setpoint_velocity * 0.8
    assert np.all(peak > 0.9 * np.array(cfg.vel_max))   # the limits were actually reached


def test_speed_scale_halves_progress_on_the_same_path(kernel_cls):
    full, half = Rig(kernel_cls), Rig(kernel_cls)
    half.scale = 0.5
    for rig in (full, half):
        rig.k.reset(np.zeros(N))
        assert rig.k.set_trajectory([1.0, 2.0], [[0.3, -0.3, 0.1], [0.6, 0.0, -0.05]],
                                    accelerations=np.zeros((2, N)),
                                    velocities=np.zeros((2, N))) == Reject.ACCEPTED
    for _ in range(1000):
        full.tick()
        half.tick(2)
        assert half.out.trajectory_time_s == pytest.approx(full.out.trajectory_time_s, abs=1e-12)
        np.testing.assert_allclose(half.out.position, full.out.position, atol=1e-9)
        np.testing.assert_allclose(half.out.setpoint_velocity,
                                   0.5 * full.out.setpoint_velocity, atol=1e-9)
    assert full.out.trajectory_time_s == pytest.approx(1.0)


def test_measured_position_beyond_a_limit_holds_and_does_not_push_further(kernel_cls):
    rig = Rig(kernel_cls)
    rig.k.reset(np.array([1.9, 0.0, 0.0]))
    rig.k.set_trajectory([2.0], [[1.95, 0.5, 0.0]])
    rig.tick(100)
    tau = rig.out.trajectory_time_s
    rig.track = False
    rig.q[0] = 2.1                          # beyond pos_max = 2
    rig.qd[0] = 0.2
    assert rig.tick() is Status.LIMIT_VIOLATION
    assert rig.out.trajectory_time_s == tau
    assert rig.out.velocity[0] <= 0.0 and rig.out.effort[0] <= 0.0
    assert np.array_equal(rig.out.setpoint_velocity, np.zeros(N))
    rig.q[0] = 1.95
    assert rig.tick() is Status.OK


# ======================================================================================
# stops
# ======================================================================================

def _moving_rig(cls) -> Rig:
    rig = Rig(cls)
    rig.k.reset(np.zeros(N))
    assert rig.k.set_trajectory([0.5, 3.0], [[0.2, 0.1, 0.0], [1.8, 1.6, 0.5]]) == Reject.ACCEPTED
    rig.base_cmd = (0.8, 0.5)
    rig.tick(1500)
    assert np.abs(rig.out.setpoint_velocity).max() > 0.4
    assert rig.out.base_velocity[0] == pytest.approx(0.8)
    return rig


def test_category1_decelerates_within_limits_then_holds(kernel_cls):
    rig = _moving_rig(kernel_cls)
    v0 = np.abs(rig.out.setpoint_velocity).copy()
    b0 = rig.out.base_velocity.copy()
    rig.cat = CAT1
    t_stop = rig.t
    seen = []
    while True:
        prev_spv, prev_base = rig.out.setpoint_velocity.copy(), rig.out.base_velocity.copy()
        status = rig.tick()                 # the base is still commanded: ignored in a stop
        seen.append(status)
        _check_limits(CFG, rig.out, prev_spv, rig.dt)
        assert np.all(np.abs(rig.out.setpoint_velocity) <= np.abs(prev_spv))
        assert abs(rig.out.base_velocity[0] - prev_base[0]) <= CFG.base_lin_acc_max * rig.dt + TOL
        assert abs(rig.out.base_velocity[1] - prev_base[1]) <= CFG.base_ang_acc_max * rig.dt + TOL
        if status is Status.STOPPED:
            break
        assert status is Status.STOPPING
        assert rig.t - t_stop < 2.0
    t_arm = 2 * max(v0 / np.array(CFG.acc_max))
    t_base = max(b0[0] / CFG.base_lin_acc_max, b0[1] / CFG.base_ang_acc_max)
    assert rig.t - t_stop <= max(t_arm, t_base) + 2 * rig.dt
    held = rig.out.position.copy()
    for _ in range(1000):
        assert rig.tick() is Status.STOPPED
        assert np.array_equal(rig.out.position, held)
        assert not rig.out.setpoint_velocity.any() and not rig.out.wheel_velocity.any()


def test_no_joint_speeds_up_during_a_stop_while_the_path_accelerates_it(kernel_cls):
    rig = Rig(kernel_cls)
    rig.k.reset(np.zeros(N))
    # joint 0 cruises at its limit; joint 2 starts accelerating when the stop comes
    times = np.array([1.0, 2.0])
    pos = np.array([[0.5, 0.0, 0.0], [1.5, 0.0, 0.35]])
    vel = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.5]])
    acc = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert rig.k.set_trajectory(times, pos, vel, acc) == Reject.ACCEPTED
    rig.tick(1000)
    rig.cat = CAT1
    for _ in range(1000):
        prev = np.abs(rig.out.setpoint_velocity).copy()
        rig.tick()
        assert np.all(np.abs(rig.out.setpoint_velocity) <= prev), (rig.out.setpoint_velocity, prev)
    assert rig.out.status is Status.STOPPED


def test_category2_behaves_like_category1(kernel_cls):
    a, b = _moving_rig(kernel_cls), _moving_rig(kernel_cls)
    a.cat, b.cat = CAT1, CAT2
    for _ in range(1000):
        assert a.tick() == b.tick()
        assert np.array_equal(a.out._buf, b.out._buf)


def test_category0_stops_at_once(kernel_cls):
    rig = _moving_rig(kernel_cls)
    held = rig.out.position.copy()
    rig.cat = CAT0
    assert rig.tick() is Status.STOPPED
    out = rig.out
    assert not out.setpoint_velocity.any() and not out.velocity.any()
    assert not out.effort.any() and not out.wheel_velocity.any() and not out.base_velocity.any()
    np.testing.assert_allclose(out.position, held, atol=2e-3)   # held where it was
    held = out.position.copy()
    rig.tick(100)
    assert np.array_equal(out.position, held) and out.status is Status.STOPPED


def test_release_is_refused_while_a_stop_is_requested(kernel_cls):
    rig = _moving_rig(kernel_cls)
    rig.cat = CAT1
    rig.tick(1000)
    assert rig.out.status is Status.STOPPED
    assert rig.release() is False
    rig.cat = NONE
    rig.tick(10)
    assert rig.out.status is Status.STOPPED     # latched until released
    assert rig.out.latch == Latch.STOP
    tau = rig.out.trajectory_time_s
    assert rig.release() is True
    rig.tick(200)
    assert rig.out.status is Status.OK and rig.out.trajectory_time_s > tau


def test_heartbeat_timeout_stops_and_latches(kernel_cls):
    rig = _moving_rig(kernel_cls)
    rig.heartbeat = False
    last_hb = rig.t
    while rig.t - last_hb <= CFG.heartbeat_timeout_s - rig.dt / 2:
        assert rig.tick() in (Status.OK,)
    prev = np.abs(rig.out.setpoint_velocity).copy()
    assert rig.tick() is Status.HEARTBEAT_TIMEOUT
    for _ in range(3000):
        assert np.all(np.abs(rig.out.setpoint_velocity) <= prev)
        prev = np.abs(rig.out.setpoint_velocity).copy()
        assert rig.tick() is Status.HEARTBEAT_TIMEOUT
    assert not rig.out.setpoint_velocity.any() and not rig.out.wheel_velocity.any()
    rig.heartbeat = True
    assert rig.tick() is Status.STOPPED
    assert rig.out.latch == Latch.HEARTBEAT
    assert rig.release() is True
    assert rig.tick() is Status.OK


def test_no_heartbeat_yet_means_no_motion(kernel_cls):
    rig = Rig(kernel_cls)
    rig.heartbeat = False
    rig.k.reset(np.zeros(N))
    rig.k.set_trajectory([1.0], [[0.5, 0.5, 0.5]])
    for _ in range(100):
        rig.k.set_base_command(0.5, 0.0, rig.t)
        assert rig.tick() is Status.HEARTBEAT_TIMEOUT
    assert not rig.out.position.any() and not rig.out.wheel_velocity.any()


@given(st.lists(st.tuples(
    st.sampled_from(["step", "traj", "base", "sup", "gap", "release", "nan", "reset"]),
    st.integers(1, 60), st.floats(-1.0, 1.0), st.floats(-1.0, 1.0),
    st.sampled_from([NONE, NONE, NONE, CAT0, CAT1, CAT2]), st.floats(0.0, 1.0)),
    min_size=1, max_size=40))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_no_limit_exceeded_and_stops_never_speed_up(actions):
    for cls in both_classes():
        _run_property(cls, actions)


def _run_property(cls, actions) -> None:
    rig = Rig(cls, dt=2e-3)
    rig.track = False
    rig.heartbeat_now()
    latched = False                 # the harness's model of the kernel's stop latch
    last_hb = 0.0

    after_reset = False

    def one_tick(nan: bool = False) -> None:
        nonlocal latched, last_hb, after_reset
        prev = rig.out._buf.copy()
        rig.i += 1
        rig.t = rig.i * rig.dt
        if rig.heartbeat:
            rig.heartbeat_now()
            last_hb = rig.t
        if rig.t - last_hb > CFG.heartbeat_timeout_s:
            latched = True
        q = rig.q.copy()
        if nan:
            q[1] = math.nan
        status = rig.k.step(rig.t, rig.dt, q, rig.qd, rig.wq, rig.wqd, rig.out)
        out = rig.out
        prev_spv, prev_speeds = prev[4 * N:5 * N], prev[4 * N:5 * N + 4]
        _check_limits(CFG, out, prev_spv, rig.dt, accel_exempt=True)
        exempt = after_reset or status is Status.INVALID_INPUT or (latched and rig.cat is CAT0)
        after_reset = False
        if not exempt:              # reset, CAT0 and invalid input brake the base at once
            db = np.abs(out.base_velocity - prev[5 * N + 2:5 * N + 4])
            assert db[0] <= CFG.base_lin_acc_max * rig.dt * (1 + 1e-9) + TOL
            assert db[1] <= CFG.base_ang_acc_max * rig.dt * (1 + 1e-9) + TOL
        if latched:
            # setpoint velocities, wheel speeds and (v, w): never faster until released
            assert status is not Status.OK
            speeds = out._buf[4 * N:5 * N + 4]
            assert np.all(np.abs(speeds) <= np.abs(prev_speeds) + TOL), (speeds, prev_speeds)
        rig.q += 0.5 * (out.position - rig.q)
        rig.qd[:] = out.velocity
        rig.wq += out.wheel_velocity * rig.dt
        rig.wqd[:] = out.wheel_velocity

    for kind, count, x, y, cat, scale in actions:
        if kind == "step":
            for _ in range(count):
                one_tick()
        elif kind == "traj":
            rng = np.random.default_rng(count)
            times = np.cumsum(rng.uniform(0.05, 0.5, size=1 + count % 5))
            pos = rng.uniform(-0.9, 0.9, size=(len(times), N))
            rig.k.set_trajectory(times, pos)
        elif kind == "base":
            rig.k.set_base_command(2.0 * x, 3.0 * y, rig.t)
        elif kind == "sup":
            rig.scale, rig.cat = scale, cat
            if cat is not NONE:
                latched = True
        elif kind == "gap":
            rig.heartbeat = False
            for _ in range(count * 10):
                one_tick()
            rig.heartbeat = True
        elif kind == "release":
            if rig.release():
                assert rig.cat is NONE
                latched = False
        elif kind == "nan":
            one_tick(nan=True)
        elif kind == "reset":
            rig.k.reset(np.clip(rig.q, -0.9, 0.9))
            after_reset = True
        one_tick()


# ======================================================================================
# base
# ======================================================================================

def test_command_timeout_brakes_within_v_over_a_plus_one_tick(kernel_cls):
    rig = Rig(kernel_cls)
    rig.k.set_base_command(0.8, 0.0, 0.0)
    while rig.t < CFG.cmd_timeout_s - rig.dt / 2:
        assert rig.tick() is Status.OK
    v_at_timeout = rig.out.base_velocity[0]
    assert v_at_timeout > 0.4
    t_timeout = rig.t
    braked_at = None
    for _ in range(2000):
        prev = rig.out.base_velocity[0]
        assert rig.tick() is Status.COMMAND_TIMEOUT
        assert prev - rig.out.base_velocity[0] <= CFG.base_lin_acc_max * rig.dt + TOL
        if braked_at is None and not rig.out.wheel_velocity.any():
            braked_at = rig.t
    assert braked_at is not None
    assert braked_at - t_timeout <= v_at_timeout / CFG.base_lin_acc_max + rig.dt + 1e-9


def test_non_finite_base_command_is_rejected_and_brakes(kernel_cls):
    rig = Rig(kernel_cls)
    for _ in range(600):
        rig.k.set_base_command(0.5, 0.0, rig.t)
        rig.tick()
    assert rig.k.set_base_command(math.nan, 0.0, rig.t) is Reject.NON_FINITE
    assert rig.k.set_base_command(0.5, math.inf, rig.t) is Reject.NON_FINITE
    assert rig.k.set_base_command(0.5, 0.0, math.nan) is Reject.NON_FINITE
    rig.tick(600)
    assert rig.out.status is Status.COMMAND_TIMEOUT and not rig.out.wheel_velocity.any()


@pytest.mark.parametrize("v, w, wheels", [
    (0.5, 0.0, (5.0, 5.0)), (0.0, 1.0, (-2.5, 2.5)), (0.5, 1.0, (2.5, 7.5)),
    (-0.3, -0.4, (-2.0, -4.0))])
def test_diff_drive_wheel_speeds(kernel_cls, v, w, wheels):
    rig = Rig(kernel_cls)
    for _ in range(1500):
        rig.k.set_base_command(v, w, rig.t)
        rig.tick()
    np.testing.assert_allclose(rig.out.wheel_velocity, wheels, atol=1e-12)
    np.testing.assert_allclose(rig.out.base_velocity, (v, w), atol=1e-12)


@pytest.mark.parametrize("cmd, expect", [
    ((0.5, 1.0), (0.4, 0.8)),        # wheel limit 6 rad/s: right wheel 7.5 -> 6, both x0.8
    ((2.0, 2.0), (0.48, 0.48)),      # base limits x0.5 -> (1, 1): wheels 12.5 -> 6, x0.48
])
def test_clamping_keeps_the_curvature(kernel_cls, cmd, expect):
    cfg = KernelConfig(**{**CFG.__dict__, "wheel_vel_max": 6.0})
    rig = Rig(kernel_cls, cfg)
    for _ in range(3000):
        rig.k.set_base_command(cmd[0], cmd[1], rig.t)
        rig.tick()
    v, w = rig.out.base_velocity
    assert w / v == pytest.approx(cmd[1] / cmd[0], rel=1e-12)
    np.testing.assert_allclose((v, w), expect, rtol=1e-12)
    wl, wr = rig.out.wheel_velocity
    assert max(abs(wl), abs(wr)) <= 6.0 * (1 + 1e-12)
    assert (wl, wr) == pytest.approx(((v - w * 0.25) / 0.1, (v + w * 0.25) / 0.1), abs=1e-12)


def test_speed_scale_caps_the_base(kernel_cls):
    """The scale is a cap (scale x the base limits, curvature kept), not a multiplier: the
    supervisor's commands are already limited and must not be slowed twice."""
    rig = Rig(kernel_cls)
    rig.scale = 0.25
    lim_v = 0.25 * CFG.base_lin_vel_max
    lim_w = 0.25 * CFG.base_ang_vel_max
    for _ in range(1500):
        rig.k.set_base_command(0.8, 0.4, rig.t)
        rig.tick()
    f = min(1.0, lim_v / 0.8, lim_w / 0.4)
    np.testing.assert_allclose(rig.out.base_velocity, (0.8 * f, 0.4 * f), atol=1e-12)
    assert abs(rig.out.base_velocity[0]) <= lim_v + 1e-12
    # a command inside the cap passes unchanged
    for _ in range(1500):
        rig.k.set_base_command(0.1, 0.05, rig.t)
        rig.tick()
    np.testing.assert_allclose(rig.out.base_velocity, (0.1, 0.05), atol=1e-12)


def test_odometry_of_known_wheel_motions(kernel_cls):
    r, sep = CFG.wheel_radius_m, CFG.wheel_separation_m
    rig = Rig(kernel_cls)
    k, out = rig.k, rig.out

    def drive(left_rad_s: float, right_rad_s: float, seconds: float) -> None:
        steps = int(round(seconds / rig.dt))
        rig.wqd[:] = (left_rad_s, right_rad_s)
        for _ in range(steps):
            rig.i += 1
            rig.wq += rig.wqd * rig.dt
            rig.t = rig.i * rig.dt
            rig.heartbeat_now()
            k.step(rig.i * rig.dt, rig.dt, rig.q, rig.qd, rig.wq, rig.wqd, out)

    drive(0.0, 0.0, rig.dt)                  # the first tick takes the wheel positions
    drive(5.0, 5.0, 2.0)                     # straight: 10 rad * 0.1 m = 1 m
    np.testing.assert_allclose(out.odometry, (1.0, 0.0, 0.0, 0.5, 0.0), atol=1e-9)
    drive(-2.0, 2.0, 1.0)                    # in place: yaw = r * 4 rad / sep = 0.8 rad
    np.testing.assert_allclose(out.odometry[:3], (1.0, 0.0, 0.8), atol=1e-9)
    np.testing.assert_allclose(out.odometry[3:], (0.0, r * 4.0 / sep), atol=1e-12)
    # an arc: v = 0.3 m/s, w = 0.6 rad/s for 2 s, starting at (1, 0, 0.8)
    v, w = 0.3, 0.6
    drive((v - w * sep / 2) / r, (v + w * sep / 2) / r, 2.0)
    radius, yaw0, yaw1 = v / w, 0.8, 0.8 + w * 2.0
    expect = (1.0 + radius * (math.sin(yaw1) - math.sin(yaw0)),
              0.0 - radius * (math.cos(yaw1) - math.cos(yaw0)), yaw1)
    np.testing.assert_allclose(out.odometry[:3], expect, atol=1e-9)
    np.testing.assert_allclose(out.odometry[3:], (v, w), atol=1e-12)
    drive(0.0, 2 * math.pi * sep / (2 * r) / 1.0, 1.0)   # yaw wraps into (-pi, pi]
    assert -math.pi <= out.odometry[2] <= math.pi


# ======================================================================================
# invalid input and rejects
# ======================================================================================

@pytest.mark.parametrize("where", ["q", "qd", "wheel_q", "wheel_qd", "t", "dt", "dt0"])
def test_non_finite_input_holds_and_brakes(kernel_cls, where):
    rig = _moving_rig(kernel_cls)
    held = rig.out.position.copy()
    assert rig.out.wheel_velocity.any()
    q, qd, wq, wqd = rig.q.copy(), rig.qd.copy(), rig.wq.copy(), rig.wqd.copy()
    t, dt = rig.t + rig.dt, rig.dt
    if where == "q":
        q[1] = math.nan
    elif where == "qd":
        qd[0] = math.inf
    elif where == "wheel_q":
        wq[1] = -math.inf
    elif where == "wheel_qd":
        wqd[0] = math.nan
    elif where == "t":
        t = math.nan
    elif where == "dt":
        dt = math.inf
    else:
        dt = 0.0
    rig.heartbeat_now()
    assert rig.k.step(t, dt, q, qd, wq, wqd, rig.out) is Status.INVALID_INPUT
    out = rig.out
    assert np.array_equal(out.position, held)           # the last safe setpoint
    assert not out.velocity.any() and not out.setpoint_velocity.any()
    assert not out.effort.any() and not out.wheel_velocity.any()
    assert not out.base_velocity.any()
    assert np.all(np.isfinite(out._buf))
    assert rig.tick() is Status.OK                      # recovers, ramping up again
    assert np.all(np.abs(out.wheel_velocity) * CFG.wheel_radius_m
                  <= CFG.base_lin_acc_max * rig.dt + CFG.base_ang_acc_max * rig.dt * 0.25 + TOL)


def _bad_trajectories():
    good_t = np.array([0.5, 1.0])
    good_p = np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2]])
    too_many = np.arange(1, CFG.max_points + 2) * 0.1
    return [
        (Reject.WRONG_SIZE, (good_t, good_p[:, :2]), {}),
        (Reject.WRONG_SIZE, (good_t, good_p[:1]), {}),
        (Reject.WRONG_SIZE, (good_t.reshape(1, 2), good_p), {}),
        (Reject.WRONG_SIZE, (good_t, good_p[0]), {}),
        (Reject.WRONG_SIZE, (good_t, good_p), {"velocities": np.zeros((3, N))}),
        (Reject.WRONG_SIZE, (good_t, good_p), {"accelerations": np.zeros((2, N + 1))}),
        (Reject.NON_FINITE, (good_t, np.where(good_p == 0.2, math.nan, good_p)), {}),
        (Reject.NON_FINITE, (np.array([0.5, math.inf]), good_p), {}),
        (Reject.NON_FINITE, (good_t, good_p), {"velocities": np.full((2, N), math.nan)}),
        (Reject.NON_FINITE, (good_t, good_p), {"start_time_s": math.nan}),
        (Reject.NON_MONOTONIC_TIME, (np.array([1.0, 0.5]), good_p), {}),
        (Reject.NON_MONOTONIC_TIME, (np.array([0.5, 0.5]), good_p), {}),
        (Reject.NON_MONOTONIC_TIME, (np.array([-0.1, 0.5]), good_p), {}),
        (Reject.OUT_OF_LIMITS, (good_t, np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 1.5]])), {}),
        (Reject.OUT_OF_LIMITS, (good_t, good_p), {"velocities": np.full((2, N), 0.9)}),
        (Reject.OUT_OF_LIMITS, (good_t, good_p),
         {"velocities": np.zeros((2, N)), "accelerations": np.full((2, N), 2.5)}),
        (Reject.OUT_OF_LIMITS, (np.array([0.5, 0.6]), np.array([[0, 0, 0], [0.5, 0, 0.]])), {}),
        (Reject.TOO_MANY_POINTS, (too_many, np.zeros((len(too_many), N))), {}),
        (Reject.EMPTY, (np.zeros(0), np.zeros((0, N))), {}),
    ]


def test_every_reject_leaves_the_active_trajectory_unchanged(kernel_cls):
    test, twin = Rig(kernel_cls), Rig(kernel_cls)
    for rig in (test, twin):
        rig.k.reset(np.zeros(N))
        assert rig.k.set_trajectory([1.0, 2.0], [[0.5, -0.5, 0.2], [0.9, 0.3, -0.3]]) \
            == Reject.ACCEPTED
        rig.tick(300)
    for expected, args, kwargs in _bad_trajectories():
        assert test.k.set_trajectory(*args, **kwargs) == expected, (expected, args, kwargs)
        test.tick(50)
        twin.tick(50)
        assert np.array_equal(test.out._buf, twin.out._buf), expected
    q1, _, _ = test.sample(1.0)
    assert np.array_equal(q1, [0.5, -0.5, 0.2])


def test_a_reject_keeps_a_pending_trajectory(kernel_cls):
    rig = Rig(kernel_cls)
    rig.k.reset(np.zeros(N))
    assert rig.k.set_trajectory([0.5], [[0.3, 0.0, 0.0]], start_time_s=0.1) == Reject.ACCEPTED
    assert rig.k.set_trajectory([0.5], [[3.0, 0.0, 0.0]]) == Reject.OUT_OF_LIMITS
    rig.tick(1000)
    assert np.array_equal(rig.out.position, [0.3, 0.0, 0.0])


def test_reset_holds_and_clears(kernel_cls):
    rig = _moving_rig(kernel_cls)
    rig.base_cmd = None
    assert rig.out.odometry[0] > 0.5
    rig.k.reset(np.array([0.1, 0.2, 5.0]))
    rig.q[:] = (0.1, 0.2, 1.0)
    assert rig.tick() is Status.OK                               # no old base command
    assert np.array_equal(rig.out.position, [0.1, 0.2, 1.0])    # clamped to pos_max
    assert not rig.out.trajectory_active and not rig.out.setpoint_velocity.any()
    assert not rig.out.wheel_velocity.any() and not rig.out.odometry[:3].any()
    with pytest.raises(ValueError, match="positions"):
        rig.k.reset(np.zeros(N + 1))
    with pytest.raises(ValueError, match="positions"):
        rig.k.reset(np.array([0.0, math.nan, 0.0]))


def test_unknown_stop_category_raises(kernel_cls):
    k = kernel_cls(CFG)
    k.pin_supervisor(SUP)
    with pytest.raises(ValueError, match="stop_category"):
        k.set_supervisor(SUP, 1, 1, 0.0, 1.0, 7)
    assert k.latch == Latch.START                     # nothing changed


# ======================================================================================
# C and Python agree
# ======================================================================================

def _random_session(cls, seed: int, ticks: int) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    rig = Rig(cls)
    rig.track = False
    outs = np.zeros((ticks, len(rig.out._buf)))
    results: list = []
    hb = True
    for i in range(ticks):
        u = rng.random()
        if u < 0.01:
            times = np.cumsum(rng.uniform(0.05, 0.6, size=rng.integers(1, 8)))
            pos = rng.uniform(-0.95, 0.95, size=(len(times), N))
            pos[:, 2] *= 0.5
            kw = {}
            if rng.random() < 0.4:
                kw["velocities"] = rng.uniform(-0.2, 0.2, size=pos.shape)
                if rng.random() < 0.5:
                    kw["accelerations"] = rng.uniform(-0.5, 0.5, size=pos.shape)
            if rng.random() < 0.3:
                kw["start_time_s"] = rig.t + rng.uniform(-0.1, 0.3)
            results.append(rig.k.set_trajectory(times, pos, **kw))
        elif u < 0.03:
            results.append(rig.k.set_base_command(rng.uniform(-1.5, 1.5), rng.uniform(-2, 2),
                                                  rig.t - rng.uniform(0, 0.3)))
        elif u < 0.035:
            rig.scale = float(rng.uniform(0, 1))
            rig.cat = [NONE, NONE, CAT1, CAT0, CAT2][rng.integers(0, 5)]
        elif u < 0.04:
            results.append(rig.release())
        elif u < 0.042:
            hb = not hb
        rig.heartbeat = hb
        rig.dt = float(rng.uniform(5e-4, 2e-3))
        rig.i = 0
        rig.t += rig.dt
        if hb:
            results.append(rig.heartbeat_now())
        q = rig.q + rng.normal(0, 1e-3, N)
        if rng.random() < 0.002:
            q[0] = math.nan
        results.append(rig.k.step(rig.t, rig.dt, q, rig.qd, rig.wq, rig.wqd, rig.out))
        outs[i] = rig.out._buf
        rig.q += 0.5 * (rig.out.position - rig.q)
        rig.qd[:] = rig.out.velocity
        rig.wq += rig.out.wheel_velocity * rig.dt
        rig.wqd[:] = rig.out.wheel_velocity
    return outs, results


def test_c_and_python_agree_over_a_long_random_sequence():
    if kmod.CControlKernel is None:
        pytest.skip("sitebot.control._control_kernel is not built")
    for seed in (1, 2):
        a, ra = _random_session(PyKernel, seed, 6000)
        b, rb = _random_session(kmod.CControlKernel, seed, 6000)
        assert [int(x) for x in ra] == [int(x) for x in rb]
        assert np.max(np.abs(a - b)) <= 1e-9
        assert len({int(s) for s in a[:, -2]}) >= 4     # the session visited several states
        assert len({int(s) for s in a[:, -1]}) >= 3     # and several stop latch causes


# ======================================================================================
# argument checking (both) and binding robustness (C)
# ======================================================================================

def test_step_arguments_are_checked(kernel_cls):
    k, out = kernel_cls(CFG), KernelOutput(CFG)
    z, w = np.zeros(N), np.zeros(2)
    cases = [
        (ValueError, "'q'", (np.zeros(N + 1), z, w, w, out)),
        (ValueError, "'qd'", (z, np.zeros(N - 1), w, w, out)),
        (ValueError, "'wheel_q'", (z, z, np.zeros(3), w, out)),
        (ValueError, "'wheel_qd'", (z, z, w, np.zeros((2, 1)), out)),
        (TypeError, "'q'", (np.zeros(N, dtype=np.float32), z, w, w, out)),
        (TypeError, "'qd'", (z, np.zeros(N, dtype=np.int64), w, w, out)),
        (TypeError, "'wheel_q'", (z, z, [0.0, 0.0], w, out)),
        (TypeError, "'out'", (z, z, w, w, object())),
        ((TypeError, ValueError), "'out'", (z, z, w, w, KernelOutput(N + 1))),
    ]
    for exc, name, args in cases:
        with pytest.raises(exc, match=name):
            k.step(0.0, 1e-3, *args)
    assert k.step(0.0, 1e-3, z, z, w, w, out) is not None       # still works


@pytest.fixture
def raw_c():
    ext = pytest.importorskip("sitebot.control._control_kernel")
    return ext


def test_binding_rejects_non_contiguous_and_read_only(raw_c):
    k, out = raw_c.ControlKernel(CFG), KernelOutput(CFG)
    z, w = np.zeros(N), np.zeros(2)
    with pytest.raises(ValueError, match="'q'.*contiguous"):
        k.step(0.0, 1e-3, np.zeros(2 * N)[::2], z, w, w, out)
    ro = KernelOutput(CFG)
    ro._buf.flags.writeable = False
    with pytest.raises(ValueError, match="'out'"):
        k.step(0.0, 1e-3, z, z, w, w, ro)
    t, p = np.array([0.5, 1.0]), np.zeros((2, N))
    with pytest.raises(TypeError, match="'times_s'"):
        k.set_trajectory(t.astype(np.float32), p)
    with pytest.raises(TypeError, match="'positions'"):
        k.set_trajectory(t, [[0.0] * N] * 2)
    with pytest.raises(ValueError, match="'positions'.*contiguous"):
        k.set_trajectory(t, np.zeros((N, 2)).T)
    with pytest.raises(ValueError, match="'velocities'.*contiguous"):
        k.set_trajectory(t, p, np.zeros((2, 2 * N))[:, ::2])
    with pytest.raises(TypeError, match="'accelerations'"):
        k.set_trajectory(t, p, None, "abc")
    with pytest.raises(TypeError, match="start_time_s"):
        k.set_trajectory(t, p, start_time_s="soon")
    with pytest.raises(ValueError, match="'positions'"):
        k.reset(np.zeros(N + 1))
    with pytest.raises(TypeError, match="'v_mps'"):
        k.set_base_command("fast", 0.0, 0.0)
    with pytest.raises(TypeError):
        k.step(0.0, 1e-3, z, z, w, w)
    with pytest.raises(TypeError, match="'t_s'"):
        k.step(None, 1e-3, z, z, w, w, out)
    assert k.set_trajectory(t, p) == Reject.ACCEPTED
    assert k.step(0.0, 1e-3, z, z, w, w, out) is Status.HEARTBEAT_TIMEOUT


def test_binding_survives_misuse(raw_c):
    blank = raw_c.ControlKernel.__new__(raw_c.ControlKernel)   # never initialised
    out, z, w = KernelOutput(CFG), np.zeros(N), np.zeros(2)
    with pytest.raises(RuntimeError):
        blank.step(0.0, 1e-3, z, z, w, w, out)
    with pytest.raises(RuntimeError):
        blank.pin_supervisor(1)
    with pytest.raises(RuntimeError):
        blank.set_supervisor(1, 1, 1, 0.0, 1.0, 255)
    with pytest.raises(ValueError, match="n_joints"):
        raw_c.ControlKernel(KernelConfig(**{**CFG.__dict__, "n_joints": 33,
                                            **{f: (1.0,) * 33 for f in
                                               ("vel_max", "acc_max", "effort_max", "kp",
                                                "kd")},
                                            "pos_min": (-1.0,) * 33, "pos_max": (1.0,) * 33}))
    with pytest.raises(TypeError, match="config"):
        raw_c.ControlKernel(object())
    k = raw_c.ControlKernel(CFG)
    q = np.zeros(N)
    for _ in range(3):     # the kept buffers follow new arrays and reject bad ones
        assert k.step(0.0, 1e-3, q, z, w, w, out) is Status.HEARTBEAT_TIMEOUT
        with pytest.raises(ValueError, match="'q'"):
            k.step(0.0, 1e-3, np.zeros(N + 2), z, w, w, out)
        q = np.zeros(N)
    k.__init__(CFG)        # re-initialising is allowed when no RtLoop runs it
    assert k.step(0.0, 1e-3, q, z, w, w, out) is Status.HEARTBEAT_TIMEOUT
