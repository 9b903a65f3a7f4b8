"""Users, roles and login for the web console (no rclpy; time passed in).

* Passwords are stored as salted PBKDF2-HMAC-SHA256 hashes
  (``pbkdf2_sha256$<iterations>$<salt, base64>$<hash, base64>``), never in plain text; a
  users file with anything else in ``password`` is refused, naming the file and the key.
* Verification compares in constant time (``hmac.compare_digest``) and costs the same for
  an unknown user (a dummy hash is checked), so timing does not tell which names exist.
* Roles: ``viewer`` (watch, emergency stop), ``operator`` (+ teleop, instructions, run
  plans, mode, survey recording), ``supervisor`` (+ reset the emergency stop, authorise
  high-risk steps, answer the executor's confirmations, edit the site registry),
  ``site_admin`` (watch, emergency stop, survey recording, edit the site registry; no
  driving, instructions or resets).  :data:`PERMISSIONS` is the whole matrix.
* :class:`LoginLimiter`: a progressive delay per client address and per user name, counted
  before the password is checked (parallel attempts see each other), never a lockout: a
  correct password from an address with no failures is not held back by a guesser's
  failures from other addresses (see the class).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sitebot.errors import SitebotError

__all__ = ["ROLES", "PERMISSIONS", "permitted", "AuthError", "User", "UserStore",
           "hash_password", "verify_password", "load_users", "parse_users", "LoginLimiter",
           "LoginTicket", "DEFAULT_ITERATIONS"]

ROLES = ("viewer", "operator", "supervisor", "site_admin")

#: action -> roles allowed.  Every authenticated role may watch and stop the robot.
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "watch": frozenset(ROLES),
    "estop": frozenset(ROLES),
    "teleop": frozenset({"operator", "supervisor"}),
    "mode": frozenset({"operator", "supervisor"}),
    "instruct": frozenset({"operator", "supervisor"}),
    "run": frozenset({"operator", "supervisor"}),
    "cancel": frozenset({"operator", "supervisor"}),
    "reset": frozenset({"supervisor"}),
    "high_risk": frozenset({"supervisor"}),
    "confirm": frozenset({"supervisor"}),
    "edit_site": frozenset({"supervisor", "site_admin"}),
    "survey": frozenset({"operator", "supervisor", "site_admin"}),
}

DEFAULT_ITERATIONS = 600_000          # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
MIN_ITERATIONS = 100_000
_HASH_RE = re.compile(r"^pbkdf2_sha256\$(\d+)\$([A-Za-z0-9+/=_-]+)\$([A-Za-z0-9+/=_-]+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def permitted(role: str | None, action: str) -> bool:
    """Whether ``role`` may do ``action`` (unknown roles and actions: no)."""
    return role is not None and role in PERMISSIONS.get(action, frozenset())


class AuthError(SitebotError):
    """A users file that cannot be used (names the file and the key)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = DEFAULT_ITERATIONS) -> str:
    """The stored form of ``password``: PBKDF2-HMAC-SHA256 with a random 16-byte salt."""
    if not isinstance(password, str) or not password:
        raise ValueError("the password must be a non-empty string")
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    salt = secrets.token_bytes(16) if salt is None else salt
    dk = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${_b64(salt)}${_b64(dk)}"


def _parse_hash(stored: str) -> tuple[int, bytes, bytes]:
    m = _HASH_RE.match(stored or "")
    if not m:
        raise ValueError("not a pbkdf2_sha256$<iterations>$<salt>$<hash> string")
    try:
        salt = base64.b64decode(m.group(2), validate=True)
        dk = base64.b64decode(m.group(3), validate=True)
    except (ValueError, base64.binascii.Error) as e:
        raise ValueError(f"salt or hash is not base64: {e}") from None
    if len(salt) < 8 or len(dk) < 16:
        raise ValueError("salt shorter than 8 bytes or hash shorter than 16 bytes")
    return int(m.group(1)), salt, dk


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    try:
        iterations, salt, dk = _parse_hash(stored)
    except ValueError:
        return False
    if not isinstance(password, str):
        return False
    try:
        pw = password.encode("utf-8")
    except UnicodeEncodeError:          # a lone surrogate: no stored password has one
        hashlib.pbkdf2_hmac("sha256", b"", salt, iterations, dklen=len(dk))    # same cost
        return False
    got = hashlib.pbkdf2_hmac("sha256", pw, salt, iterations, dklen=len(dk))
    return hmac.compare_digest(got, dk)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str = ""


# checked against when the user name is unknown, so the answer takes as long
_DUMMY_HASH = hash_password("not a real password", salt=b"\0" * 16,
                            iterations=DEFAULT_ITERATIONS)


class UserStore:
    """The users of one console (from :func:`load_users`)."""

    def __init__(self, users: list[User] | tuple[User, ...] = ()) -> None:
        self.users = {u.name: u for u in users}

    def __len__(self) -> int:
        return len(self.users)

    def authenticate(self, name: Any, password: Any) -> User | None:
        """The user when name and password match, else None (same cost either way)."""
        if not isinstance(name, str) or not isinstance(password, str):
            verify_password("", _DUMMY_HASH)
            return None
        user = self.users.get(name)
        ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
        return user if (ok and user is not None) else None


def parse_users(data: Any, where: str = "<users>") -> UserStore:
    """Check a parsed users document: ``{users: [{name, role, password}]}``."""
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        raise AuthError(f"{where}: expected a mapping with a list 'users'")
    out: list[User] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["users"]):
        key = f"{where}: users[{i}]"
        if not isinstance(entry, dict):
            raise AuthError(f"{key}: expected a mapping with name, role, password")
        unknown = sorted(set(entry) - {"name", "role", "password", "comment"})
        if unknown:
            raise AuthError(f"{key}: unknown keys {unknown} (accepted: name, role, password, "
                            "comment)")
        name, role, pw = entry.get("name"), entry.get("role"), entry.get("password")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise AuthError(f"{key}.name: {name!r} is not a name of 1-64 letters, digits, "
                            "'_', '.', '@', '-'")
        if name in seen:
            raise AuthError(f"{key}.name: duplicate user {name!r}")
        if role not in ROLES:
            raise AuthError(f"{key}.role: {role!r} is not one of {list(ROLES)}")
        try:
            iterations, _, _ = _parse_hash(pw if isinstance(pw, str) else "")
        except ValueError as e:
            raise AuthError(f"{key}.password: {e}; plain-text passwords are refused, store "
                            "the hash printed by `sitebot console --hash-password`") from None
        if iterations < MIN_ITERATIONS:
            raise AuthError(f"{key}.password: {iterations} PBKDF2 iterations, at least "
                            f"{MIN_ITERATIONS} needed")
        seen.add(name)
        out.append(User(name, role, pw))
    return UserStore(out)


def load_users(path: str | Path) -> UserStore:
    """Read and check a users YAML file (errors name the file and the key)."""
    from sitebot.config.yamlio import load_yaml  # the one bounded YAML path
    from sitebot.errors import ConfigError

    p = Path(path)
    try:
        data = load_yaml(p)       # size, UTF-8 (UTF-16 named), depth and alias bounds
    except ConfigError as e:
        raise AuthError(f"users file {e}") from None
    return parse_users(data, str(p))


@dataclass(frozen=True)
class LoginTicket:
    """One admitted login attempt: the keys it was counted under and when."""
    keys: tuple[str, ...]
    t: float


class LoginLimiter:
    """Progressive delay of login attempts per client address and per user name.

    Each key has a count of attempts and the time of the last one; the record is forgotten
    ``forget_s`` after its last attempt. The first ``free`` attempts under a key pass at once;
    the n-th (n >= ``free``) makes the key wait ``delay(n) = base_s * 2**(n - free)``, capped
    at ``max_delay_s``, before its next attempt is evaluated. Attempts that arrive during a
    wait are refused with the time left and not counted (so a refusal never lengthens a
    wait).

    :meth:`begin` checks and counts in one step under a lock, before the password is
    checked: an admitted attempt counts as a failure until :meth:`succeeded` takes it back,
    so concurrent attempts see each other. Keys: the address (``src:``) and the user name
    (``user:``), both counted and waited for by every attempt; and, for an address without
    a record (a "fresh" address), ``fresh:`` + user name, counting only such attempts: a fresh
    address is admitted when either the user name's wait or its fresh wait is over, so a
    guesser's failures from its addresses do not hold back a correct password from a clean
    address (only attempts from other fresh addresses compete with it).
    """

    MAX_KEYS = 10_000

    def __init__(self, free: int = 5, forget_s: float = 60.0, base_s: float = 1.0,
                 max_delay_s: float = 30.0) -> None:
        if free < 1 or not all(x > 0 and math.isfinite(x) for x in (forget_s, base_s,
                                                                    max_delay_s)):
            raise ValueError("LoginLimiter: free >= 1 and finite forget_s, base_s, max_delay_s "
                             "> 0 needed")
        self.free, self.forget_s = int(free), float(forget_s)
        self.base_s, self.max_delay_s = float(base_s), float(max_delay_s)
        self._recs: dict[str, list] = {}           # key -> [count, time of the last attempt]
        self._lock = threading.Lock()

    def delay(self, n: int) -> float:
        """The wait after the n-th counted attempt under one key [s]."""
        if n < self.free:
            return 0.0
        return min(self.max_delay_s, self.base_s * 2.0 ** min(n - self.free, 60))

    def _rec(self, key: str, now: float) -> list | None:
        rec = self._recs.get(key)
        if rec is not None and now - rec[1] >= self.forget_s:
            del self._recs[key]
            return None
        return rec

    def _wait(self, key: str, now: float) -> float:
        rec = self._rec(key, now)
        return 0.0 if rec is None else max(0.0, rec[1] + self.delay(rec[0]) - now)

    def begin(self, source: str, user: str, now: float) -> tuple[LoginTicket | None, float]:
        """Admit and count an attempt (``(ticket, 0.0)``) or refuse it (``(None, wait_s)``)."""
        with self._lock:
            src, acct = f"src:{source}", f"user:{user}"
            fresh = self._rec(src, now) is None
            keys = (src, acct, f"fresh:{user}") if fresh else (src, acct)
            wait = self._wait(acct, now)
            if fresh:
                wait = min(wait, self._wait(keys[2], now))
            wait = max(wait, self._wait(src, now))
            if wait > 0.0:
                return None, wait
            if len(self._recs) >= self.MAX_KEYS:          # bounded memory under a spray
                for k in list(self._recs):
                    self._rec(k, now)
                while len(self._recs) >= self.MAX_KEYS * 9 // 10:       # oldest first
                    self._recs.pop(next(iter(self._recs)))
            for k in keys:
                rec = self._recs.setdefault(k, [0, now])
                rec[0] += 1
                rec[1] = max(rec[1], now)
            return LoginTicket(keys, now), 0.0

    def succeeded(self, ticket: LoginTicket) -> None:
        """The attempt's password was right: it no longer counts (earlier failures do)."""
        with self._lock:
            for k in ticket.keys:
                rec = self._recs.get(k)
                if rec is not None:
                    rec[0] -= 1
                    if rec[0] <= 0:
                        del self._recs[k]

    def __len__(self) -> int:
        return len(self._recs)
