"""Append-only audit log of the supervisor: one JSON object per line.

Every line has ``seq`` (continues across restarts: read back from the file's last line),
``sim_time_s`` (the supervisor's clock), ``wall_time`` (UTC, ISO 8601), ``event`` and the
event's fields.  The file is opened for appending only and flushed after every line; it is
never rewritten.  Odd data never raises: non-finite floats become the strings ``"nan"``,
``"inf"``, ``"-inf"``; enums their name; dataclasses dicts; anything else its ``repr``.  A
write error is logged (once per kind) and the record is still kept in memory.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as _dt
import enum
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["AuditLog", "sanitize", "default_audit_path"]

_log = logging.getLogger(__name__)
#: how much of an existing file's end is read to find the last seq
_TAIL_BYTES = 65536
#: nesting deeper than this is cut (repr)
_MAX_DEPTH = 8


def sanitize(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data (see the module docstring); never raises."""
    try:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, enum.Enum):
            return value.name
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        if depth >= _MAX_DEPTH:
            return repr(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: sanitize(getattr(value, f.name), depth + 1)
                    for f in dataclasses.fields(value) if f.repr}
        if isinstance(value, dict):
            return {str(k): sanitize(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [sanitize(v, depth + 1) for v in value]
        if hasattr(value, "tolist"):            # numpy scalars and arrays
            return sanitize(value.tolist(), depth + 1)
        if isinstance(value, bytes):
            return repr(value)
        return repr(value)
    except Exception:                            # noqa: BLE001 - never crash on odd data
        try:
            return object.__repr__(value)
        except Exception:                        # noqa: BLE001
            return "<unrepresentable>"


def default_audit_path(ros_home: str | Path, wall_time_s: float) -> Path:
    """Where the supervisor logs when no file is given: one file per start,
    ``<ros_home>/sitebot/audit/safety_<local start time YYYYmmdd_HHMMSS>.jsonl``."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(wall_time_s))
    return Path(ros_home) / "sitebot" / "audit" / f"safety_{stamp}.jsonl"


class AuditLog:
    """``AuditLog(path)``: append JSON lines to ``path`` (None: memory only).

    ``write(event, sim_time_s, **fields)`` returns the record it wrote.  ``records`` keeps
    the last ``keep`` records (for tests and diagnostics).
    """

    def __init__(self, path: str | Path | None = None, *, keep: int = 1000,
                 wall_clock: Callable[[], float] = time.time, fsync: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.records: collections.deque[dict] = collections.deque(maxlen=max(keep, 1))
        self._clock = wall_clock
        self._fsync = fsync
        self._file = None
        self._errors: set[str] = set()
        self.seq = 0
        self.write_errors = 0
        if self.path is not None:
            self.seq = self._last_seq(self.path) + 1
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")
            except OSError as e:
                self._error("open", f"audit log {self.path}: cannot open for appending: {e}")

    @staticmethod
    def _last_seq(path: Path) -> int:
        """The seq of the file's last valid line, or -1."""
        try:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - _TAIL_BYTES))
                tail = f.read().decode("utf-8", errors="replace")
        except OSError:
            return -1
        for line in reversed(tail.splitlines()):
            try:
                rec = json.loads(line)
                seq = rec.get("seq") if isinstance(rec, dict) else None
                if isinstance(seq, int) and not isinstance(seq, bool):
                    return seq
            except ValueError:
                continue
        return -1

    def _error(self, kind: str, text: str) -> None:
        self.write_errors += 1
        if kind not in self._errors:
            self._errors.add(kind)
            _log.error(text)

    def write(self, event: str, sim_time_s: float, **fields: Any) -> dict:
        """Append one record; never raises."""
        try:
            wall = self._clock()
            wall_iso = _dt.datetime.fromtimestamp(wall, _dt.timezone.utc).isoformat(
                timespec="microseconds").replace("+00:00", "Z")
        except Exception:                        # noqa: BLE001
            wall_iso = "unknown"
        record: dict[str, Any] = {"seq": self.seq, "sim_time_s": sanitize(sim_time_s),
                                  "wall_time": wall_iso, "event": sanitize(str(event))}
        for k, v in fields.items():
            if k in record:
                k = "field_" + k
            record[k] = sanitize(v)
        self.seq += 1
        try:
            line = json.dumps(record, allow_nan=False, separators=(",", ":"))
        except Exception as e:                   # noqa: BLE001
            line = json.dumps({"seq": record["seq"], "sim_time_s": record["sim_time_s"],
                               "wall_time": wall_iso, "event": record["event"],
                               "unserializable": repr(record)[:4000], "error": repr(e)})
        self.records.append(record)
        if self._file is not None:
            try:
                self._file.write(line + "\n")
                self._file.flush()
                if self._fsync:
                    os.fsync(self._file.fileno())
            except (OSError, ValueError) as e:
                self._error("write", f"audit log {self.path}: write failed: {e}")
        return record

    def events(self, event: str | None = None) -> list[dict]:
        """Kept records, optionally only those of one event."""
        return [r for r in self.records if event is None or r.get("event") == event]

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
