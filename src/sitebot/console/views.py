"""What the robot reports, shaped into the console's state sections (no rclpy; time passed in).

The ROS bridge (:mod:`sitebot.nodes.web_console`) turns each message into plain values and
hands them to :class:`ConsoleViews`, which keeps what a section needs from earlier messages
and returns the JSON-able payload for :class:`~sitebot.console.state.StateStore`:

* ``robot``: ``odometry/filtered`` while it is fresh (``pose_timeout_s``), else ``odom``
  composed with the spawn pose (the section's ``source`` says which); the speed from ``odom``.
* ``people``: tracked people, moved into the map with the robot pose when they come in the
  base frame; ``path``: the plan's points, thinned to :data:`PATH_MAX_POINTS`.
* ``safety``: the supervisor's state with the protective field radius and the mode this
  console asked for; ``camera``: JPEG frames at ``camera_rate_hz``.
* ``gauges``: the last reading per gauge, its crop re-encoded at most once per
  :data:`GAUGE_CROP_PERIOD_S`; ``task``: the plan this console runs (start, executor status,
  action feedback and result); ``confirmation``: the executor's question; ``audit``: the tail
  of the supervisor's audit log, re-read when the file changes; ``survey``: the survey
  recorder's status (:func:`survey_section`).

It also keeps the planner's plans by id until one is run (:meth:`ConsoleViews.keep_plan`).
The task is written from several threads (action callbacks, the server's workers): one lock.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import threading
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from sitebot.config.params import dataclass_from_params, fields_from_params
from sitebot.console.ratelimit import Throttle
from sitebot.console.state import LEVEL_NAMES, MODE_NAMES, encode_jpeg, r3, tail_jsonl
from sitebot.types import Pose2D

__all__ = ["ViewConfig", "ConsoleViews", "path_section", "confirmation_section", "result_step",
           "survey_section",
           "PATH_MAX_POINTS", "PEOPLE_MAX", "GAUGES_KEPT", "GAUGE_CROP_PERIOD_S",
           "GAUGE_CROP_WIDTH_PX", "PLANS_KEPT", "PLAN_STATUSES", "RESULT_CODES", "OUTCOMES"]

#: payload bounds of the page (what one browser is sent), not tuning of an algorithm
PATH_MAX_POINTS = 300            # a longer path is thinned (its last point kept)
PEOPLE_MAX = 50                  # people shown from one message
GAUGES_KEPT = 40                 # gauges shown (the oldest first out)
GAUGE_CROP_PERIOD_S = 1.0        # a gauge's crop re-encoded at most this often [s]
GAUGE_CROP_WIDTH_PX = 160        # crops scaled down to this width [px]
PLANS_KEPT = 50                  # planner answers kept to be run (the oldest first out)

#: TaskPlan statuses, ExecutePlan result codes and step outcomes (sitebot_interfaces) as words
PLAN_STATUSES = {0: "ok", 1: "clarify", 2: "refuse"}
RESULT_CODES = {0: "succeeded", 1: "failed", 2: "aborted", 3: "canceled", 4: "rejected"}
OUTCOMES = {0: "pending", 1: "succeeded", 2: "failed", 3: "skipped", 4: "declined",
            5: "canceled"}


@dataclass(frozen=True)
class ViewConfig:
    """The node's parameters of the same names (``spawn`` is the spawn pose itself)."""
    spawn: Pose2D = Pose2D(0.0, 0.0, 0.0)   # odom's origin in the map [m, m, rad]
    pose_timeout_s: float = 1.0       # odometry/filtered older than this: odom shown [s]
    footprint_radius_m: float = 0.4   # the protective field drawn is this + the separation [m]
    map_frame: str = "map"
    jpeg_quality: int = 70
    camera_max_width: int = 480       # [px]
    camera_rate_hz: float = 2.0       # camera frames encoded [Hz]
    audit_log: str = ""               # the supervisor's audit log; '' = none
    audit_tail_lines: int = 15

    def __post_init__(self) -> None:
        for name in ("pose_timeout_s", "camera_rate_hz"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"ViewConfig.{name} must be a finite number > 0, got {v!r}")
        if not (math.isfinite(self.footprint_radius_m) and self.footprint_radius_m >= 0):
            raise ValueError("ViewConfig.footprint_radius_m must be finite and >= 0")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"ViewConfig.jpeg_quality must be in [1, 100], got "
                             f"{self.jpeg_quality}")
        if self.camera_max_width < 1 or self.audit_tail_lines < 1:
            raise ValueError("ViewConfig.camera_max_width and audit_tail_lines must be >= 1")
        if len(self.spawn) != 3:
            raise ValueError("ViewConfig.spawn must be (x, y, yaw)")

    @classmethod
    def from_params(cls, p: Mapping[str, Any], spawn: Any = None) -> "ViewConfig":
        """From the node's parameters (the fields they name) and the spawn pose (anything
        with ``x``, ``y``, ``yaw``; None: the origin)."""
        pose = Pose2D(0.0, 0.0, 0.0) if spawn is None else Pose2D(spawn.x, spawn.y, spawn.yaw)
        return dataclass_from_params(cls, p, spawn=pose)

    def updated(self, changed: Mapping[str, Any]) -> "ViewConfig":
        """A copy with the fields named in ``changed`` (parameters changed at run time)."""
        return replace(self, **fields_from_params(type(self), changed, exclude=("spawn",)))



def _json_object(text: str) -> dict:
    d = json.loads(text)
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    return d


def path_section(frame: str, points: Sequence[tuple[float, float]]) -> dict:
    """The planned path: every ``step``-th point so that at most about
    :data:`PATH_MAX_POINTS` go out (the last one always), non-finite points dropped."""
    pts = list(points)
    step = max(1, len(pts) // PATH_MAX_POINTS)
    pts = pts[::step] + (pts[-1:] if pts and (len(pts) - 1) % step else [])
    return {"frame": frame, "points": [[r3(x, 2), r3(y, 2)] for x, y in pts
                                       if math.isfinite(x) and math.isfinite(y)]}


def confirmation_section(text: str) -> dict:
    """The executor's ``task/confirmation_request`` (JSON text) for the page.

    :raises ValueError: not a JSON object."""
    d = _json_object(text)
    return {"plan_id": str(d.get("plan_id", ""))[:64],
            "question": str(d.get("question", ""))[:300],
            "role_required": str(d.get("role_required", ""))[:32]}


def survey_section(level: Any, message: str, values: Iterable[tuple[str, str]]) -> dict:
    """The survey recorder's ``survey/status`` (DiagnosticStatus: ``level`` an int or the
    message's one byte, ``message`` "recording" or "idle", ``values`` (key, value) pairs:
    path, duration_s, scans, images, ...)."""
    lvl = level[0] if isinstance(level, (bytes, bytearray)) and level else level
    vals = {str(k)[:32]: str(v)[:200] for k, v in itertools.islice(values, 16)}
    return {"state": message[:60], "recording": message == "recording",
            "level": int(lvl) if isinstance(lvl, int) else 0, "values": vals}


def result_step(skill: str, args: Mapping[str, str], outcome: int, message: str,
                duration_s: float, readings: Iterable[tuple[str, float, str, float, bool]]
                ) -> dict:
    """One step of an ExecutePlan result; ``readings`` as (asset, value, unit, confidence,
    valid)."""
    return {"skill": skill, "args": dict(args), "outcome": OUTCOMES.get(outcome, "?"),
            "message": message[:200], "duration_s": r3(duration_s, 1),
            "readings": [{"asset": a, "value": r3(v), "unit": u, "confidence": r3(c),
                          "valid": bool(ok)} for a, v, u, c, ok in readings]}


class ConsoleViews:
    """The sections built from the robot's messages; ``now``/``t`` are passed in (the node's
    clock for stamps and freshness, a monotonic clock for the rates)."""

    def __init__(self, config: ViewConfig | None = None) -> None:
        self.config = config or ViewConfig()
        self.lock = threading.Lock()
        self.pose: Pose2D | None = None          # the robot pose last shown (map frame)
        self.twist = (0.0, 0.0)                   # from odom (v [m/s], w [rad/s])
        self.filtered_at: float | None = None     # last finite odometry/filtered
        self.mode_requested: str | None = None    # the mode this console set
        self.task: dict = {}
        self.gauges: dict[str, dict] = {}
        self._crops = Throttle(default_s=GAUGE_CROP_PERIOD_S)
        self._camera_at = -math.inf
        self._audit_sig: tuple | None = None
        self._plans: dict[str, Any] = {}

    def configure(self, changed: Mapping[str, Any]) -> None:
        """Parameters changed at run time (those of :class:`ViewConfig`; others ignored)."""
        self.config = self.config.updated(changed)

    # ------------------------------------------------------------------ robot
    def on_filtered(self, pose: Pose2D, now: float) -> dict | None:
        """``odometry/filtered``: the robot section, or None for a non-finite pose."""
        pose = Pose2D.of(pose)
        if not pose.is_finite():
            return None
        self.filtered_at = now
        return self._robot(pose, "filter", now)

    def on_odom(self, pose: Pose2D, v: float, w: float, now: float) -> dict | None:
        """``odom``: keeps the speed; the robot section (spawn (+) odom pose) unless the
        filtered pose is fresh, or None."""
        if math.isfinite(v) and math.isfinite(w):
            self.twist = (v, w)
        f = self.filtered_at
        if f is not None and now - f <= self.config.pose_timeout_s:
            return None
        p = self.config.spawn.compose(pose)
        return self._robot(p, "odom", now) if p.is_finite() else None

    def _robot(self, pose: Pose2D, source: str, now: float) -> dict:
        self.pose = pose
        return {"x": r3(pose.x), "y": r3(pose.y), "yaw": r3(pose.yaw), "v": r3(self.twist[0]),
                "w": r3(self.twist[1]), "source": source, "t": r3(now, 2)}

    def people(self, frame: str, people: Iterable[tuple[int, float, float, float, float]]
               ) -> list[dict] | None:
        """Tracked people as (id, x, y, vx, vy) in ``frame``: the map frame, or the base
        frame (moved into the map with the robot pose; None while there is none)."""
        in_map = frame == self.config.map_frame
        if not in_map and self.pose is None:
            return None
        out = []
        for pid, px, py, vx, vy in itertools.islice(people, PEOPLE_MAX):
            if not in_map:
                px, py, _ = self.pose.compose((px, py, 0.0))
                c, s = math.cos(self.pose.yaw), math.sin(self.pose.yaw)
                vx, vy = c * vx - s * vy, s * vx + c * vy
            if math.isfinite(px) and math.isfinite(py):
                out.append({"id": int(pid), "x": r3(px, 2), "y": r3(py, 2),
                            "vx": r3(vx, 2), "vy": r3(vy, 2)})
        return out

    # ------------------------------------------------------------------ safety, camera, gauges
    def safety(self, *, level: int, mode: int, estop: bool, stop_category: int,
               speed_scale: float, max_speed: float, closest: float, required: float,
               reasons: Sequence[str], message: str, now: float) -> dict:
        """``safety/state``; the protective field is the footprint + the required
        separation (the footprint alone when that is not finite)."""
        field_m = self.config.footprint_radius_m + (required if math.isfinite(required)
                                                    else 0.0)
        mode_name = MODE_NAMES.get(mode, "unknown")
        return {"level": int(level), "level_name": LEVEL_NAMES.get(level, "unknown"),
                "mode": mode_name, "mode_requested": self.mode_requested or mode_name,
                "estop": bool(estop), "stop_category": int(stop_category),
                "speed_scale": r3(speed_scale), "max_speed": r3(max_speed),
                "closest": r3(closest), "required": r3(required), "field_radius": r3(field_m),
                "reasons": list(reasons)[:8], "message": message[:300], "t": r3(now, 2)}

    def camera_due(self, t: float) -> bool:
        """True (and counted as sent) when a camera frame is due at ``t``
        (``camera_rate_hz``)."""
        if t - self._camera_at < 1.0 / self.config.camera_rate_hz:
            return False
        self._camera_at = t
        return True

    def camera(self, bgr: np.ndarray, width: int, height: int, stamp: float) -> dict | None:
        """A camera frame as JPEG (``jpeg_quality``, ``camera_max_width``); None if it does
        not encode."""
        jpeg = encode_jpeg(bgr, self.config.jpeg_quality, self.config.camera_max_width)
        if not jpeg:
            return None
        return {"jpeg": jpeg, "width": int(width), "height": int(height),
                "stamp": r3(stamp, 2)}

    def gauge(self, *, asset: str, valid: bool, value: float, unit: str, confidence: float,
              failure: str, stamp: float, crop: Callable[[], np.ndarray | None] | None,
              t: float) -> list[dict]:
        """A gauge reading; ``crop`` gives its image (BGR) and is called only when the
        crop is due. The gauges section (one entry per gauge)."""
        aid = asset[:64]
        entry = {"asset": aid, "valid": bool(valid), "value": r3(value), "unit": unit[:16],
                 "confidence": r3(confidence), "failure": failure[:120], "stamp": r3(stamp, 2),
                 "crop": self.gauges.get(aid, {}).get("crop")}
        if crop is not None and self._crops.ready(aid, t):
            arr = crop()
            if arr is not None:
                entry["crop"] = encode_jpeg(arr, self.config.jpeg_quality, GAUGE_CROP_WIDTH_PX)
                self._crops.mark(aid, t)
        self.gauges[aid] = entry
        if len(self.gauges) > GAUGES_KEPT:
            self.gauges.pop(next(iter(self.gauges)))
        return list(self.gauges.values())

    def audit_tail(self) -> list[dict] | None:
        """The last ``audit_tail_lines`` of ``audit_log`` when the file changed since the
        last call (size or mtime), else None."""
        path = self.config.audit_log
        if not path:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        sig = (st.st_size, st.st_mtime_ns)
        if sig == self._audit_sig:
            return None
        self._audit_sig = sig
        out = []
        for rec in tail_jsonl(path, self.config.audit_tail_lines):
            detail = {k: v for k, v in rec.items()
                      if k not in ("seq", "sim_time_s", "wall_time", "event")}
            out.append({"seq": rec.get("seq"), "t": rec.get("sim_time_s"),
                        "event": str(rec.get("event", ""))[:60],
                        "detail": json.dumps(detail, default=str)[:240]})
        return out

    # ------------------------------------------------------------------ plans and the task
    def keep_plan(self, plan_id: str, plan: Any) -> None:
        """A planner answer kept (as the bridge needs it to run it), the oldest dropped."""
        self._plans[plan_id] = plan
        while len(self._plans) > PLANS_KEPT:
            self._plans.pop(next(iter(self._plans)))

    def plan(self, plan_id: str) -> Any:
        return self._plans.get(plan_id)

    def task_status(self, text: str) -> tuple[dict, str]:
        """The executor's ``task/status`` (JSON text): (task section, event line).

        :raises ValueError: not a JSON object."""
        d = _json_object(text)
        with self.lock:
            self.task = dict(self.task, status={k: d[k] for k in list(d)[:12]})
            if d.get("state") == "finished":
                self.task["running"] = False
            task = dict(self.task)
        return task, f"task: {json.dumps(d)[:280]}"

    def task_started(self, plan_id: str, user: str,
                     steps: Iterable[tuple[str, Mapping[str, str]]]) -> dict:
        with self.lock:
            self.task = {"plan_id": plan_id, "running": True, "user": user,
                         "steps": [{"skill": s, "args": dict(a)} for s, a in steps]}
            return dict(self.task)

    def task_feedback(self, step_index: int, step_count: int, state: str, skill: str,
                      outcome: int, message: str) -> dict:
        """ExecutePlan feedback (``step_index`` from 0; shown from 1)."""
        with self.lock:
            self.task = dict(self.task, step=int(step_index) + 1, step_count=int(step_count),
                             state=state[:120],
                             current={"skill": skill, "outcome": OUTCOMES.get(outcome, "?"),
                                      "message": message[:200]})
            return dict(self.task)

    def task_result(self, code: int, reason: str, steps: Iterable[dict]) -> dict:
        """ExecutePlan result; ``steps`` from :func:`result_step`."""
        with self.lock:
            self.task = dict(self.task, running=False,
                             result={"code": RESULT_CODES.get(code, str(code)),
                                     "reason": reason[:300], "steps": list(steps)})
            return dict(self.task)
