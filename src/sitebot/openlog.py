"""Evidence that the autonomy stack never reads a simulation world (issue: the simulator as
a black-box robot).  With ``SITEBOT_OPEN_LOG=<folder>`` in its environment, every process
that imports sitebot records each file it opens that is a world or lies in a ``worlds``
folder, one line per open, in ``<folder>/<program>-<pid>.log`` (its first line, a comment,
shows that the process watched) (program: the node's
executable name, as launchers set ``sys.argv[0]``).  A Python audit hook (PEP 578) sees
every ``open`` of the interpreter and its C extensions' ``io`` calls; it costs nothing when
the variable is unset (no hook is installed)."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

__all__ = ["install", "is_world_path", "world_readers"]

_lock = threading.Lock()


def is_world_path(path: str) -> bool:
    """A simulation world file, or any file in a ``worlds`` folder (their site registries)."""
    return path.endswith(".world.yaml") or os.path.basename(os.path.dirname(path)) == "worlds"


def install(folder: str) -> None:
    """Record the world files this process opens in ``folder`` (see the module doc)."""
    prog = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "python") or "python"
    log = os.path.join(folder, f"{prog}-{os.getpid()}.log")
    busy = threading.local()

    def hook(event: str, args: tuple) -> None:
        if event != "open" or getattr(busy, "on", False) or not args:
            return
        path = args[0]
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        if not isinstance(path, str) or not is_world_path(path):
            return
        busy.on = True
        try:
            with _lock, open(log, "a") as f:
                f.write(os.path.abspath(path) + "\n")
        finally:
            busy.on = False

    os.makedirs(folder, exist_ok=True)
    with open(log, "a") as f:            # the log exists for every process that watched
        f.write(f"# {prog} pid {os.getpid()}\n")
    sys.addaudithook(hook)


def world_readers(folder: str | os.PathLike) -> dict[str, list[str]]:
    """{program: world files it opened} from a ``SITEBOT_OPEN_LOG`` folder (programs that
    opened none are left out)."""
    out: dict[str, set[str]] = {}
    d = Path(folder)
    for f in sorted(d.glob("*.log")) if d.is_dir() else ():
        files = [ln for ln in f.read_text().splitlines() if ln and not ln.startswith("#")]
        if files:
            out.setdefault(f.stem.rsplit("-", 1)[0], set()).update(files)
    return {k: sorted(v) for k, v in sorted(out.items())}
