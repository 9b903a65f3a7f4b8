"""The console's WebSocket protocol: JSON text messages, validated before anything acts.

Client -> server: one JSON object per message, ``{"type": <command>, ...}`` plus ``token``
(the session token the server gave at login; every command but ``login`` and ``ping``
needs it) and an optional ``id`` (echoed in the answer).  Unknown types, unknown or missing
fields, wrong types, over-long strings, non-finite numbers (``NaN``/``Infinity`` are not
JSON and are refused too) and messages over the size limit raise :class:`ProtocolError`
with a reason naming the field.

Server -> client: ``welcome``, ``map``, ``state`` (changed sections only), ``reply`` (to a
command, ``ok`` and ``message``), ``error``, ``plan``.

Numbers are checked before use: finite, within a sane range per field (an integer with 400
digits is refused here, not turned into an ``OverflowError`` later). Ids (``plan_id``,
``in_reply_to``) are short names of letters, digits and ``_.:@-``. :func:`printable` is the
one escaping of client-controlled text for log lines and audit entries.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["ProtocolError", "COMMANDS", "parse_message", "decode_text", "printable",
           "safe_line", "host_name", "MAX_TEXT", "MAX_SPEED", "EDIT_OPS", "EDIT_KINDS"]

MAX_TEXT = 500           # instruction / answer text [characters]
MAX_SPEED = 100.0        # |v| [m/s] and |w| [rad/s] accepted before clamping (sanity bound)
_ID_MAX = 64
_ID_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_MAX_INT_ID = 2 ** 53    # integer ids are echoed back: what a browser's number holds exactly
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: site editor operations and the registry sections they act on (docs/console.md, "Site
#: editor"; :mod:`sitebot.console.site_editor`)
EDIT_OPS = ("add", "update", "delete", "confirm")
EDIT_KINDS = ("place", "asset", "object", "zone", "route", "dock", "marker")
_REVISION_RE = re.compile(r"[0-9a-f]{64}")


def printable(text: Any, limit: int = 200) -> str:
    """``text`` safe for one log line or audit field: backslash, control characters, lone
    surrogates and every other non-printable character written as a Python-style escape
    (``\\n``, ``\\x00``, ``\\ud800``, ``\\u202e``), at most ``limit`` characters of the text
    kept (``...(+N chars)`` says how many were cut). Non-strings are ``str()``-ed first."""
    s = text if isinstance(text, str) else str(text)
    cut = len(s) - limit if len(s) > limit else 0
    out = []
    for ch in s[:limit] if cut else s:
        esc = _ESCAPES.get(ch)
        if esc is None and not ch.isprintable():
            o = ord(ch)
            esc = f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else \
                f"\\U{o:08x}"
        out.append(ch if esc is None else esc)
    return "".join(out) + (f"...(+{cut} chars)" if cut else "")


def safe_line(text: str) -> str:
    """A whole log line made safe: :func:`printable` (at most 4000 characters) when it holds
    a control, surrogate or other non-printable character, else the line as it is (so the
    parts already escaped are not escaped twice)."""
    return text if text.isprintable() else printable(text, 4000)


def host_name(header: str | None) -> str | None:
    """The name in a ``Host`` header (lower case, no port, no brackets, no trailing dot);
    None when it is missing or malformed."""
    h = (header or "").strip().lower()
    if h.startswith("["):                                   # [IPv6]:port
        name, sep, rest = h[1:].partition("]")
        if not sep or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return None
    else:
        name, sep, port = h.partition(":")
        if sep and not port.isdigit():
            return None
    name = name.rstrip(".")
    return name if name and name.isprintable() and " " not in name else None


class ProtocolError(ValueError):
    """A client message that is refused; ``str()`` says why (safe to send back)."""


def _str(max_len: int, allowed: tuple[str, ...] = ()):
    def check(v: Any, name: str) -> str:
        if not isinstance(v, str):
            raise ProtocolError(f"field '{name}' must be a string")
        if len(v) > max_len:
            raise ProtocolError(f"field '{name}' longer than {max_len} characters")
        if allowed and v not in allowed:
            raise ProtocolError(f"field '{name}' must be one of {list(allowed)}")
        return v
    return check


def _num(lo: float, hi: float):
    def check(v: Any, name: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ProtocolError(f"field '{name}' must be a number")
        try:
            f = float(v)
        except OverflowError:               # an integer beyond any float
            raise ProtocolError(f"field '{name}' must be finite (number too large)") from None
        if not math.isfinite(f):
            raise ProtocolError(f"field '{name}' must be finite")
        if not lo <= f <= hi:
            raise ProtocolError(f"field '{name}' must be within [{lo:g}, {hi:g}]")
        return f
    return check


def _id(v: Any, name: str) -> str:
    if not isinstance(v, str) or not _ID_RE.fullmatch(v):
        raise ProtocolError(f"field '{name}' must be 1-{_ID_MAX} letters, digits or _.:@-")
    return v


def _bool(v: Any, name: str) -> bool:
    if not isinstance(v, bool):
        raise ProtocolError(f"field '{name}' must be true or false")
    return v


def _revision(v: Any, name: str) -> str:
    if not isinstance(v, str) or not _REVISION_RE.fullmatch(v):
        raise ProtocolError(f"field '{name}' must be a revision (64 hex digits, from site_get)")
    return v


def _entity(v: Any, name: str) -> str | int:
    """An entity id, or a marker's tag (an integer)."""
    if isinstance(v, int) and not isinstance(v, bool):
        if not 0 <= v <= 10 ** 6:
            raise ProtocolError(f"field '{name}' must be an id or a tag number in [0, 1e6]")
        return v
    return _id(v, name)


def _object(v: Any, name: str) -> dict:
    if not isinstance(v, dict):
        raise ProtocolError(f"field '{name}' must be a JSON object")
    return v


_TEXT = _str(MAX_TEXT)
_IDS = _id
_SPEED = _num(-MAX_SPEED, MAX_SPEED)

#: command -> (required fields, optional fields); each field -> checker
COMMANDS: dict[str, tuple[dict, dict]] = {
    "login": ({"user": _str(64), "password": _str(256)}, {}),
    "logout": ({}, {}),
    "ping": ({}, {}),
    "estop": ({}, {}),
    "reset": ({}, {}),
    "teleop": ({"v": _SPEED, "w": _SPEED}, {}),
    "teleop_stop": ({}, {}),
    "mode": ({"mode": _str(16, ("manual", "automatic"))}, {}),
    "instruct": ({"text": _TEXT}, {}),
    "answer": ({"in_reply_to": _IDS, "text": _TEXT}, {}),
    "run": ({"plan_id": _IDS}, {"confirm_high_risk": _bool}),
    "cancel": ({}, {}),
    "confirm": ({"plan_id": _IDS, "answer": _str(8, ("yes", "no"))}, {}),
    "site_get": ({}, {}),
    "site_edit": ({"revision": _revision, "op": _str(8, EDIT_OPS),
                   "kind": _str(8, EDIT_KINDS), "entity": _entity}, {"data": _object}),
    "survey": ({"action": _str(8, ("start", "stop"))}, {}),
}
#: fields every message may carry
_COMMON = {"type", "token", "id"}


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not a number in JSON")


def decode_text(data: bytes, max_bytes: int = 4096) -> str:
    """A received frame's bytes as text: over ``max_bytes`` or not UTF-8 (a lone surrogate's
    encoding included) is a :class:`ProtocolError` naming the byte."""
    if len(data) > max_bytes:
        raise ProtocolError(f"message of {len(data)} bytes exceeds the limit of {max_bytes} "
                            "bytes")
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"message is not valid UTF-8 text (byte {e.start}: {e.reason})") \
            from None


def parse_message(data: str | bytes, max_bytes: int = 4096) -> dict[str, Any]:
    """Validate one client message; the checked command dict, or :class:`ProtocolError`."""
    if isinstance(data, (bytes, bytearray)):
        raise ProtocolError("binary messages are not accepted (send JSON text)")
    if not isinstance(data, str):
        raise ProtocolError("message must be text")
    size = len(data.encode("utf-8", errors="replace"))
    if size > max_bytes:
        raise ProtocolError(f"message of {size} bytes exceeds the limit of {max_bytes} bytes")
    try:
        msg = json.loads(data, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"not valid JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("message must be a JSON object")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("field 'type' (string) is missing")
    if kind not in COMMANDS:
        raise ProtocolError(f"unknown command {kind[:40]!r}; known: {sorted(COMMANDS)}")
    required, optional = COMMANDS[kind]
    unknown = sorted(set(msg) - set(required) - set(optional) - _COMMON)
    if unknown:
        raise ProtocolError(f"{kind}: unknown fields {[u[:40] for u in unknown][:5]}")
    out: dict[str, Any] = {"type": kind}
    for name, check in required.items():
        if name not in msg:
            raise ProtocolError(f"{kind}: field '{name}' is missing")
        out[name] = check(msg[name], name)
    for name, check in optional.items():
        if name in msg:
            out[name] = check(msg[name], name)
    if "token" in msg:
        out["token"] = _str(128)(msg["token"], "token")
    if "id" in msg:
        mid = msg["id"]
        if isinstance(mid, bool) or not isinstance(mid, (int, str)) or \
                (isinstance(mid, str) and len(mid) > _ID_MAX) or \
                (isinstance(mid, int) and abs(mid) > _MAX_INT_ID):
            raise ProtocolError("field 'id' must be an integer or a short string")
        out["id"] = mid
    return out
