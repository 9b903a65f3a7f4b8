"""The fixed-rate hardware loop (RtLoop): a C pthread stepping the C kernel without the GIL."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from heartbeats import Beats

from sitebot.control import kernel as kmod
from sitebot.control.kernel import Interface, KernelConfig, KernelOutput, Reject, Status
from sitebot.control.kernel_py import ControlKernel as PyKernel
from sitebot.control.types import Heartbeat
from sitebot.types import StopCategory

if kmod.CControlKernel is None:
    pytest.skip("sitebot.control._control_kernel is not built (run scripts/setup_env.sh)",
                allow_module_level=True)

RtLoop = kmod.RtLoop
CFG = KernelConfig(
    n_joints=3, pos_min=(-2.0,) * 3, pos_max=(2.0,) * 3, vel_max=(1.0,) * 3,
    acc_max=(2.0,) * 3, effort_max=(10.0,) * 3, kp=(10.0,) * 3, kd=(1.0,) * 3,
    interface=Interface.VELOCITY, wheel_radius_m=0.1, wheel_separation_m=0.5,
    wheel_vel_max=20.0, base_lin_acc_max=1.0, base_ang_acc_max=2.0, base_lin_vel_max=1.0,
    base_ang_vel_max=1.5, cmd_timeout_s=0.5, heartbeat_timeout_s=0.5)
N = CFG.n_joints
ZN, Z2 = np.zeros(N), np.zeros(2)


_BEATS: dict[int, Beats] = {}


def _beats(rt) -> Beats:
    """The supervisor's heartbeats for this loop (one pinned source per loop)."""
    if id(rt) not in _BEATS:
        _BEATS[id(rt)] = Beats(rt)
    return _BEATS[id(rt)]


def _keep_alive(rt, seconds: float, v: float = 0.0, period: float = 0.01) -> None:
    """Heartbeat (and a base command) from Python for ``seconds``."""
    end = time.monotonic() + seconds
    beats = _beats(rt)
    while time.monotonic() < end:
        now = rt.now()
        beats.beat(now)
        rt.set_base_command(v, 0.0, now)
        time.sleep(period)


def test_runs_two_seconds_at_1khz_with_sane_stats():
    k = kmod.CControlKernel(CFG)
    rt = RtLoop(k, rate_hz=1000.0)
    assert rt.rate_hz == pytest.approx(1000.0) and not rt.running
    rt.start()
    try:
        assert rt.running
        time.sleep(2.0)
    finally:
        rt.stop()
    s = rt.stats()
    assert set(s) == {"mean_period_s", "std_period_s", "p99_error_s", "max_error_s",
                      "overruns", "ticks"}
    assert abs(s["ticks"] - 2000) <= 0.02 * 2000, s
    assert all(math.isfinite(v) and v >= 0 for v in s.values())
    assert s["mean_period_s"] == pytest.approx(1e-3, rel=0.02)
    assert s["std_period_s"] < 1e-3
    assert s["p99_error_s"] <= s["max_error_s"] < 0.1
    assert isinstance(s["overruns"], int) and isinstance(s["ticks"], int)


def test_state_from_python_reaches_the_kernel():
    k = kmod.CControlKernel(CFG)
    out = KernelOutput(CFG)
    with RtLoop(k) as rt:
        time.sleep(0.05)
        assert rt.read_output(out) > 0
        assert out.status is Status.INVALID_INPUT      # no state written yet: hold
        rt.write_state(np.full(N, 0.25), ZN, Z2, Z2)
        _keep_alive(rt, 0.8, v=0.5)
        ticks = rt.read_output(out)
        assert ticks > 700
        assert out.status is Status.OK
        np.testing.assert_allclose(out.wheel_velocity, (5.0, 5.0), atol=1e-12)  # 0.5 m/s
        np.testing.assert_allclose(out.position, 0.25)  # held at the measured position
        # a trajectory through the loop moves the setpoint
        assert rt.set_trajectory([0.2], [[0.5, 0.25, 0.25]]) is Reject.ACCEPTED
        assert rt.set_trajectory([0.2], [[5.0, 0.0, 0.0]]) is Reject.OUT_OF_LIMITS
        _keep_alive(rt, 0.4, v=0.5)
        rt.read_output(out)
        assert out.position[0] == 0.5
        # stop categories through the loop
        now = rt.now()
        _beats(rt).beat(now, StopCategory.CAT0)
        time.sleep(0.02)
        rt.read_output(out)
        assert out.status is Status.STOPPED and not out.wheel_velocity.any()
        assert _beats(rt).release(rt.now(), StopCategory.CAT0) is False
        _beats(rt).beat(rt.now())
        assert _beats(rt).release(rt.now()) is True
    assert not rt.running


def test_stop_joins_within_100ms_and_the_kernel_is_free_again():
    k = kmod.CControlKernel(CFG)
    out = KernelOutput(CFG)
    rt = RtLoop(k, 500.0)
    rt.start()
    with pytest.raises(RuntimeError):
        rt.start()
    with pytest.raises(RuntimeError):          # one driver at a time
        k.step(0.0, 1e-3, ZN, ZN, Z2, Z2, out)
    with pytest.raises(RuntimeError):
        RtLoop(k).start()
    time.sleep(0.1)
    t0 = time.perf_counter()
    rt.stop()
    assert time.perf_counter() - t0 < 0.1
    assert not rt.running
    rt.stop()                                   # idempotent
    ticks = rt.stats()["ticks"]
    time.sleep(0.02)
    assert rt.stats()["ticks"] == ticks         # really stopped
    assert k.step(0.0, 1e-3, ZN, ZN, Z2, Z2, out) is Status.HEARTBEAT_TIMEOUT


def test_dropping_a_running_loop_stops_its_thread():
    k = kmod.CControlKernel(CFG)
    rt = RtLoop(k, 1000.0)
    rt.start()
    time.sleep(0.01)
    del rt                                      # dealloc joins the thread
    out = KernelOutput(CFG)
    assert k.step(0.0, 1e-3, ZN, ZN, Z2, Z2, out) is Status.HEARTBEAT_TIMEOUT


def test_clock_is_time_monotonic():
    assert abs(RtLoop.now() - time.monotonic()) < 0.01


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="kernel"):
        RtLoop(PyKernel(CFG))
    k = kmod.CControlKernel(CFG)
    with pytest.raises(ValueError, match="rate_hz"):
        RtLoop(k, rate_hz=0.0)
    with pytest.raises(ValueError, match="rate_hz"):
        RtLoop(k, rate_hz=math.nan)
    rt = RtLoop(k)
    with pytest.raises(ValueError, match="'q'"):
        rt.write_state(np.zeros(N + 1), ZN, Z2, Z2)
    with pytest.raises(ValueError, match="'wheel_qd'"):
        rt.write_state(ZN, ZN, Z2, np.zeros(3))
    with pytest.raises(TypeError, match="'qd'"):
        rt.write_state(ZN, np.zeros(N, dtype=np.float32), Z2, Z2)
    with pytest.raises(ValueError, match="'wheel_q'.*contiguous"):
        rt.write_state(ZN, ZN, np.zeros(4)[::2], Z2)
    with pytest.raises(TypeError, match="'out'"):
        rt.read_output(object())
    with pytest.raises(ValueError, match="'out'"):
        rt.read_output(KernelOutput(N + 2))
    assert rt.read_output(KernelOutput(CFG)) == 0   # nothing ran yet
    blank = RtLoop.__new__(RtLoop)
    with pytest.raises(RuntimeError):
        blank.start()


def test_setpoint_calls_go_to_the_c_core_not_through_python_methods():
    """RtLoop.set_trajectory/set_base_command/set_supervisor/pin_supervisor call the kernel's
    C core directly: a Python override on the kernel object is never consulted."""
    calls = []

    class Spy(kmod.CControlKernel):
        def set_trajectory(self, *a, **k):
            calls.append("set_trajectory")
            return super().set_trajectory(*a, **k)

        def set_base_command(self, *a, **k):
            calls.append("set_base_command")
            return super().set_base_command(*a, **k)

        def set_supervisor(self, *a, **k):
            calls.append("set_supervisor")
            return super().set_supervisor(*a, **k)

        def pin_supervisor(self, *a, **k):
            calls.append("pin_supervisor")
            return super().pin_supervisor(*a, **k)

    k = Spy(CFG)
    out = KernelOutput(CFG)
    with RtLoop(k) as rt:
        rt.write_state(np.zeros(N), ZN, Z2, Z2)
        now = rt.now()
        beats = _beats(rt)                                 # pins through the loop
        assert beats.beat(now, StopCategory.CAT1) is Heartbeat.ACCEPTED
        assert beats.release(now, StopCategory.CAT1) is False   # refused: a stop is requested
        assert beats.release(now) is True
        assert rt.set_base_command(math.nan, 0.0, now) is Reject.NON_FINITE
        assert rt.set_base_command(0.0, 0.0, now) is Reject.ACCEPTED
        assert rt.set_trajectory([0.3], [[0.3, 0.0, 0.0]]) is Reject.ACCEPTED   # array-likes
        assert rt.set_trajectory(np.array([0.3]), np.zeros((1, N + 1))) is Reject.WRONG_SIZE
        with pytest.raises(TypeError, match="'positions'"):
            rt.set_trajectory([0.3], "abc")
        _keep_alive(rt, 0.5)
        rt.read_output(out)
    assert calls == []
    assert out.status is Status.OK and out.position[0] == 0.3
    with pytest.raises(ValueError, match="stop_category"):
        rt.set_supervisor(7, 100, 1, 0.0, 1.0, 7)
