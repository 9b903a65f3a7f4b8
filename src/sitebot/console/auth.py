"""Users, roles and login for the web console (no rclpy; time passed in).

* Passwords are stored as salted PBKDF2-HMAC-SHA256 hashes
  (``pbkdf2_sha256$<iterations>$<salt, base64>$<hash, base64>``), never in plain text; a
  users file with anything else in ``password`` is refused, naming the file and the key.
* Verification compares in constant time (``hmac.compare_digest``) and costs the same for
  an unknown user (a dummy hash is checked), so timing does not tell which names exist.
* Roles: ``viewer`` (watch, emergency stop), ``operator`` (+ teleop, instructions, run
  plans, mode), ``supervisor`` (+ reset the emergency stop, authorise high-risk steps,
  answer the executor's confirmations).  :data:`PERMISSIONS` is the whole matrix.
* :class:`LoginLimiter`: failed logins per client address and per user name within a
  window; beyond the limit further attempts are refused until the window passes.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from sitebot.errors import SitebotError

__all__ = ["ROLES", "PERMISSIONS", "permitted", "AuthError", "User", "UserStore",
           "hash_password", "verify_password", "load_users", "parse_users", "LoginLimiter",
           "DEFAULT_ITERATIONS"]

ROLES = ("viewer", "operator", "supervisor")

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
    got = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations,
                              dklen=len(dk))
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
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise AuthError(f"users file {p}: cannot read: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise AuthError(f"users file {p}: not valid YAML: {e}") from None
    return parse_users(data, str(p))


class LoginLimiter:
    """Failed logins per key (client address, user name) within ``window_s``.

    ``allowed(keys, now) -> (ok, retry_after_s)``; ``failure(keys, now)`` records a failed
    attempt under every key; ``success(keys)`` forgets the user's failures (not the
    address's: a guesser that finds one password keeps its record)."""

    def __init__(self, max_failures: int = 5, window_s: float = 60.0) -> None:
        if max_failures < 1 or not (window_s > 0 and math.isfinite(window_s)):
            raise ValueError("max_failures >= 1 and a finite window_s > 0 needed")
        self.max_failures = int(max_failures)
        self.window_s = float(window_s)
        self._fails: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if not q:
            self._fails.pop(key, None)
            return deque()
        return q

    def allowed(self, keys: tuple[str, ...] | list[str], now: float) -> tuple[bool, float]:
        retry = 0.0
        for k in keys:
            q = self._prune(k, now)
            if len(q) >= self.max_failures:
                retry = max(retry, q[0] + self.window_s - now)
        return retry <= 0.0, max(retry, 0.0)

    MAX_KEYS = 10_000

    def failure(self, keys: tuple[str, ...] | list[str], now: float) -> None:
        if len(self._fails) > self.MAX_KEYS:          # bounded memory under a spray
            for k in list(self._fails):
                self._prune(k, now)
            while len(self._fails) > self.MAX_KEYS:
                self._fails.pop(next(iter(self._fails)))
        for k in keys:
            self._prune(k, now)
            self._fails.setdefault(k, deque()).append(now)
            while len(self._fails[k]) > self.max_failures * 4:   # bounded memory
                self._fails[k].popleft()

    def success(self, keys: tuple[str, ...] | list[str]) -> None:
        for k in keys:
            if k.startswith("user:"):
                self._fails.pop(k, None)

    def __len__(self) -> int:
        return len(self._fails)
