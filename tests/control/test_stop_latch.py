"""The kernel's stop latch (docs/control.md, "Stop latch"): C kernel and Python reference.

A stop latches; only a release from the pinned supervisor (a heartbeat with category NONE, a
fresh stamp and a release count above the one seen when the latch closed) opens it.  A
heartbeat from another source, or from the pinned one with a sequence that does not
increase, closes it and is otherwise ignored.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_control_kernel import CFG, SUP, N, Rig, both_classes

from sitebot.control.types import Heartbeat, Latch, Status
from sitebot.types import StopCategory

NONE, CAT0, CAT1, CAT2 = StopCategory.NONE, StopCategory.CAT0, StopCategory.CAT1, StopCategory.CAT2


def moving(kernel_cls) -> Rig:
    """A rig released by its supervisor, driving the base at 0.5 m/s and the arm."""
    rig = Rig(kernel_cls)
    rig.k.reset(np.zeros(N))
    rig.k.set_trajectory([2.0], [[0.8, 0.5, 0.3]])
    rig.base_cmd = (0.5, 0.0)
    rig.tick(700)
    assert rig.out.status is Status.OK and rig.out.latch == 0
    assert rig.out.base_velocity[0] == pytest.approx(0.5)
    return rig


def foreign(rig: Rig, source: int = 0xBAD, seq: int = 10**6, releases: int = 10**6,
            cat=NONE, scale: float = 1.0) -> Heartbeat:
    return rig.k.set_supervisor(source, seq, releases, rig.t, scale, cat)


def test_the_kernel_starts_latched_and_the_first_release_opens_it(kernel_cls):
    rig = Rig(kernel_cls)
    rig.heartbeat = False
    rig.base_cmd = (0.5, 0.0)
    assert rig.k.latch == Latch.START
    rig.tick(50)
    assert not rig.out.wheel_velocity.any() and rig.out.latch == Latch.START
    rig.heartbeat = True
    assert rig.heartbeat_now() is Heartbeat.RELEASED          # releases 1 > 0
    rig.tick(200)
    assert rig.out.status is Status.OK and rig.out.base_velocity[0] == pytest.approx(0.2, abs=2e-3)


def test_a_later_normal_heartbeat_does_not_release_a_stop(kernel_cls):
    """The issue's finding 1, at the kernel: 'NORMAL, no stop' after a stop is not a release."""
    rig = moving(kernel_cls)
    rig.cat = CAT1
    rig.tick(1000)
    assert rig.out.status is Status.STOPPED and rig.out.latch == Latch.STOP
    rig.cat = NONE
    for _ in range(500):                                      # NORMAL, same release count
        assert rig.tick() is Status.STOPPED
    assert not rig.out.wheel_velocity.any() and rig.out.latch == Latch.STOP
    assert rig.release() is True
    rig.tick(200)
    assert rig.out.status is Status.OK


def test_a_foreign_normal_heartbeat_never_releases(kernel_cls):
    rig = moving(kernel_cls)
    rig.cat = CAT1                                            # the supervisor stops
    rig.tick(1000)
    for i in range(2000):                                     # a forger at 1 kHz
        assert foreign(rig, seq=10**6 + i, releases=10**6 + i) is Heartbeat.FOREIGN
        rig.tick()
    assert rig.out.status is Status.STOPPED
    assert rig.out.latch == Latch.STOP | Latch.FOREIGN
    assert not rig.out.wheel_velocity.any() and not rig.out.setpoint_velocity.any()


def test_a_second_source_stops_a_moving_robot(kernel_cls):
    rig = moving(kernel_cls)
    assert foreign(rig) is Heartbeat.FOREIGN
    rig.tick()
    assert rig.out.latch == Latch.FOREIGN and rig.out.status is Status.STOPPING
    rig.tick(1500)
    assert rig.out.status is Status.STOPPED and not rig.out.wheel_velocity.any()


def test_release_waits_until_no_foreign_heartbeat_for_the_timeout(kernel_cls):
    """A release issued while another source speaks takes effect only once that source has
    been silent for the heartbeat timeout; a foreign heartbeat in between cancels it."""
    rig = moving(kernel_cls)
    foreign(rig)
    rig.tick(10)
    assert rig.release() is False                 # the forger spoke 10 ms ago
    quiet = int(CFG.heartbeat_timeout_s / rig.dt)
    rig.tick(quiet - 20)
    assert rig.out.latch == Latch.FOREIGN
    foreign(rig)                                  # speaks again: the release is void
    rig.tick(quiet + 5)
    assert rig.out.latch == Latch.FOREIGN and rig.out.status is Status.STOPPED
    assert rig.release() is True                  # a new release after a quiet timeout
    rig.tick(600)
    assert rig.out.status is Status.OK


def test_a_sequence_that_does_not_increase_is_a_fault_and_ignored(kernel_cls):
    rig = moving(kernel_cls)
    seq = rig.seq
    # a replayed heartbeat: an older sequence with a release in it
    assert rig.k.set_supervisor(SUP, seq, rig.releases + 5, rig.t, 1.0, NONE) \
        is Heartbeat.SEQUENCE
    rig.tick()
    assert rig.out.latch == Latch.SEQUENCE
    # its release count was not taken: the next release is one above the supervisor's own
    assert rig.release() is True
    rig.tick(1500)
    assert rig.out.status is Status.OK
    # a release count going backwards is the same fault
    rig.seq += 1
    assert rig.k.set_supervisor(SUP, rig.seq, rig.releases - 1, rig.t, 1.0, NONE) \
        is Heartbeat.SEQUENCE
    rig.tick()
    assert rig.out.latch == Latch.SEQUENCE


def test_pinning_is_refused_while_the_supervisor_is_alive(kernel_cls):
    rig = moving(kernel_cls)
    assert rig.k.pin_supervisor(SUP) is True                  # the same source: a no-op
    assert rig.k.pin_supervisor(0xBAD) is False
    assert rig.out.latch == 0
    rig.heartbeat = False                                     # the supervisor dies
    rig.tick(int(CFG.heartbeat_timeout_s / rig.dt) + 5)
    assert rig.out.latch == Latch.HEARTBEAT
    assert rig.k.pin_supervisor(0xD00D) is True               # a restarted supervisor
    assert rig.k.set_supervisor(SUP, rig.seq + 1, 99, rig.t, 1.0, NONE) is Heartbeat.FOREIGN
    rig.tick(int(CFG.heartbeat_timeout_s / rig.dt) + 5)
    assert rig.k.set_supervisor(0xD00D, 1, 1, rig.t, 1.0, NONE) is Heartbeat.RELEASED


def test_a_stop_with_a_release_in_the_same_message_stays_stopped(kernel_cls):
    rig = moving(kernel_cls)
    rig.cat = CAT2
    assert rig.release() is False
    rig.cat = NONE
    rig.tick(100)
    assert rig.out.latch == Latch.STOP


def test_category0_latch_survives_reset(kernel_cls):
    rig = moving(kernel_cls)
    rig.cat = CAT0
    rig.tick()
    assert not rig.out.wheel_velocity.any()
    rig.k.reset(np.zeros(N))
    rig.cat = NONE
    rig.tick(10)
    assert rig.out.latch == Latch.STOP and rig.out.status is Status.STOPPED


# ---------------------------------------------------------------------------------------
# property: no sequence of heartbeats from any other source ever moves the robot
# ---------------------------------------------------------------------------------------

_ACTIONS = st.lists(st.tuples(
    st.sampled_from(["foreign", "step", "base", "traj", "sup_stop", "sup_silent", "replay"]),
    st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(1, 30),
    st.sampled_from([NONE, NONE, CAT0, CAT1, CAT2]), st.floats(-2.0, 2.0)),
    min_size=1, max_size=30)


def _speeds(out) -> np.ndarray:
    return np.abs(np.concatenate([out.setpoint_velocity, out.wheel_velocity,
                                  out.base_velocity]))


def _never_moves(kernel_cls, actions, released: bool) -> None:
    """released: the supervisor let the robot move, then asked for a stop; else it never
    released it.  From then on only the supervisor's stops, its silence, its replays and
    anyone else's heartbeats arrive: the robot's speeds never grow, and it comes to rest."""
    if released:
        rig = moving(kernel_cls)
        rig.cat = CAT1
        rig.tick()                                # the stop reaches the kernel
        assert rig.out.latch == Latch.STOP
    else:
        rig = Rig(kernel_cls)
        rig.heartbeat = False
        rig.k.reset(np.zeros(N))
    rig.track = False
    prev = _speeds(rig.out)
    for kind, a, b, count, cat, x in actions:
        if kind == "foreign":
            src = a if a != SUP else a ^ 1
            foreign(rig, src, seq=b, releases=(a ^ b), cat=cat, scale=abs(x) / 2)
        elif kind == "base":
            rig.k.set_base_command(x, -x, rig.t)
        elif kind == "traj":
            rig.k.set_trajectory([0.2 + count / 100], [[0.9 * np.sign(x), 0.5, -0.5]])
        elif kind == "sup_stop" and released:
            rig.cat = cat if cat is not NONE else CAT1
            rig.heartbeat = True
        elif kind == "sup_silent":
            rig.heartbeat = False
        elif kind == "replay" and released:   # the supervisor's own old heartbeat, re-sent
            rig.k.set_supervisor(SUP, b % max(rig.seq, 1), rig.releases + 1, rig.t, 1.0, NONE)
        for _ in range(count if kind == "step" else 1):
            rig.tick()
            now = _speeds(rig.out)
            assert np.all(now <= prev + 1e-12), (kind, now, prev)
            assert rig.out.latch != 0
            prev = now
    rig.tick(1200)                                # 0.5 m/s at 1 m/s^2: 0.5 s
    assert not _speeds(rig.out).any()


@given(_ACTIONS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_foreign_heartbeats_never_move_a_stopped_robot(actions):
    for c in both_classes():
        _never_moves(c, actions, released=True)


@given(_ACTIONS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_foreign_heartbeats_never_move_an_unreleased_robot(actions):
    for c in both_classes():
        _never_moves(c, actions, released=False)
