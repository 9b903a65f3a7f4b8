"""teleop_relay: keyboard / joystick teleoperation into the supervisor's hold-to-run mode.

Inputs: ``teleop/cmd_vel`` (geometry_msgs/Twist from ``teleop_twist_keyboard``; TwistStamped
with ``keyboard_stamped: true``, as that tool's ``stamped`` parameter), ``joy``
(sensor_msgs/Joy: enable button = deadman, axes -> velocity like ``teleop_twist_joy``),
``safety/state`` (sitebot_interfaces/SafetyState: the supervisor's mode).
Outputs: ``cmd_vel_in`` (geometry_msgs/TwistStamped, into the safety supervisor),
``teleop/deadman`` (std_msgs/Bool, the hold-to-run flag), ``/diagnostics``.

The rules live in :mod:`sitebot.teleop.core` (core, no ROS; docs/rviz.md): motion is relayed at
``publish_rate_hz`` with the deadman true while a source is held (keyboard: a message within
``hold_timeout_s``; joystick: the enable button pressed in a fresh message), then zero with the
deadman false ``stop_repeats`` times, then silence. Non-finite input stops.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Joy
from std_msgs.msg import Bool

from sitebot.config.params import ParamSpec, ParamType
from sitebot.nodes.common import QOS_COMMAND, QOS_SENSOR, QOS_STATE, declare_schema, run_node
from sitebot.teleop.core import TeleopConfig, TeleopRelay
from sitebot_interfaces.msg import SafetyState

F, B, S, I = ParamType.FLOAT, ParamType.BOOL, ParamType.STRING, ParamType.INT

SCHEMA = (
    ParamSpec("max_linear_mps", F, 0.5, "largest |v| relayed (the supervisor's manual limit "
              "applies on top)", 0.01, 2.0, unit="m/s"),
    ParamSpec("max_angular_radps", F, 1.0, "largest |w| relayed", 0.01, 4.0, unit="rad/s"),
    ParamSpec("hold_timeout_s", F, 0.6, "keyboard: no teleop/cmd_vel message for this long = "
              "key released (covers the terminal's key-repeat delay)", 0.05, 2.0, unit="s"),
    ParamSpec("joy_timeout_s", F, 0.5, "joystick: no joy message for this long = released "
              "(the joy node repeats at autorepeat_rate, 20 Hz by default)", 0.05, 2.0, unit="s"),
    ParamSpec("joy_enable_button", I, 0, "joystick: index of the deadman (enable) button, "
              "as teleop_twist_joy's enable_button", 0, 63),
    ParamSpec("joy_axis_linear", I, 1, "joystick: axis index of the forward speed", 0, 63),
    ParamSpec("joy_axis_angular", I, 0, "joystick: axis index of the yaw rate", 0, 63),
    ParamSpec("joy_scale_linear", F, 0.5, "joystick: forward speed at full axis deflection",
              0.01, 2.0, unit="m/s"),
    ParamSpec("joy_scale_angular", F, 1.0, "joystick: yaw rate at full axis deflection",
              0.01, 4.0, unit="rad/s"),
    ParamSpec("joy_deadzone", F, 0.05, "joystick: |axis| below this reads zero", 0.0, 0.9),
    ParamSpec("keyboard_stamped", B, False, "teleop/cmd_vel carries TwistStamped (start "
              "teleop_twist_keyboard with -p stamped:=true) instead of Twist"),
    ParamSpec("publish_rate_hz", F, 20.0, "cmd_vel_in / teleop/deadman rate while held (must "
              "beat the supervisor's deadman_timeout_s)", 5.0, 100.0, unit="Hz"),
    ParamSpec("stop_repeats", I, 3, "zero commands (deadman false) sent after a release",
              1, 50),
    ParamSpec("require_manual", B, True, "relay motion only while safety/state reports manual "
              "mode (in automatic mode teleop input is ignored with a warning)"),
    ParamSpec("safety_state_timeout_s", F, 1.0, "safety/state older than this: mode unknown, "
              "nothing relayed", 0.1, 10.0, unit="s"),
    ParamSpec("base_frame", S, "base_footprint", "frame_id of the relayed TwistStamped"),
    ParamSpec("warn_period_s", F, 2.0, "shortest period between two warnings of one kind",
              0.1, 60.0, unit="s"),
)

_CORE_FIELDS = {f.name for f in dataclasses.fields(TeleopConfig)}


def _config(p: dict[str, Any]) -> TeleopConfig:
    return TeleopConfig(**{k: v for k, v in p.items() if k in _CORE_FIELDS})


class TeleopRelayNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("teleop_relay", **kwargs)
        self.p = declare_schema(self, SCHEMA, on_change=self._on_params)
        self.relay = TeleopRelay(_config(self.p))
        self._warned: dict[str, float] = {}
        self.cmd_pub = self.create_publisher(TwistStamped, "cmd_vel_in", QOS_COMMAND)
        self.deadman_pub = self.create_publisher(Bool, "teleop/deadman", QOS_COMMAND)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_STATE)
        kb_type = TwistStamped if self.p["keyboard_stamped"] else Twist
        self.create_subscription(kb_type, "teleop/cmd_vel", self.on_keyboard, QOS_COMMAND)
        # the joy node publishes reliable by default; a best-effort subscription matches both
        self.create_subscription(Joy, "joy", self.on_joy, QOS_SENSOR)
        self.create_subscription(SafetyState, "safety/state", self.on_safety, QOS_STATE)
        self.create_timer(1.0 / self.p["publish_rate_hz"], self.on_timer)
        self.create_timer(1.0, self.on_diagnostics)
        self.get_logger().info(
            f"teleop relay: keyboard on {self.resolve_topic_name('teleop/cmd_vel')} "
            f"({kb_type.__name__}), joystick on {self.resolve_topic_name('joy')} (deadman "
            f"button {self.p['joy_enable_button']}) -> cmd_vel_in + teleop/deadman"
            + ("; only in the supervisor's manual mode" if self.p["require_manual"] else ""))

    def _on_params(self, changed: dict[str, Any]) -> None:
        new = dict(self.p)
        new.update(changed)
        try:
            cfg = _config(new)
        except ValueError as e:  # the schema's ranges make this unreachable; keep the old one
            self.get_logger().error(f"parameters refused: {e}")
            return
        self.p.update(changed)
        self.relay.config = cfg
        for k in ("keyboard_stamped", "publish_rate_hz"):
            if k in changed:
                self.get_logger().warning(f"parameter '{k}' takes effect at the next start")

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _warn(self, kind: str, text: str) -> None:
        t = time.monotonic()
        if t - self._warned.get(kind, -math.inf) >= self.p["warn_period_s"]:
            self._warned[kind] = t
            self.get_logger().warning(text)

    # ------------------------------------------------------------------ inputs
    def on_keyboard(self, msg: Any) -> None:
        try:
            tw = msg.twist if isinstance(msg, TwistStamped) else msg
            why = self.relay.on_twist(tw.linear.x, tw.angular.z, self.now())
        except Exception as e:  # noqa: BLE001 - a bad message never takes the relay down
            why = f"{type(e).__name__}: {e}"
        if why:
            self._warn("keyboard", f"teleop/cmd_vel: {why}")

    def on_joy(self, msg: Joy) -> None:
        try:
            why = self.relay.on_joy(list(msg.axes), list(msg.buttons), self.now())
        except Exception as e:  # noqa: BLE001
            why = f"{type(e).__name__}: {e}"
        if why:
            self._warn("joy", f"joy: {why}")

    def on_safety(self, msg: SafetyState) -> None:
        # hold-to-run as requested: a person nearby makes the mode in force REDUCED_SPEED,
        # the supervisor still runs manual mode's hold-to-run, and teleop must go on
        self.relay.on_safety_mode(msg.requested_mode == SafetyState.MODE_MANUAL, self.now())

    # ------------------------------------------------------------------ output
    def on_timer(self) -> None:
        now = self.now()
        try:
            out = self.relay.tick(now)
        except Exception as e:  # noqa: BLE001 - fail silent = no motion (the supervisor
            self._warn("tick", f"relay error: {type(e).__name__}: {e}")   # stops on its own)
            return
        if self.relay.ignored:
            self._warn("mode", self.relay.ignored)
        if out is None:
            return
        m = TwistStamped()
        m.header.stamp = self.get_clock().now().to_msg()
        m.header.frame_id = self.p["base_frame"]
        m.twist.linear.x, m.twist.angular.z = float(out.v_mps), float(out.w_radps)
        # the deadman first: the supervisor reads the hold when the command arrives
        self.deadman_pub.publish(Bool(data=bool(out.deadman)))
        self.cmd_pub.publish(m)

    def on_diagnostics(self) -> None:
        now = self.now()
        src = self.relay.active_source(now)
        mode = self.relay.manual_mode(now)
        d = DiagnosticStatus(name=f"{self.get_name()}: teleop", hardware_id="teleop_relay")
        if self.relay.counts["rejected"]:
            d.level = DiagnosticStatus.WARN
            d.message = f"{self.relay.counts['rejected']} inputs rejected; last: " \
                        f"{self.relay.last_reason}"
        else:
            d.level, d.message = DiagnosticStatus.OK, f"active: {src or 'none'}"
        d.values = [KeyValue(key="active_source", value=str(src or "none")),
                    KeyValue(key="supervisor_manual_mode",
                             value="unknown" if mode is None else str(mode).lower())]
        d.values += [KeyValue(key=k, value=str(v)) for k, v in self.relay.counts.items()]
        arr = DiagnosticArray(status=[d])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)


def main(args: list[str] | None = None) -> int:
    return run_node(TeleopRelayNode, args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
