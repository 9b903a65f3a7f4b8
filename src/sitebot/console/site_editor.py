"""The site editor (no rclpy): edits of a site bundle's registry (``site.yaml``) from the web
console or a script (docs/console.md, "Site editor").

An edit is one operation on one entry of a registry section::

    {"op": "add" | "update" | "delete" | "confirm",
     "kind": "place" | "asset" | "object" | "zone" | "route" | "dock" | "marker",
     "entity": <id> (a marker: its tag),
     "data": {...}}          # add: the entry as site.yaml writes it (its id is "entity");
                             # update: the keys to change (null removes a key)

``confirm`` drops ``draft`` from a draft marker (one the marker survey wrote); markers keep
every key this module does not know (``std``, ``sightings``, ...), as do all entries.

Every edit is checked as loading checks the file: the candidate document is written as
YAML, read back through the one bounded YAML path and the registry loader
(:func:`sitebot.site.loader.parse_registry`: the same messages, naming ``site.yaml`` and the
key), then checked against the rest of the bundle
(:func:`sitebot.site.bundle.check_registry`: places in free cells of the map, markers and
zone vertices on it, the default start).  A refused edit leaves the file untouched and
returns that message.  An accepted edit is saved atomically (a temporary file in the bundle
folder, flushed and fsynced, then ``os.replace``; a failed write leaves the old file) and
appended to the bundle's audit log :data:`AUDIT_FILE` (JSON lines: who, role, when, the
operation, the entity, the old and the new revision).

Last-writer detection: a revision is the sha256 of the file's bytes; :meth:`SiteEditor.get`
returns it and every edit names the revision it was based on; a different one is refused
(``conflict``) with who changed the file and when (from the audit log): the client reloads.
Edits are serialised within a process (a lock) and between processes (``flock`` on the
audit log), so two editors never lose an edit.

:class:`SiteCommands` is the server's side of the ``site_get`` and ``site_edit`` commands.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as _dt
import fcntl
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import yaml

from sitebot.config.yamlio import MAX_YAML_BYTES, decode_utf8, load_yaml_text
from sitebot.console.auth import PERMISSIONS, permitted
from sitebot.console.protocol import EDIT_KINDS, EDIT_OPS
from sitebot.console.state import overlays, tail_jsonl
from sitebot.errors import BundleError, ConfigError, RegistryError
from sitebot.fileio import write_atomic
from sitebot.paths import data_path
from sitebot.site.bundle import (BUNDLE_FILE, MAP_FILE, REGISTRY_FILE, SCENE_FILE, SiteBundle,
                                 check_registry, load_bundle, resolve_site)
from sitebot.site.loader import parse_registry
from sitebot.site.registry import SiteRegistry

__all__ = ["SiteEditor", "EditResult", "SiteCommands", "open_editor", "revision_of",
           "dump_registry", "AUDIT_FILE", "SECTIONS"]

#: the bundle's audit log of accepted edits (JSON lines)
AUDIT_FILE = "edits.jsonl"
#: edit kind -> registry section
SECTIONS = {"place": "places", "asset": "assets", "object": "objects", "zone": "zones",
            "route": "routes", "dock": "docks", "marker": "markers"}
assert tuple(SECTIONS) == EDIT_KINDS
#: the order of the keys of an entry an edit writes (others follow in their own order)
_KEY_ORDER = ("id", "tag", "name", "kind", "aliases", "place", "pose", "size", "gauge",
              "fiducial", "polygon", "max_speed", "roles", "waypoints", "loop", "grasp_yaw",
              "description", "draft", "std", "sightings")
_FLOW_CHARS = 90        # an entry of scalars shorter than this is written on one line
_MAX_DEPTH = 6          # an entry's data nests at most this deep (a polygon: 2)
#: the order of the document's top-level keys (the loader's; others follow in their order)
_TOP_ORDER = ("site", "frame", "name", "description", "places", "assets", "objects", "zones",
              "routes", "docks", "markers")


def revision_of(data: bytes) -> str:
    """The revision of a file's content: its sha256 (hex)."""
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------- writing YAML
class _Dumper(yaml.SafeDumper):
    """Safe YAML, readable: short entries and lists of numbers on one line, no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _flat(v: Any) -> bool:
    return _scalar(v) or (isinstance(v, list) and all(
        _scalar(x) or (isinstance(x, list) and all(map(_scalar, x))) for x in v))


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_flat(data))


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    flow = all(_flat(v) for v in data.values()) and len(repr(data)) < _FLOW_CHARS
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


class _Block(dict):
    """A mapping always written in block style (the document's top level)."""


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(_Block, lambda dumper, data: dumper.represent_mapping(
    "tag:yaml.org,2002:map", data.items(), flow_style=False))


def dump_registry(doc: Mapping[str, Any], header: str = "") -> str:
    """A registry document as YAML (safe, keys in their order, top-level sections in block
    style) after ``header`` (comment lines kept from the file)."""
    parts = []
    for key, value in doc.items():
        one = _Block({key: value})
        if isinstance(value, list) and value and not _flat(value):     # a section
            body = yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                             width=100, default_flow_style=False)
            parts.append(f"\n{key}:\n" + "".join(f"  {line}\n" if line else "\n"
                                                 for line in body.splitlines()))
        else:
            parts.append(yaml.dump(one, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                                   width=100))
    return header + "".join(parts)


def _header(text: str) -> str:
    """The comment lines at the top of a file."""
    out = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        out.append(line)
    return "".join(out)


def _ordered(entry: Mapping[str, Any]) -> dict:
    rank = {k: i for i, k in enumerate(_KEY_ORDER)}
    return dict(sorted(entry.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _jsonable(v: Any) -> Any:
    """A YAML value as JSON data (anything unusual as its text)."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if _scalar(v) and not (isinstance(v, float) and v != v):
        return v
    return str(v)


# ------------------------------------------------------------------------- the editor
class _Refused(Exception):
    """An edit that is not applied; ``str()`` says why."""


@dataclass(frozen=True)
class EditResult:
    """The answer to an edit: ``ok`` (saved), the message (the loader's on a refusal), the
    file's revision after it, ``conflict`` (refused: based on an older revision) and, when
    saved, the new registry."""
    ok: bool
    message: str
    revision: str = ""
    conflict: bool = False
    registry: SiteRegistry | None = None


class SiteEditor:
    """Edits of the ``site.yaml`` of the bundle folder ``folder`` (see the module docstring).

    ``problem``: why the bundle may not be edited ('' = it may); ``wall``: the clock of the
    audit records [s since the epoch]."""

    def __init__(self, folder: str | os.PathLike, problem: str = "",
                 wall: Callable[[], float] | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / REGISTRY_FILE
        self.audit_path = self.folder / AUDIT_FILE
        self.problem = problem
        self.wall = wall or time.time
        self._lock = threading.Lock()
        self._bundle: tuple[tuple, SiteBundle] | None = None

    # ------------------------------------------------------------------ reading
    def _read(self) -> tuple[bytes, str]:
        """(bytes, revision) of site.yaml."""
        try:
            with self.path.open("rb") as f:
                raw = f.read(MAX_YAML_BYTES + 1)
        except OSError as e:
            raise _Refused(f"{self.path}: cannot read: {e.strerror or e}") from None
        return raw, revision_of(raw)

    def _parse(self, raw: bytes) -> dict:
        """The document of site.yaml's bytes (the one bounded YAML path)."""
        if len(raw) > MAX_YAML_BYTES:
            raise RegistryError(f"file is larger than {MAX_YAML_BYTES} bytes", file=self.path)
        doc = load_yaml_text(decode_utf8(raw, self.path, RegistryError), self.path,
                             RegistryError)
        if not isinstance(doc, dict):
            raise RegistryError("expected a mapping with at least 'site'", file=self.path)
        return doc

    def _base(self) -> SiteBundle:
        """The bundle (map, starts, scene), loaded again when its files change."""
        sig = []
        for name in (BUNDLE_FILE, MAP_FILE, SCENE_FILE):
            try:
                st = (self.folder / name).stat()
                sig.append((name, st.st_mtime_ns, st.st_size))
            except OSError:
                sig.append((name, None, None))
        if self._bundle is None or self._bundle[0] != tuple(sig):
            self._bundle = (tuple(sig), load_bundle(self.folder))
        return self._bundle[1]

    def _checked_base(self) -> SiteBundle:
        """:meth:`_base`, or :class:`_Refused` saying that the bundle on disk does not load
        (changed by hand since the console started)."""
        try:
            return self._base()
        except ConfigError as e:
            raise _Refused(f"the bundle does not load as it is on disk, so no edit can be "
                           f"checked: {e}; fix it by hand (sitebot site check "
                           f"{self.folder})") from None

    def get(self) -> dict:
        """The document with its revision: ``revision``, ``site`` (the document as JSON
        data; None when it does not parse), ``writable`` and ``problem`` (why not),
        ``invalid`` (the loader's message when the file on disk does not load, else ''),
        ``file`` and ``last_edit`` (the newest audit record, or None)."""
        with self._lock:
            raw, rev = self._read()
            doc, invalid = None, ""
            try:
                doc = self._parse(raw)
                check_registry(self._base(), parse_registry(copy.deepcopy(doc), self.path))
            except ConfigError as e:
                invalid = str(e)
        records = tail_jsonl(self.audit_path, 1)
        return {"revision": rev, "site": _jsonable(doc) if doc is not None else None,
                "writable": not self.problem, "problem": self.problem, "invalid": invalid,
                "file": str(self.path), "last_edit": records[-1] if records else None}

    # ------------------------------------------------------------------ editing
    def edit(self, op: Mapping[str, Any], *, user: str, role: str,
             revision: str) -> EditResult:
        """Apply ``op`` (see the module docstring) for ``user`` with ``role``, based on the
        file's ``revision``.  Never raises for a refused edit: the result says why."""
        try:
            action, kind, entity, data = _check_op(op)
            if not permitted(role, "edit_site"):
                allowed = ", ".join(sorted(PERMISSIONS["edit_site"]))
                raise _Refused(f"role {role} may not edit the site (needs {allowed})")
            if self.problem:
                raise _Refused(self.problem)
        except _Refused as e:
            return EditResult(False, str(e))
        try:
            with self._lock, self._exclusive() as audit:
                return self._edit_locked(audit, action, kind, entity, data, user, role,
                                         revision)
        except OSError as e:                            # the audit log cannot be opened
            return EditResult(False, f"{action} {kind} {entity}: not saved ({self.audit_path}"
                                     f": {e.strerror or e}); {REGISTRY_FILE} is unchanged")

    def _edit_locked(self, audit: Any, action: str, kind: str, entity: str | int, data: dict,
                     user: str, role: str, revision: str) -> EditResult:
        try:
            raw, current = self._read()
        except _Refused as e:
            return EditResult(False, str(e))
        if revision != current:
            return EditResult(False, self._conflict(revision, current), current, True)
        try:
            text, registry, bundle = self._candidate(raw, action, kind, entity, data)
        except _Refused as e:
            return EditResult(False, str(e), current)
        except ConfigError as e:                        # the loader's and the bundle's words
            return EditResult(False, str(e), current)
        new = text.encode("utf-8")
        if new == raw:
            return EditResult(True, f"{action} {kind} {entity}: no change", current,
                              registry=registry)
        try:
            write_atomic(self.path, new)
        except OSError as e:
            return EditResult(False, f"{action} {kind} {entity}: not saved ({self.path}: "
                                     f"{e.strerror or e}); {REGISTRY_FILE} is unchanged",
                              current)
        self._bundle = (self._bundle[0], bundle) if self._bundle else None
        rev = revision_of(new)
        record = {"time": _dt.datetime.fromtimestamp(self.wall(), _dt.timezone.utc)
                  .isoformat(timespec="milliseconds"), "user": user, "role": role,
                  "op": action, "kind": kind, "entity": entity, "old_revision": current,
                  "new_revision": rev, "data": data}
        note = ""
        try:
            audit.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            audit.flush()
            os.fsync(audit.fileno())
        except OSError as e:
            note = f" (the audit record was not written: {e.strerror or e})"
        return EditResult(True, f"{action} {kind} {entity}: saved, revision {rev[:12]}{note}",
                          rev, registry=registry)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[Any]:
        """The audit log, open for appending and locked (``flock``) against other
        processes editing the same bundle."""
        with open(self.audit_path, "a", encoding="utf-8") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield f
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _candidate(self, raw: bytes, action: str, kind: str, entity: str | int,
                   data: dict) -> tuple[str, SiteRegistry, SiteBundle]:
        """The edited file's text, its registry and the bundle with it; raises
        :class:`_Refused` or the loader's error."""
        doc = self._parse(raw)
        header = _header(decode_utf8(raw, self.path, RegistryError))
        _apply(doc, action, kind, entity, data)
        text = dump_registry(doc, header)
        # read back exactly as loading reads the file
        registry = parse_registry(load_yaml_text(text, self.path, RegistryError), self.path)
        return text, registry, check_registry(self._checked_base(), registry)

    def _conflict(self, based_on: str, current: str) -> str:
        last = next((r for r in reversed(tail_jsonl(self.audit_path, 200))
                     if r.get("new_revision") == current), None)
        if last is not None:
            who = (f"{last.get('op')} {last.get('kind')} {last.get('entity')} by "
                   f"{last.get('user')} ({last.get('role')}) at {last.get('time')}")
        else:
            who = "edited outside the console (no audit record of this revision)"
        return (f"the site changed since it was loaded (loaded revision {based_on[:12]}, now "
                f"{current[:12]}: {who}); reload it and make the edit again")


def _check_op(op: Mapping[str, Any]) -> tuple[str, str, str | int, dict]:
    """(op, kind, entity, data) of an edit, or :class:`_Refused`."""
    if not isinstance(op, Mapping):
        raise _Refused("an edit is a mapping {op, kind, entity, data}")
    unknown = sorted(set(op) - {"op", "kind", "entity", "data"})
    if unknown:
        raise _Refused(f"unknown keys {unknown} in the edit (accepted: op, kind, entity, data)")
    action, kind, entity = op.get("op"), op.get("kind"), op.get("entity")
    data = op.get("data") or {}
    if action not in EDIT_OPS:
        raise _Refused(f"op {action!r} is not one of {list(EDIT_OPS)}")
    if kind not in SECTIONS:
        raise _Refused(f"kind {kind!r} is not one of {list(SECTIONS)}")
    if not isinstance(data, dict):
        raise _Refused("'data' must be a mapping of the entry's keys")
    if _depth(data) > _MAX_DEPTH:
        raise _Refused(f"'data' nests deeper than {_MAX_DEPTH} levels")
    if kind == "marker":
        if isinstance(entity, str) and entity.isdigit():
            entity = int(entity)
        if not isinstance(entity, int) or isinstance(entity, bool):
            raise _Refused(f"a marker is named by its tag (an integer), got {entity!r}")
    elif not isinstance(entity, str) or not entity:
        raise _Refused(f"entity must be the {kind}'s id, got {entity!r}")
    if action == "confirm" and kind != "marker":
        raise _Refused("only a draft marker can be confirmed")
    if action in ("delete", "confirm") and data:
        raise _Refused(f"{action} takes no data")
    return action, kind, entity, data


def _depth(v: Any, limit: int = 64) -> int:
    """How deep lists and mappings nest in ``v`` (counting stops past ``limit``)."""
    if limit <= 0 or not isinstance(v, (dict, list)):
        return 0
    items = v.values() if isinstance(v, dict) else v
    return 1 + max((_depth(x, limit - 1) for x in items), default=0)


def _apply(doc: dict, action: str, kind: str, entity: str | int, data: dict) -> None:
    """Apply one edit to the document in place (:class:`_Refused` when it names no entry)."""
    section = SECTIONS[kind]
    key = "tag" if kind == "marker" else "id"
    items = doc.get(section)
    if items is None:
        items = doc[section] = []
        rank = {k: i for i, k in enumerate(_TOP_ORDER)}
        ordered = sorted(doc.items(), key=lambda kv: rank.get(kv[0], len(rank)))
        doc.clear()
        doc.update(ordered)
    if not isinstance(items, list):
        raise _Refused(f"{REGISTRY_FILE}: '{section}' is not a list")
    if action == "add":
        if data.get(key, entity) != entity:
            raise _Refused(f"data.{key} {data[key]!r} differs from the entity {entity!r}")
        items.append(_ordered({key: entity, **{k: v for k, v in data.items()
                                               if v is not None}}))
        return
    index = next((i for i, e in enumerate(items)
                  if isinstance(e, dict) and e.get(key) == entity), None)
    if index is None:
        known = ", ".join(str(e.get(key)) for e in items if isinstance(e, dict)) or "(none)"
        raise _Refused(f"no {kind} {entity!r} in {REGISTRY_FILE}; {section}: {known}")
    if action == "delete":
        del items[index]
    elif action == "confirm":
        if items[index].get("draft") is not True:
            raise _Refused(f"marker {entity} is not a draft (nothing to confirm)")
        del items[index]["draft"]
    else:
        entry = dict(items[index])
        for k, v in data.items():
            if v is None:
                entry.pop(k, None)
            else:
                entry[k] = v
        items[index] = _ordered(entry)


def open_editor(spec: str, wall: Callable[[], float] | None = None) -> SiteEditor | None:
    """The editor of the bundle a console's ``site`` parameter names (None: it names
    none).  A folder is edited in place; an installed site (given by name, or a shipped
    one) and a folder this process cannot write are refused with what to do instead."""
    text = str(spec or "").strip()
    try:
        folder = resolve_site(text)
    except BundleError:
        return None
    why = ""
    shipped = data_path("sites").resolve()
    if Path(text).expanduser() != folder:
        why = f"{text!r} is an installed site ({folder})"
    elif folder.resolve().is_relative_to(shipped):
        why = f"{folder} is a site shipped with sitebot"
    elif not (os.access(folder, os.W_OK) and os.access(folder / REGISTRY_FILE, os.W_OK)):
        why = f"{folder} or its {REGISTRY_FILE} is read-only for this process"
    problem = (f"this bundle is not writable: {why}; copy it to a folder (cp -r {folder} DIR) "
               "and start the console with site:=DIR") if why else ""
    return SiteEditor(folder, problem, wall)


# ------------------------------------------------------------------------- the server's side
class SiteCommands:
    """``site_get`` and ``site_edit`` for :class:`~sitebot.console.server.ConsoleServer`
    (``server``: its state store, map payload and audit); each returns (ok, message,
    extra reply fields).  The editor's work runs in a worker thread.  After an accepted
    edit the ``site`` state section (revision and the map's overlays) goes to every
    connected page."""

    NO_EDITOR = "this console has no site bundle folder to edit"

    def __init__(self, server: Any, editor: SiteEditor | None) -> None:
        self.server, self.editor = server, editor

    async def get(self, session: Any, cmd: dict) -> tuple[bool, str, dict]:
        if self.editor is None:
            return False, self.NO_EDITOR, {}
        try:
            site = await asyncio.to_thread(self.editor.get)
        except _Refused as e:
            return False, str(e), {}
        return True, f"{REGISTRY_FILE} at revision {site['revision'][:12]}", {"site": site}

    async def edit(self, session: Any, cmd: dict) -> tuple[bool, str, dict]:
        if self.editor is None:
            return False, self.NO_EDITOR, {}
        op = {k: cmd[k] for k in ("op", "kind", "entity", "data") if k in cmd}
        res = await asyncio.to_thread(self.editor.edit, op, user=session.user or "",
                                      role=session.role or "", revision=cmd["revision"])
        self.server.audit("site_edit", user=session.user, role=session.role, op=cmd["op"],
                          kind=cmd["kind"], entity=str(cmd["entity"]), ok=res.ok,
                          message=res.message)
        if res.ok and res.registry is not None:
            shown = overlays(res.registry)
            self.server.map_data.update(shown)
            self.server.store.set("site", {"revision": res.revision, **shown})
        return res.ok, res.message, {"revision": res.revision, "conflict": res.conflict}
