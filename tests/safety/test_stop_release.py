"""The supervisor's half of the stop latch protocol (sitebot.safety.release): core, no ROS."""
from __future__ import annotations

from sitebot.control.types import Latch
from sitebot.safety.release import StopRelease
from sitebot.types import StopCategory

NONE, CAT1 = StopCategory.NONE, StopCategory.CAT1


def test_a_release_when_a_stop_clears_and_at_the_first_clear_state():
    r = StopRelease(retry_s=0.5, session=7)
    assert r.session == 7
    assert r.update(CAT1, 0.0) == 0                  # started in a stop: nothing released
    assert r.update(NONE, 1.0) == 1                  # the stop cleared: one release
    assert r.update(NONE, 1.1) == 1                  # still clear: no new one
    assert r.update(CAT1, 2.0) == 1
    assert r.update(CAT1, 2.1) == 1
    assert r.update(NONE, 3.0) == 2


def test_the_loop_still_latched_gets_a_new_release_at_most_every_retry_period():
    r = StopRelease(retry_s=0.5)
    assert r.update(NONE, 0.0) == 1
    assert r.loop_state(int(Latch.HEARTBEAT), 0.2) is None
    assert r.releases == 1                           # 0.2 s after the last: not yet
    assert r.loop_state(int(Latch.HEARTBEAT), 0.6) is None
    assert r.releases == 2
    assert r.loop_state(int(Latch.HEARTBEAT), 0.7) is None and r.releases == 2
    assert r.loop_state(0, 2.0) is None and r.releases == 2      # open: nothing to do
    r.update(CAT1, 3.0)
    assert r.loop_state(int(Latch.STOP), 4.0) is None
    assert r.releases == 2                           # never while it requests a stop


def test_a_foreign_or_out_of_sequence_latch_is_a_fault_reported_once_until_a_reset():
    r = StopRelease(retry_s=0.5)
    r.update(NONE, 0.0)
    assert r.loop_state(int(Latch.FOREIGN), 1.0) == "a second safety/state source"
    assert r.loop_state(int(Latch.FOREIGN), 2.0) is None         # the same fault: once
    assert r.releases == 1                           # and no retried release after a fault
    r.update(CAT1, 2.5)                              # the supervisor's e-stop ...
    assert r.update(NONE, 3.0) == 2                  # ... reset by a person: a release
    assert r.loop_state(int(Latch.FOREIGN), 3.6) is None and r.releases == 3   # retried
    assert r.loop_state(int(Latch.SEQUENCE | Latch.FOREIGN), 4.0) == \
        "the supervisor's sequence went backwards"
