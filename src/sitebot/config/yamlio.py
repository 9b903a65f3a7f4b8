"""YAML loading and small schema-check helpers shared by every data-file loader.

Every YAML document the project reads (launch, parameter, site, world, scenario, rviz and
console users files, and YAML values given on a command line) goes through one loading
path here, which treats the text as untrusted:

* :func:`read_yaml_text` reads at most :data:`MAX_YAML_BYTES` bytes and accepts UTF-8 only
  (an error names the byte offset and line of the first byte that is not UTF-8, and says
  when the file looks like UTF-16 or UTF-32);
* :class:`SafeYamlLoader` (PyYAML's safe loader) composes the document with bounds checked
  as it goes: at most :data:`MAX_YAML_DEPTH` levels of nesting (counted after alias
  expansion, refused before Python's recursion limit is near), at most
  :data:`MAX_YAML_NODES` nodes and :data:`MAX_YAML_SCALAR_CHARS` characters of scalars
  *after alias expansion* (so a "billion laughs" document is refused after a few thousand
  nodes of work, not expanded), and no alias to an anchor that is still open (a recursive
  document); a key repeated in one mapping is an error; a scalar its tag cannot read
  (``!!float 'abc'``) or an unknown tag is an error naming the line;
* :func:`load_yaml` (a file), :func:`load_yaml_text` (a string) and :func:`compose_yaml`
  (the node tree of a file) raise one :class:`~sitebot.errors.ConfigError` (or the
  subclass the caller asks for) naming the file and the 1-based line.

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
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml

from sitebot.config.checks import (ANGLE_LIMIT_RAD, SITE_EXTENT_M, SITE_HEIGHT_M, check_name,
                                   check_range)
from sitebot.errors import ConfigError

__all__ = ["load_yaml", "load_yaml_text", "compose_yaml", "read_text", "read_yaml_text",
           "decode_utf8", "yaml_error", "SafeYamlLoader", "MAX_YAML_BYTES", "MAX_YAML_DEPTH",
           "MAX_YAML_NODES", "MAX_YAML_SCALAR_CHARS", "key_path", "type_name", "Schema"]

#: Largest YAML file read [bytes]; the project's own files are below 20 kB.
MAX_YAML_BYTES = 4 * 1024 * 1024
#: Deepest nesting of sequences and mappings (after alias expansion).
MAX_YAML_DEPTH = 64
#: Most nodes in one document, every alias counted as the whole subtree it stands for.
MAX_YAML_NODES = 100_000
#: Most characters of scalars in one document, counted the same way.
MAX_YAML_SCALAR_CHARS = 16 * 1024 * 1024

_TAG_PREFIX = "tag:yaml.org,2002:"


def _short_tag(tag: str | None) -> str:
    if tag and tag.startswith(_TAG_PREFIX):
        return "!!" + tag[len(_TAG_PREFIX):]
    return str(tag)


class SafeYamlLoader(yaml.SafeLoader):
    """PyYAML's ``SafeLoader`` with the bounds of this module checked while composing, a
    key repeated in one mapping refused (plain PyYAML keeps the last one silently, so a
    second ``gauges:`` section would erase the first), and every failure of a scalar's
    constructor turned into a ``yaml.YAMLError`` with the node's position."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0          # nesting of the node being composed
        self._deepest = 0        # deepest level reached below the open nodes
        self._nodes = 0          # nodes so far, aliases expanded
        self._chars = 0          # scalar characters so far, aliases expanded
        # id(anchored node) -> (nodes, scalar chars, levels) of its whole subtree
        self._anchored: dict[int, tuple[int, int, int]] = {}

    def _fail(self, message: str, mark: Any) -> NoReturn:
        raise yaml.composer.ComposerError(None, None, message, mark)

    def _add(self, nodes: int, chars: int, levels: int, mark: Any) -> None:
        self._nodes += nodes
        self._chars += chars
        self._deepest = max(self._deepest, self._depth + levels)
        if self._deepest > MAX_YAML_DEPTH:
            self._fail(f"nested deeper than {MAX_YAML_DEPTH} levels (lists and mappings, "
                       "aliases expanded)", mark)
        if self._nodes > MAX_YAML_NODES:
            self._fail(f"more than {MAX_YAML_NODES} values with aliases expanded (an alias "
                       "counts as everything its anchor holds)", mark)
        if self._chars > MAX_YAML_SCALAR_CHARS:
            self._fail(f"more than {MAX_YAML_SCALAR_CHARS} characters of values with "
                       "aliases expanded", mark)

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # The scanner looks ahead over every open '[' / '{' (quadratic in their number):
        # refuse deep flow nesting here, before that work, not only when composing.
        if self.flow_level >= MAX_YAML_DEPTH:
            raise yaml.scanner.ScannerError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels (lists and "
                "mappings, aliases expanded)", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:
                counts = self._anchored.get(id(node))
                if counts is None:
                    self._fail(f"recursive alias *{event.anchor}: it refers to the anchor "
                               f"&{event.anchor} on line {node.start_mark.line + 1}, which "
                               "contains it", event.start_mark)
                self._add(*counts, event.start_mark)
            return super().compose_node(parent, index)
        event = self.peek_event()
        before = (self._nodes, self._chars, self._deepest)
        self._depth += 1
        self._deepest = self._depth
        chars = len(event.value) if isinstance(event, yaml.ScalarEvent) else 0
        self._add(1, chars, 0, event.start_mark)
        node = super().compose_node(parent, index)
        levels = self._deepest - self._depth + 1
        self._depth -= 1
        if event.anchor is not None:
            self._anchored[id(node)] = (self._nodes - before[0], self._chars - before[1],
                                        levels)
        self._deepest = max(before[2], self._deepest)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError,
                IndexError) as exc:
            what = f" {node.value[:40]!r}" if isinstance(node, yaml.ScalarNode) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"value{what} cannot be read as {_short_tag(node.tag)} "
                f"({type(exc).__name__}: {str(exc)[:80]})", node.start_mark) from None

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


def read_text(path: str | Path, error: type[ConfigError] = ConfigError) -> str:
    """The text of the data file at *path*: at most :data:`MAX_YAML_BYTES` bytes of UTF-8
    (a UTF-8 byte order mark is allowed).

    :raises ConfigError: (or *error*) naming the file when it is missing, unreadable or
        too large, and the byte offset and line of the first byte that is not UTF-8.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise error("file not found", file=p) from None
    except IsADirectoryError:
        raise error("is a directory, expected a file", file=p) from None
    except OSError as exc:
        raise error(f"cannot read file: {exc.strerror or exc}", file=p) from None
    if len(data) > MAX_YAML_BYTES:
        raise error(f"file is larger than {MAX_YAML_BYTES} bytes, the limit for data files "
                    "(sitebot.config.yamlio.MAX_YAML_BYTES)", file=p)
    return decode_utf8(data, p, error)


#: The text of a YAML file (:func:`read_text`: bounded size, UTF-8 only).
read_yaml_text = read_text


def decode_utf8(data: bytes, file: str | Path | None,
                error: type[ConfigError] = ConfigError) -> str:
    """*data* decoded as UTF-8 (a leading byte order mark dropped), else *error* naming
    *file*, the encoding it looks like, the byte offset and the line."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise error("not UTF-8 (looks like UTF-32: byte order mark at byte offset 0); "
                    "save the file as UTF-8", file=file, where=1)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise error("not UTF-8 (looks like UTF-16: byte order mark at byte offset 0); "
                    "save the file as UTF-8", file=file, where=1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[:64]
        looks = ""
        if len(head) >= 4 and (head[1::2].count(0) >= len(head) // 4
                               or head[0::2].count(0) >= len(head) // 4):
            looks = " (looks like UTF-16)"
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"not UTF-8{looks}: byte 0x{data[exc.start]:02x} at byte offset "
                    f"{exc.start} is not valid UTF-8; save the file as UTF-8",
                    file=file, where=line) from None
    if "\x00" in text[:64] and text[:64].count("\x00") >= 8:
        raise error("not UTF-8 (looks like UTF-16 without a byte order mark: NUL bytes "
                    f"between the characters, first at byte offset {data.index(0)}); save "
                    "the file as UTF-8", file=file, where=1)
    return text[1:] if text.startswith("\ufeff") else text


def yaml_error(exc: yaml.YAMLError, text: str, file: str | Path | None,
               error: type[ConfigError] = ConfigError,
               prefix: str = "invalid YAML") -> ConfigError:
    """The :class:`ConfigError` (or *error*) for a PyYAML error raised reading *text*:
    ``<file>:<line>: <prefix>: <problem> (<context>)``."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) \
            else None
        char = exc.character if isinstance(exc.character, int) else 0
        return error(f"{prefix}: character U+{char:04X} is not allowed in YAML "
                     f"({exc.reason})", file=file, where=line)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["error"])[0]
    context = getattr(exc, "context", None)
    msg = f"{prefix}: {problem}"
    if context:
        msg += f" ({context})"
    return error(msg, file=file, where=line)


def load_yaml_text(text: str, file: str | Path | None = None,
                   error: type[ConfigError] = ConfigError) -> Any:
    """Parse the YAML document *text* (see the module's bounds) and return its content;
    errors name *file* and the line."""
    loader = _loader(text, file, error)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise yaml_error(exc, text, file, error) from None
    finally:
        loader.dispose()


def _loader(text: str, file: str | Path | None, error: type[ConfigError],
            prefix: str = "invalid YAML") -> SafeYamlLoader:
    """A :class:`SafeYamlLoader` for *text*, after the checks PyYAML's reader makes, with
    errors naming the line (PyYAML's give only a character position)."""
    if len(text) > MAX_YAML_BYTES:
        raise error(f"YAML text is longer than {MAX_YAML_BYTES} characters, the limit "
                    "(sitebot.config.yamlio.MAX_YAML_BYTES)", file=file)
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise error(f"{prefix}: control character U+{ord(bad.group()):04X} at column "
                    f"{col} (not allowed in YAML text; write it as an escape in a "
                    "double-quoted string if it is meant)", file=file, where=line)
    try:
        return SafeYamlLoader(text)
    except yaml.YAMLError as exc:   # pragma: no cover - the reader's checks are made above
        raise yaml_error(exc, text, file, error) from None


def load_yaml(path: str | Path, error: type[ConfigError] = ConfigError) -> Any:
    """Parse the YAML file at *path* with :class:`SafeYamlLoader` and return its content.

    Like ``yaml.safe_load`` (plain data only), with the bounds of this module, and a key
    repeated in one mapping is an error.  An empty file gives ``None``.

    :param path: the file to read.
    :param error: the :class:`ConfigError` subclass to raise (e.g. ``RegistryError``).
    :raises ConfigError: (or *error*) when the file is missing, unreadable, too large or
        not UTF-8 (naming the file), or when it is not valid YAML or exceeds a bound
        (naming the file and the 1-based line).
    """
    p = Path(path)
    return load_yaml_text(read_yaml_text(p, error), p, error)


def compose_yaml(path: str | Path, error: type[ConfigError] = ConfigError, *,
                 prefix: str = "invalid YAML"
                 ) -> tuple[yaml.Node | None, SafeYamlLoader, str]:
    """The node tree of the YAML file at *path* (``None`` for an empty file), composed
    with the bounds of this module, with the loader (to construct scalars:
    ``loader.construct_object(node)``; turn a ``yaml.YAMLError`` of that step into the
    project's error with :func:`yaml_error`) and the text.  Errors name the file and the
    line; *prefix* starts the message of a YAML error."""
    p = Path(path)
    text = read_yaml_text(p, error)
    loader = _loader(text, p, error, prefix)
    try:
        return loader.get_single_node(), loader, text
    except yaml.YAMLError as exc:
        raise yaml_error(exc, text, p, error, prefix) from None
    finally:
        loader.dispose()


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


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = _REPR.maxother = 40
_REPR.maxlist = _REPR.maxdict = 4

#: What each named element of a pose-like vector is, for :meth:`Schema.bounded`:
#: (unit, limit of its magnitude, what the limit is).
_QUANTITIES = {
    "x": ("m", SITE_EXTENT_M, "the site extent"),
    "y": ("m", SITE_EXTENT_M, "the site extent"),
    "z": ("m", SITE_HEIGHT_M, "the site height range"),
    "roll": ("rad", ANGLE_LIMIT_RAD, "angles are in radians, within +-4*pi"),
    "pitch": ("rad", ANGLE_LIMIT_RAD, "angles are in radians, within +-4*pi"),
    "yaw": ("rad", ANGLE_LIMIT_RAD, "angles are in radians, within +-4*pi"),
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    text = _REPR.repr(value)     # bounded work, whatever the value holds
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
        if "\x00" in s:
            self.fail(f"must not contain a NUL character, got {_describe(s)}", where)
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

    def bounded(self, values: Sequence[float], where: str, names: Sequence[str]) -> None:
        """Each element of the checked vector *values* within the bound of the quantity
        *names* gives it: ``x``, ``y`` (|v| <= ``SITE_EXTENT_M``), ``z``, ``roll``,
        ``pitch``, ``yaw`` (radians, |v| <= ``ANGLE_LIMIT_RAD``)."""
        for i, (v, name) in enumerate(zip(values, names)):
            unit, limit, what = _QUANTITIES[name]
            try:
                check_range(where, name, v, -limit, limit)
            except ValueError:
                self.fail(f"{name} = {v:g} {unit} is out of range: |{name}| <= {limit:g} "
                          f"{unit} ({what})", key_path(where, i))

    def name(self, value: Any, where: str) -> str:
        """*value* as a name (controller, joint, node, frame id): non-empty, printable, no
        NUL or control characters (:func:`sitebot.config.checks.check_name`)."""
        try:
            return check_name(where, "name", self.check(value, str, where))
        except ValueError:
            self.fail("must be a non-empty name of printable characters (no NUL, control "
                      f"characters, line breaks, tabs or surrounding spaces), got "
                      f"{_describe(value)}", where)

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
