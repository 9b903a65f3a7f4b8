"""The web console's core (no rclpy): authentication, roles, message validation, rate
limits, the state store, the robot's messages shaped for the page and the asyncio HTTP +
WebSocket server. The teleop pad's deadman arbiter is the teleop core's
(:class:`sitebot.teleop.core.TeleopArbiter`).

The ROS side is one thin bridge, :mod:`sitebot.nodes.web_console`; the server only talks to
a bridge object (:class:`sitebot.console.server.Bridge`), so everything here runs and is
tested without a ROS graph.  See docs/console.md.
"""
from sitebot.console.auth import (PERMISSIONS, ROLES, AuthError, LoginLimiter, User, UserStore,
                                  hash_password, load_users, permitted, verify_password)
from sitebot.console.protocol import ProtocolError, parse_message
from sitebot.console.ratelimit import Throttle, TokenBucket

__all__ = ["PERMISSIONS", "ROLES", "AuthError", "LoginLimiter", "User", "UserStore",
           "hash_password", "load_users", "permitted", "verify_password", "ProtocolError",
           "parse_message", "Throttle", "TokenBucket"]
