"""Signed authority assertions: who asked, with which role, for what, until when.

A role or a confirmation that arrives in a message is a *claim*; anyone on the robot's DDS
domain can write one.  An assertion is a claim the console (after a login) or the planner
signed with the site's key (:mod:`sitebot.security.keys`), so that the planner, the executor
and the supervisor can check it came from them, is bound to one request, and is fresh.

Token: ``v1.<payload>.<mac>`` where ``<payload>`` is the base64url (no padding) of the
canonical JSON (sorted keys, no spaces, ASCII) of::

    {"scope": "command" | "plan" | "confirm" | "mode" | "reset",
     "subject": the request id (command), plan id (plan, confirm), mode (mode), "reset",
     "digest": sha256 hex of what is bound besides the subject ("" = nothing):
               a command's text and in_reply_to, a plan's steps,
     "user": str, "role": str, "issued_s": float, "expires_s": float (wall clock, UNIX s),
     "nonce": 128 random bits, hex}

and ``<mac>`` the base64url of HMAC-SHA256(key, ``"v1." + <payload>``), compared in constant
time.  No rclpy; times are arguments (wall clock: ``time.time()`` in the nodes, since
assertions cross machines and simulated time).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
import string
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from sitebot.errors import SitebotError
from sitebot.security.keys import KeyFileError, load_key, resolve_key_path

__all__ = ["VERSION", "SCOPES", "ROLES", "LOWEST_ROLE", "LIFETIME_S", "MAX_TOKEN_CHARS",
           "AuthorityError", "Assertion", "Grant", "Authority", "ReplayGuard", "sign",
           "verify", "plan_digest", "command_digest", "role_rank"]

VERSION = "v1"
SCOPES = ("command", "plan", "confirm", "mode", "reset")
#: roles, lowest first; a request without a valid assertion gets :data:`LOWEST_ROLE`
ROLES = ("viewer", "operator", "supervisor")
LOWEST_ROLE = "operator"
#: default lifetime per scope [s]: short for one-shot requests; a plan's assertion lives as
#: long as a mission may run (the planner's ``plan_authority_s`` parameter)
LIFETIME_S = {"command": 120.0, "confirm": 120.0, "mode": 120.0, "reset": 120.0,
              "plan": 7200.0}
#: a token longer than this is refused unread (bounded work for any input)
MAX_TOKEN_CHARS = 4096
#: an assertion issued up to this far in the verifier's future is accepted (clock skew)
CLOCK_SKEW_S = 5.0
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "-_")
_FIELDS = {"scope": str, "subject": str, "digest": str, "user": str, "role": str,
           "issued_s": float, "expires_s": float, "nonce": str}


class AuthorityError(SitebotError):
    """An assertion that does not hold; :attr:`code` is one of ``missing``, ``malformed``,
    ``bad_signature``, ``expired``, ``not_yet_valid``, ``wrong_scope``, ``wrong_subject``,
    ``wrong_digest``, ``replayed``, ``no_key``; ``str()`` says why in words."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Assertion:
    """A verified assertion's payload."""
    scope: str
    subject: str
    user: str
    role: str
    issued_s: float
    expires_s: float
    nonce: str
    digest: str = ""


def role_rank(role: str) -> int:
    """The rank of *role* in :data:`ROLES` (-1: unknown)."""
    return ROLES.index(role) if role in ROLES else -1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not set(text) <= _B64_CHARS or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:                 # unused low bits set: one encoding per value
        raise ValueError("not canonical base64url")
    return data


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()


def plan_digest(steps: Iterable[tuple[str, Mapping[str, str]]]) -> str:
    """The digest binding a plan's steps: sha256 of the canonical JSON of
    ``[[skill, [[name, value], ...sorted by name]], ...]``."""
    return hashlib.sha256(_canonical(
        [[str(s), sorted([str(k), str(v)] for k, v in dict(a).items())] for s, a in steps]
    )).hexdigest()


def command_digest(text: str, in_reply_to: str = "") -> str:
    """The digest binding a command's words and the question it answers."""
    return hashlib.sha256(_canonical([str(text), str(in_reply_to)])).hexdigest()


def sign(key: bytes, scope: str, subject: str, user: str, role: str, now_s: float,
         lifetime_s: float | None = None, digest: str = "", nonce: str | None = None) -> str:
    """A token asserting that *user* with *role* asks for *scope* on *subject* (and
    *digest*), valid from *now_s* [wall s] for *lifetime_s* (None: :data:`LIFETIME_S`)."""
    if scope not in SCOPES:
        raise AuthorityError("wrong_scope", f"unknown scope {scope!r}; scopes: "
                             + ", ".join(SCOPES))
    if not key:
        raise AuthorityError("no_key", "no authority key to sign with")
    life = LIFETIME_S[scope] if lifetime_s is None else float(lifetime_s)
    if not (math.isfinite(now_s) and math.isfinite(life) and life > 0.0):
        raise AuthorityError("malformed", f"issue time {now_s!r} and lifetime {life!r} must "
                             "be finite, the lifetime positive")
    payload = {"scope": scope, "subject": str(subject), "digest": str(digest),
               "user": str(user), "role": str(role), "issued_s": round(float(now_s), 3),
               "expires_s": round(float(now_s) + life, 3),
               "nonce": nonce if nonce is not None else secrets.token_hex(16)}
    body = f"{VERSION}.{_b64(_canonical(payload))}"
    return f"{body}.{_b64(_mac(key, body))}"


def _payload(token: str) -> tuple[str, str, str]:
    if not isinstance(token, str) or not token:
        raise AuthorityError("missing", "no authority assertion")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthorityError("malformed", f"authority assertion of {len(token)} characters "
                             f"(at most {MAX_TOKEN_CHARS})")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise AuthorityError("malformed", f"authority assertion is not '{VERSION}.<payload>."
                             "<signature>'")
    return parts[0], parts[1], parts[2]


def verify(key: bytes | None, token: str, now_s: float, scope: str, subject: str,
           digest: str | None = None) -> Assertion:
    """The assertion in *token* if it is signed with *key*, for *scope* and *subject* (and
    *digest*, unless None), and valid at *now_s* [wall s].

    The signature is checked (in constant time) before the payload is parsed.

    :raises AuthorityError: with the reason (its ``code`` and words).
    """
    version, body, mac = _payload(token)
    if not key:
        raise AuthorityError("no_key", "no authority key to verify with (every assertion "
                             "counts as invalid)")
    try:
        got = _unb64(mac)
    except (ValueError, binascii.Error):
        raise AuthorityError("malformed", "authority assertion: signature is not base64url") \
            from None
    if not hmac.compare_digest(got, _mac(key, f"{version}.{body}")):
        raise AuthorityError("bad_signature", "authority assertion: bad signature (not signed "
                             "with this site's key, or altered)")
    try:
        data = json.loads(_unb64(body))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AuthorityError("malformed", "authority assertion: payload is not base64url "
                             "JSON") from None
    if not isinstance(data, dict) or set(data) != set(_FIELDS) or not all(
            isinstance(data[k], t) or (t is float and isinstance(data[k], int)
                                       and not isinstance(data[k], bool))
            for k, t in _FIELDS.items()):
        raise AuthorityError("malformed", "authority assertion: payload fields are not "
                             + ", ".join(_FIELDS))
    a = Assertion(data["scope"], data["subject"], data["user"], data["role"],
                  float(data["issued_s"]), float(data["expires_s"]), data["nonce"],
                  data["digest"])
    if a.scope != scope:
        raise AuthorityError("wrong_scope", f"authority assertion is for {a.scope!r}, not "
                             f"{scope!r}")
    if a.subject != subject:
        raise AuthorityError("wrong_subject", f"authority assertion is for {a.subject!r}, "
                             f"not {subject!r}")
    if digest is not None and not hmac.compare_digest(a.digest, digest):
        raise AuthorityError("wrong_digest", "authority assertion was signed for other "
                             "content (text or steps) than this")
    if not math.isfinite(now_s) or a.issued_s > now_s + CLOCK_SKEW_S:
        raise AuthorityError("not_yet_valid", f"authority assertion issued "
                             f"{a.issued_s - now_s:.1f} s in the future (clock skew?)")
    if now_s > a.expires_s:
        raise AuthorityError("expired", f"authority assertion expired {now_s - a.expires_s:.1f}"
                             " s ago")
    return a


class ReplayGuard:
    """Nonces of assertions already used, kept until they expire (bounded: the oldest go
    first), so that a one-shot assertion (a reset, a confirmation) works once."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = int(max_entries)
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_use(self, a: Assertion, now_s: float) -> bool:
        for nonce, expires in list(self._seen.items()):
            if expires < now_s:
                del self._seen[nonce]
        if a.nonce in self._seen:
            return False
        self._seen[a.nonce] = a.expires_s
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return True


@dataclass(frozen=True)
class Grant:
    """What a request may do: the role from its valid assertion, or :data:`LOWEST_ROLE`
    with the reason the claim was not believed."""
    role: str
    user: str
    authenticated: bool
    claimed_role: str = ""
    why: str = ""
    assertion: Assertion | None = None

    def who(self) -> str:
        """For logs and audits: ``user 'ana' (supervisor)`` or ``unauthenticated (claimed
        role 'supervisor'): no authority assertion``."""
        if self.authenticated:
            return f"user {self.user!r} ({self.role})"
        return f"unauthenticated (claimed role {self.claimed_role or 'none'!r}): {self.why}"

    def fields(self) -> dict[str, Any]:
        """For an audit record."""
        return {"user": self.user, "role": self.role, "authenticated": self.authenticated,
                "claimed_role": self.claimed_role, "why": self.why}


class Authority:
    """A node's key holder: signs and verifies with the site key, or, when the key file is
    missing or unsafe, verifies nothing (every assertion invalid: fail safe) and says why
    once through *warn*."""

    def __init__(self, key: bytes | None, path: Path | None = None, problem: str = "") -> None:
        self.key, self.path, self.problem = key, path, problem

    @classmethod
    def open(cls, key_file: str | Path | None, warn: Callable[[str], None] | None = None
             ) -> "Authority":
        """The key of the parameter *key_file* ('' = the default path; see
        :func:`sitebot.security.keys.resolve_key_path`)."""
        path = resolve_key_path(key_file)
        try:
            return cls(load_key(path), path)
        except KeyFileError as e:
            problem = (f"{e}; until it is fixed every authority assertion counts as invalid "
                       "(requests get the lowest role, resets and mode changes are refused)")
            if warn is not None:
                warn(problem)
            return cls(None, path, problem)

    @property
    def status(self) -> str:
        """For diagnostics: ``key <path>`` or the problem."""
        return f"key {self.path}" if self.key else self.problem

    def sign(self, scope: str, subject: str, user: str, role: str, now_s: float,
             lifetime_s: float | None = None, digest: str = "") -> str:
        """A token (see :func:`sign`); :class:`AuthorityError` ``no_key`` without a key."""
        if not self.key:
            raise AuthorityError("no_key", self.problem or "no authority key")
        return sign(self.key, scope, subject, user, role, now_s, lifetime_s, digest)

    def verify(self, token: str, now_s: float, scope: str, subject: str,
               digest: str | None = None) -> Assertion:
        if not self.key and token:
            _payload(token)
            raise AuthorityError("no_key", f"cannot be checked: {self.problem}")
        return verify(self.key, token, now_s, scope, subject, digest)

    def grant(self, token: str, now_s: float, scope: str, subject: str,
              digest: str | None = None, claimed_role: str = "",
              replay: ReplayGuard | None = None) -> Grant:
        """The role a request gets: its assertion's, or :data:`LOWEST_ROLE` (never the
        claimed one) with the reason; with *replay*, an assertion seen before is refused."""
        claimed = str(claimed_role or "").strip().lower()
        try:
            a = self.verify(token, now_s, scope, subject, digest)
            if replay is not None and not replay.first_use(a, now_s):
                raise AuthorityError("replayed", "authority assertion already used (replay)")
        except AuthorityError as e:
            return Grant(LOWEST_ROLE, "unauthenticated", False, claimed, str(e))
        return Grant(a.role, a.user, True, claimed, "", a)
