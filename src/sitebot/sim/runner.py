"""Running a :class:`~sitebot.sim.simulation.SiteSimulation` for a host process (no ROS).

The simulator node's physics thread calls :meth:`SimRunner.tick` in a loop and publishes
what it returns, then :meth:`SimRunner.pace`; its executor thread answers the ``sim/reset``,
``sim/pause`` and ``sim/step`` services through :meth:`SimRunner.reset`,
:meth:`SimRunner.set_paused` and :meth:`SimRunner.step` (which wait for the physics thread)
and queues ``sim/fault`` messages with :meth:`SimRunner.inject`.  The runner owns the
:class:`~sitebot.sim.faults.FaultInjector` (made again from the schedule, with the new seed,
at every reset), the publication due times of ``/clock`` and ``control/state`` (simulation
time), the real-time pacing and the measured real-time factor (wall time).

Wall time comes from ``monotonic`` and ``sleep`` (injectable: tests run without waiting).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from sitebot.errors import SitebotError
from sitebot.sim.faults import Fault, FaultInjector, invalid_fault_event, parse_fault_message
from sitebot.types import Diagnostic, DiagnosticLevel

__all__ = ["SimRunner", "Tick", "RESET_TIMEOUT_S", "STEP_TIMEOUT_S", "IDLE_POLL_S",
           "PACE_MIN_SLEEP_S", "DIAGNOSTICS_PERIOD_S", "RTF_WARN_FRACTION",
           "OBJECTS_PERIOD_S"]

#: how long a reset request waits for the physics thread [s]
RESET_TIMEOUT_S = 10.0
#: how long a step request waits for its steps [s]
STEP_TIMEOUT_S = 60.0
#: the physics thread's poll period while paused [s] (wall time)
IDLE_POLL_S = 0.002
#: pacing sleeps only when the simulation is at least this far ahead of real time [s]
PACE_MIN_SLEEP_S = 0.002
#: the real-time factor is measured (and diagnostics are due) this often [s] (wall time)
DIAGNOSTICS_PERIOD_S = 1.0
#: a measured real-time factor below this fraction of the target is a warning [-]
RTF_WARN_FRACTION = 0.8
#: ground-truth object positions are published at most this often per robot [s] (sim time)
OBJECTS_PERIOD_S = 0.5


@dataclass(frozen=True)
class Tick:
    """One physics step as the host publishes it: the simulation time [s] after the step,
    the samples to publish (after the faults), whether ``/clock`` and ``control/state`` are
    due."""

    t_s: float
    samples: Sequence[Any]
    clock_due: bool
    control_state_due: bool


class SimRunner:
    """Run control of one simulation (see the module doc).

    :param sim: the simulation (``time_s``, ``step()``, ``reset(seed)``, ``world.id``,
        ``config.time_step_s``).
    :param fault_schedule: returns the scheduled faults; called at start and at every reset
        (a schedule file is read again).
    :param seed: seed of the fault injector's noise (a reset uses the reset's seed).
    :param on_fault_event: called with every fault event (from the physics thread).
    :param paused: start paused (advance with :meth:`step`).
    :param real_time_factor: pace simulation time at this multiple of wall time; 0 = as
        fast as possible.
    :param clock_rate_hz: ``/clock`` rate [Hz] (simulation time).
    :param control_state_rate_hz: ``control/state`` rate [Hz] (simulation time).
    """

    def __init__(self, sim: Any, fault_schedule: Callable[[], Sequence[Fault]], *,
                 seed: int = 0, on_fault_event: Callable[[dict], None] | None = None,
                 paused: bool = False, real_time_factor: float = 1.0,
                 clock_rate_hz: float = 100.0, control_state_rate_hz: float = 20.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.sim = sim
        self.real_time_factor = float(real_time_factor)
        self.paused = bool(paused)
        self.rtf_measured = 0.0
        self.lock = threading.Lock()
        self._done = threading.Condition(self.lock)
        self._schedule = fault_schedule
        self._on_fault_event = on_fault_event
        self._monotonic, self._sleep = monotonic, sleep
        self._clock_period = 1.0 / clock_rate_hz
        self._control_period = 1.0 / control_state_rate_hz
        self._pending_steps = 0
        self._pending_reset: int | None = None
        self._asks: list[str] = []         # robots that asked people to let them pass
        self._objects_t: dict[str, float] = {}
        self.faults = self._injector(seed)
        self.start()

    def _injector(self, seed: int) -> FaultInjector:
        return FaultInjector(self.sim, self._schedule(), seed=seed,
                             on_event=self._on_fault_event)

    # ------------------------------------------------------------------ requests (any thread)
    def reset(self, world: str = "", seed: int = 0, timeout_s: float = RESET_TIMEOUT_S
              ) -> tuple[bool, str]:
        """Reset the world with ``seed`` at the physics thread's next tick and wait for it;
        ``world`` must be '' or the running world's id.  (ok, message)."""
        if world and world != self.sim.world.id:
            return False, ("switching worlds is not supported at run time "
                           f"(running '{self.sim.world.id}')")
        with self.lock:
            self._pending_reset = int(seed)
            ok = self._done.wait_for(lambda: self._pending_reset is None, timeout=timeout_s)
        return ok, "reset" if ok else "timed out waiting for the physics thread"

    def set_paused(self, paused: bool) -> tuple[bool, str]:
        """Pause or run.  (ok, message)."""
        with self.lock:
            self.paused = bool(paused)
        return True, "paused" if paused else "running"

    def step(self, steps: int, timeout_s: float = STEP_TIMEOUT_S
             ) -> tuple[bool, str, float | None]:
        """While paused, advance ``steps`` physics steps and wait for them.  (ok, message,
        the simulation time [s] after; None when refused because running)."""
        with self.lock:
            if not self.paused:
                return False, "simulation is running; pause it first", None
            self._pending_steps += int(steps)
            ok = self._done.wait_for(lambda: self._pending_steps == 0, timeout=timeout_s)
        return ok, f"stepped {steps}" if ok else "timed out", self.sim.time_s

    def inject(self, text: str) -> dict | None:
        """Queue the faults of one ``sim/fault`` message (JSON: a fault or a list); None
        when queued, else the error event to report (nothing is queued)."""
        try:
            faults = parse_fault_message(text)
        except (ValueError, SitebotError) as e:
            return invalid_fault_event(self.sim.time_s, str(e))
        with self.lock:
            for f in faults:
                self.faults.inject(f, self.sim.time_s)
        return None

    def ask_to_pass(self, robot: str) -> None:
        """Robot ``robot`` asked the people near it to let it pass (what its speaker says,
        ``hri/say``); heard at the next step."""
        with self.lock:
            self._asks.append(robot)

    # ------------------------------------------------------------------ the physics thread
    def start(self) -> None:
        """Restart the wall-clock references (call when the physics thread starts)."""
        self._next_clock = self._next_control = 0.0
        self._wall0, self._sim0 = self._monotonic(), self.sim.time_s
        self._diag_wall, self._diag_sim = self._wall0, self._sim0

    def tick(self, on_reset: Callable[[], None] | None = None) -> Tick | None:
        """Carry out a pending reset (``on_reset`` runs before the requester is woken),
        then one physics step unless paused (None: paused, after a short sleep)."""
        with self.lock:
            if self._pending_reset is not None:
                self.faults.clear()
                self.sim.reset(self._pending_reset)
                self.faults = self._injector(self._pending_reset)
                self._pending_reset = None
                self._next_clock = self._next_control = 0.0
                self._wall0, self._sim0 = self._monotonic(), 0.0
                if on_reset is not None:
                    on_reset()
                self._done.notify_all()
            run = not self.paused or self._pending_steps > 0
            asks, self._asks = self._asks, []
            for robot in asks:
                self.sim.ask_to_pass(robot)
        if not run:
            self._sleep(IDLE_POLL_S)
            self._wall0, self._sim0 = self._monotonic(), self.sim.time_s
            return None
        samples = self.sim.step()
        t = self.sim.time_s
        with self.lock:
            samples = self.faults.advance(t, samples)
            if self._pending_steps > 0:
                self._pending_steps -= 1
                if self._pending_steps == 0:
                    self._done.notify_all()
        eps = 0.25 * self.sim.config.time_step_s
        clock = t + eps >= self._next_clock
        if clock:
            self._next_clock += self._clock_period
        control = t + eps >= self._next_control
        if control:
            self._next_control += self._control_period
        return Tick(t, samples, clock, control)

    def pace(self) -> bool:
        """Sleep to hold the real-time factor; True when the measured factor was updated
        (once per ``DIAGNOSTICS_PERIOD_S`` of wall time: diagnostics are due)."""
        t = self.sim.time_s
        if self.real_time_factor > 0:
            ahead = (t - self._sim0) / self.real_time_factor - (self._monotonic() - self._wall0)
            if ahead > PACE_MIN_SLEEP_S:
                self._sleep(ahead)
        now = self._monotonic()
        if now - self._diag_wall < DIAGNOSTICS_PERIOD_S:
            return False
        self.rtf_measured = (t - self._diag_sim) / (now - self._diag_wall)
        self._diag_wall, self._diag_sim = now, t
        return True

    # ------------------------------------------------------------------ outputs
    def objects_due(self, robot: str, stamp_s: float, objects: Any) -> bool:
        """Whether a ground-truth sample's object positions are to be published: there are
        some and ``OBJECTS_PERIOD_S`` of simulation time passed since the robot's last."""
        if not objects or stamp_s - self._objects_t.get(robot, -float("inf")) < OBJECTS_PERIOD_S:
            return False
        self._objects_t[robot] = stamp_s
        return True

    def diagnostic(self) -> Diagnostic:
        """The physics' diagnostics ("physics"): a warning when the measured real-time factor
        is below ``RTF_WARN_FRACTION`` of a set target."""
        rtf, target = self.rtf_measured, self.real_time_factor
        ok = not (target > 0 and rtf < RTF_WARN_FRACTION * target)
        message = f"real-time factor {rtf:.2f}" + ("" if ok else f" below target {target:g}")
        return Diagnostic("physics", DiagnosticLevel.OK if ok else DiagnosticLevel.WARN, message,
                          (("sim_time_s", f"{self.sim.time_s:.3f}"),
                           ("real_time_factor", f"{rtf:.3f}"), ("paused", str(self.paused)),
                           ("world", self.sim.world.id)))
