"""ROS domain ids for processes that must not hear each other on one machine: test
sessions, demos, benchmarks and regression workers started side by side.

A domain id is held with an exclusive ``flock`` on a file per id (one lock folder for every
user of this module), so two holders never share an id, and the kernel releases the lock
when the holder exits, even when it is killed. Ranges keep the kinds apart: the regression
runner's workers take 200-232, test sessions 100-199, demos and benchmarks 10-99.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from sitebot.errors import SitebotError

__all__ = ["DomainPool", "REGRESS_DOMAINS", "TEST_DOMAINS", "TOOL_DOMAINS", "hold_domain",
           "local_dds_env", "LOCAL_DDS_KEYS"]

#: the highest usable ROS 2 domain id is 232 (Fast DDS port arithmetic)
REGRESS_DOMAINS = range(200, 233)
TEST_DOMAINS = range(100, 200)
TOOL_DOMAINS = range(10, 100)
LOCK_DIR = Path(tempfile.gettempdir()) / "sitebot_ros_domains"


class DomainPool:
    """Domain ids from ``ids``, each held with an exclusive lock file while in use."""

    def __init__(self, ids: range, lock_dir: Path = LOCK_DIR) -> None:
        self.ids, self.dir = ids, lock_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def acquire(self, timeout: float = 120.0) -> tuple[int, IO[str]]:
        """A free id and the open lock file that holds it (keep it open while in use).

        :raises SitebotError: when none is free within ``timeout`` seconds.
        """
        end = time.monotonic() + timeout
        # start at a pid-dependent id: holders started together try different ids first
        start = os.getpid() % len(self.ids)
        order = list(self.ids[start:]) + list(self.ids[:start])
        while True:
            with self.lock:
                for i in order:
                    f = open(self.dir / f"{i}.lock", "w")
                    try:
                        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        return i, f
                    except OSError:
                        f.close()
            if time.monotonic() > end:
                raise SitebotError(f"no free ROS domain id in {self.ids.start}.."
                                   f"{self.ids.stop - 1} (locks in {self.dir})")
            time.sleep(0.5)

    @staticmethod
    def release(handle: Any) -> None:
        try:
            fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            handle.close()


_held: list[IO[str]] = []


def hold_domain(ids: range, env: "dict[str, str] | os._Environ[str]" = os.environ) -> int:
    """Set ``ROS_DOMAIN_ID`` in ``env`` to a free id of ``ids``, held until this process
    exits, unless ``env`` already names one (a user's choice wins). Returns the id."""
    if env.get("ROS_DOMAIN_ID"):
        return int(env["ROS_DOMAIN_ID"])
    dom, handle = DomainPool(ids).acquire()
    _held.append(handle)
    env["ROS_DOMAIN_ID"] = str(dom)
    return dom


#: the environment of a stack that runs on this machine alone (:func:`local_dds_env`)
LOCAL_DDS_KEYS = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE")


def local_dds_env(env: "dict[str, str] | os._Environ[str]" = os.environ) -> dict[str, str]:
    """Defaults for a stack that runs on this machine alone (regression and campaign runs,
    the main job, commissioning, the tests), set in ``env`` where the caller has not set
    them: DDS discovery on loopback only, and ``config/fastdds.xml`` for every process (large
    frames over shared memory; a participant announces itself every 250 ms for its first
    5 s, so a node that starts next to another is seen at once rather than up to 3 s later).  Returns the keys of
    :data:`LOCAL_DDS_KEYS` that ``env`` holds, to hand to launched processes."""
    from sitebot.paths import data_path
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(data_path("config", "fastdds.xml")))
    return {k: env[k] for k in LOCAL_DDS_KEYS if k in env}
