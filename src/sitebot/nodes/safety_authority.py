"""The safety supervisor's authenticated side over ROS (its node:
:mod:`sitebot.nodes.safety_supervisor`; the rules: :mod:`sitebot.security.requests`).

* ``safety/request`` (sitebot_interfaces/SafetyRequest): a reset of the latched emergency
  stop or a mode change, each with a signed assertion (scope ``reset``/``mode``), used once;
  refused, with the reason, otherwise.  Every request, granted or refused, is audited with who
  asked (user and role from the assertion, or "unauthenticated" with the reason).
* ``set_parameters`` of ``mode`` is refused with a reason naming that service (the
  parameter still sets the mode at start).
* ``safety/estop`` per publisher: a press from anyone engages; a release counts only from
  the publisher that pressed (its GID from the message info); an authenticated reset releases
  presses whose publisher has left the graph (a button node that died pressed).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rcl_interfaces.msg import SetParametersResult

from sitebot.nodes.convert import publisher_gid
from sitebot.security import KEY_PARAM, Authority, ReplayGuard
from sitebot.security.requests import (MODE_PARAMETER_REFUSED, RESET_REFUSED, EstopHolds,
                                       check_request)
from sitebot.types import Diagnostic, DiagnosticLevel
from sitebot_interfaces.srv import SafetyRequest

if TYPE_CHECKING:  # pragma: no cover
    from sitebot.nodes.safety_supervisor import SafetySupervisorNode

__all__ = ["SupervisorAuthority", "KEY_PARAM"]

ESTOP_TOPIC = "safety/estop"


class SupervisorAuthority:
    """Created by the supervisor node after its parameters and its core supervisor."""

    def __init__(self, node: "SafetySupervisorNode") -> None:
        self.node = node
        self.log = node.get_logger()
        self.authority = Authority.open(node.p["authority_key_file"], self.log.error)
        self.replay = ReplayGuard()
        self.holds = EstopHolds()
        self._ignored: set[str] = set()             # publishers whose stray release was audited
        node.add_on_set_parameters_callback(self._refuse_mode)    # runs before the schema's
        node.create_service(SafetyRequest, "safety/request", self.srv_request)

    def diagnostic(self, d: Diagnostic) -> Diagnostic:
        """*d* with the key's state (an ERROR without a usable key: no reset, no mode change)."""
        values = d.values + (("authority", self.authority.status),)
        if self.authority.key:
            return d._replace(values=values)
        return Diagnostic(d.name, DiagnosticLevel.ERROR, f"{d.message}; no authority key: resets "
                          "and mode changes are refused", values)

    def _refuse_mode(self, params: list) -> SetParametersResult:
        if any(p.name == "mode" for p in params):
            self.node.sup.audit.write("mode_refused", self.node.now(), via="set_parameters",
                                      reason="unauthenticated")
            return SetParametersResult(successful=False, reason=MODE_PARAMETER_REFUSED)
        return SetParametersResult(successful=True)

    def old_reset(self) -> str:
        """``safety/reset`` (std_srvs/Trigger, no authority) was called: audited, refused."""
        self.node.sup.audit.write("request_refused", self.node.now(), request="reset",
                                  via="safety/reset", user="unauthenticated",
                                  reason=RESET_REFUSED)
        self.log.warning(RESET_REFUSED, throttle_duration_sec=5.0)
        return RESET_REFUSED

    def on_estop(self, pressed: bool, info: Any, now: float) -> None:
        gid = publisher_gid(info)
        src = self.holds.source(gid, pressed)
        if src is not None:
            self.node.sup.set_estop_input(pressed, now, source=src)
            return
        name = self.holds.name(gid)
        self.log.warning(f"safety/estop release from {name} ignored: only the publisher that "
                         "pressed releases", throttle_duration_sec=5.0)
        if name not in self._ignored and len(self._ignored) < 64:     # audited once each
            self._ignored.add(name)
            self.node.sup.audit.write("estop_release_ignored", now, source=name,
                                      reason="not the publisher that pressed")

    def _live_gids(self) -> list[bytes]:
        topic = self.node.resolve_topic_name(ESTOP_TOPIC)
        return [bytes(i.endpoint_gid) for i in self.node.get_publishers_info_by_topic(topic)]

    def srv_request(self, req: SafetyRequest.Request, res: SafetyRequest.Response
                    ) -> SafetyRequest.Response:
        node, now = self.node, self.node.now()
        grant, why = check_request(self.authority, self.replay, req.request, req.mode,
                                   req.authority, time.time())
        who = grant.fields() if grant else {}
        if why:
            node.sup.audit.write("request_refused", now, request=req.request[:16],
                                 mode=req.mode[:32], reason=why, **who)
            self.log.warning(f"safety/request refused: {why}", throttle_duration_sec=1.0)
            res.success, res.message = False, why
            return res
        node.sup.audit.write("request", now, request=req.request, mode=req.mode, **who)
        if req.request == "reset":
            for src in self.holds.gone(self._live_gids()):
                node.sup.set_estop_input(False, now, source=src)
            ok, reason = node.sup.request_reset(now)
        else:
            ok, reason = node.sup.set_mode(req.mode, now)
        self.log.info(f"safety/request {req.request} {req.mode} by {grant.who()}: "
                      f"{'done' if ok else 'refused'}: {reason}")
        res.success, res.message = bool(ok), reason
        return res
