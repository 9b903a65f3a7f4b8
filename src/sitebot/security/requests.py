"""The safety supervisor's authenticated side (no rclpy): which requests need which role,
and who may release a held e-stop input.

* A reset of the latched emergency stop and a change of the operating mode are requests on
  the ``safety/request`` service carrying an assertion (scope ``reset``, subject
  ``"reset"``; scope ``mode``, subject the mode), each usable once; the ``mode`` parameter
  and the unauthenticated ``safety/reset`` are refused with a reason naming that path.
* Stopping stays open to all (``safety/trigger_estop``, a press on ``safety/estop``).
* The e-stop input is tracked per publisher (its DDS GID): a press from any publisher
  engages, a release counts only from the publisher that pressed (:class:`EstopHolds`).
"""
from __future__ import annotations

from typing import Iterable

from sitebot.security.authority import Authority, Grant, ReplayGuard

__all__ = ["REQUEST_ROLES", "RESET_SUBJECT", "MODE_PARAMETER_REFUSED", "RESET_REFUSED",
           "check_request", "EstopHolds"]

#: who may ask for what (the console's permissions: a reset is a supervisor's)
REQUEST_ROLES = {"reset": ("supervisor",), "mode": ("operator", "supervisor")}
RESET_SUBJECT = "reset"
MODE_PARAMETER_REFUSED = (
    "parameter 'mode' does not change at run time through set_parameters: the mode changes "
    "through the authenticated service safety/request (request 'mode' with a signed "
    "assertion: the web console, or `sitebot safety mode MODE`)")
RESET_REFUSED = (
    "safety/reset carries no authority and is refused: reset through the authenticated "
    "service safety/request (request 'reset' with a signed assertion: the web console, or "
    "`sitebot safety reset`)")


def check_request(authority: Authority, replay: ReplayGuard, request: str, mode: str,
                  token: str, now_s: float) -> tuple[Grant | None, str]:
    """(grant, "") when *request* ('reset' or 'mode') may go ahead, else (grant or None, why
    not).  *now_s*: wall clock."""
    if request not in REQUEST_ROLES:
        return None, f"unknown request {request!r}; requests: {', '.join(REQUEST_ROLES)}"
    subject = RESET_SUBJECT if request == "reset" else str(mode)
    g = authority.grant(token, now_s, request, subject, replay=replay)
    if not g.authenticated:
        return g, f"{request} refused: {g.why}"
    if g.role not in REQUEST_ROLES[request]:
        return g, (f"{request} refused: role {g.role!r} of user {g.user!r} may not "
                   f"(roles allowed: {', '.join(REQUEST_ROLES[request])})")
    return g, ""


class EstopHolds:
    """The held e-stop input per publisher.  :meth:`source` names the supervisor's input for
    one message (``estop_topic:<gid hex>``), or None when the message changes nothing: a
    release from a publisher that holds no press.  At most *max_publishers* presses are told
    apart; more share one input that only a reset after they left clears."""

    PREFIX = "estop_topic"

    def __init__(self, max_publishers: int = 64) -> None:
        self.max_publishers = int(max_publishers)
        self.pressed: dict[str, bool] = {}          # source -> pressed, in first-press order

    def name(self, gid: bytes | None) -> str:
        return f"{self.PREFIX}:{bytes(gid).hex()}" if gid else f"{self.PREFIX}:unknown"

    def source(self, gid: bytes | None, pressed: bool) -> str | None:
        src = self.name(gid)
        if src not in self.pressed:
            if not pressed:
                return None                         # nothing of this publisher to release
            if len(self.pressed) >= self.max_publishers:
                src = f"{self.PREFIX}:overflow"
        self.pressed[src] = bool(pressed)
        return src

    def gone(self, live_gids: Iterable[bytes]) -> list[str]:
        """Sources still pressed whose publisher has left (not in *live_gids*): a button
        node that died pressed.  The caller releases them for an authenticated reset."""
        live = {self.name(g) for g in live_gids}
        out = [s for s, p in self.pressed.items() if p and s not in live]
        for s in out:
            self.pressed[s] = False
        return out
