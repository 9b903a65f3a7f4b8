"""What the console shows, as JSON-able sections (no rclpy).

:class:`StateStore` holds named sections (robot, safety, people, path, camera, task,
gauges, plans, audit, events, confirmation), each with a version; a client's view records
the versions it has seen, and :meth:`StateStore.changed` returns only what changed and is
due under the client's throttle.  The ROS bridge writes from its thread, the server reads
from the asyncio thread: one lock.

Also here: the static site map as a compact payload (:func:`map_payload`), plan messages as
dicts (:func:`plan_dict`), the tail of a JSON-lines file (:func:`tail_jsonl`) and JPEG
encoding of camera frames (:func:`encode_jpeg`).
"""
from __future__ import annotations

import base64
import json
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from sitebot.console.ratelimit import Throttle
from sitebot.language.types import HIGH_RISK_SKILLS
from sitebot.types import Mode, SafetyLevel

__all__ = ["StateStore", "PlanBook", "map_payload", "overlays", "plan_dict", "tail_jsonl",
           "encode_jpeg", "r3", "LEVEL_NAMES", "MODE_NAMES"]

#: SafetyState levels and modes as the page names them ("protective_stop", "manual", ...)
LEVEL_NAMES = {int(v): v.name.lower() for v in SafetyLevel}
MODE_NAMES = {int(v): v.name.lower() for v in Mode}


def r3(x: float, nd: int = 3) -> float | None:
    """A float rounded for JSON; None for non-finite values (JSON has no NaN)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return round(f, nd) if math.isfinite(f) else None


class StateStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sections: dict[str, tuple[int, Any]] = {}
        self._version = 0

    def set(self, name: str, payload: Any) -> None:
        with self._lock:
            self._version += 1
            self._sections[name] = (self._version, payload)

    def get(self, name: str, default: Any = None) -> Any:
        with self._lock:
            item = self._sections.get(name)
        return default if item is None else item[1]

    def changed(self, seen: dict[str, int], throttle: Throttle | None, now: float) -> dict:
        """Sections newer than ``seen`` (updated in place) and due under ``throttle``."""
        with self._lock:
            items = list(self._sections.items())
        out = {}
        for name, (version, payload) in items:
            if seen.get(name) == version:
                continue
            if throttle is not None:
                if not throttle.ready(name, now):
                    continue
                throttle.mark(name, now)
            seen[name] = version
            out[name] = payload
        return out


class PlanBook:
    """Instructions sent and the planner's answers (bounded, oldest dropped)."""

    def __init__(self, keep: int = 50) -> None:
        self.keep = keep
        self.requests: OrderedDict[str, dict] = OrderedDict()
        self.plans: OrderedDict[str, dict] = OrderedDict()

    def request(self, request_id: str, user: str, role: str, text: str, now: float,
                in_reply_to: str = "") -> None:
        self.requests[request_id] = {"request_id": request_id, "user": user, "role": role,
                                     "text": text, "t": now, "in_reply_to": in_reply_to}
        while len(self.requests) > self.keep:
            self.requests.popitem(last=False)

    def answer(self, plan: dict) -> dict:
        pid = plan.get("plan_id", "")
        req = self.requests.get(pid)
        plan = dict(plan, user=req["user"] if req else "", ours=req is not None)
        self.plans[pid] = plan
        self.plans.move_to_end(pid)
        while len(self.plans) > self.keep:
            self.plans.popitem(last=False)
        return plan

    def get(self, plan_id: str) -> dict | None:
        return self.plans.get(plan_id)

    def recent(self, n: int = 8) -> list[dict]:
        return list(reversed(list(self.plans.values())[-n:]))


def plan_dict(plan_id: str, status: str, steps: Iterable[tuple[str, dict]], *,
              question: str = "", reason: str = "", explanation: str = "",
              instruction: str = "", role: str = "") -> dict:
    """A planner answer for the browser; ``high_risk`` when a step needs confirmation."""
    st = [{"skill": s, "args": dict(a)} for s, a in steps]
    return {"plan_id": plan_id, "status": status, "steps": st, "question": question,
            "reason": reason, "explanation": explanation, "instruction": instruction,
            "role": role, "high_risk": any(s["skill"] in HIGH_RISK_SKILLS for s in st)}


def overlays(reg: Any) -> dict:
    """What the map draws over the occupancy from a registry: zones, places, routes (place
    ids) and docks (their places)."""
    return {
        "zones": [{"id": z.id, "name": z.name, "kind": z.kind.value,
                   "polygon": [[r3(x), r3(y)] for x, y in z.polygon]} for z in reg.zones],
        "places": [{"id": p.id, "name": p.name, "pose": [r3(p.x), r3(p.y), r3(p.yaw)]}
                   for p in reg.places],
        "routes": [{"id": r.id, "name": r.name, "waypoints": list(r.waypoints),
                    "loop": r.loop} for r in reg.routes],
        "docks": [{"id": d.id, "place": d.place} for d in reg.docks],
    }


def map_payload(site: Any, resolution_m: float = 0.1) -> dict:
    """The static map of a :class:`~sitebot.site.bundle.SiteBundle`: occupancy bits
    (row-major, row 0 = lowest y, ``numpy.packbits``, base64), the registry's
    :func:`overlays` and the bundle's named start poses."""
    grid = site.occupancy_grid(resolution_m, 0.0, keep_out=False)
    occ = np.asarray(grid.occupied, dtype=bool)
    return {
        "site": site.registry.site,
        "grid": {"origin": [r3(grid.origin_x), r3(grid.origin_y)],
                 "resolution": grid.resolution_m, "width": int(occ.shape[1]),
                 "height": int(occ.shape[0]),
                 "bits": base64.b64encode(np.packbits(occ.ravel()).tobytes()).decode("ascii")},
        **overlays(site.registry),
        "starts": {k: [r3(v.x), r3(v.y), r3(v.yaw)] for k, v in site.starts.items()},
    }


def tail_jsonl(path: str | Path, n: int = 20, max_bytes: int = 65536) -> list[dict]:
    """The last ``n`` JSON-object lines of a file (malformed lines skipped; [] if none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            chunk = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    lines = chunk.splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]               # the first line is probably cut
    out: list[dict] = []
    for line in reversed(lines):
        if len(out) >= n:
            break
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    out.reverse()
    return out


def encode_jpeg(bgr: np.ndarray, quality: int = 70, max_width: int = 640) -> str | None:
    """A BGR (or mono) uint8 image as a base64 JPEG, scaled down to ``max_width``."""
    import cv2
    if bgr is None or bgr.size == 0 or bgr.dtype != np.uint8:
        return None
    h, w = bgr.shape[:2]
    if w > max_width > 0:
        bgr = cv2.resize(bgr, (max_width, max(1, round(h * max_width / w))),
                         interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    return base64.b64encode(buf.tobytes()).decode("ascii") if ok else None
