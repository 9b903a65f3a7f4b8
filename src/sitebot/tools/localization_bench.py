"""``sitebot bench localization``: the cost of one predict + update of the EKF, side by side
with filterpy's ExtendedKalmanFilter on the same model and the same measurements.

Printed per step (one prediction of 10 ms + one update):
  * sitebot Ekf.add      the filter as the node calls it (validation, history buffer,
                         statistics) with the numpy-free small-matrix kernels;
  * sitebot kernels      the bare predict + update kernels (models + smallmat);
  * numpy batch          the same arithmetic written with NumPy 6x6 matrices;
  * filterpy EKF         filterpy.kalman.ExtendedKalmanFilter with our motion model and
                         Jacobians (predict_x overridden, F set per step).
for odometry updates (2 linear fields) and fiducial updates (3 nonlinear fields). The final
states of all implementations are compared, to show they computed the same thing.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from sitebot.localization import smallmat
from sitebot.localization.config import EkfConfig
from sitebot.localization.ekf import Ekf, Measurement
from sitebot.localization.models import measure, motion, motion_jacobian

__all__ = ["main"]

MARKER = (6.0, 1.0, 1.3, math.pi, 0.16)


def _inputs(n: int, kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        if kind == "odom":
            out.append(np.array([0.5 + rng.normal(0, 0.01), 0.1 + rng.normal(0, 0.01)]))
        else:
            # the robot creeps forward; the tag stays about 5 m ahead
            out.append(np.array([5.0 - 0.005 * k * 0.01 + rng.normal(0, 0.01),
                                 1.0 + rng.normal(0, 0.01), math.pi + rng.normal(0, 0.01)]))
    return out


def _noise(kind: str) -> np.ndarray:
    return np.diag([1e-4, 1e-4]) if kind == "odom" else np.diag([1e-3, 1e-3, 1e-2])


def bench_ekf(zs, kind, dt=0.01) -> tuple[float, np.ndarray]:
    cfg = EkfConfig(history_length_s=0.5).with_input("fiducial", covariance="fixed",
                                                     fixed_std=(math.sqrt(1e-3),) * 2 + (0.1,),
                                                     rejection_threshold=0.0)
    cfg = cfg.with_input("odom", min_variance=1e-9)
    ekf = Ekf(cfg, {1: MARKER})
    ekf.initialize(0.0, (0.0, 0.0, 0.0))
    R = _noise(kind).tolist()
    ms = [Measurement(kind, (k + 1) * dt, z.tolist(), R if kind == "odom" else None, tag=1,
                      height=1.3) for k, z in enumerate(zs)]
    t0 = time.perf_counter()
    for m in ms:
        ekf.add(m)
    return (time.perf_counter() - t0) / len(ms), ekf.x


def bench_kernels(zs, kind, dt=0.01) -> tuple[float, np.ndarray]:
    cfg = EkfConfig()
    q = [cfg.process_noise_position, cfg.process_noise_position, cfg.process_noise_yaw,
         cfg.process_noise_accel ** 2, cfg.process_noise_angular_accel ** 2,
         cfg.process_noise_gyro_bias ** 2]
    x = [0.0] * 6
    P = np.diag(np.square(cfg.initial_std)).tolist()
    R = _noise(kind).tolist()
    marker = (MARKER[0], MARKER[1], MARKER[3])
    zl = [z.tolist() for z in zs]
    t0 = time.perf_counter()
    for z in zl:
        x, f = motion(x, dt)
        P = smallmat.predict(P, f, q, dt)
        h, H = measure(kind, x, marker)
        y = [zi - hi for zi, hi in zip(z, h)]
        if kind == "fiducial":
            y[2] = (y[2] + math.pi) % (2 * math.pi) - math.pi
        x, P, _ = smallmat.update(x, P, y, H, R, 0.0)
    return (time.perf_counter() - t0) / len(zs), np.array(x)


def bench_numpy(zs, kind, dt=0.01) -> tuple[float, np.ndarray]:
    cfg = EkfConfig()
    Q = np.diag([cfg.process_noise_position, cfg.process_noise_position, cfg.process_noise_yaw,
                 cfg.process_noise_accel ** 2, cfg.process_noise_angular_accel ** 2,
                 cfg.process_noise_gyro_bias ** 2])
    x = np.zeros(6)
    P = np.diag(np.square(cfg.initial_std))
    R = _noise(kind)
    I = np.eye(6)
    marker = (MARKER[0], MARKER[1], MARKER[3])
    t0 = time.perf_counter()
    for z in zs:
        xl, _ = motion(x, dt)
        F = motion_jacobian(x, dt)
        x = np.array(xl)
        P = F @ P @ F.T + Q * dt
        h, H = measure(kind, x, marker)
        H = np.array(H)
        y = z - np.array(h)
        if kind == "fiducial":
            y[2] = (y[2] + math.pi) % (2 * math.pi) - math.pi
        S = H @ P @ H.T + R
        K = P @ H.T @ np.linalg.inv(S)
        x = x + K @ y
        P = (I - K @ H) @ P
    return (time.perf_counter() - t0) / len(zs), x


def bench_filterpy(zs, kind, dt=0.01) -> tuple[float, np.ndarray]:
    from filterpy.kalman import ExtendedKalmanFilter
    cfg = EkfConfig()
    m = len(zs[0])
    kf = ExtendedKalmanFilter(dim_x=6, dim_z=m)
    kf.x = np.zeros((6, 1))
    kf.P = np.diag(np.square(cfg.initial_std))
    kf.Q = np.diag([cfg.process_noise_position, cfg.process_noise_position,
                    cfg.process_noise_yaw, cfg.process_noise_accel ** 2,
                    cfg.process_noise_angular_accel ** 2,
                    cfg.process_noise_gyro_bias ** 2]) * dt
    kf.R = _noise(kind)
    marker = (MARKER[0], MARKER[1], MARKER[3])

    def predict_x(u=0):
        kf.x = np.array(motion(kf.x[:, 0], dt)[0]).reshape(6, 1)
    kf.predict_x = predict_x

    def hj(x):
        return np.array(measure(kind, x[:, 0], marker)[1])

    def hx(x):
        return np.array(measure(kind, x[:, 0], marker)[0]).reshape(m, 1)

    def residual(a, b):
        y = a - b
        if kind == "fiducial":
            y[2] = (y[2] + math.pi) % (2 * math.pi) - math.pi
        return y
    zc = [z.reshape(m, 1) for z in zs]
    t0 = time.perf_counter()
    for z in zc:
        kf.F = motion_jacobian(kf.x[:, 0], dt)
        kf.predict()
        kf.update(z, hj, hx, residual=residual)
    return (time.perf_counter() - t0) / len(zs), kf.x[:, 0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sitebot bench localization", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    a = ap.parse_args(argv)
    print(f"EKF predict (10 ms) + update, {a.steps} steps, best of {a.repeats}; aim < 50 us")
    print(f"{'measurement':<22} {'implementation':<18} {'us/step':>8} {'vs filterpy':>11} "
          f"{'final |dx| vs filterpy':>22}")
    for kind, label in (("odom", "odom (2 linear)"), ("fiducial", "fiducial (3 nonlin.)")):
        zs = _inputs(a.steps, kind)
        res = {}
        for name, fn in (("filterpy EKF", bench_filterpy), ("numpy batch", bench_numpy),
                         ("sitebot kernels", bench_kernels), ("sitebot Ekf.add", bench_ekf)):
            best, x = math.inf, None
            for _ in range(a.repeats):
                dt, x = fn(zs, kind)
                best = min(best, dt)
            res[name] = (best, x)
        ref_t, ref_x = res["filterpy EKF"]
        for name, (t, x) in res.items():
            diff = float(np.max(np.abs(np.asarray(x) - ref_x)))
            print(f"{label:<22} {name:<18} {t * 1e6:8.1f} {ref_t / t:10.2f}x {diff:22.2e}")
    print("(vs filterpy: how many times faster; final |dx|: largest state difference after "
          "all steps - the same model and measurements give the same estimate)")
    return 0
