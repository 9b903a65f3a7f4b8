"""Append-only audit log of the supervisor (and the console): one JSON object per line.

Every line has ``seq`` (continues across restarts: read back from the file's last line),
``sim_time_s`` (the writer's clock), ``wall_time`` (UTC, ISO 8601), ``event`` and the
event's fields.  The file is opened for appending only and flushed after every line; it is
never rewritten.  Odd data never raises: non-finite floats become the strings ``"nan"``,
``"inf"``, ``"-inf"``; enums their name; dataclasses dicts; anything else its ``repr``.  A
write error is logged (once per kind) and the record is still kept in memory.

The log cannot be used to fill the disk (issue 19):

* **Aggregation.** Only the kinds in :data:`AGGREGATED` (dropped commands, refused
  trajectories, input errors) are aggregated, per cause (the fields named there, e.g.
  ``reason``).  The first entry of a cause is written in full; its repeats are counted and
  written as one ``<event>_summary`` line per cause per ``period_s`` (1 s) of the entries'
  own time (``sim_time_s``; the wall clock where that is not finite) with ``count``,
  ``first_sim_time_s``, ``last_sim_time_s``, ``first_wall_time`` and ``last_wall_time``.
  Pending counts are written before the next entry of any kind that is not aggregated (the
  order of the file stays the order of events), by :meth:`AuditLog.tick` once their period is
  over, by :meth:`AuditLog.flush` and :meth:`AuditLog.close`, and at exit (atexit).  The full
  entries plus the summaries' counts are exactly the number of entries written.  More than
  ``max_causes`` causes of one kind at a time share the cause ``"*"``.  Every other kind
  (stops, the e-stop input, resets and their refusals, releases, mode and role changes,
  state changes, logins, every operator action, and any kind added later) is never
  aggregated: written individually, verbatim, at once.
* **Rotation.** Before a line would take the file past ``max_file_bytes`` it is rotated:
  ``path.<max_files-2>`` ... ``path.1``, ``path`` are renamed (``os.replace``, atomic) one
  number up, replacing ``path.<max_files-1>``, and a new ``path`` is started.  Nothing is
  truncated or rewritten in place and every file holds whole lines.  Before the oldest file
  is replaced, its entries of the kinds not in :data:`BULK_EVENTS` (stops, resets, releases,
  mode, role, login, ...) are appended, verbatim, to ``path.kept``, which itself moves to
  ``path.kept.1`` (replacing it) before it would pass ``kept_max_bytes``.

Guarantee: the current file and the ``max_files - 1`` files before it are on disk, whole;
a stop, reset, release, mode, role or login entry is never aggregated, and leaves the disk
only after more than ``kept_max_bytes`` of such entries newer than it have been carried
into ``path.kept``; the disk holds at most ``max_files * max_file_bytes + 2 *
kept_max_bytes`` bytes (a line is at most :data:`MAX_LINE_BYTES`: a larger record keeps its
head fields and a ``truncated`` prefix of its JSON).
"""
from __future__ import annotations

import atexit
import collections
import dataclasses
import datetime as _dt
import enum
import json
import logging
import math
import os
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["AuditLog", "sanitize", "default_audit_path", "AGGREGATED", "BULK_EVENTS",
           "MAX_LINE_BYTES"]

_log = logging.getLogger(__name__)
#: how much of an existing file's end is read to find the last seq
_TAIL_BYTES = 65536
#: nesting deeper than this is cut (repr)
_MAX_DEPTH = 8
#: the longest line written; a longer record is cut (head fields + ``truncated``)
MAX_LINE_BYTES = 65536

#: kinds aggregated per cause -> the fields that make the cause
AGGREGATED: Mapping[str, tuple[str, ...]] = {
    "command_dropped": ("reason",),
    "trajectory_rejected": ("reason",),
    "input_error": ("input", "error"),
}
#: kinds that are routine volume, not a record of who stopped, released or changed what:
#: not carried into ``path.kept`` on rotation (everything else is)
BULK_EVENTS = frozenset(set(AGGREGATED) | {f"{e}_summary" for e in AGGREGATED} | {
    "input_rejected", "command_modified", "command_zeroed", "commands_modified_summary",
    "time_invalid"})
#: the cause shared by the causes past ``max_causes``
OTHER_CAUSE = "*"

DEFAULT_MAX_FILE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_FILES = 8
DEFAULT_KEPT_MAX_BYTES = 4 * 1024 * 1024


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


#: logs that may hold counted repeats: their summaries are written at exit (atexit)
_OPEN: "weakref.WeakSet[AuditLog]" = weakref.WeakSet()


@atexit.register
def _flush_open_logs() -> None:
    for log in list(_OPEN):
        log.flush()


def _finite(t: Any) -> bool:
    return isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)


@dataclasses.dataclass
class _Run:
    """Repeats of one cause within the current period (not written yet)."""

    cause: dict[str, Any]
    start: float                       # the period's start (the entries' time)
    count: int = 0
    first_sim: Any = None
    last_sim: Any = None
    first_wall: str = ""
    last_wall: str = ""


class AuditLog:
    """``AuditLog(path)``: append JSON lines to ``path`` (None: memory only).

    ``write(event, sim_time_s, **fields)`` returns the record: the one it wrote, or, for a
    repeat that was counted into a summary, the record without ``seq`` and with
    ``"aggregated": True``.  ``records`` keeps the last ``keep`` records written (summaries
    included; counted repeats not).  Rotation, aggregation and the guarantee: the module
    docstring.  ``max_file_bytes=0`` never rotates.
    """

    def __init__(self, path: str | Path | None = None, *, keep: int = 1000,
                 wall_clock: Callable[[], float] = time.time, fsync: bool = False,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 max_files: int = DEFAULT_MAX_FILES,
                 kept_max_bytes: int = DEFAULT_KEPT_MAX_BYTES,
                 aggregate: Mapping[str, tuple[str, ...]] = AGGREGATED,
                 period_s: float = 1.0, max_causes: int = 16) -> None:
        if max_file_bytes < 0 or (max_file_bytes and max_files < 2):
            raise ValueError(f"audit log {path}: max_file_bytes must be >= 0 and max_files "
                             f">= 2 (got {max_file_bytes}, {max_files})")
        if not (period_s > 0.0 and max_causes >= 1 and kept_max_bytes > 0):
            raise ValueError(f"audit log {path}: period_s, max_causes and kept_max_bytes must "
                             f"be > 0 (got {period_s}, {max_causes}, {kept_max_bytes})")
        unsafe = sorted(set(aggregate) - BULK_EVENTS)
        if unsafe:
            raise ValueError(f"audit log {path}: {unsafe} cannot be aggregated (only the "
                             f"bulk kinds {sorted(BULK_EVENTS)})")
        self.path = Path(path) if path is not None else None
        self.records: collections.deque[dict] = collections.deque(maxlen=max(keep, 1))
        self._clock = wall_clock
        self._fsync = fsync
        self.max_file_bytes = int(max_file_bytes)
        self.max_files = int(max_files)
        self.kept_max_bytes = int(kept_max_bytes)
        self._aggregate = dict(aggregate)
        self.period_s = float(period_s)
        self.max_causes = int(max_causes)
        self._runs: dict[tuple, _Run] = {}
        self._file = None
        self._size = 0
        self._errors: set[str] = set()
        self.seq = 0
        self.write_errors = 0
        self.rotations = 0
        if self.path is not None:
            self.seq = self._last_seq(self.path) + 1
            self._open()
        _OPEN.add(self)

    # ------------------------------------------------------------------ files
    def _rotated(self, k: int) -> Path:
        assert self.path is not None
        return self.path.with_name(f"{self.path.name}.{k}")

    @property
    def kept_path(self) -> Path | None:
        """Where rotation carries the entries that are not bulk (None: memory only)."""
        return None if self.path is None else self.path.with_name(self.path.name + ".kept")

    def files(self) -> list[Path]:
        """The log's files on disk, oldest first: kept.1, kept, N-1 ... 1, current."""
        if self.path is None:
            return []
        kept = self.kept_path
        names = [kept.with_name(kept.name + ".1"), kept]
        names += [self._rotated(k) for k in range(self.max_files - 1, 0, -1)] + [self.path]
        return [p for p in names if p.exists()]

    def _open(self) -> None:
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")
            self._size = os.fstat(self._file.fileno()).st_size
        except OSError as e:
            self._file = None
            self._error("open", f"audit log {self.path}: cannot open for appending: {e}")

    def _last_seq(self, path: Path) -> int:
        """The seq of the last valid line of the file or, if it has none, of the one
        rotated before it; -1 if neither has one."""
        for p in (path, path.with_name(path.name + ".1")):
            seq = self._file_last_seq(p)
            if seq >= 0:
                return seq
        return -1

    @staticmethod
    def _file_last_seq(path: Path) -> int:
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

    def _rotate(self) -> None:
        """Carry the oldest file's records to ``.kept``, rename every file one up (the
        oldest is replaced), start a new current file."""
        assert self.path is not None
        self.rotations += 1
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass
        self._file = None
        try:
            oldest = self._rotated(self.max_files - 1)
            if oldest.exists():
                self._carry(oldest)
            for k in range(self.max_files - 2, 0, -1):
                if self._rotated(k).exists():
                    os.replace(self._rotated(k), self._rotated(k + 1))
            if self.path.exists():
                os.replace(self.path, self._rotated(1))
        except OSError as e:
            self._error("rotate", f"audit log {self.path}: rotation failed: {e}")
        self._open()

    def _carry(self, src: Path) -> None:
        """Append the lines of ``src`` that are not bulk kinds to ``.kept`` (verbatim)."""
        kept = self.kept_path
        assert kept is not None
        out = bytearray()
        with open(src, "rb") as f:
            for raw in f:
                try:
                    event = json.loads(raw).get("event")
                except (ValueError, AttributeError):
                    event = None                 # not ours: keep it, it may matter
                if event not in BULK_EVENTS:
                    out += raw if raw.endswith(b"\n") else raw + b"\n"
        if not out:
            return
        try:
            size = kept.stat().st_size
        except OSError:
            size = 0
        if size and size + len(out) > self.kept_max_bytes:
            os.replace(kept, kept.with_name(kept.name + ".1"))
        with open(kept, "ab") as f:
            f.write(bytes(out))
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())

    def _append(self, line: str) -> None:
        data = (line + "\n").encode("utf-8", errors="replace")
        if self.path is None:
            return
        if self.max_file_bytes and self._size and \
                self._size + len(data) > self.max_file_bytes:
            self._rotate()
        if self._file is None:
            return
        try:
            self._file.write(data)
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
            self._size += len(data)
        except (OSError, ValueError) as e:
            self._error("write", f"audit log {self.path}: write failed: {e}")

    # ------------------------------------------------------------------ records
    def _wall_iso(self) -> str:
        try:
            return _dt.datetime.fromtimestamp(self._clock(), _dt.timezone.utc).isoformat(
                timespec="microseconds").replace("+00:00", "Z")
        except Exception:                        # noqa: BLE001
            return "unknown"

    def _record(self, event: str, sim_time_s: Any, fields: Mapping[str, Any],
                wall_iso: str) -> dict:
        record: dict[str, Any] = {"seq": None, "sim_time_s": sanitize(sim_time_s),
                                  "wall_time": wall_iso, "event": sanitize(str(event))}
        for k, v in fields.items():
            if k in record:
                k = "field_" + k
            record[k] = sanitize(v)
        return record

    def _emit(self, record: dict) -> dict:
        """Give ``record`` the next seq, keep it, write it."""
        record["seq"] = self.seq
        self.seq += 1
        try:
            line = json.dumps(record, allow_nan=False, separators=(",", ":"))
        except Exception as e:                   # noqa: BLE001
            line = json.dumps({"seq": record["seq"], "sim_time_s": record["sim_time_s"],
                               "wall_time": record["wall_time"], "event": record["event"],
                               "unserializable": repr(record)[:4000], "error": repr(e)})
        if len(line) > MAX_LINE_BYTES // 4:      # cheap test first: a char is <= 4 bytes
            if len(line.encode("utf-8", errors="replace")) > MAX_LINE_BYTES:
                line = json.dumps({"seq": record["seq"], "sim_time_s": record["sim_time_s"],
                                   "wall_time": record["wall_time"], "event": record["event"],
                                   "truncated": line[:MAX_LINE_BYTES // 8]})
        self.records.append(record)
        self._append(line)
        return record

    def write(self, event: str, sim_time_s: float, **fields: Any) -> dict:
        """Append one record (or count it into its cause's summary); never raises."""
        wall_iso = self._wall_iso()
        causes = self._aggregate.get(event)
        if causes is None:
            self.flush()                         # counted repeats first: keep the order
            return self._emit(self._record(event, sim_time_s, fields, wall_iso))
        return self._aggregated(event, causes, sim_time_s, fields, wall_iso)

    def _window_time(self, sim_time_s: Any) -> float:
        if _finite(sim_time_s):
            return float(sim_time_s)
        try:
            return float(self._clock())
        except Exception:                        # noqa: BLE001
            return 0.0

    def _aggregated(self, event: str, causes: tuple[str, ...], sim_time_s: Any,
                    fields: Mapping[str, Any], wall_iso: str) -> dict:
        cause = {c: sanitize(fields.get(c)) for c in causes}
        key = (event, json.dumps(cause, sort_keys=True, default=str))
        if key not in self._runs and \
                sum(1 for k in self._runs if k[0] == event) >= self.max_causes:
            cause = {c: OTHER_CAUSE for c in causes}
            key = (event, json.dumps(cause, sort_keys=True))
        t = self._window_time(sim_time_s)
        run = self._runs.get(key)
        if run is not None and not (run.start <= t < run.start + self.period_s):
            if run.count:                        # the period is over: its count, then on
                self._summary(event, run)
                run.start = t
            else:                                # a whole period without a repeat
                del self._runs[key]
                run = None
        if run is None:
            self._runs[key] = _Run(cause, t)
            return self._emit(self._record(event, sim_time_s, fields, wall_iso))
        sim = sanitize(sim_time_s)
        if not run.count:
            run.first_sim, run.first_wall = sim, wall_iso
        run.count += 1
        run.last_sim, run.last_wall = sim, wall_iso
        record = self._record(event, sim_time_s, fields, wall_iso)
        del record["seq"]
        record["aggregated"] = True
        return record

    def _summary(self, event: str, run: _Run) -> None:
        fields = dict(run.cause)
        fields.update(count=run.count, first_sim_time_s=run.first_sim,
                      last_sim_time_s=run.last_sim, first_wall_time=run.first_wall,
                      last_wall_time=run.last_wall, period_s=self.period_s)
        self._emit(self._record(f"{event}_summary", run.last_sim, fields, self._wall_iso()))
        run.count = 0

    def tick(self, sim_time_s: float) -> None:
        """Write the summaries whose period is over at ``sim_time_s`` (call it from a timer
        the caller already has); forget causes quiet for a whole period."""
        if not self._runs:
            return
        t = self._window_time(sim_time_s)
        for key, run in list(self._runs.items()):
            if run.start <= t < run.start + self.period_s:
                continue
            if run.count:
                self._summary(key[0], run)
                run.start = t
            else:
                del self._runs[key]

    def flush(self) -> None:
        """Write every pending summary now (their periods go on)."""
        for key, run in list(self._runs.items()):
            if run.count:
                self._summary(key[0], run)

    def events(self, event: str | None = None) -> list[dict]:
        """Kept records, optionally only those of one event."""
        return [r for r in self.records if event is None or r.get("event") == event]

    def close(self) -> None:
        """Write the pending summaries and close the file."""
        self.flush()
        self._runs.clear()
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
