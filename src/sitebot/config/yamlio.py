"""YAML loading and small schema-check helpers shared by every data-file loader.

:func:`load_yaml` reads one YAML document with ``yaml.safe_load``; a syntax error becomes a
:class:`~sitebot.errors.ConfigError` (or the subclass the caller asks for) naming the file
and the 1-based line, a missing or unreadable file one naming the file.

:class:`Schema` checks values read from such a document and raises errors that name the
file and the *key path* of the offending value (``assets[3].place``), and, where there is
a closed set, what is accepted.  Key paths are built with :func:`key_path`.

Typical use::

    data = load_yaml(path, error=RegistryError)
    s = Schema(file=path, error=RegistryError)
    root = s.mapping(data, "")
    s.keys(root, "", allowed=("site", "places"), required=("site",))
    site = s.require(root, "site", str, "")
    for i, item in enumerate(s.optional(root, "places", list, "", default=[])):
        where = key_path("places", i)
        ...
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from sitebot.errors import ConfigError

__all__ = ["load_yaml", "key_path", "type_name", "Schema"]


class _StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (plain PyYAML keeps
    the last one silently, so a second ``gauges:`` section would erase the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:       # unhashable key: let PyYAML report it
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path, error: type[ConfigError] = ConfigError) -> Any:
    """Parse the YAML file at *path* with a safe loader and return its content.

    Like ``yaml.safe_load`` (plain data only), except that a key repeated in one mapping is
    an error.  An empty file gives ``None``.

    :param path: the file to read.
    :param error: the :class:`ConfigError` subclass to raise (e.g. ``RegistryError``).
    :raises ConfigError: (or *error*) when the file is missing or unreadable (naming the
        file), or when it is not valid YAML (naming the file and the 1-based line).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", file=p) from None
    except IsADirectoryError:
        raise error("is a directory, expected a YAML file", file=p) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read file: {exc}", file=p) from None
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        msg = f"invalid YAML: {problem}"
        if context:
            msg += f" ({context})"
        raise error(msg, file=p, where=line) from None


def key_path(base: str, key: str | int) -> str:
    """Join a key path: ``key_path('assets', 3) == 'assets[3]'``,
    ``key_path('assets[3]', 'place') == 'assets[3].place'``, ``key_path('', 'site') == 'site'``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else str(key)


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean (true/false)",
    list: "a list",
    dict: "a mapping",
}


def type_name(typ: type | tuple[type, ...]) -> str:
    """How a type is named in error messages (``float`` -> ``'a number'``)."""
    if isinstance(typ, tuple):
        return " or ".join(type_name(t) for t in typ)
    return _TYPE_NAMES.get(typ, typ.__name__)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


class Schema:
    """Schema checks that raise *error* naming *file* and the key path of a bad value.

    The checks are stateless apart from the file and the error class, so one instance can
    be shared by every check of one file.  ``where`` is always the key path of the value
    being checked (or of the mapping that holds *key*).

    Type conventions: ``float`` accepts ints and floats (not booleans, not NaN or
    infinities unless ``finite=False``); ``int`` accepts ints only (not booleans);
    ``list`` accepts lists; ``dict`` accepts mappings.
    """

    def __init__(self, file: str | Path | None = None,
                 error: type[ConfigError] = ConfigError) -> None:
        self.file = Path(file) if file is not None else None
        self.error = error

    # -- failing -----------------------------------------------------------------------
    def fail(self, message: str, where: str | int | None) -> NoReturn:
        """Raise the configured error for *where* (a key path, or '' for the document)."""
        raise self.error(message, file=self.file, where=where if where != "" else None)

    # -- single values -----------------------------------------------------------------
    def check(self, value: Any, typ: type | tuple[type, ...], where: str, *,
              finite: bool = True) -> Any:
        """Return *value* if it has type *typ* (see class conventions), else fail."""
        types = typ if isinstance(typ, tuple) else (typ,)
        for t in types:
            if t is float:
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    if finite and not math.isfinite(value):
                        self.fail(f"must be a finite number, got {value!r}", where)
                    return float(value)
            elif t is int:
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
            elif t is dict:
                if isinstance(value, Mapping):
                    return value
            elif isinstance(value, t):
                return value
        self.fail(f"must be {type_name(typ)}, got {_describe(value)}", where)

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        """*value* as a mapping, else fail (``None``, e.g. an empty document, fails too)."""
        return self.check(value, dict, where)

    def string(self, value: Any, where: str, *, nonempty: bool = True) -> str:
        """*value* as a string (by default non-blank)."""
        s = self.check(value, str, where)
        if nonempty and not s.strip():
            self.fail("must be a non-empty string", where)
        return s

    def number(self, value: Any, where: str, *, min_value: float | None = None,
               max_value: float | None = None, min_exclusive: bool = False) -> float:
        """*value* as a finite float, optionally within [min_value, max_value]
        (``min_exclusive`` makes the lower bound strict)."""
        x = self.check(value, float, where)
        if min_value is not None and (x <= min_value if min_exclusive else x < min_value):
            op = ">" if min_exclusive else ">="
            self.fail(f"must be {op} {min_value:g}, got {x:g}", where)
        if max_value is not None and x > max_value:
            self.fail(f"must be <= {max_value:g}, got {x:g}", where)
        return x

    def integer(self, value: Any, where: str, *, min_value: int | None = None,
                max_value: int | None = None) -> int:
        """*value* as an int, optionally within [min_value, max_value]."""
        n = self.check(value, int, where)
        if min_value is not None and n < min_value:
            self.fail(f"must be >= {min_value}, got {n}", where)
        if max_value is not None and n > max_value:
            self.fail(f"must be <= {max_value}, got {n}", where)
        return n

    def choice(self, value: Any, choices: Iterable[str], where: str, *,
               what: str = "value") -> str:
        """*value* as one of *choices* (strings), else fail listing the accepted ones."""
        accepted = list(choices)
        if not isinstance(value, str) or value not in accepted:
            self.fail(f"unknown {what} {value!r}; accepted: {', '.join(accepted)}", where)
        return value

    def seq(self, value: Any, where: str, *, min_len: int = 0,
            max_len: int | None = None) -> list[Any]:
        """*value* as a list with a length in [min_len, max_len]."""
        items = self.check(value, list, where)
        if len(items) < min_len:
            self.fail(f"needs at least {min_len} item(s), got {len(items)}", where)
        if max_len is not None and len(items) > max_len:
            self.fail(f"accepts at most {max_len} item(s), got {len(items)}", where)
        return items

    def vector(self, value: Any, where: str, lengths: int | Sequence[int],
               *, names: str | None = None) -> tuple[float, ...]:
        """*value* as a list of finite numbers whose length is one of *lengths*.

        :param names: how the elements are called in the message, e.g. ``'[x, y, yaw]'``.
        """
        allowed = (lengths,) if isinstance(lengths, int) else tuple(lengths)
        hint = f" {names}" if names else ""
        if not isinstance(value, list) or len(value) not in allowed:
            want = " or ".join(str(n) for n in allowed)
            self.fail(f"must be a list of {want} numbers{hint}, got {_describe(value)}", where)
        return tuple(self.check(v, float, key_path(where, i)) for i, v in enumerate(value))

    def string_list(self, value: Any, where: str) -> tuple[str, ...]:
        """*value* as a list of non-empty strings."""
        items = self.seq(value, where)
        return tuple(self.string(v, key_path(where, i)) for i, v in enumerate(items))

    # -- keys of a mapping -------------------------------------------------------------
    def keys(self, mapping: Mapping[str, Any], where: str, *, allowed: Iterable[str],
             required: Iterable[str] = ()) -> None:
        """Fail on a key of *mapping* not in *allowed* (listing the accepted keys) or on a
        missing *required* key."""
        accepted = list(allowed)
        for k in mapping:
            if k not in accepted:
                self.fail(f"unknown key {k!r}; accepted keys: {', '.join(accepted)}",
                          key_path(where, str(k)))
        for k in required:
            if k not in mapping:
                self.fail(f"missing required key {k!r}", key_path(where, k))

    def require(self, mapping: Mapping[str, Any], key: str,
                typ: type | tuple[type, ...], where: str) -> Any:
        """``mapping[key]`` checked against *typ*; fail naming ``where.key`` if missing."""
        path = key_path(where, key)
        if key not in mapping:
            self.fail(f"missing required key {key!r}", path)
        return self.check(mapping[key], typ, path)

    def optional(self, mapping: Mapping[str, Any], key: str,
                 typ: type | tuple[type, ...], where: str, default: Any = None) -> Any:
        """``mapping[key]`` checked against *typ*, or *default* when absent or null."""
        if mapping.get(key) is None:
            return default
        return self.check(mapping[key], typ, key_path(where, key))
