"""The pure-Python reference control kernel (same API and arithmetic as the C one).

Every computation here is mirrored, operation for operation, in
``src/sitebot/control/native/control_kernel.c``; ``tests/control/test_control_kernel.py`` runs one suite
against both and checks that they agree to 1e-9.  See ``docs/control.md`` for the contract
and its "Implementation notes (kernel)" for the decisions taken where it left room.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from sitebot.control.latch_py import SupervisorLatch
from sitebot.control.types import (SPEED_SLACK, Heartbeat, KernelConfig, KernelOutput, Latch,
                                   Reject, Status, output_layout)

__all__ = ["ControlKernel"]

_INF = math.inf
_TWO_PI = 2.0 * math.pi
_CMD_NONE, _CMD_VALID, _CMD_INVALID = 0, 1, 2
#: the order in which ``_write`` lists the outputs (the fields of KernelOutput)
_WRITE_ORDER = ("position", "velocity", "effort", "position_error", "setpoint_velocity",
                "wheel_velocity", "base_velocity", "odometry", "trajectory_time_s",
                "trajectory_active", "status", "latch")


def _vec(name: str, arr: Any, n: int) -> list[float]:
    """``arr`` (float64 array of shape (n,)) as a list; TypeError/ValueError naming it."""
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float64:
        raise TypeError(f"argument '{name}' must be a float64 numpy array of shape ({n},), "
                        f"got {type(arr).__name__}"
                        + (f" of dtype {arr.dtype}" if isinstance(arr, np.ndarray) else ""))
    if arr.shape != (n,):
        raise ValueError(f"argument '{name}' must have shape ({n},), got {arr.shape}")
    return arr.tolist()


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else (hi if x > hi else x)


def _finite_all(values: list[float]) -> bool:
    for v in values:
        if not math.isfinite(v):
            return False
    return True


class _Trajectory:
    """Knots of an active trajectory: times t[k], and per knot lists p, v, a of n values."""

    __slots__ = ("t", "p", "v", "a", "quintic")

    def __init__(self, t: list[float], p: list[list[float]], v: list[list[float]],
                 a: list[list[float]], quintic: bool) -> None:
        self.t, self.p, self.v, self.a, self.quintic = t, p, v, a, quintic


class _Pending:
    """An accepted trajectory waiting for its start time (the user's points)."""

    __slots__ = ("times", "pos", "vel", "acc", "start")

    def __init__(self, times: list[float], pos: list[list[float]],
                 vel: list[list[float]] | None, acc: list[list[float]] | None,
                 start: float) -> None:
        self.times, self.pos, self.vel, self.acc, self.start = times, pos, vel, acc, start


def _eval_segment(tr: _Trajectory, k: int, tau: float, n: int,
                  q: list[float], qd: list[float], qdd: list[float]) -> None:
    """Sample segment k (knots k, k+1) at trajectory time tau (derivatives w.r.t. tau)."""
    t0 = tr.t[k]
    h = tr.t[k + 1] - t0
    u = (tau - t0) / h
    p0, p1, v0, v1 = tr.p[k], tr.p[k + 1], tr.v[k], tr.v[k + 1]
    u2 = u * u
    u3 = u2 * u
    if tr.quintic:
        a0, a1 = tr.a[k], tr.a[k + 1]
        u4 = u3 * u
        u5 = u4 * u
        H0 = 1.0 - 10.0 * u3 + 15.0 * u4 - 6.0 * u5
        H1 = u - 6.0 * u3 + 8.0 * u4 - 3.0 * u5
        H2 = 0.5 * u2 - 1.5 * u3 + 1.5 * u4 - 0.5 * u5
        H3 = 0.5 * u3 - u4 + 0.5 * u5
        H4 = -4.0 * u3 + 7.0 * u4 - 3.0 * u5
        H5 = 10.0 * u3 - 15.0 * u4 + 6.0 * u5
        dH0 = -30.0 * u2 + 60.0 * u3 - 30.0 * u4
        dH1 = 1.0 - 18.0 * u2 + 32.0 * u3 - 15.0 * u4
        dH2 = u - 4.5 * u2 + 6.0 * u3 - 2.5 * u4
        dH3 = 1.5 * u2 - 4.0 * u3 + 2.5 * u4
        dH4 = -12.0 * u2 + 28.0 * u3 - 15.0 * u4
        dH5 = 30.0 * u2 - 60.0 * u3 + 30.0 * u4
        ddH0 = -60.0 * u + 180.0 * u2 - 120.0 * u3
        ddH1 = -36.0 * u + 96.0 * u2 - 60.0 * u3
        ddH2 = 1.0 - 9.0 * u + 18.0 * u2 - 10.0 * u3
        ddH3 = 3.0 * u - 12.0 * u2 + 10.0 * u3
        ddH4 = -24.0 * u + 84.0 * u2 - 60.0 * u3
        ddH5 = 60.0 * u - 180.0 * u2 + 120.0 * u3
        hh = h * h
        for i in range(n):
            q[i] = (H0 * p0[i] + H1 * h * v0[i] + H2 * hh * a0[i] + H3 * hh * a1[i]
                    + H4 * h * v1[i] + H5 * p1[i])
            qd[i] = ((dH0 * p0[i] + dH5 * p1[i]) / h + dH1 * v0[i] + dH4 * v1[i]
                     + h * (dH2 * a0[i] + dH3 * a1[i]))
            qdd[i] = ((ddH0 * p0[i] + ddH5 * p1[i]) / hh + (ddH1 * v0[i] + ddH4 * v1[i]) / h
                      + ddH2 * a0[i] + ddH3 * a1[i])
    else:
        h00 = 2.0 * u3 - 3.0 * u2 + 1.0
        h10 = u3 - 2.0 * u2 + u
        h01 = -2.0 * u3 + 3.0 * u2
        h11 = u3 - u2
        dh00 = 6.0 * u2 - 6.0 * u
        dh10 = 3.0 * u2 - 4.0 * u + 1.0
        dh01 = -6.0 * u2 + 6.0 * u
        dh11 = 3.0 * u2 - 2.0 * u
        ddh00 = 12.0 * u - 6.0
        ddh10 = 6.0 * u - 4.0
        ddh01 = -12.0 * u + 6.0
        ddh11 = 6.0 * u - 2.0
        hh = h * h
        for i in range(n):
            q[i] = h00 * p0[i] + h10 * h * v0[i] + h01 * p1[i] + h11 * h * v1[i]
            qd[i] = (dh00 * p0[i] + dh01 * p1[i]) / h + dh10 * v0[i] + dh11 * v1[i]
            qdd[i] = (ddh00 * p0[i] + ddh01 * p1[i]) / hh + (ddh10 * v0[i] + ddh11 * v1[i]) / h


class ControlKernel:
    """Pure-Python control kernel; API and semantics: ``docs/control.md``."""

    def __init__(self, config: KernelConfig) -> None:
        if not isinstance(config, KernelConfig):
            raise TypeError(f"argument 'config' must be a KernelConfig, "
                            f"got {type(config).__name__}")
        self._config = config
        n = config.n_joints
        self._n = n
        self._lo = list(config.pos_min)
        self._hi = list(config.pos_max)
        self._vmax = list(config.vel_max)
        self._amax = list(config.acc_max)
        self._emax = list(config.effort_max)
        self._kp = list(config.kp)
        self._kd = list(config.kd)
        self._margin = config.limit_margin
        self._half_sep = 0.5 * config.wheel_separation_m
        # where _write's values go in the output buffer (None: in order, the usual layout)
        layout = output_layout(n)
        index = [off + j for name in _WRITE_ORDER
                 for off, length in [layout[name]] for j in range(length)]
        self._out_index = (None if index == list(range(layout["size"][1]))
                           else np.array(index, dtype=np.intp))
        # supervisor and stop latch survive reset()
        self._sup = SupervisorLatch(config.heartbeat_timeout_s)
        self._clear()

    def _clear(self) -> None:
        n = self._n
        self._sp_init = False
        self._q_sp = [0.0] * n          # setpoint position [rad | m]
        self._v_sp = [0.0] * n          # setpoint velocity [rad/s | m/s]
        self._qdt = [0.0] * n           # trajectory derivative w.r.t. tau at the last sample
        self._qd_buf = [0.0] * n
        self._qt_buf = [0.0] * n
        self._qdd_buf = [0.0] * n
        self._act: _Trajectory | None = None
        self._pend: _Pending | None = None
        self._tau = 0.0                 # trajectory time [s]
        self._s = 0.0                   # trajectory time rate d(tau)/dt
        self._seg = 0
        self._cmd_state = _CMD_NONE
        self._cmd_v = 0.0
        self._cmd_w = 0.0
        self._cmd_stamp = -_INF
        self._base_v = 0.0              # commanded base velocity [m/s]
        self._base_w = 0.0              # [rad/s]
        self._odo_init = False
        self._x = 0.0
        self._y = 0.0
        self._yaw = 0.0
        self._wq_prev = [0.0, 0.0]

    @property
    def config(self) -> KernelConfig:
        return self._config

    @property
    def n_joints(self) -> int:
        return self._n

    # ---- setpoint calls ---------------------------------------------------------------
    def set_trajectory(self, times_s: Any, positions: Any, velocities: Any = None,
                       accelerations: Any = None, start_time_s: float | None = None) -> Reject:
        n = self._n
        t = np.asarray(times_s, dtype=np.float64)
        p = np.asarray(positions, dtype=np.float64)
        v = None if velocities is None else np.asarray(velocities, dtype=np.float64)
        a = None if accelerations is None else np.asarray(accelerations, dtype=np.float64)
        if t.ndim != 1:
            return Reject.WRONG_SIZE
        count = t.shape[0]
        if count == 0:
            return Reject.EMPTY
        if count > self._config.max_points:
            return Reject.TOO_MANY_POINTS
        for arr in (p, v, a):
            if arr is not None and arr.shape != (count, n):
                return Reject.WRONG_SIZE
        start = -_INF
        if start_time_s is not None:
            start = float(start_time_s)
            if not math.isfinite(start):
                return Reject.NON_FINITE
        times = t.tolist()
        pos = p.tolist()
        vel = None if v is None else v.tolist()
        acc = None if a is None else a.tolist()
        if not _finite_all(times):
            return Reject.NON_FINITE
        for rows in (pos, vel, acc):
            if rows is not None:
                for row in rows:
                    if not _finite_all(row):
                        return Reject.NON_FINITE
        if times[0] < 0.0:
            return Reject.NON_MONOTONIC_TIME
        for k in range(1, count):
            if not times[k] > times[k - 1]:
                return Reject.NON_MONOTONIC_TIME
        lo, hi, vmax, amax = self._lo, self._hi, self._vmax, self._amax
        for k in range(count):
            row = pos[k]
            for i in range(n):
                if row[i] < lo[i] or row[i] > hi[i]:
                    return Reject.OUT_OF_LIMITS
            if vel is not None:
                for i in range(n):
                    if abs(vel[k][i]) > vmax[i]:
                        return Reject.OUT_OF_LIMITS
            if acc is not None:
                for i in range(n):
                    if abs(acc[k][i]) > amax[i]:
                        return Reject.OUT_OF_LIMITS
            if k > 0:
                dt = times[k] - times[k - 1]
                prev = pos[k - 1]
                for i in range(n):
                    if abs(row[i] - prev[i]) > vmax[i] * dt * (1.0 + SPEED_SLACK):
                        return Reject.OUT_OF_LIMITS
        self._pend = _Pending(times, pos, vel, acc, start)
        return Reject.ACCEPTED

    def set_base_command(self, v_mps: float, w_radps: float, stamp_s: float) -> Reject:
        v, w, stamp = float(v_mps), float(w_radps), float(stamp_s)
        if not (math.isfinite(v) and math.isfinite(w) and math.isfinite(stamp)):
            self._cmd_state = _CMD_INVALID
            self._cmd_v = 0.0
            self._cmd_w = 0.0
            return Reject.NON_FINITE
        self._cmd_v, self._cmd_w, self._cmd_stamp = v, w, stamp
        self._cmd_state = _CMD_VALID
        return Reject.ACCEPTED

    @property
    def latch(self) -> Latch:
        """Why the stop latch is closed (0: open)."""
        return Latch(self._sup.latch)

    def pin_supervisor(self, source: int) -> bool:
        return self._sup.pin(source)

    def set_supervisor(self, source: int, sequence: int, releases: int, stamp_s: float,
                       speed_scale: float, stop_category: int) -> Heartbeat:
        return self._sup.heartbeat(source, sequence, releases, stamp_s, speed_scale,
                                   stop_category)

    def reset(self, positions: Sequence[float] | np.ndarray) -> None:
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (self._n,):
            raise ValueError(f"argument 'positions' must have shape ({self._n},), "
                             f"got {pos.shape}")
        values = pos.tolist()
        if not _finite_all(values):
            raise ValueError(f"argument 'positions' must be finite, got {values}")
        self._clear()
        self._q_sp = [_clamp(values[i], self._lo[i], self._hi[i]) for i in range(self._n)]
        self._sp_init = True

    def sample(self, tau_s: float, q: np.ndarray, qd: np.ndarray, qdd: np.ndarray) -> bool:
        """Sample the active trajectory at trajectory time ``tau_s`` into ``q``, ``qd``,
        ``qdd`` (derivatives w.r.t. trajectory time).  False (arrays untouched) when no
        trajectory has been started.  Not for the control path (addition to the contract)."""
        n = self._n
        _vec("q", q, n), _vec("qd", qd, n), _vec("qdd", qdd, n)
        tr = self._act
        if tr is None:
            return False
        qa, qda, qdda = [0.0] * n, [0.0] * n, [0.0] * n
        self._sample(tr, float(tau_s), -1, qa, qda, qdda)
        q[:] = qa
        qd[:] = qda
        qdd[:] = qdda
        return True

    # ---- trajectory internals ---------------------------------------------------------
    def _sample(self, tr: _Trajectory, tau: float, seg: int, q: list[float], qd: list[float],
                qdd: list[float]) -> int:
        """Sample at tau; seg >= 0 is a cursor that only moves forward, -1 searches."""
        t = tr.t
        last = len(t) - 1
        n = self._n
        if last == 0 or tau >= t[last]:
            q[:] = tr.p[last]
            for i in range(n):
                qd[i] = 0.0
                qdd[i] = 0.0
            return max(last - 1, 0)
        if tau <= t[0]:
            tau = t[0]
        if seg < 0:
            lo_k, hi_k = 0, last - 1        # largest k with t[k] <= tau
            while lo_k < hi_k:
                mid = (lo_k + hi_k + 1) >> 1
                if t[mid] <= tau:
                    lo_k = mid
                else:
                    hi_k = mid - 1
            seg = lo_k
            if seg > 0 and t[seg] == tau:
                seg -= 1                    # a knot ends the segment before it (u = 1)
        else:
            while seg < last - 1 and tau > t[seg + 1]:
                seg += 1
        _eval_segment(tr, seg, tau, n, q, qd, qdd)
        return seg

    def _activate(self) -> None:
        pend = self._pend
        self._pend = None
        n = self._n
        s = self._s
        if s > 0.0:
            v_start = [_clamp(self._v_sp[i] / s, -self._vmax[i], self._vmax[i])
                       for i in range(n)]
        else:
            v_start = [0.0] * n
        if pend.times[0] > 0.0:
            t = [0.0] + pend.times
            p = [list(self._q_sp)] + [list(r) for r in pend.pos]
            first_user = 1
        else:
            t = list(pend.times)
            p = [list(r) for r in pend.pos]
            first_user = 0
        count = len(t)
        if pend.vel is not None:
            v = ([v_start] if first_user else []) + [list(r) for r in pend.vel]
        else:
            v = [[0.0] * n for _ in range(count)]
            if first_user:
                v[0] = list(v_start)
            for k in range(1, count - 1):
                dt0 = t[k] - t[k - 1]
                dt1 = t[k + 1] - t[k]
                for i in range(n):
                    d0 = (p[k][i] - p[k - 1][i]) / dt0
                    d1 = (p[k + 1][i] - p[k][i]) / dt1
                    if d0 * d1 > 0.0:
                        m = 0.5 * (d0 + d1)
                        lim = 3.0 * min(abs(d0), abs(d1))
                        if lim > self._vmax[i]:
                            lim = self._vmax[i]
                        if abs(m) > lim:
                            m = math.copysign(lim, m)
                        v[k][i] = m
        quintic = pend.acc is not None
        if quintic:
            a = ([[0.0] * n] if first_user else []) + [list(r) for r in pend.acc]
        else:
            a = [[0.0] * n for _ in range(count)]
        self._act = _Trajectory(t, p, v, a, quintic)
        self._tau = 0.0
        self._seg = 0

    # ---- the tick ---------------------------------------------------------------------
    def step(self, t_s: float, dt_s: float, q: np.ndarray, qd: np.ndarray,
             wheel_q: np.ndarray, wheel_qd: np.ndarray, out: KernelOutput) -> Status:
        n = self._n
        ql = _vec("q", q, n)
        qdl = _vec("qd", qd, n)
        wq = _vec("wheel_q", wheel_q, 2)
        wqd = _vec("wheel_qd", wheel_qd, 2)
        if not isinstance(out, KernelOutput) or out.n_joints != n:
            raise TypeError(f"argument 'out' must be a KernelOutput for {n} joints, "
                            f"got {out!r}")
        t, dt = float(t_s), float(dt_s)
        if not (math.isfinite(t) and math.isfinite(dt) and dt > 0.0 and _finite_all(ql)
                and _finite_all(qdl) and _finite_all(wq) and _finite_all(wqd)):
            return self._invalid(ql, out)
        cfg = self._config
        lo, hi, vmax, amax = self._lo, self._hi, self._vmax, self._amax
        q_sp, v_sp = self._q_sp, self._v_sp
        if not self._sp_init:
            for i in range(n):
                q_sp[i] = _clamp(ql[i], lo[i], hi[i])
                v_sp[i] = 0.0
            self._sp_init = True
        sup = self._sup
        sup.last_t = t

        # supervisor
        hb_ok = sup.hb_rx and (t - sup.hb_stamp) <= cfg.heartbeat_timeout_s
        if sup.hb_rx and not hb_ok and not sup.latch & Latch.HEARTBEAT:
            sup.close(Latch.HEARTBEAT)
        stopping = sup.latch != 0 or not hb_ok
        cat0 = sup.cat0_latched
        scale = 0.0 if stopping else sup.scale

        # measured positions against the limits
        margin = self._margin
        viol = False
        for i in range(n):
            if ql[i] < lo[i] - margin or ql[i] > hi[i] + margin:
                viol = True

        # trajectory start
        if self._pend is not None and t >= self._pend.start:
            self._activate()

        # trajectory time rate
        qdt = self._qdt
        if cat0 or viol:
            self._s = 0.0
        else:
            target = 0.0 if stopping else scale
            rate = _INF
            for i in range(n):
                aq = abs(qdt[i])
                if aq > 0.0:
                    r = amax[i] / aq
                    if r < rate:
                        rate = r
            s = self._s
            if rate == _INF:
                s = target
            else:
                ds = rate * dt
                if s > target:
                    s = s - ds
                    if s < target:
                        s = target
                elif s < target:
                    s = s + ds
                    if s > target:
                        s = target
            self._s = s
        s = self._s

        # trajectory sample
        qt, qdd_buf = self._qt_buf, self._qdd_buf
        tr = self._act
        if tr is not None:
            end = tr.t[-1]
            if self._tau < end:
                self._tau = self._tau + s * dt
                if self._tau > end:
                    self._tau = end
            self._seg = self._sample(tr, self._tau, self._seg, qt, qdt, qdd_buf)
        else:
            for i in range(n):
                qt[i] = q_sp[i]
                qdt[i] = 0.0

        # setpoint: clamp, rate-limit, never faster during a stop
        for i in range(n):
            qdi = _clamp(qt[i], lo[i], hi[i])
            vd = _clamp(qdt[i] * s, -vmax[i], vmax[i])
            lim = amax[i] * dt
            dv = _clamp(vd - v_sp[i], -lim, lim)
            vn = v_sp[i] + dv
            if stopping and abs(vn) > abs(v_sp[i]):
                vn = v_sp[i]
            if cat0 or viol:
                vn = 0.0
            q_sp[i] = qdi
            v_sp[i] = vn

        # arm commands
        kp, kd, emax = self._kp, self._kd, self._emax
        vel = [0.0] * n
        eff = [0.0] * n
        err = [0.0] * n
        for i in range(n):
            e = q_sp[i] - ql[i]
            err[i] = e
            vc = _clamp(v_sp[i] + kp[i] * e, -vmax[i], vmax[i])
            ec = _clamp(kp[i] * e + kd[i] * (v_sp[i] - qdl[i]), -emax[i], emax[i])
            if cat0:
                vc = 0.0
                ec = 0.0
            if ql[i] > hi[i] + margin:
                if vc > 0.0:
                    vc = 0.0
                if ec > 0.0:
                    ec = 0.0
            elif ql[i] < lo[i] - margin:
                if vc < 0.0:
                    vc = 0.0
                if ec < 0.0:
                    ec = 0.0
            vel[i] = vc
            eff[i] = ec

        # base
        cmd_timeout = False
        if self._cmd_state == _CMD_VALID and (t - self._cmd_stamp) <= cfg.cmd_timeout_s:
            tv = self._cmd_v
            tw = self._cmd_w
        else:
            tv = 0.0
            tw = 0.0
            cmd_timeout = self._cmd_state != _CMD_NONE
        # the speed scale caps the base speed (scale x the limits, curvature kept); it does
        # not multiply the command, which the supervisor has already limited
        lim_v = cfg.base_lin_vel_max * scale
        lim_w = cfg.base_ang_vel_max * scale
        f = 1.0
        if abs(tv) > lim_v:
            f = lim_v / abs(tv)
        if abs(tw) > lim_w:
            g = lim_w / abs(tw)
            if g < f:
                f = g
        tv = tv * f
        tw = tw * f
        if cat0:
            bv = 0.0
            bw = 0.0
        else:
            dvb = tv - self._base_v
            dwb = tw - self._base_w
            lv = cfg.base_lin_acc_max * dt
            lw = cfg.base_ang_acc_max * dt
            f = 1.0
            if abs(dvb) > lv:
                f = lv / abs(dvb)
            if abs(dwb) > lw:
                g = lw / abs(dwb)
                if g < f:
                    f = g
            bv = self._base_v + f * dvb
            bw = self._base_w + f * dwb
        r = cfg.wheel_radius_m
        wl = (bv - bw * self._half_sep) / r
        wr = (bv + bw * self._half_sep) / r
        m = abs(wl) if abs(wl) > abs(wr) else abs(wr)
        if m > cfg.wheel_vel_max:
            f = cfg.wheel_vel_max / m
            wl = wl * f
            wr = wr * f
            bv = bv * f
            bw = bw * f
        self._base_v = bv
        self._base_w = bw

        # odometry (midpoint heading)
        if self._odo_init:
            dl = (wq[0] - self._wq_prev[0]) * r
            dr = (wq[1] - self._wq_prev[1]) * r
            dsd = 0.5 * (dl + dr)
            dth = (dr - dl) / cfg.wheel_separation_m
            head = self._yaw + 0.5 * dth
            self._x = self._x + dsd * math.cos(head)
            self._y = self._y + dsd * math.sin(head)
            self._yaw = math.remainder(self._yaw + dth, _TWO_PI)
        self._odo_init = True
        self._wq_prev[0] = wq[0]
        self._wq_prev[1] = wq[1]
        odo_v = r * 0.5 * (wqd[0] + wqd[1])
        odo_w = r * (wqd[1] - wqd[0]) / cfg.wheel_separation_m

        # status
        status = Status.OK
        if stopping:
            still = s == 0.0 and bv == 0.0 and bw == 0.0
            if still:
                for i in range(n):
                    if v_sp[i] != 0.0:
                        still = False
                        break
            status = Status.STOPPED if still else Status.STOPPING
        if cmd_timeout:
            status = Status.COMMAND_TIMEOUT
        if not hb_ok:
            status = Status.HEARTBEAT_TIMEOUT
        if viol:
            status = Status.LIMIT_VIOLATION
        self._write(out, q_sp, vel, eff, err, v_sp, wl, wr, bv, bw, odo_v, odo_w, status)
        return status

    def _active_flag(self) -> bool:
        tr = self._act
        return self._pend is not None or (tr is not None and self._tau < tr.t[-1])

    def _write(self, out: KernelOutput, pos: list[float], vel: list[float], eff: list[float],
               err: list[float], spv: list[float], wl: float, wr: float, bv: float, bw: float,
               odo_v: float, odo_w: float, status: Status) -> None:
        tau = self._tau if self._act is not None else 0.0
        values = (pos + vel + eff + err + spv
                  + [wl, wr, bv, bw, self._x, self._y, self._yaw, odo_v, odo_w,
                     tau, 1.0 if self._active_flag() else 0.0, float(int(status)),
                     float(self._sup.latch)])
        if self._out_index is None:
            out._buf[:] = values
        else:
            out._buf[self._out_index] = values

    def _invalid(self, ql: list[float], out: KernelOutput) -> Status:
        """A non-finite input: hold the last safe setpoint at zero velocity, brake."""
        n = self._n
        self._s = 0.0
        q_sp, v_sp = self._q_sp, self._v_sp
        pos = [0.0] * n
        err = [0.0] * n
        for i in range(n):
            v_sp[i] = 0.0
            if self._sp_init:
                pos[i] = q_sp[i]
            else:
                pos[i] = _clamp(ql[i] if math.isfinite(ql[i]) else 0.0,
                                self._lo[i], self._hi[i])
            if math.isfinite(ql[i]):
                err[i] = pos[i] - ql[i]
        self._base_v = 0.0
        self._base_w = 0.0
        zeros = [0.0] * n
        self._write(out, pos, zeros, zeros, err, list(v_sp), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                    Status.INVALID_INPUT)
        return Status.INVALID_INPUT
