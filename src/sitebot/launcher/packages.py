"""Finding packages and executables without ROS: ``$(find-pkg-share)`` and
``$(find-pkg-prefix)`` through AMENT_PREFIX_PATH (``sitebot`` is built in), and the
command that runs ``exec`` of ``pkg`` (console_scripts entry points first).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

from sitebot import paths

__all__ = ["ExecutableResolver", "find_package_share", "find_package_prefix",
           "resolve_executable"]

#: ``resolver(package, executable)`` -> the command prefix that starts it, or None to fall
#: back to the built-in lookup (console_scripts entry points, then AMENT_PREFIX_PATH).
ExecutableResolver = Callable[[str, str], "Sequence[str] | None"]

_IDENT_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def _ament_prefixes(environ: Mapping[str, str]) -> list[Path]:
    return [Path(p) for p in environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]


def find_package_share(package: str, environ: Mapping[str, str] | None = None) -> Path:
    """``$(find-pkg-share package)``: :func:`sitebot.paths.share_dir` for ``sitebot``,
    otherwise ``<prefix>/share/<package>`` of the first AMENT_PREFIX_PATH prefix that has
    the package (ament index marker or share directory).

    :raises LookupError: when not found.
    """
    if package == "sitebot":
        return paths.share_dir()
    environ = os.environ if environ is None else environ
    for prefix in _ament_prefixes(environ):
        marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / package
        share = prefix / "share" / package
        if marker.is_file() or share.is_dir():
            return share
    raise LookupError(f"package '{package}' not found (searched AMENT_PREFIX_PATH="
                      f"{environ.get('AMENT_PREFIX_PATH', '')!r}; 'sitebot' is built in)")


def find_package_prefix(package: str, environ: Mapping[str, str]) -> Path:
    """``$(find-pkg-prefix package)``: the install prefix of *package*.

    :raises LookupError: when not found, and for ``sitebot`` run from a source checkout.
    """
    if package == "sitebot":
        share = paths.share_dir()
        if share.name == "sitebot" and share.parent.name == "share":
            return share.parent.parent
        raise LookupError("package 'sitebot' runs from a source checkout and has no "
                          f"install prefix (its data is in {share})")
    return find_package_share(package, environ).parent.parent


def _entry_point(package: str, executable: str) -> tuple[list[str] | None, list[str] | None]:
    """(command, None) if found; (None, [console script names]) if the distribution exists
    without it; (None, None) if there is no such distribution."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None, None
    scripts = [ep for ep in dist.entry_points if ep.group == "console_scripts"]
    for ep in scripts:
        if ep.name == executable:
            module, attr = ep.module, ep.attr
            if not _IDENT_PATH_RE.match(module) or not _IDENT_PATH_RE.match(attr or ""):
                return None, [s.name for s in scripts]
            head, _, rest = attr.partition(".")
            call = f"_entry.{rest}" if rest else "_entry"
            code = (f"import sys; sys.argv[0] = {json.dumps(executable)}; "
                    f"from {module} import {head} as _entry; sys.exit({call}())")
            return [sys.executable, "-c", code], None
    return None, sorted(s.name for s in scripts)


def resolve_executable(package: str, executable: str,
                       environ: Mapping[str, str] | None = None,
                       resolver: ExecutableResolver | None = None) -> list[str]:
    """The command prefix that runs ``executable`` of ``package``.

    Order: ``resolver`` (if given and it returns a command); the ``console_scripts`` entry
    point named ``executable`` of the installed Python distribution named ``package`` (run
    with this interpreter); ``<prefix>/lib/<package>/<executable>`` in AMENT_PREFIX_PATH.

    :raises LookupError: naming the package and executable, and what was searched.
    """
    environ = os.environ if environ is None else environ
    if resolver is not None:
        got = resolver(package, executable)
        if got is not None:
            return list(got)
    cmd, scripts = _entry_point(package, executable)
    if cmd is not None:
        return cmd
    prefixes = _ament_prefixes(environ)
    in_ament = False
    for prefix in prefixes:
        candidate = prefix / "lib" / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
        if (prefix / "lib" / package).is_dir() or (prefix / "share" / package).is_dir():
            in_ament = True
    if scripts is None and not in_ament:
        raise LookupError(
            f"package '{package}' not found: no installed Python distribution named "
            f"'{package}' and no '{package}' in AMENT_PREFIX_PATH="
            f"{environ.get('AMENT_PREFIX_PATH', '')!r} (executable '{executable}')"
            + ("; install it with 'pip install -e .'" if package == "sitebot" else ""))
    detail = []
    if scripts is not None:
        detail.append(f"console_scripts of '{package}': "
                      + (", ".join(scripts) if scripts else "none"))
    if in_ament:
        detail.append(f"no executable lib/{package}/{executable} in AMENT_PREFIX_PATH")
    raise LookupError(f"executable '{executable}' not found in package '{package}' ("
                      + "; ".join(detail) + ")")
