"""The per-site authority key: 32 random bytes in a file only its owner can read or write.

The console and the planner sign with it; the planner, the executor and the safety
supervisor verify with it (:mod:`sitebot.security.authority`).  Where it lives: the node
parameter ``authority_key_file``; when that is empty, ``$SITEBOT_AUTHORITY_KEY``; when that
is unset, ``~/.config/sitebot/authority.key``.  ``sitebot key init [PATH]`` creates one; the
project's own entry points (``sitebot demo``, ``regress``, ``launch``, the tests) create the
default one when it is missing, so that a fresh clone runs without a manual step.
"""
from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Mapping

from sitebot.errors import SitebotError

__all__ = ["KEY_BYTES", "KEY_ENV", "KeyFileError", "default_key_path", "resolve_key_path",
           "load_key", "ensure_key"]

#: the key's length [bytes] (HMAC-SHA256 takes any; 32 is its block-safe full strength)
KEY_BYTES = 32
#: the environment variable naming the key file when the parameter is empty
KEY_ENV = "SITEBOT_AUTHORITY_KEY"


class KeyFileError(SitebotError):
    """The key file is missing, unreadable, of the wrong size, or open to others."""


def default_key_path(env: Mapping[str, str] | None = None) -> Path:
    """``$SITEBOT_AUTHORITY_KEY``, else ``~/.config/sitebot/authority.key``."""
    env = os.environ if env is None else env
    value = env.get(KEY_ENV, "")
    return Path(value).expanduser() if value else Path.home() / ".config" / "sitebot" / \
        "authority.key"


def resolve_key_path(value: str | Path | None, env: Mapping[str, str] | None = None) -> Path:
    """The key file a parameter names ('' or None: :func:`default_key_path`)."""
    return Path(value).expanduser() if value else default_key_path(env)


def _check_owner_mode(st: os.stat_result, path: Path) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"authority key {path}: not a regular file")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise KeyFileError(f"authority key {path}: owned by uid {st.st_uid}, not by this user "
                           f"(uid {os.geteuid()}); the key must belong to the user running the "
                           f"node: chown {os.geteuid()} {path}")
    if st.st_mode & 0o077:
        raise KeyFileError(f"authority key {path}: mode {stat.S_IMODE(st.st_mode):04o} lets "
                           f"group or others read or write it; run: chmod 600 {path}")


def load_key(path: str | Path) -> bytes:
    """The key in *path*: exactly :data:`KEY_BYTES` bytes, a regular file owned by this user
    with no group/other permission bits.

    :raises KeyFileError: naming the path, what is wrong and the command that fixes it.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyFileError(f"authority key {path}: no such file; create one with: sitebot key "
                           f"init {path}") from None
    except OSError as e:
        raise KeyFileError(f"authority key {path}: cannot open: {e.strerror or e} (a symbolic "
                           "link is not followed)") from None
    try:
        _check_owner_mode(os.fstat(fd), path)
        data = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_BYTES:
        size = f"{KEY_BYTES}+" if len(data) > KEY_BYTES else str(len(data))
        raise KeyFileError(f"authority key {path}: {size} bytes, expected {KEY_BYTES} random "
                           f"bytes; remove it and create a new one with: sitebot key init {path}")
    return data


def ensure_key(path: str | Path | None = None) -> Path:
    """Create the key file at *path* (None: :func:`default_key_path`) unless it exists, and
    check it either way; returns its path.

    Creation is atomic: the bytes go to a new private file (``O_CREAT | O_EXCL``, mode 0600)
    in the same folder, which is then linked to *path*; two processes racing both end with
    the same complete key, and no reader ever sees a partial one.  The folder is created
    with mode 0700 when missing.

    :raises KeyFileError: an existing file that :func:`load_key` refuses, or no permission.
    """
    path = Path(path) if path is not None else default_key_path()
    if path.exists() or path.is_symlink():
        load_key(path)
        return path
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass                                    # another process made it first
        finally:
            tmp.unlink()
    except KeyFileError:
        raise
    except OSError as e:
        raise KeyFileError(f"authority key {path}: cannot create: {e.strerror or e}") from None
    load_key(path)
    return path
