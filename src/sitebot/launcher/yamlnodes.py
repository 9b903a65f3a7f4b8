"""YAML with line numbers for the launch file parser: a launch file loaded into a tree of
:class:`YNode` (every node and mapping key keeps its line, duplicate keys are errors), and
how a node is named in error messages.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sitebot.config.yamlio import compose_yaml, yaml_error
from sitebot.errors import LaunchError

__all__ = ["YNode", "load_yaml", "yaml_kind", "yaml_scalar_text"]


@dataclass
class YNode:
    """A YAML node: ``kind`` is 'scalar' (value: Python scalar), 'seq' (list[YNode]) or 'map'
    (dict[str, tuple[key_line, YNode]])."""

    kind: str
    value: Any
    line: int


def load_yaml(path: Path) -> YNode | None:
    """The YAML document in *path* as a :class:`YNode` tree (None if it is empty), read
    through the project's one bounded YAML path (:mod:`sitebot.config.yamlio`: size,
    UTF-8, nesting depth and alias expansion limits)."""
    root, loader, text = compose_yaml(path, LaunchError, prefix=_PREFIX)
    if root is None:
        return None
    try:
        return _convert(loader, root, path)
    except yaml.YAMLError as e:
        raise yaml_error(e, text, path, LaunchError, _PREFIX) from None


_PREFIX = "malformed YAML"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: Path) -> YNode:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return YNode("scalar", loader.construct_object(node, deep=True), line)
    if node.tag not in (_SEQ_TAG, _MAP_TAG):       # !!set, !!omap, !custom: refused
        raise LaunchError(f"unsupported YAML tag {node.tag!r} on a "
                          f"{'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}; "
                          "launch files use plain lists and mappings", path, line)
    if isinstance(node, yaml.SequenceNode):
        return YNode("seq", [_convert(loader, n, path) for n in node.value], line)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[str, tuple[int, YNode]] = {}
        for knode, vnode in node.value:
            kline = knode.start_mark.line + 1
            key = loader.construct_object(knode, deep=True) \
                if isinstance(knode, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise LaunchError(f"keys must be strings, got {key!r}", path, kline)
            if key in out:
                raise LaunchError(f"duplicate key '{key}' (first on line {out[key][0]})",
                                  path, kline)
            out[key] = (kline, _convert(loader, vnode, path))
        return YNode("map", out, line)
    raise LaunchError("unsupported YAML node", path, line)  # pragma: no cover


def yaml_kind(node: YNode) -> str:
    """*node* as error messages name it ("nothing", "int 3", "a list", ...)."""
    if node.kind == "scalar":
        v = node.value
        return "nothing" if v is None else f"{type(v).__name__} {v!r}"
    return "a list" if node.kind == "seq" else "a mapping"


def yaml_scalar_text(v: object) -> str:
    """The YAML text of the scalar *v* (booleans as true/false)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
