"""The web console's parameters (:data:`SCHEMA`, declared by :mod:`sitebot.nodes.web_console`
and checked offline by ``sitebot check``; ``config/console.yaml``).

Each parameter has a description, a type, a unit and an accepted range. The server takes its
share as :class:`sitebot.console.server.ServerConfig` (``ServerConfig.from_params``), the
page's sections theirs as :class:`sitebot.console.views.ViewConfig`; the defaults here are
theirs. ``deadman_timeout_s`` defaults to the teleop core's
:data:`sitebot.teleop.core.DEADMAN_TIMEOUT_S`. Also here: what ``host``/``allowed_hosts`` and
``tls_cert_file``/``tls_key_file`` become (:func:`allowed_hosts`, :func:`tls_context`).
"""
from __future__ import annotations

import socket
import ssl
from dataclasses import replace
from typing import Iterable

from sitebot.config.params import ParamSpec, ParamType
from sitebot.console.protocol import host_name
from sitebot.errors import ConfigError
from sitebot.security import KEY_PARAM
from sitebot.site.params import INITIAL_POSE_PARAM, SITE_PARAM
from sitebot.teleop.core import DEADMAN_TIMEOUT_S

__all__ = ["SCHEMA", "allowed_hosts", "tls_context"]

F, I, B, S = ParamType.FLOAT, ParamType.INT, ParamType.BOOL, ParamType.STRING

SCHEMA: tuple[ParamSpec, ...] = (
    ParamSpec("host", S, "127.0.0.1", "address the console listens on (127.0.0.1: this "
              "machine only; put a TLS reverse proxy in front for remote use)", read_only=True),
    ParamSpec("port", I, 8080, "HTTP + WebSocket port (0 = any free port)", 0, 65535,
              read_only=True),
    ParamSpec("users_file", S, "", "users YAML (salted PBKDF2 hashes); '' = the package's "
              "config/console_users.yaml (demo users: replace them on a site)", read_only=True),
    replace(SITE_PARAM, read_only=True),
    replace(INITIAL_POSE_PARAM, read_only=True),
    ParamSpec("audit_log", S, "", "the safety supervisor's audit log (JSON lines) whose "
              "tail is shown; '' = none"),
    ParamSpec("console_log", S, "", "the console's own audit log of operator actions (JSON "
              "lines, appended); '' = ROS log only", read_only=True),
    ParamSpec("audit_tail_lines", I, 15, "audit lines shown", 1, 200),
    ParamSpec("state_rate_hz", F, 10.0, "state updates sent to each browser", 1.0, 30.0,
              unit="Hz", read_only=True),
    ParamSpec("camera_rate_hz", F, 2.0, "camera frames encoded and sent", 0.1, 10.0,
              unit="Hz", read_only=True),
    ParamSpec("camera_max_width", I, 480, "camera frames are scaled down to this width", 80,
              1920, unit="px", read_only=True),
    ParamSpec("jpeg_quality", I, 70, "JPEG quality of camera frames and gauge crops", 10, 95),
    ParamSpec("max_linear_mps", F, 0.5, "teleop |v| is clamped to this (the supervisor's "
              "manual limit applies after it)", 0.0, 2.0, unit="m/s", read_only=True),
    ParamSpec("max_angular_radps", F, 1.0, "teleop |w| is clamped to this", 0.0, 3.0,
              unit="rad/s", read_only=True),
    ParamSpec("deadman_timeout_s", F, DEADMAN_TIMEOUT_S, "no teleop command from the browser "
              "for this long: stop (zero twist, deadman released)", 0.05, 2.0, unit="s",
              read_only=True),
    ParamSpec("command_rate_hz", F, 25.0, "incoming commands per browser connection "
              "(token bucket rate; e-stop and teleop release never refused)", 1.0, 200.0,
              unit="Hz", read_only=True),
    ParamSpec("command_burst", F, 40.0, "token bucket size", 1.0, 1000.0, read_only=True),
    ParamSpec("max_message_bytes", I, 4096, "larger WebSocket messages are rejected", 256,
              1048576, unit="B", read_only=True),
    ParamSpec("login_max_failures", I, 5, "login attempts per address and per user name "
              "(and per user name from addresses without failures) checked without delay; "
              "then each waits login_delay_s, doubling, up to login_max_delay_s", 1, 1000,
              read_only=True),
    ParamSpec("login_window_s", F, 60.0, "an address's or user name's failed logins are "
              "forgotten this long after its last attempt", 1.0, 86400.0, unit="s",
              read_only=True),
    ParamSpec("login_delay_s", F, 1.0, "the first wait once login_max_failures attempts "
              "were made (it doubles with each further failure)", 0.01, 3600.0, unit="s",
              read_only=True),
    ParamSpec("login_max_delay_s", F, 30.0, "the longest wait between login attempts (a "
              "delay, never a lockout)", 0.01, 3600.0, unit="s", read_only=True),
    ParamSpec("check_origin", B, True, "refuse WebSocket connections from other origins "
              "(cross-site pages)", read_only=True),
    ParamSpec("allowed_hosts", ParamType.STRING_ARRAY, [], "names accepted in the Host "
              "header besides localhost, 127.0.0.1, ::1, this machine's host name and "
              "'host' (others: HTTP 421; DNS rebinding)", read_only=True),
    ParamSpec("tls_cert_file", S, "", "PEM certificate (chain) for HTTPS/WSS served directly; "
              "'' = plain HTTP (a TLS proxy in front)", read_only=True),
    ParamSpec("tls_key_file", S, "", "PEM private key of tls_cert_file", read_only=True),
    ParamSpec("supervisor_node", S, "safety_supervisor", "the safety supervisor's node name "
              "(informational: mode changes and resets go to safety/request, signed)",
              read_only=True),
    KEY_PARAM,
    ParamSpec("service_timeout_s", F, 3.0, "waiting for a service or action answer (wall)",
              0.1, 60.0, unit="s"),
    ParamSpec("pose_timeout_s", F, 1.0, "odometry/filtered older than this: the odom pose "
              "is shown", 0.1, 30.0, unit="s"),
    ParamSpec("footprint_radius_m", F, 0.4, "robot footprint radius drawn (the "
              "supervisor's footprint_radius_m)", 0.05, 3.0, unit="m"),
    ParamSpec("base_frame", S, "base_footprint", "robot base frame"),
    ParamSpec("map_frame", S, "map", "map frame"),
)


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a request's ``Host`` may carry: localhost, 127.0.0.1, ::1, this machine's
    host name, the listen address ``host`` and ``extra`` (names without a port)."""
    names = ("localhost", "127.0.0.1", "::1", socket.gethostname(), host, *extra)
    return frozenset(n for n in (host_name(f"[{x}]" if ":" in x and not x.startswith("[")
                                           else x) for x in names) if n)


def tls_context(cert: str, key: str) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 at least) when a certificate and key are given,
    None when neither is; :class:`ConfigError` naming the files when they cannot be used."""
    if not cert and not key:
        return None
    if not cert or not key:
        raise ConfigError("web console: tls_cert_file and tls_key_file go together (got "
                          f"tls_cert_file={cert!r}, tls_key_file={key!r})")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"web console: TLS certificate {cert!r} / key {key!r} not usable: "
                          f"{e}") from None
    return ctx
