"""``sitebot bench control``: the control kernel's step time and the RT loop's timing.

Measured in one run on this machine, with the sitebot configuration built from its URDF
(6 arm joints + the gripper = 7 joints, 2 wheels) and an active quintic trajectory:

  (a) ns per ``step``: the C kernel called from Python (binding included), the C core alone
      (timed inside C), and the pure-Python reference; the ratio Python / C (aim >= 50x);
  (b) the RtLoop at 1 kHz for ``--rt-seconds`` (default 60) while a busy-loop process keeps
      another core busy: mean, std, p99 and max period error [us] and overruns
      (aims: p99 < 100 us, max < 1 ms).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from sitebot.control.kernel import (CControlKernel, KernelConfig, KernelOutput, PyControlKernel,
                                    RtLoop, kernel_config_from_description)
from sitebot.types import StopCategory

__all__ = ["main", "bench_step", "bench_rt_loop", "AIM_RATIO", "AIM_P99_US", "AIM_MAX_US"]

AIM_RATIO = 50.0
AIM_P99_US = 100.0
AIM_MAX_US = 1000.0
DT_S = 1e-3


def _trajectory(cfg: KernelConfig, points: int, duration_s: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A slow sinusoid per joint inside its limits, with exact velocities/accelerations."""
    t = np.linspace(duration_s / points, duration_s, points)
    lo = np.maximum(np.array(cfg.pos_min), -1.0)
    hi = np.minimum(np.array(cfg.pos_max), 1.0)
    mid, amp = (lo + hi) / 2, (hi - lo) / 4
    omega = 0.2 * np.min(np.array(cfg.vel_max) / np.maximum(amp, 1e-9))
    omega = min(omega, 0.2 * float(np.min(np.sqrt(np.array(cfg.acc_max) / np.maximum(amp, 1e-9)))))
    phase = np.arange(cfg.n_joints)
    arg = omega * t[:, None] + phase
    pos = mid + amp * np.sin(arg) - amp * np.sin(phase)     # starts at mid
    vel = amp * omega * np.cos(arg)
    acc = -amp * omega ** 2 * np.sin(arg)
    return t, pos, vel, acc


def _prepared(cls: type, cfg: KernelConfig, horizon_s: float) -> tuple[Any, KernelOutput]:
    k = cls(cfg)
    out = KernelOutput(cfg)
    mid = (np.maximum(np.array(cfg.pos_min), -1.0) + np.minimum(np.array(cfg.pos_max), 1.0)) / 2
    k.reset(mid)
    t, pos, vel, acc = _trajectory(cfg, cfg.max_points - 1, horizon_s)
    if int(k.set_trajectory(t, pos, vel, acc)) != 0:
        raise RuntimeError("the benchmark trajectory was rejected")
    k.pin_supervisor(1)                                     # the benchmark supervises
    k.set_supervisor(1, 1, 1, horizon_s, 1.0, StopCategory.NONE)  # fresh for the whole run
    k.set_base_command(0.5, 0.3, horizon_s)
    return k, out


def _time_steps(cls: type, cfg: KernelConfig, steps: int) -> tuple[float, bool]:
    """Seconds per step over ``steps`` calls from Python, and whether the trajectory was
    still active at the end."""
    k, out = _prepared(cls, cfg, horizon_s=10.0 * steps * DT_S + 100.0)
    n = cfg.n_joints
    q, qd, wq, wqd = np.zeros(n), np.zeros(n), np.zeros(2), np.zeros(2)
    step = k.step
    for i in range(min(steps, 1000)):                       # warm-up
        step(i * DT_S, DT_S, q, qd, wq, wqd, out)
    t0 = 1000 * DT_S
    start = time.perf_counter()
    for i in range(steps):
        step(t0 + i * DT_S, DT_S, q, qd, wq, wqd, out)
    elapsed = time.perf_counter() - start
    return elapsed / steps, bool(out.trajectory_active)


def _time_core(cfg: KernelConfig, steps: int) -> float:
    k, out = _prepared(CControlKernel, cfg, horizon_s=10.0 * steps * DT_S + 100.0)
    n = cfg.n_joints
    z, w = np.zeros(n), np.zeros(2)
    k._bench_step(1000, 0.0, DT_S, z, z, w, w, out)
    return k._bench_step(steps, 1.0, DT_S, z, z, w, w, out) / steps


def bench_step(cfg: KernelConfig, c_steps: int = 200_000, py_steps: int = 20_000,
               repeats: int = 5) -> dict[str, float]:
    """Median ns per step: C via Python, C core alone, pure Python; and the ratios."""
    if CControlKernel is None:
        raise RuntimeError("sitebot.control._control_kernel is not built (run scripts/setup_env.sh)")
    c_ns, core_ns, py_ns = [], [], []
    active = True
    for _ in range(repeats):
        s, a = _time_steps(CControlKernel, cfg, c_steps)
        c_ns.append(s * 1e9)
        active &= a
        core_ns.append(_time_core(cfg, c_steps) * 1e9)
        s, a = _time_steps(PyControlKernel, cfg, py_steps)
        py_ns.append(s * 1e9)
        active &= a
    if not active:
        raise RuntimeError("the trajectory ended during the measurement")
    c, core, py = (statistics.median(v) for v in (c_ns, core_ns, py_ns))
    return {"c_ns": c, "c_core_ns": core, "python_ns": py, "ratio": py / c,
            "ratio_core": py / core}


def bench_rt_loop(cfg: KernelConfig, seconds: float, rate_hz: float = 1000.0,
                  busy: bool = True) -> dict[str, Any]:
    """Run the RtLoop for ``seconds`` (heartbeat and state written from Python at 100 Hz)
    while a busy-loop process keeps another core busy; returns its stats."""
    if RtLoop is None:
        raise RuntimeError("sitebot.control._control_kernel is not built (run scripts/setup_env.sh)")
    k, out = _prepared(CControlKernel, cfg, horizon_s=seconds + 100.0)
    n = cfg.n_joints
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(0.2 if busy else 0.0)                   # let the hog get going
        rt = RtLoop(k, rate_hz=rate_hz)
        q, z, w = np.zeros(n), np.zeros(n), np.zeros(2)
        with rt:
            realtime = rt.realtime
            end = time.monotonic() + seconds
            sequence = 1
            while time.monotonic() < end:
                now = rt.now()
                sequence += 1
                rt.set_supervisor(1, sequence, 1, now, 1.0, StopCategory.NONE)
                rt.set_base_command(0.5, 0.3, now)
                rt.read_output(out)
                q[:] = out.position
                rt.write_state(q, z, w, w)
                time.sleep(0.01)
        stats = rt.stats()
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    stats["realtime"] = realtime
    stats["last_status"] = out.status.name
    return stats


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "control":
        argv = argv[1:]
    ap = argparse.ArgumentParser(prog="sitebot bench control", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rt-seconds", type=float, default=60.0,
                    help="how long the 1 kHz RT loop runs (default 60)")
    ap.add_argument("--rate-hz", type=float, default=1000.0, help="RT loop rate")
    ap.add_argument("--c-steps", type=int, default=200_000, help="C steps per repeat")
    ap.add_argument("--py-steps", type=int, default=20_000, help="Python steps per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-busy", action="store_true", help="do not load another core")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args(argv)
    if CControlKernel is None:
        print("sitebot bench control: the C extension sitebot.control._control_kernel is not built "
              "(run scripts/setup_env.sh)", file=sys.stderr)
        return 2
    from sitebot.description.urdf import load_robot_description
    cfg = kernel_config_from_description(load_robot_description())

    print(f"control kernel step, {cfg.n_joints} joints + 2 wheels, active quintic trajectory "
          f"({cfg.max_points - 1} points), median of {a.repeats}")
    s = bench_step(cfg, a.c_steps, a.py_steps, a.repeats)
    print(f"  C (called from Python)   {s['c_ns']:10.0f} ns/step")
    print(f"  C core (timed in C)      {s['c_core_ns']:10.0f} ns/step")
    print(f"  Python reference         {s['python_ns']:10.0f} ns/step")
    print(f"  ratio Python / C         {s['ratio']:10.1f} x   (aim >= {AIM_RATIO:.0f}x: "
          f"{'met' if s['ratio'] >= AIM_RATIO else 'MISSED'})")
    print(f"  ratio Python / C core    {s['ratio_core']:10.1f} x", flush=True)

    print(f"RT loop at {a.rate_hz:.0f} Hz for {a.rt_seconds:g} s, "
          f"{'another core busy (busy-loop process)' if not a.no_busy else 'idle machine'}, "
          f"{os.cpu_count()} CPUs", flush=True)
    r = bench_rt_loop(cfg, a.rt_seconds, a.rate_hz, busy=not a.no_busy)
    p99_us, max_us = r["p99_error_s"] * 1e6, r["max_error_s"] * 1e6
    print(f"  SCHED_FIFO               {'yes' if r['realtime'] else 'no (default policy)'}")
    print(f"  ticks                    {r['ticks']:10d}")
    print(f"  mean period              {r['mean_period_s'] * 1e6:10.2f} us")
    print(f"  std period               {r['std_period_s'] * 1e6:10.2f} us")
    print(f"  p99 period error         {p99_us:10.1f} us   (aim < {AIM_P99_US:.0f}: "
          f"{'met' if p99_us < AIM_P99_US else 'MISSED'})")
    print(f"  max period error         {max_us:10.1f} us   (aim < {AIM_MAX_US:.0f}: "
          f"{'met' if max_us < AIM_MAX_US else 'MISSED'})")
    print(f"  overruns                 {r['overruns']:10d}", flush=True)

    from sitebot.tools.control_tracking import track_arm, track_base
    print("tracking in simulation (PyBullet, lockstep, velocity interface)", flush=True)
    arm = track_arm()
    base = track_base()
    print(f"  arm RMS joint error      {arm.rms_error_rad:10.5f} rad  (aim < 0.01: "
          f"{'met' if arm.rms_error_rad < 0.01 else 'MISSED'}; max {arm.max_error_rad:.5f} rad,"
          f" {arm.duration_s:g} s reference, {arm.implementation} kernel)")
    print(f"  base RMS speed error     {base.rms_linear_error_mps:10.4f} m/s  "
          f"(max {base.max_linear_error_mps:.4f} m/s)")
    print(f"  base RMS turn-rate error {base.rms_angular_error_radps:10.4f} rad/s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"step": s, "rt_loop": r, "arm_tracking": arm.__dict__,
                       "base_tracking": base.__dict__}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
