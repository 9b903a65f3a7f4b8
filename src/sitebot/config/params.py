"""Parameter schemas: one validated schema per node, usable without rclpy.

A node declares its parameters from a tuple of :class:`ParamSpec` (see
``sitebot.nodes.common.declare_schema``); the same schema validates parameter files offline
(``sitebot check config/sim.yaml``) so that a wrong type or an out-of-range value is
reported with the parameter's name, the file and the accepted range before anything runs.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

from sitebot.errors import ConfigError, ParameterError

__all__ = ["ParamType", "ParamSpec", "validate_value", "validate_params", "EVERY_NODE_PARAMS",
           "load_params_file", "node_params_from_file", "fields_from_params",
           "dataclass_from_params"]

C = TypeVar("C")


def fields_from_params(cls: type, params: Mapping[str, Any], prefix: str = "",
                       exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of dataclass ``cls`` that ``params`` holds (as ``prefix`` + field name),
    as keyword arguments for ``cls``; lists (how ROS hands over arrays) become tuples."""
    skip = set(exclude)
    out = {}
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if f.name not in skip and key in params:
            v = params[key]
            out[f.name] = tuple(v) if isinstance(v, list) else v
    return out


def dataclass_from_params(cls: type[C], params: Mapping[str, Any], prefix: str = "",
                          **extra: Any) -> C:
    """Dataclass ``cls`` from the parameters that name its fields (see
    :func:`fields_from_params`) and ``extra``; the other fields keep their defaults."""
    return cls(**fields_from_params(cls, params, prefix, exclude=extra), **extra)


class ParamType(Enum):
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    FLOAT_ARRAY = "float[]"
    INT_ARRAY = "int[]"
    STRING_ARRAY = "string[]"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, type, default, description and what values are accepted.

    ``min_value``/``max_value`` bound numbers (and every element of numeric arrays);
    ``choices`` closes strings to a set; ``length`` fixes an array's length (``None``: any).
    """

    name: str
    type: ParamType
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    length: int | None = None
    read_only: bool = False
    unit: str = ""

    def __post_init__(self) -> None:
        if not self.description:
            raise ValueError(f"parameter '{self.name}' needs a description")
        validate_value(self, self.default)

    def accepted(self) -> str:
        """Human-readable statement of the accepted values."""
        parts = [self.type.value]
        if self.length is not None:
            parts.append(f"of length {self.length}")
        if self.min_value is not None or self.max_value is not None:
            lo = "-inf" if self.min_value is None else _fmt(self.min_value)
            hi = "inf" if self.max_value is None else _fmt(self.max_value)
            parts.append(f"in [{lo}, {hi}]" + (f" {self.unit}" if self.unit else ""))
        if self.choices:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        return " ".join(parts)


def _fmt(v: float) -> str:
    """A bound as people write it: 2147483647, 0.5, 1e-04."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _check_number(spec: ParamSpec, v: float, what: str) -> None:
    if not math.isfinite(v):
        raise ParameterError(f"parameter '{spec.name}': {what} {v!r} is not finite; "
                             f"accepted: {spec.accepted()}")
    if (spec.min_value is not None and v < spec.min_value) or (
            spec.max_value is not None and v > spec.max_value):
        raise ParameterError(f"parameter '{spec.name}': {what} {v!r} is out of range; "
                             f"accepted: {spec.accepted()}")


def _check_text(spec: ParamSpec, v: str, what: str) -> None:
    # rcl passes strings as C strings: a NUL would cut the value where the node reads it
    if "\x00" in v:
        raise ParameterError(f"parameter '{spec.name}': {what} {v[:40]!r} contains a NUL "
                             "character; accepted: text without NUL")


def validate_value(spec: ParamSpec, value: Any) -> Any:
    """Return ``value`` converted to the spec's type, or raise :class:`ParameterError`."""
    t = spec.type
    bad = ParameterError(f"parameter '{spec.name}': {value!r} ({type(value).__name__}) "
                         f"has the wrong type; accepted: {spec.accepted()}")
    if t is ParamType.BOOL:
        if not isinstance(value, bool):
            raise bad
        return value
    if t is ParamType.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        _check_number(spec, value, "value")
        return int(value)
    if t is ParamType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        _check_number(spec, float(value), "value")
        return float(value)
    if t is ParamType.STRING:
        if not isinstance(value, str):
            raise bad
        _check_text(spec, value, "value")
        if spec.choices and value not in spec.choices:
            raise ParameterError(f"parameter '{spec.name}': {value!r} is not accepted; "
                                 f"accepted: {spec.accepted()}")
        return value
    # arrays
    if not isinstance(value, (list, tuple)):
        raise bad
    if spec.length is not None and len(value) != spec.length:
        raise ParameterError(f"parameter '{spec.name}': has {len(value)} elements; "
                             f"accepted: {spec.accepted()}")
    out: list = []
    for i, item in enumerate(value):
        if t is ParamType.STRING_ARRAY:
            if not isinstance(item, str):
                raise bad
            _check_text(spec, item, f"element [{i}]")
            if spec.choices and item not in spec.choices:
                raise ParameterError(f"parameter '{spec.name}[{i}]': {item!r} is not accepted; "
                                     f"accepted: {spec.accepted()}")
            out.append(item)
        elif t is ParamType.INT_ARRAY:
            if isinstance(item, bool) or not isinstance(item, int):
                raise bad
            _check_number(spec, item, f"element [{i}]")
            out.append(int(item))
        else:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise bad
            _check_number(spec, float(item), f"element [{i}]")
            out.append(float(item))
    return out


#: what every sitebot node takes besides its own schema: rclpy's ``use_sim_time``,
#: ``sim_lockstep`` (a participant of the simulator's stack barrier: sitebot.barrier) and
#: ``executor`` (which rclpy executor spins it: sitebot.nodes.executors)
EVERY_NODE_PARAMS = ("use_sim_time", "sim_lockstep", "executor")


def validate_params(schema: Iterable[ParamSpec], values: Mapping[str, Any],
                    *, file: str | Path | None = None, node: str = "",
                    allow_unknown: Iterable[str] = EVERY_NODE_PARAMS) -> dict[str, Any]:
    """Validate ``values`` against ``schema``; fill defaults; reject unknown names."""
    specs = {s.name: s for s in schema}
    out = {name: s.default for name, s in specs.items()}
    allowed_extra = set(allow_unknown)
    for name, value in values.items():
        where = f"{node}.ros__parameters.{name}" if node else name
        if name not in specs:
            if name in allowed_extra:
                continue
            raise ConfigError(f"unknown parameter '{name}'; this node declares: "
                              + ", ".join(sorted(specs)), file, where)
        try:
            out[name] = validate_value(specs[name], value)
        except ParameterError as e:
            raise ConfigError(str(e), file, where) from None
    return out


def load_params_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ROS 2 parameter file (``node: ros__parameters: {...}``).

    Returns ``{node_name: {param: value}}`` with nested dicts flattened to dotted names, as
    ROS does. Raises :class:`ConfigError` naming the file and key on malformed content.
    """
    from sitebot.config.yamlio import load_yaml  # local import: keeps this module light

    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("a parameter file must be a mapping of node names to "
                          "'ros__parameters'", path)
    _check_rcl_booleans(path)
    out: dict[str, dict[str, Any]] = {}
    for node_name, body in data.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise ConfigError("expected 'ros__parameters:' under the node name", path,
                              str(node_name))
        extra = set(body) - {"ros__parameters"}
        if extra:
            raise ConfigError(f"unexpected keys {sorted(extra)} beside 'ros__parameters'",
                              path, str(node_name))
        params = body["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise ConfigError("'ros__parameters' must be a mapping", path,
                              f"{node_name}.ros__parameters")
        _check_printable(str(node_name), "node name", path, str(node_name))
        flat: dict[str, Any] = {}
        _flatten(params, "", flat)
        for name in flat:
            _check_printable(name, "parameter name", path,
                             f"{node_name}.ros__parameters.{name}")
        out[str(node_name)] = flat
    return out


#: Plain (unquoted) scalars that rcl's YAML parser reads as booleans although PyYAML reads
#: them as strings: the same file would mean different things to `sitebot check` and ROS.
_RCL_ONLY_BOOLEANS = {"y", "Y", "n", "N"}


def _check_rcl_booleans(path: str | Path) -> None:
    import yaml

    from sitebot.config.yamlio import compose_yaml

    root, _, _ = compose_yaml(path)      # bounded: depth, size and alias expansion
    stack = [root] if root is not None else []
    seen: set[int] = set()               # an aliased node is looked at once
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(v for kv in node.value for v in kv)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.ScalarNode) and node.style is None \
                and node.value in _RCL_ONLY_BOOLEANS:
            raise ConfigError(f"unquoted {node.value!r} is a boolean to ROS 2's parameter "
                              f"parser (rcl); quote it: \"{node.value}\"", path,
                              f"line {node.start_mark.line + 1}")


def _check_printable(name: str, what: str, path: str | Path, where: str) -> None:
    if not name or not name.isprintable():
        raise ConfigError(f"{what} {name!r} must be non-empty and printable (no NUL, control "
                          "characters, line breaks or tabs)", path, where)


def _flatten(d: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, key + ".", out)
        else:
            out[key] = v


def node_params_from_file(path: str | Path, node_name: str,
                          schema: Iterable[ParamSpec]) -> dict[str, Any]:
    """Validated parameters for ``node_name`` from a file (wildcard ``/**`` entries included)."""
    entries = load_params_file(path)
    merged: dict[str, Any] = {}
    bare = node_name.lstrip("/")
    for key in ("/**", "**", bare, "/" + bare):    # 'node' and '/node' name the same node
        merged.update(entries.get(key, {}))
    return validate_params(schema, merged, file=path, node=node_name)

