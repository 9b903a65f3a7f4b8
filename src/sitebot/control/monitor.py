"""What the control loop's outside side knows between ticks (core, no ROS).

:class:`ControlMonitor` is the ROS-free half of :class:`sitebot.nodes.control_io.ControlIO`:
the supervisor's last word (speed scale, stop category, heartbeat) and when to release a
stop, counts and the latest :class:`Rejection`, warnings throttled per kind of problem, the
status text and the loop's diagnostics.  :class:`PeriodStats` measures a loop driver's tick
period and execution time.  Times are arguments or come from the ``clock`` given.

Decisions:

* heartbeat time of a supervisor message: its arrival time on the loop's clock, or its
  stamp when that is earlier (a delayed or re-delivered latched message counts as old as
  it is).  Unknown stop categories act as category 1; a non-finite speed scale acts as 0;
  the scale is clamped to [0, 1].
* which publishers are obeyed (:meth:`ControlMonitor.obey`, :mod:`sitebot.control.pinning`)
  and what a heartbeat fault means (:meth:`ControlMonitor.heartbeat_result`): the stop latch
  itself is the kernel's, released only by the pinned supervisor (docs/control.md).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Mapping, NamedTuple

from sitebot.control.pinning import PublisherPin, Verdict
from sitebot.control.types import Heartbeat, KernelConfig, Latch, Reject, Status
from sitebot.types import DiagnosticLevel, StopCategory

__all__ = ["ControlMonitor", "PeriodStats", "Rejection", "SupervisorInput"]

_LEVEL_OF_STATUS = {Status.OK: DiagnosticLevel.OK, Status.COMMAND_TIMEOUT: DiagnosticLevel.OK,
                    Status.STOPPING: DiagnosticLevel.WARN, Status.STOPPED: DiagnosticLevel.WARN}


@dataclass(frozen=True)
class Rejection:
    """The latest refused command: what was wrong, the matching Reject code (None where
    the kernel has none), whether the kernel itself refused it, and when (loop clock)."""

    topic: str
    reason: str
    code: Reject | None
    by_kernel: bool
    time_s: float

    def __str__(self) -> str:
        code = f" [{self.code.name}]" if self.code is not None else ""
        who = "kernel rejected" if self.by_kernel else "rejected"
        return f"{self.topic}: {who}{code}: {self.reason}"


class SupervisorInput(NamedTuple):
    """A supervisor message's values as the kernel takes them (``set_supervisor``)."""

    heartbeat_s: float
    speed_scale: float
    stop_category: StopCategory


class PeriodStats:
    """Tick period and execution time statistics of a loop driver, over a window.

    ``tick(start_s, end_s)`` once per tick (monotonic wall seconds: start and end of the
    tick's work); :meth:`snapshot` returns the dict :meth:`ControlMonitor.diagnostics`
    understands, and starts a new window.  A period over ``overrun_factor`` nominal periods
    counts as an overrun.
    """

    def __init__(self, rate_hz: float, overrun_factor: float = 1.5) -> None:
        self.rate_hz = float(rate_hz)
        self.overrun_factor = float(overrun_factor)
        self.total_ticks = 0
        self.total_overruns = 0
        self._reset()
        self._last_start: float | None = None

    def _reset(self) -> None:
        self._n = 0
        self._sum = self._sum2 = 0.0
        self._min = math.inf
        self._max = 0.0
        self._exec_sum = 0.0
        self._exec_max = 0.0
        self._overruns = 0

    def tick(self, start_s: float, end_s: float) -> None:
        self.total_ticks += 1
        exec_s = max(0.0, end_s - start_s)
        self._exec_sum += exec_s
        self._exec_max = max(self._exec_max, exec_s)
        if self._last_start is not None:
            p = start_s - self._last_start
            self._n += 1
            self._sum += p
            self._sum2 += p * p
            self._min = min(self._min, p)
            self._max = max(self._max, p)
            if p > self.overrun_factor / self.rate_hz:
                self._overruns += 1
                self.total_overruns += 1
        self._last_start = start_s

    def snapshot(self) -> dict[str, float]:
        n = self._n
        mean = self._sum / n if n else math.nan
        var = max(0.0, self._sum2 / n - mean * mean) if n else math.nan
        ticks = n + 1 if n else 0
        out = {"rate_hz": self.rate_hz, "ticks": float(ticks),
               "period_mean_s": mean, "period_min_s": self._min if n else math.nan,
               "period_max_s": self._max if n else math.nan,
               "period_std_s": math.sqrt(var) if n else math.nan,
               "exec_mean_s": self._exec_sum / max(ticks, 1),
               "exec_max_s": self._exec_max,
               "overruns": float(self._overruns),
               "overruns_total": float(self.total_overruns)}
        self._reset()
        return out


class ControlMonitor:
    """The loop's bookkeeping between the kernel and the outside (see the module docstring).

    :param config: the kernel's ``KernelConfig`` (``heartbeat_timeout_s``).
    :param clock: ``() -> float`` seconds on the kernel's time base.
    :param log_warning: writes one warning (called at most once per ``warn_throttle_s``
        [s] per kind of problem).
    :param rejection_shown_s: [s] how long the status text mentions the latest rejection.
    :param late_period_tolerance: a mean tick period off the nominal one by more than this
        fraction makes the diagnostics a warning.
    :param wall_clock: ``() -> float`` monotonic seconds for the throttling of warnings.
    """

    def __init__(self, config: KernelConfig, clock: Callable[[], float],
                 log_warning: Callable[[str], None], warn_throttle_s: float = 1.0,
                 rejection_shown_s: float = 5.0, late_period_tolerance: float = 0.1,
                 wall_clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.log_warning = log_warning
        self.warn_throttle_s = float(warn_throttle_s)
        self.rejection_shown_s = float(rejection_shown_s)
        self.late_period_tolerance = float(late_period_tolerance)
        self.wall_clock = wall_clock
        self.speed_scale = 0.0
        self.stop_category = StopCategory.NONE
        self.last_heartbeat_s: float | None = None
        self.last_rejection: Rejection | None = None
        self.counts = {"trajectories_accepted": 0, "trajectories_rejected": 0,
                       "cmd_vel_accepted": 0, "cmd_vel_rejected": 0, "safety_states": 0,
                       "foreign_messages": 0, "unverified_messages": 0,
                       "heartbeat_faults": 0}
        #: the stop latch after the latest published tick (0: open; set by the ROS side)
        self.latch = Latch(0)
        #: who is obeyed (set by the ROS side)
        self.pin: PublisherPin | None = None
        self.last_fault: str | None = None
        self.stepped = False
        self.last_status: Status | None = None
        self._last_stats: Mapping[str, float] | None = None
        self._warned: dict[str, tuple[float, int]] = {}

    def warn(self, key: str, text: str) -> None:
        """A warning, throttled per ``key`` (one kind of problem does not hide another)."""
        now = self.wall_clock()
        last, suppressed = self._warned.get(key, (-math.inf, 0))
        if now - last < self.warn_throttle_s:
            self._warned[key] = (last, suppressed + 1)
            return
        if suppressed:
            text += f" ({suppressed} similar suppressed)"
        self._warned[key] = (now, 0)
        self.log_warning(text)

    def reject(self, topic: str, reason: str, code: Reject | None, by_kernel: bool) -> None:
        """Record a refused command and warn (throttled per topic and kind)."""
        r = Rejection(topic, reason, code, by_kernel, self.clock())
        self.last_rejection = r
        then = ("the base brakes" if topic.endswith("cmd_vel") else
                "the active trajectory is unchanged (none: the robot holds)")
        self.warn(f"{topic}:{'kernel' if by_kernel else code}", f"{r}; {then}")

    def mark_stepped(self, status: Status) -> None:
        """The kernel ticked with ``status``: its setpoint is valid."""
        self.stepped = True
        self.last_status = Status(status)

    def obey(self, topic: str, gid: bytes | None) -> Verdict:
        """Who published a message on ``topic`` (``gid``: its publisher's GID): counts and
        warns (throttled) for anyone but the supervisor.  Only ``Verdict.SUPERVISOR`` is
        obeyed."""
        verdict = self.pin.classify(topic, gid) if self.pin is not None else Verdict.UNKNOWN
        if verdict is Verdict.FOREIGN:
            self.counts["foreign_messages"] += 1
            self.warn(f"{topic}:foreign", f"{topic}: ignored a message from a node other "
                      f"than the safety supervisor {self.pin.supervisor_node} (publisher "
                      f"gid {bytes(gid or b'').hex()})")
        elif verdict is Verdict.UNKNOWN:
            self.counts["unverified_messages"] += 1
            self.warn(f"{topic}:unknown", f"{topic}: ignored a message whose publisher the "
                      "ROS graph does not list (yet); only the safety supervisor is obeyed")
        return verdict

    def heartbeat_result(self, topic: str, result: Heartbeat, sequence: int) -> None:
        """Record what the kernel made of a heartbeat; a fault is warned (throttled)."""
        if result is Heartbeat.FOREIGN:
            self.last_fault = "a second safety/state source"
        elif result is Heartbeat.SEQUENCE:
            self.last_fault = f"sequence {sequence} did not increase"
        else:
            return
        self.counts["heartbeat_faults"] += 1
        self.warn(f"{topic}:{result.name}", f"{topic}: {self.last_fault}: the stop latch is "
                  "closed until the supervisor releases it")

    def supervisor(self, topic: str, arrival_s: float, stamp_s: float, speed_scale: float,
                   raw_category: int) -> SupervisorInput:
        """A supervisor message's values (``stamp_s`` 0: none; an unknown stop category
        acts as category 1), sanitised and recorded."""
        hb = min(arrival_s, stamp_s) if stamp_s > 0.0 else arrival_s
        scale = float(speed_scale)
        if not math.isfinite(scale):
            self.warn("scale", f"{topic}: speed_scale {scale!r} is not finite; using 0")
            scale = 0.0
        scale = min(max(scale, 0.0), 1.0)
        try:
            category = StopCategory(int(raw_category))
        except ValueError:
            self.warn("category", f"{topic}: unknown stop_category {raw_category}; "
                                  "acting as category 1")
            category = StopCategory.CAT1
        self.speed_scale = scale
        self.stop_category = category
        self.last_heartbeat_s = arrival_s
        self.counts["safety_states"] += 1
        return SupervisorInput(hb, scale, category)

    # ------------------------------------------------------------------ status
    def status_text(self, status: Status | None) -> str:
        if status is None:
            return "not running yet"
        text = {
            Status.OK: "ok",
            Status.STOPPING: f"stopping ({self._stop_text()})",
            Status.STOPPED: f"stopped ({self._stop_text()})",
            Status.COMMAND_TIMEOUT: "base idle: no recent cmd_vel, wheels braked",
            Status.HEARTBEAT_TIMEOUT: "supervisor heartbeat lost: stopping",
            Status.INVALID_INPUT: "invalid or stale measurement/command: holding",
            Status.LIMIT_VIOLATION: "a joint is outside its limits: holding",
        }[status]
        if self.latch and status not in (Status.STOPPING, Status.STOPPED):
            text += f"; {self._latch_text()}"
        r = self.last_rejection
        if r is not None and self.clock() - r.time_s < self.rejection_shown_s:
            text += f"; last rejected: {r}"
        return text

    def _stop_text(self) -> str:
        if self.stop_category is not StopCategory.NONE:
            return f"supervisor requests category {int(self.stop_category)}"
        if self.heartbeat_age() > float(self.config.heartbeat_timeout_s):
            return "heartbeat lost"
        return self._latch_text()

    def _latch_text(self) -> str:
        causes = "+".join(c.name.lower() for c in Latch if c & self.latch) or "none"
        return f"stop latched ({causes}) until the supervisor releases it"

    def heartbeat_age(self) -> float:
        """Seconds since the supervisor's last message (inf: none yet)."""
        return math.inf if self.last_heartbeat_s is None else self.clock() - self.last_heartbeat_s

    def diagnostics(self, stats: Mapping[str, float] | None = None,
                    output: tuple[float, bool] | None = None
                    ) -> tuple[DiagnosticLevel, str, list[tuple[str, str]]]:
        """(level, message, key-value pairs) of the loop's diagnostic status, in the style
        of ros2_control's controller manager diagnostics (periodicity and execution time
        when ``stats`` (see :class:`PeriodStats`; default: the latest kept) are known).
        ``output``: (max |position error|, trajectory active) of the latest tick."""
        stats = dict(stats) if stats is not None else (dict(self._last_stats)
                                                       if self._last_stats else None)
        status = self.last_status if self.stepped else None
        if status is None:
            level, msg = DiagnosticLevel.STALE, "control loop has not run yet"
        else:
            level = _LEVEL_OF_STATUS.get(status, DiagnosticLevel.ERROR)
            msg = self.status_text(status)
        values = [("status", status.name if status is not None else "NONE"),
                  ("speed_scale", f"{self.speed_scale:.3f}"),
                  ("stop_category", self.stop_category.name),
                  ("stop_latch", "+".join(c.name for c in Latch if c & self.latch) or "open"),
                  ("last_heartbeat_fault", self.last_fault or "none"),
                  ("heartbeat_age_s", f"{self.heartbeat_age():.3f}")]
        if output is not None:
            values.append(("max_position_error", f"{output[0]:.5f}"))
            values.append(("trajectory_active", str(bool(output[1]))))
        values += [(k, str(v)) for k, v in self.counts.items()]
        if self.last_rejection is not None:
            values.append(("last_rejection", str(self.last_rejection)))
        if stats:
            rate = stats.get("rate_hz", math.nan)
            mean = stats.get("period_mean_s", math.nan)
            for key, scale, unit in (("period_mean_s", 1e3, "ms"), ("period_min_s", 1e3, "ms"),
                                     ("period_max_s", 1e3, "ms"), ("period_std_s", 1e3, "ms"),
                                     ("exec_mean_s", 1e6, "us"), ("exec_max_s", 1e6, "us")):
                if key in stats:
                    values.append((key.replace("_s", f"_{unit}"), f"{stats[key] * scale:.3f}"))
            if math.isfinite(mean) and mean > 0:
                values.append(("periodicity.average_hz", f"{1.0 / mean:.2f}"))
            for key in ("rate_hz", "ticks", "overruns", "overruns_total"):
                if key in stats:
                    values.append((key, f"{stats[key]:g}"))
            late = (math.isfinite(mean) and math.isfinite(rate) and rate > 0
                    and abs(mean * rate - 1.0) > self.late_period_tolerance)
            if stats.get("overruns", 0) > 0 or late:
                level = max(level, DiagnosticLevel.WARN)
                msg += (f"; period {mean * 1e3:.2f} ms for {1e3 / rate:.2f} ms nominal, "
                        f"{int(stats.get('overruns', 0))} overrun(s)")
        return level, msg, values
