"""The bounded DDS teardown of a stopping node (sitebot.nodes.stopping.bound_teardown).

Fast DDS 3.2 can deadlock its receive and event threads (eProsima/Fast-DDS issue 6502); a
node's ``destroy_node`` then waits for ever inside rclpy with the GIL held, where no Python
watchdog or signal handler can run.  Here a process holds the GIL in a 60 s C call after
arming the watchdog, the way such a teardown would: it must end after the deadline with
every thread's stack on stderr, not run on until the launcher's SIGKILL."""
from __future__ import annotations

import subprocess
import sys
import time

from sitebot.nodes.stopping import TEARDOWN_DEADLINE_S

_HANG = """
import ctypes, sys
from sitebot.nodes.stopping import bound_teardown
print("logged before the teardown", flush=False)    # left in the buffer: must be flushed
bound_teardown()
ctypes.PyDLL(None).sleep(60)        # PyDLL keeps the GIL through the call, like the hang
print("never")
"""


def test_a_teardown_that_holds_the_gil_is_ended_after_its_deadline():
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", _HANG], capture_output=True, text=True,
                       timeout=40)
    took = time.monotonic() - t0
    assert p.returncode == 1
    assert TEARDOWN_DEADLINE_S <= took < TEARDOWN_DEADLINE_S + 20.0   # not the 60 s sleep
    assert p.stdout == "logged before the teardown\n"
    assert f"Timeout (0:00:0{TEARDOWN_DEADLINE_S:.0f})!" in p.stderr
    assert 'line 6 in <module>' in p.stderr                          # where it hung

