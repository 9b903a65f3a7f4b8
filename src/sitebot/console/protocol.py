"""The console's WebSocket protocol: JSON text messages, validated before anything acts.

Client -> server: one JSON object per message, ``{"type": <command>, ...}`` plus ``token``
(the session token the server gave at login; every command but ``login`` and ``ping``
needs it) and an optional ``id`` (echoed in the answer).  Unknown types, unknown or missing
fields, wrong types, over-long strings, non-finite numbers (``NaN``/``Infinity`` are not
JSON and are refused too) and messages over the size limit raise :class:`ProtocolError`
with a reason naming the field.

Server -> client: ``welcome``, ``map``, ``state`` (changed sections only), ``reply`` (to a
command, ``ok`` and ``message``), ``error``, ``plan``.
"""
from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["ProtocolError", "COMMANDS", "parse_message", "MAX_TEXT"]

MAX_TEXT = 500           # instruction / answer text [characters]
_ID_MAX = 64


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


def _num(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProtocolError(f"field '{name}' must be a number")
    f = float(v)
    if not math.isfinite(f):
        raise ProtocolError(f"field '{name}' must be finite")
    return f


def _bool(v: Any, name: str) -> bool:
    if not isinstance(v, bool):
        raise ProtocolError(f"field '{name}' must be true or false")
    return v


_TEXT = _str(MAX_TEXT)
_IDS = _str(_ID_MAX)

#: command -> (required fields, optional fields); each field -> checker
COMMANDS: dict[str, tuple[dict, dict]] = {
    "login": ({"user": _str(64), "password": _str(256)}, {}),
    "logout": ({}, {}),
    "ping": ({}, {}),
    "estop": ({}, {}),
    "reset": ({}, {}),
    "teleop": ({"v": _num, "w": _num}, {}),
    "teleop_stop": ({}, {}),
    "mode": ({"mode": _str(16, ("manual", "automatic"))}, {}),
    "instruct": ({"text": _TEXT}, {}),
    "answer": ({"in_reply_to": _IDS, "text": _TEXT}, {}),
    "run": ({"plan_id": _IDS}, {"confirm_high_risk": _bool}),
    "cancel": ({}, {}),
    "confirm": ({"plan_id": _IDS, "answer": _str(8, ("yes", "no"))}, {}),
}
#: fields every message may carry
_COMMON = {"type", "token", "id"}


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not a number in JSON")


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
                (isinstance(mid, str) and len(mid) > _ID_MAX):
            raise ProtocolError("field 'id' must be an integer or a short string")
        out["id"] = mid
    return out
