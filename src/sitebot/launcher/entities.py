"""The tags of the ROS 2 YAML launch frontend that the launcher implements
(:data:`SUPPORTED_TAGS`), and :class:`Entity`/:class:`SubEntity`: the attributes of one
tag or list item, checked against what is accepted, with typed accessors whose errors name
the file and line.
"""
from __future__ import annotations

import math
from types import MappingProxyType
from typing import Mapping

from sitebot.errors import LaunchError
from sitebot.launcher.model import Condition
from sitebot.launcher.substitutions import Template, parse_template
from sitebot.launcher.yamlnodes import YNode, yaml_kind, yaml_scalar_text

__all__ = ["SUPPORTED_TAGS", "Entity", "SubEntity"]

_COND = ("if", "unless")
_PROC = ("output", "respawn", "respawn_delay", "cwd", "env", "launch-prefix")

#: tag -> accepted attributes
SUPPORTED_TAGS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "arg": ("name", "default", "description", "choice") + _COND,
    "let": ("name", "value") + _COND,
    "node": ("pkg", "exec", "name", "namespace", "args", "ros_args", "exec_name", "param",
             "remap") + _PROC + _COND,
    "executable": ("cmd", "name", "shell") + _PROC + _COND,
    "group": ("scoped", "forwarding", "keep", "children") + _COND,
    "include": ("file", "arg") + _COND,
    "push-ros-namespace": ("namespace",) + _COND,
    "push_ros_namespace": ("namespace",) + _COND,
    "set_env": ("name", "value") + _COND,
    "unset_env": ("name",) + _COND,
    "set_parameter": ("name", "value") + _COND,
    "set_remap": ("from", "to") + _COND,
})


class Entity:
    """The attributes of one tag, with type checks that name file and line."""

    def __init__(self, tag: str, node: YNode, file: str, line: int) -> None:
        self.tag = tag
        self.file = file
        self.line = line
        if node.kind != "map":
            raise LaunchError(
                f"'{tag}' must be a mapping of attributes, got "
                + ("nothing" if node.kind == "scalar" and node.value is None
                   else yaml_kind(node)), file, node.line)
        self.attrs: dict[str, tuple[int, YNode]] = node.value
        accepted = SUPPORTED_TAGS[tag]
        for key, (kline, _) in self.attrs.items():
            if key not in accepted:
                raise LaunchError(
                    f"unsupported attribute '{key}' in '{tag}' (supported: "
                    + ", ".join(accepted) + ")", file, kline)

    def err(self, msg: str, line: int | None = None) -> LaunchError:
        return LaunchError(msg, self.file, line if line is not None else self.line)

    def has(self, key: str) -> bool:
        return key in self.attrs

    def raw(self, key: str, required: bool = False) -> YNode | None:
        if key not in self.attrs:
            if required:
                raise self.err(f"'{self.tag}' needs the attribute '{key}'")
            return None
        return self.attrs[key][1]

    def string(self, key: str, required: bool = False) -> tuple[str, int] | None:
        node = self.raw(key, required)
        if node is None:
            return None
        if node.kind != "scalar" or not isinstance(node.value, str):
            hint = ""
            if node.kind == "scalar" and node.value is not None:
                hint = f" (quote it: {key}: \"{yaml_scalar_text(node.value)}\"; ros2 launch " \
                       "accepts only strings here)"
            raise self.err(f"attribute '{key}' of '{self.tag}' must be a string, got "
                           f"{yaml_kind(node)}{hint}", node.line)
        return node.value, node.line

    def template(self, key: str, required: bool = False) -> Template | None:
        got = self.string(key, required)
        if got is None:
            return None
        return parse_template(got[0], self.file, got[1])

    def boolean(self, key: str) -> bool | None:
        node = self.raw(key)
        if node is None:
            return None
        if node.kind != "scalar" or not isinstance(node.value, bool):
            raise self.err(f"attribute '{key}' of '{self.tag}' must be true or false "
                           f"(unquoted), got {yaml_kind(node)}", node.line)
        return node.value

    def bool_or_template(self, key: str) -> bool | Template | None:
        node = self.raw(key)
        if node is None:
            return None
        if node.kind == "scalar" and isinstance(node.value, bool):
            return node.value
        return self.template(key)

    def non_negative_float(self, key: str) -> float | None:
        node = self.raw(key)
        if node is None:
            return None
        if node.kind != "scalar" or isinstance(node.value, bool) \
                or not isinstance(node.value, float) or node.value < 0 \
                or not math.isfinite(node.value):
            raise self.err(f"attribute '{key}' of '{self.tag}' must be a non-negative float "
                           f"such as 1.0, got {yaml_kind(node)}", node.line)
        return node.value

    def entities(self, key: str) -> list["SubEntity"]:
        node = self.raw(key)
        if node is None:
            return []
        if node.kind != "seq" or not node.value or any(n.kind != "map" for n in node.value):
            raise self.err(f"attribute '{key}' of '{self.tag}' must be a non-empty list of "
                           "mappings", node.line)
        return [SubEntity(f"{self.tag}.{key}", n, self.file) for n in node.value]

    def condition(self) -> Condition | None:
        c_if = self.template("if")
        c_unless = self.template("unless")
        if c_if is not None and c_unless is not None:
            raise self.err(f"'{self.tag}' cannot have both 'if' and 'unless'")
        if c_if is not None:
            return Condition(c_if, False)
        if c_unless is not None:
            return Condition(c_unless, True)
        return None


class SubEntity(Entity):
    """An item of a list attribute (``param``, ``remap``, ``arg``, ``env``, ``keep``,
    ``choice``): accepted keys depend on the list."""

    _KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType({
        "node.param": ("name", "value", "type", "param", "from"),
        "node.param.param": ("name", "value", "type", "param"),
        "node.remap": ("from", "to"),
        "node.env": ("name", "value"),
        "executable.env": ("name", "value"),
        "include.arg": ("name", "value"),
        "group.keep": ("name", "value"),
        "arg.choice": ("value",),
    })

    def __init__(self, tag: str, node: YNode, file: str) -> None:  # noqa: D107
        self.tag = tag
        self.file = file
        self.line = node.line
        self.attrs = node.value
        accepted = self._KEYS[tag]
        for key, (kline, _) in self.attrs.items():
            if key not in accepted:
                raise LaunchError(
                    f"unsupported attribute '{key}' in '{tag}' item (supported: "
                    + ", ".join(accepted) + ")", file, kline)

    def entities(self, key: str) -> list["SubEntity"]:
        node = self.raw(key)
        if node is None:
            return []
        if node.kind != "seq" or not node.value or any(n.kind != "map" for n in node.value):
            raise self.err(f"'{key}' of '{self.tag}' must be a non-empty list of mappings",
                           node.line)
        tag = f"{self.tag}.{key}"
        if tag not in self._KEYS:  # nested params nest further
            tag = "node.param.param"
        return [SubEntity(tag, n, self.file) for n in node.value]
