"""Teleoperation relay core (no ROS): keyboard and joystick input -> one hold-to-run command.

The safety supervisor's manual mode is hold-to-run: a motion command passes only while the
deadman (enabling) flag keeps arriving within ``deadman_timeout_s`` (docs/safety.md). This
module turns the two usual ROS teleop inputs into that contract:

* **keyboard** (``teleop_twist_keyboard``): it publishes one Twist per key press and the
  terminal's key repeat keeps it coming while the key is held; releasing the key simply stops
  the stream. So "held" means: a finite message arrived within ``hold_timeout_s``.
* **joystick** (``joy`` + a ``teleop_twist_joy`` style mapping): the deadman is the state of
  the enable button; the velocity is ``scale * axis`` (with a dead zone). A released button,
  a joystick whose messages stop for ``joy_timeout_s``, or a malformed message is released.

:meth:`TeleopRelay.tick` is called at a fixed rate and answers what to publish: a command with
``deadman=True`` while a source is held, then ``stop_repeats`` zero commands with
``deadman=False`` once it lapses, then nothing (silence), so an idle relay never fights the
navigation stack on the shared command topic. Non-finite input is a stop, never a motion.
Velocities are clamped to the relay's limits keeping the curvature (one factor for v and w).

With ``require_manual`` the relay sends motion only while the supervisor reports manual mode
(fresh ``safety/state``); in automatic mode teleop input is ignored with a reason, since there
the supervisor does not require the deadman and the relay would race the navigation stack.

The console's pad (:class:`TeleopArbiter`, used by :mod:`sitebot.console.server`) follows the
same rules with one holder among several browser connections: its twist is clamped the same
way, it is repeated with the deadman pressed while the holder's commands are fresher than
``timeout_s`` (:data:`DEADMAN_TIMEOUT_S` by default) and one stop is asked for when they lapse,
on release and when the holder's connection closes. Both answer with :class:`TeleopCommand`.

Time is an argument everywhere (seconds on the node's clock).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["DEADMAN_TIMEOUT_S", "TeleopConfig", "TeleopCommand", "TeleopRelay", "TeleopArbiter",
           "clamp_twist"]

#: hold-to-run: no command with the deadman pressed for this long means released [s]. The
#: default of the console's ``deadman_timeout_s`` and of the safety supervisor's (manual mode);
#: the parameter files keep their explicit values (site configuration).
DEADMAN_TIMEOUT_S = 0.3


@dataclass(frozen=True)
class TeleopConfig:
    """Relay settings (the node's parameters of the same names)."""
    max_linear_mps: float = 0.5           # |v| limit of relayed commands [m/s]
    max_angular_radps: float = 1.0        # |w| limit [rad/s]
    hold_timeout_s: float = 0.6           # keyboard: no message for this long = released [s]
    joy_timeout_s: float = 0.5            # joystick: no message for this long = released [s]
    joy_enable_button: int = 0            # deadman button index
    joy_axis_linear: int = 1              # axis giving v
    joy_axis_angular: int = 0             # axis giving w
    joy_scale_linear: float = 0.5         # v = scale * axis [m/s]
    joy_scale_angular: float = 1.0        # w = scale * axis [rad/s]
    joy_deadzone: float = 0.05            # |axis| below this reads 0
    stop_repeats: int = 3                 # zero commands sent after a release
    require_manual: bool = True           # relay motion only in the supervisor's manual mode
    safety_state_timeout_s: float = 1.0   # safety/state older than this: mode unknown [s]

    def __post_init__(self) -> None:
        for name in ("max_linear_mps", "max_angular_radps", "hold_timeout_s", "joy_timeout_s",
                     "joy_scale_linear", "joy_scale_angular", "safety_state_timeout_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"TeleopConfig.{name} must be a finite number > 0, got {v!r}")
        if not 0.0 <= self.joy_deadzone < 1.0:
            raise ValueError(f"TeleopConfig.joy_deadzone must be in [0, 1), got {self.joy_deadzone}")
        for name in ("joy_enable_button", "joy_axis_linear", "joy_axis_angular", "stop_repeats"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TeleopConfig.{name} must be >= 0")


@dataclass(frozen=True)
class TeleopCommand:
    """What to publish now: ``cmd_vel_in`` (v, w) and ``teleop/deadman`` (deadman)."""
    v_mps: float
    w_radps: float
    deadman: bool
    source: str            # "keyboard", "joystick", "console" or "stop"
    reason: str = ""       # why a stop was asked for ('' when not known or not a stop)


def clamp_twist(v: float, w: float, max_v: float, max_w: float) -> tuple[float, float]:
    """(v, w) scaled by one factor into |v| <= max_v, |w| <= max_w (curvature kept);
    non-finite input gives (0, 0)."""
    if not (math.isfinite(v) and math.isfinite(w)):
        return 0.0, 0.0
    k = 1.0
    if abs(v) > max_v:
        k = min(k, max_v / abs(v))
    if abs(w) > max_w:
        k = min(k, max_w / abs(w))
    return v * k, w * k


class TeleopRelay:
    """Keyboard + joystick -> hold-to-run commands. Not thread-safe: call from one thread."""

    def __init__(self, config: TeleopConfig | None = None) -> None:
        self.config = config or TeleopConfig()
        self._kb: tuple[float, float, float] | None = None     # (v, w, arrival time)
        self._joy: tuple[float, float, bool, float] | None = None   # (v, w, pressed, time)
        self._stops_left = 0
        self._mode_manual: bool | None = None
        self._mode_at = -math.inf
        self.counts = {"keyboard": 0, "joystick": 0, "rejected": 0, "published": 0,
                       "stops": 0, "ignored_not_manual": 0}
        self.last_reason = ""
        #: why the last tick ignored held input ('' = it did not)
        self.ignored = ""

    # -- inputs ----------------------------------------------------------------------------
    def on_twist(self, v: float, w: float, now: float) -> str | None:
        """A keyboard Twist (linear.x, angular.z) arriving at ``now``.

        :returns: None when accepted, else why it was refused (the stream is then released:
            a stop follows at the next tick).
        """
        try:
            v, w = float(v), float(w)
        except (TypeError, ValueError):
            return self._reject_keyboard(f"velocity is not a number ({v!r}, {w!r})")
        if not (math.isfinite(v) and math.isfinite(w)):
            return self._reject_keyboard(f"non-finite velocity (v={v}, w={w}): stop")
        if not math.isfinite(now):
            return self._reject_keyboard("non-finite time")
        self._kb = (v, w, float(now))
        self.counts["keyboard"] += 1
        return None

    def _reject_keyboard(self, why: str) -> str:
        self.counts["rejected"] += 1
        if self._kb is not None:
            self._kb = None
            self._stops_left = self.config.stop_repeats
        self.last_reason = "keyboard: " + why
        return self.last_reason

    def on_joy(self, axes: Sequence[float], buttons: Sequence[int], now: float) -> str | None:
        """A sensor_msgs/Joy message (axes, buttons) arriving at ``now``.

        :returns: None when accepted, else why it was taken as released.
        """
        c = self.config
        was_held = self._joy is not None and self._joy[2]
        why = None
        try:
            axes = [float(a) for a in axes]
            buttons = [int(b) for b in buttons]
        except (TypeError, ValueError) as e:
            why = f"malformed message ({e})"
        else:
            need_b, need_a = c.joy_enable_button, max(c.joy_axis_linear, c.joy_axis_angular)
            if need_b >= len(buttons):
                why = (f"enable button {need_b} not in a message with {len(buttons)} buttons "
                       "(parameter joy_enable_button)")
            elif need_a >= len(axes):
                why = (f"axis {need_a} not in a message with {len(axes)} axes "
                       "(parameters joy_axis_linear/joy_axis_angular)")
            elif not all(math.isfinite(a) for a in (axes[c.joy_axis_linear],
                                                     axes[c.joy_axis_angular])):
                why = "non-finite axis value: stop"
            elif not math.isfinite(now):
                why = "non-finite time"
        if why is not None:
            self.counts["rejected"] += 1
            self._joy = None
            if was_held:
                self._stops_left = c.stop_repeats
            self.last_reason = "joystick: " + why
            return self.last_reason
        pressed = buttons[c.joy_enable_button] != 0

        def shaped(a: float, scale: float) -> float:
            a = max(-1.0, min(1.0, a))
            return 0.0 if abs(a) < c.joy_deadzone else scale * a
        v = shaped(axes[c.joy_axis_linear], c.joy_scale_linear)
        w = shaped(axes[c.joy_axis_angular], c.joy_scale_angular)
        self._joy = (v, w, pressed, float(now))
        self.counts["joystick"] += 1
        if was_held and not pressed:
            self._stops_left = c.stop_repeats
        return None

    def on_safety_mode(self, manual: bool, now: float) -> None:
        """The supervisor's mode from ``safety/state`` (MODE_MANUAL or not)."""
        self._mode_manual, self._mode_at = bool(manual), float(now)

    # -- state -----------------------------------------------------------------------------
    def keyboard_held(self, now: float) -> bool:
        kb = self._kb
        return kb is not None and 0.0 <= now - kb[2] <= self.config.hold_timeout_s

    def joystick_held(self, now: float) -> bool:
        j = self._joy
        return j is not None and j[2] and 0.0 <= now - j[3] <= self.config.joy_timeout_s

    def manual_mode(self, now: float) -> bool | None:
        """True/False from a fresh safety state, None when unknown (none or stale)."""
        if self._mode_manual is None or not 0.0 <= now - self._mode_at \
                <= self.config.safety_state_timeout_s:
            return None
        return self._mode_manual

    def active_source(self, now: float) -> str | None:
        """The held input ('joystick' first), or None."""
        if self.joystick_held(now):
            return "joystick"
        if self.keyboard_held(now):
            return "keyboard"
        return None

    # -- output ----------------------------------------------------------------------------
    def tick(self, now: float) -> TeleopCommand | None:
        """What to publish at ``now`` (None: nothing; the relay stays silent when idle)."""
        c = self.config
        src = self.active_source(now) if math.isfinite(now) else None
        self.ignored = ""
        if src is not None and c.require_manual and self.manual_mode(now) is not True:
            self.counts["ignored_not_manual"] += 1
            mode = self.manual_mode(now)
            self.ignored = ("teleop input ignored: the supervisor is not in manual mode "
                            "(sitebot safety mode manual, or the console)"
                            if mode is False else
                            "teleop input ignored: no fresh safety/state (mode unknown)")
            src = None
        if src is not None:
            if src == "joystick":
                v, w = self._joy[0], self._joy[1]
            else:
                v, w = self._kb[0], self._kb[1]
            v, w = clamp_twist(v, w, c.max_linear_mps, c.max_angular_radps)
            self._stops_left = c.stop_repeats
            self.counts["published"] += 1
            return TeleopCommand(v, w, True, src)
        # released: drop the lapsed inputs so that an old message never revives a hold
        if self._kb is not None and not self.keyboard_held(now):
            self._kb = None
        if self._stops_left > 0:
            self._stops_left -= 1
            self.counts["stops"] += 1
            return TeleopCommand(0.0, 0.0, False, "stop")
        return None


class TeleopArbiter:
    """The console's hold-to-run pad: one client at a time holds it (not thread-safe).

    While the holder's commands keep arriving :meth:`tick` answers the held twist (clamped
    like the relay's, curvature kept) with the deadman pressed; it answers one stop (zero
    twist, deadman released) when they stop for longer than ``timeout_s`` (a browser frozen, a
    lost network); :meth:`release` answers one when the holder lets go or its connection
    closes. The supervisor's own hold-to-run timeout is the second layer.
    """

    def __init__(self, timeout_s: float = DEADMAN_TIMEOUT_S,
                 max_linear_mps: float = TeleopConfig.max_linear_mps,
                 max_angular_radps: float = TeleopConfig.max_angular_radps) -> None:
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError("timeout_s must be finite and > 0")
        for name, lim in (("max_linear_mps", max_linear_mps),
                          ("max_angular_radps", max_angular_radps)):
            if not (lim >= 0 and math.isfinite(lim)):
                raise ValueError(f"{name} must be finite and >= 0")
        self.timeout_s = float(timeout_s)
        self.max_linear_mps = float(max_linear_mps)
        self.max_angular_radps = float(max_angular_radps)
        self.holder: str | None = None
        self.v = 0.0
        self.w = 0.0
        self.last = -math.inf
        self.stops = 0

    @property
    def active(self) -> bool:
        return self.holder is not None

    def command(self, client: str, v: float, w: float, now: float) -> tuple[bool, str]:
        """A held-pad command from ``client``; (accepted, reason). Refused while another
        client holds the pad (until it releases or goes stale). The accepted twist, clamped,
        is :attr:`v`, :attr:`w`."""
        if not (math.isfinite(v) and math.isfinite(w)):
            return False, "non-finite velocity"
        if self.holder is not None and self.holder != client:
            if now - self.last <= self.timeout_s:
                return False, "another operator is driving"
        self.v, self.w = clamp_twist(float(v), float(w), self.max_linear_mps,
                                     self.max_angular_radps)
        self.holder, self.last = client, now
        return True, "driving"

    def release(self, client: str, reason: str = "released") -> TeleopCommand | None:
        """The pad released by ``client`` (or its connection gone): a stop if it held it."""
        if self.holder != client:
            return None
        self.holder = None
        self.v = self.w = 0.0
        self.stops += 1
        return TeleopCommand(0.0, 0.0, False, "stop", reason)

    def tick(self, now: float) -> TeleopCommand | None:
        """Periodic: the twist to send while fresh, one stop when it went stale."""
        if self.holder is None:
            return None
        if now - self.last > self.timeout_s or now < self.last - self.timeout_s:
            return self.release(self.holder, reason=f"no teleop command for "
                                                    f"{now - self.last:.2f} s")
        return TeleopCommand(self.v, self.w, True, "console")
