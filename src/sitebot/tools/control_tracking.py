"""Tracking of the control loop in simulation (core, no ROS): the figures of
``sitebot bench control``'s third part and of the tracking tests.

* arm: a smooth reference trajectory (quintic, through named waypoints around the stow
  pose) executed by the kernel in lockstep with PyBullet; RMS and max of the joint error
  between the kernel's setpoint and the measured position while the trajectory runs;
* base: a sequence of (v, w) commands; RMS error between the commanded (rate-limited)
  base velocity and the true one (ground truth), after each step's ramp.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sitebot.control.kernel import Reject
from sitebot.sim.simulation import SimConfig, SiteSimulation

__all__ = ["ArmTracking", "BaseTracking", "reference_arm_trajectory", "track_arm", "track_base"]


@dataclass(frozen=True)
class ArmTracking:
    rms_error_rad: float          # over all arm joints and ticks while the trajectory runs
    max_error_rad: float
    per_joint_rms_rad: tuple[float, ...]
    duration_s: float
    implementation: str


@dataclass(frozen=True)
class BaseTracking:
    rms_linear_error_mps: float
    rms_angular_error_radps: float
    max_linear_error_mps: float
    samples: int


def reference_arm_trajectory(start: np.ndarray, pos_min, pos_max, n_waypoints: int = 4,
                             seg_s: float = 2.0, amplitude_rad: float = 0.5, seed: int = 3,
                             margin_rad: float = 0.1
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Times, positions, velocities, accelerations of a smooth tour through waypoints
    within ``amplitude_rad`` of ``start`` (the gripper joint is left where it is), zero
    velocity at both ends, velocities at inner waypoints from central differences."""
    rng = np.random.default_rng(seed)
    n = len(start)
    wps = [np.array(start, dtype=float)]
    for _ in range(n_waypoints):
        wp = np.array(start, dtype=float)
        wp[:6] += rng.uniform(-amplitude_rad, amplitude_rad, size=6)
        wp[:6] = np.clip(wp[:6], np.asarray(pos_min[:6]) + margin_rad,
                         np.asarray(pos_max[:6]) - margin_rad)
        wps.append(wp)
    wps.append(np.array(start, dtype=float))
    p = np.array(wps[1:])
    t = seg_s * np.arange(1, len(wps))
    all_p = np.array(wps)
    v = np.zeros_like(all_p)
    v[1:-1] = (all_p[2:] - all_p[:-2]) / (2 * seg_s)
    a = np.zeros_like(all_p)
    return t, p, v[1:], a[1:]


def track_arm(world: str = "substation", seg_s: float = 2.0, n_waypoints: int = 4) -> ArmTracking:
    """Run the reference trajectory on the simulated arm and measure the joint error."""
    from sitebot.control.kernel import IMPLEMENTATION
    with SiteSimulation(world, config=SimConfig(camera_enabled=False,
                                                supervisor_required=False)) as sim:
        ctl = sim.robot().controller
        sim.run_for(0.5)                                  # settle, first ticks
        start = np.array(ctl.out.position)
        t, p, v, a = reference_arm_trajectory(start, ctl.config.pos_min, ctl.config.pos_max,
                                              n_waypoints, seg_s)
        code = ctl.set_trajectory(t, p, v, a, start_time_s=sim.time_s)
        if code != Reject.ACCEPTED:
            raise RuntimeError(f"reference trajectory rejected: {Reject(code).name}")
        errors = []
        t_end = sim.time_s + float(t[-1])
        while sim.time_s < t_end:
            sim.step()
            errors.append(np.array(ctl.out.position_error[:6]))
        e = np.array(errors)
        return ArmTracking(float(np.sqrt(np.mean(e ** 2))), float(np.max(np.abs(e))),
                           tuple(float(x) for x in np.sqrt(np.mean(e ** 2, axis=0))),
                           float(t[-1]), IMPLEMENTATION)


def track_base(world: str = "substation",
               commands: tuple[tuple[float, float, float], ...] = (
                   (0.5, 0.0, 3.0), (0.3, 0.4, 3.0), (0.0, 0.8, 2.0), (0.0, 0.0, 1.5)),
               settle_s: float = 1.0) -> BaseTracking:
    """Drive (v [m/s], w [rad/s], duration [s]) steps; compare the kernel's commanded base
    velocity with the true one, skipping ``settle_s`` after each step change."""
    with SiteSimulation(world, config=SimConfig(camera_enabled=False,
                                                supervisor_required=False)) as sim:
        ctl = sim.robot().controller
        lin, ang = [], []
        for v, w, dur in commands:
            t0 = sim.time_s
            while sim.time_s < t0 + dur:
                ctl.set_base_command(v, w, sim.time_s)
                sim.step()
                if sim.time_s - t0 >= settle_s:
                    gt = sim.ground_truth()
                    cmd_v, cmd_w = ctl.out.base_velocity
                    lin.append(gt.linear_velocity_mps[0] - cmd_v)
                    ang.append(gt.angular_velocity_radps[2] - cmd_w)
        lin_a, ang_a = np.array(lin), np.array(ang)
        return BaseTracking(float(np.sqrt(np.mean(lin_a ** 2))),
                            float(np.sqrt(np.mean(ang_a ** 2))),
                            float(np.max(np.abs(lin_a))), len(lin))
