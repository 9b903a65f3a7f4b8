"""Where each node's parameter schema lives, for offline checks (``sitebot check``).

:data:`NODE_SCHEMAS` maps a node name (the name used as a section of a ROS 2 parameter
file, and the executable's name) to ``"module:ATTRIBUTE"``, the tuple of
:class:`~sitebot.config.params.ParamSpec` the node declares.  Nothing is imported until
:func:`schema_for` asks for a schema, so importing this module costs nothing; the node
modules themselves import rclpy, which is then needed to look their schemas up.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from sitebot.errors import SitebotError

if TYPE_CHECKING:  # pragma: no cover
    from sitebot.config.params import ParamSpec

__all__ = ["NODE_SCHEMAS", "available_nodes", "known_nodes", "schema_for"]

NODE_SCHEMAS: dict[str, str] = {
    "simulator": "sitebot.nodes.simulator:SCHEMA",
    "safety_supervisor": "sitebot.nodes.safety_supervisor:SCHEMA",
    "control_loop": "sitebot.nodes.control_loop:SCHEMA",
    "camera_perception": "sitebot.nodes.camera_perception:SCHEMA",
    "spatial_perception": "sitebot.nodes.spatial_perception:SCHEMA",
    "localization": "sitebot.nodes.localization:SCHEMA",
    "navigation": "sitebot.nodes.navigation:SCHEMA",
    "arm_planner": "sitebot.nodes.arm_planner:SCHEMA",
    "task_planner": "sitebot.nodes.task_planner:SCHEMA",
    "task_executor": "sitebot.nodes.task_executor:SCHEMA",
    "web_console": "sitebot.nodes.web_console:SCHEMA",
    "teleop_relay": "sitebot.nodes.teleop_relay:SCHEMA",
    "site_viz": "sitebot.nodes.site_viz:SCHEMA",
    "map_server": "sitebot.nodes.map_server:SCHEMA",
    "survey_recorder": "sitebot.nodes.survey_recorder:SCHEMA",
}

_CACHE: dict[str, tuple["ParamSpec", ...]] = {}


def known_nodes() -> tuple[str, ...]:
    """The node names that have a schema, sorted."""
    return tuple(sorted(NODE_SCHEMAS))


def available_nodes() -> tuple[str, ...]:
    """The node names that have a schema and whose module is installed, sorted (what a
    ``/**`` wildcard section is checked against)."""
    import importlib.util
    out = []
    for name, target in NODE_SCHEMAS.items():
        try:
            found = importlib.util.find_spec(target.partition(":")[0]) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            out.append(name)
    return tuple(sorted(out))


def schema_for(node_name: str) -> tuple["ParamSpec", ...]:
    """The parameter schema of the node *node_name*, imported on first use.

    :raises SitebotError: the node is unknown (listing the known ones), or its module
        cannot be imported (naming the module and the import error), or the attribute is
        not a tuple of ParamSpec.
    """
    if node_name in _CACHE:
        return _CACHE[node_name]
    try:
        target = NODE_SCHEMAS[node_name]
    except KeyError:
        raise SitebotError(f"no parameter schema for node '{node_name}'; known nodes: "
                           + ", ".join(known_nodes())) from None
    module_name, _, attr = target.partition(":")
    try:
        with _quiet_output():  # pybullet prints its build time on import
            module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises on import
        raise SitebotError(
            f"cannot load the parameter schema of node '{node_name}' from {target}: "
            f"{type(exc).__name__}: {exc} (is the ROS 2 environment, rclpy, available?)"
        ) from None
    from sitebot.config.params import ParamSpec  # light module, no rclpy

    schema = getattr(module, attr, None)
    if not isinstance(schema, (tuple, list)) or not all(isinstance(s, ParamSpec)
                                                        for s in schema):
        raise SitebotError(f"{target} is not a tuple of ParamSpec (schema of node "
                           f"'{node_name}')")
    _CACHE[node_name] = tuple(schema)
    return _CACHE[node_name]


class _quiet_output:
    """Send file descriptors 1 and 2 to /dev/null for the duration: C extensions that
    print on import (pybullet prints its build time) would otherwise interleave with a
    command's output.  Python exceptions are unaffected: they propagate to the caller."""

    def __enter__(self) -> None:
        self.saved: list[tuple[int, int]] = []
        try:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            devnull = os.open(os.devnull, os.O_WRONLY)
        except (OSError, ValueError, AttributeError):  # pragma: no cover
            return
        try:
            for fd in (1, 2):
                try:
                    self.saved.append((fd, os.dup(fd)))
                    os.dup2(devnull, fd)
                except OSError:  # pragma: no cover - fd not open
                    pass
        finally:
            os.close(devnull)

    def __exit__(self, *exc: object) -> None:
        if not self.saved:
            return
        try:
            import ctypes
            ctypes.CDLL(None).fflush(None)  # C stdio buffers go to /dev/null, not later
        except Exception:  # pragma: no cover - no libc (not on the supported platforms)
            pass
        for fd, saved in self.saved:
            os.dup2(saved, fd)
            os.close(saved)
