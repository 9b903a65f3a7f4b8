"""How a node process stops: SIGINT and SIGTERM handled in one place, a watchdog that ends
a process still stopping after a deadline, and a bounded DDS teardown (used by
:func:`sitebot.nodes.common.run_node`; no rclpy import)."""
from __future__ import annotations

import atexit
import ctypes
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

__all__ = ["SHUTDOWN_DEADLINE_S", "TEARDOWN_DEADLINE_S", "StopSignals", "bound_teardown",
           "exit_now"]

#: the process ends this long after the first stop signal, whatever still runs [s]
SHUTDOWN_DEADLINE_S = 4.0

#: a node whose DDS teardown has not returned this long after it began is ended [s]
TEARDOWN_DEADLINE_S = 5.0


def bound_teardown() -> None:
    """Arm a watchdog that does not need the GIL before the node's DDS entities are
    destroyed: Fast DDS 3.2 can deadlock its receive and event threads (eProsima/Fast-DDS
    issue 6502, see docs/throughput.md), and then ``destroy_node`` waits for ever inside
    rclpy while holding the GIL, so neither the Python watchdog nor a second signal can run.
    faulthandler's C thread writes every thread's stack to stderr and exits with code 1
    after :data:`TEARDOWN_DEADLINE_S`; what was logged until then is flushed first."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        ctypes.CDLL(None).fflush(None)
        faulthandler.dump_traceback_later(TEARDOWN_DEADLINE_S, exit=True, file=sys.stderr)
    except (OSError, ValueError, AttributeError, RuntimeError):
        pass                  # no usable stderr (e.g. closed): the launcher's SIGKILL remains



class StopSignals:
    """SIGINT and SIGTERM of a node process, handled in one place (rclpy's handlers are not
    installed).  While the node is being built a signal raises KeyboardInterrupt (a build
    can take seconds: models, worlds), and the finalizers of objects it left half-built
    report in one line, not a traceback; once the node is built a signal only sets
    :attr:`requested`, which the spin loop reads between callbacks and at least every
    0.25 s (``sitebot.nodes.common._SPIN_WAKE_S``): no exception is raised inside rclpy, and
    the context stays valid until the node is destroyed.  The first signal starts a
    watchdog that ends the process :data:`SHUTDOWN_DEADLINE_S` later whatever still runs
    (where the GIL is free); a second signal ends it at once.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.interruptible = True
        self.name = "node"
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested.is_set():
            exit_now(128 + signum, f"[WARN] [{self.name}]: second "
                      f"{signal.Signals(signum).name} while stopping: exiting at once")
        self.requested.set()
        threading.Thread(target=self._watchdog, name="shutdown-watchdog", daemon=True).start()
        if self.interruptible:
            sys.unraisablehook = self._unraisable
            raise KeyboardInterrupt

    def _unraisable(self, u: Any) -> None:
        what = getattr(u.object, "__qualname__", None) or type(u.object).__qualname__
        print(f"[INFO] [{self.name}]: stopped during its build; {u.exc_type.__name__} in "
              f"{what}: {u.exc_value}", file=sys.stderr)

    def _watchdog(self) -> None:
        time.sleep(SHUTDOWN_DEADLINE_S)
        others = [t.name for t in threading.enumerate()
                  if t is not threading.current_thread() and t.is_alive()]
        exit_now(0, f"[WARN] [{self.name}]: still stopping {SHUTDOWN_DEADLINE_S:g} s after "
                  f"the stop signal: abandoning what runs (threads: {', '.join(others)})")


def exit_now(code: int, text: str = "") -> None:
    """Write ``text`` to stderr, flush Python's and C's buffers, end the process."""
    try:
        atexit._run_exitfuncs()                # e.g. audit logs' pending summaries
        logging.shutdown()
        if text:
            print(text, file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        ctypes.CDLL(None).fflush(None)         # rcutils writes log lines through C stdio
    except (OSError, ValueError, AttributeError):
        pass
    os._exit(code)
