"""Node parameters in launch files: parsing ``param`` items (inline values, nested
``param`` lists, ``from`` files), :class:`ParamResolver`, the part of the resolver that
turns them into typed values as launch_ros does, :func:`inline_params_file` (how a node
gets them: a parameter file, as launch_ros writes it), and :func:`format_param_value`, the
YAML text of a ``-p name:=value`` rule (the launcher's command-line form of a value).
"""
from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from sitebot.config.yamlio import load_yaml_text
from sitebot.errors import ConfigError, LaunchError
from sitebot.launcher.entities import SubEntity
from sitebot.launcher.model import ParamFile, ParamItem, ParamValue
from sitebot.launcher.substitutions import Template, parse_template
from sitebot.launcher.yamlnodes import YNode, yaml_kind

__all__ = ["parse_param", "ParamResolver", "format_param_value", "inline_params_file",
           "is_inline_params_file", "params_file_key"]

_PARAM_TYPES = ("str", "bool", "float", "int", "list_of_str", "list_of_bool",
                "list_of_float", "list_of_int", "yaml")


def parse_param(p: SubEntity) -> ParamItem:
    """One item of a node's ``param`` list: a parameters file (``from``) or a value."""
    if p.has("from"):
        for other in ("name", "value", "type", "param"):
            if p.has(other):
                raise p.err(f"a 'param' item with 'from' cannot also have '{other}'",
                            p.attrs[other][0])
        return ParamFile(path=p.template("from", True), file=p.file, line=p.line)
    return _parse_param_value(p)


def _parse_param_value(p: SubEntity) -> ParamValue:
    if not p.has("name"):
        raise p.err("a 'param' item needs 'name' (with 'value' or nested 'param') or 'from'")
    name = p.template("name", True)
    ptype = p.string("type")
    if ptype is not None and ptype[0] not in _PARAM_TYPES:
        raise p.err(f"unknown parameter type '{ptype[0]}' (supported: "
                    + ", ".join(_PARAM_TYPES) + ")", ptype[1])
    has_value, has_nested = p.has("value"), p.has("param")
    if has_value == has_nested:
        raise p.err("a 'param' item needs exactly one of 'value' and nested 'param'")
    if has_nested:
        if ptype is not None:
            raise p.err("'type' cannot be used with nested 'param'", ptype[1])
        children = tuple(_parse_param_value(c) for c in p.entities("param"))
        return ParamValue(name=name, file=p.file, line=p.line, children=children)
    node = p.raw("value")
    assert node is not None
    return ParamValue(name=name, file=p.file, line=node.line,
                      value=_param_literal(node, p), type=ptype[0] if ptype else None)


def _param_literal(node: YNode, p: SubEntity) -> Any:
    if node.kind == "scalar":
        v = node.value
        if isinstance(v, str):
            return parse_template(v, p.file, node.line)
        if isinstance(v, (bool, int, float)):
            return v
        raise p.err(f"parameter value must be a string, number, boolean or list, got "
                    f"{yaml_kind(node)}", node.line)
    if node.kind == "seq":
        if not node.value:
            raise p.err("a list parameter value must not be empty", node.line)
        items = []
        for item in node.value:
            if item.kind != "scalar" or item.value is None or \
                    not isinstance(item.value, (str, bool, int, float)):
                raise p.err("list parameter values may only hold strings, numbers or "
                            f"booleans, got {yaml_kind(item)}", item.line)
            items.append(parse_template(item.value, p.file, item.line)
                         if isinstance(item.value, str) else item.value)
        return tuple(items)
    raise p.err("a parameter value cannot be a mapping (use nested 'param' items)",
                node.line)


class ParamResolver:
    """Typed parameter values of ``param`` items, mixed into the resolver of
    :mod:`.parser`, which evaluates substitutions (:meth:`ev`) in the current scope."""

    def ev(self, t: Template) -> str:
        """The value of the template *t* (provided by the resolver)."""
        raise NotImplementedError

    def param_values(self, p: ParamValue, prefix: str) -> list[tuple[str, object]]:
        name = self.ev(p.name)
        full = f"{prefix}.{name}" if prefix else name
        if p.children:
            out: list[tuple[str, object]] = []
            for c in p.children:
                out += self.param_values(c, full)
            return out
        return [(full, self.param_value(p, full))]

    def param_value(self, p: ParamValue, name: str) -> object:
        v, ptype = p.value, p.type
        where = Template((), p.file, p.line)

        def fail(msg: str) -> LaunchError:
            return LaunchError(f"parameter '{name}': {msg}", p.file, p.line)

        if isinstance(v, tuple):
            items = []
            for item in v:
                if isinstance(item, Template):
                    text = self.ev(item)
                    item = text if ptype == "list_of_str" else self.yaml_value(text, name, item)
                items.append(item)
            return self.check_list(items, ptype, fail)
        if isinstance(v, Template):
            text = self.ev(v)
            if ptype == "str":
                return text
            value = self.yaml_value(text, name, where)
        else:
            value = v
        if ptype in (None, "yaml"):
            return value
        if ptype.startswith("list_of_"):
            if not isinstance(value, list):
                raise fail(f"expected a list for type {ptype}, got {value!r}")
            return self.check_list(value, ptype, fail)
        return self.check_scalar(value, ptype, fail)

    @staticmethod
    def check_scalar(value: object, ptype: str, fail: Callable[[str], LaunchError]) -> object:
        if ptype == "float" and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        want = {"str": str, "int": int, "float": float, "bool": bool}[ptype]
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise fail(f"expected {ptype}, got {value!r}")
        return value

    def check_list(self, items: list, ptype: str | None,
                   fail: Callable[[str], LaunchError]) -> list:
        if not items:
            raise fail("a list value must not be empty")
        if ptype is not None and ptype.startswith("list_of_"):
            return [self.check_scalar(i, ptype[len("list_of_"):], fail) for i in items]
        if ptype not in (None, "yaml"):
            raise fail(f"expected {ptype}, got a list")
        kinds = {type(i) for i in items}
        if len(kinds) != 1 or not kinds <= {bool, int, float, str}:
            raise fail("list items must all have the same type (bool, int, float or str), "
                       f"got {items!r}")
        return items

    @staticmethod
    def yaml_value(text: str, name: str, where: Template) -> object:
        """A substituted string read with YAML rules, as launch_ros does."""
        if text == "":
            return ""
        try:
            value = load_yaml_text(text)      # the one bounded YAML path
        except ConfigError as e:
            raise LaunchError(f"parameter '{name}': value {text[:80]!r} is not valid YAML "
                              f"({e.message}; quote it inside the string, or give type: "
                              "str)", where.file, where.line) from None
        if isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list) and value and len({type(i) for i in value}) == 1 \
                and type(value[0]) in (bool, int, float, str):
            return value
        raise LaunchError(f"parameter '{name}': value {text!r} reads as {value!r}; allowed "
                          "are a bool, int, float, string or a non-empty list of one of "
                          "those (give type: str to keep it a string)",
                          where.file, where.line)


def params_file_key(namespace: str | None, node_name: str | None) -> str:
    """The node key launch_ros gives a node's inline parameters: its fully qualified name
    when both name and namespace are known, else ``/**`` (every node)."""
    if node_name is None or namespace is None:
        return "/**"
    return f"{namespace.rstrip('/')}/{node_name}"


def inline_params_file(key: str, params: Mapping[str, object]) -> Path:
    """Inline parameters handed to a node as launch_ros hands them: a temporary parameter
    file ``{key: {ros__parameters: params}}`` written with ``yaml.dump`` (block style), passed
    with ``--params-file`` and read by rcl's own YAML parser.  So a value that means one
    thing to PyYAML and another to rcl (``y``, ``n``: booleans to rcl) fails here as it does
    under ``ros2 launch``.  The files live in one folder per launcher process, removed when
    it exits."""
    import yaml

    global _PARAMS_DIR
    if _PARAMS_DIR is None:
        _PARAMS_DIR = Path(tempfile.mkdtemp(prefix="sitebot_launch_params_"))
        atexit.register(shutil.rmtree, _PARAMS_DIR, True)
    fd, name = tempfile.mkstemp(prefix="launch_params_", suffix=".yaml", dir=_PARAMS_DIR)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.dump({key: {"ros__parameters": dict(params)}}, f, default_flow_style=False)
    return Path(name)


_PARAMS_DIR: Path | None = None


def is_inline_params_file(path: str | Path) -> bool:
    """Whether *path* is a file :func:`inline_params_file` wrote (in this process)."""
    return _PARAMS_DIR is not None and Path(path).parent == _PARAMS_DIR


def format_param_value(value: object) -> str:
    """A parameter value as the YAML text of a ``-p name:=value`` rule."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, str):
        try:
            plain = load_yaml_text(value) == value and "\n" not in value
        except ConfigError:
            plain = False
        return value if plain else json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) if isinstance(v, str)
                               else format_param_value(v) for v in value) + "]"
    raise TypeError(f"unsupported parameter value {value!r}")  # pragma: no cover
