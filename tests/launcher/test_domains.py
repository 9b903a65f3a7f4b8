"""ROS domain ids held with lock files (sitebot.launcher.domains): holders never share an
id, a caller's ROS_DOMAIN_ID wins, and an id is free again once its holder lets go."""
from __future__ import annotations

import subprocess
import sys

import pytest

from sitebot.errors import SitebotError
from sitebot.launcher.domains import DomainPool, hold_domain


def test_holders_get_distinct_ids_and_a_full_pool_says_so(tmp_path) -> None:
    pool = DomainPool(range(40, 43), tmp_path)
    held = [pool.acquire(timeout=1.0) for _ in range(3)]
    assert sorted(i for i, _ in held) == [40, 41, 42]
    with pytest.raises(SitebotError, match=r"no free ROS domain id in 40\.\.42"):
        pool.acquire(timeout=0.0)
    DomainPool.release(held[1][1])
    assert pool.acquire(timeout=1.0)[0] == held[1][0]


def test_another_process_cannot_take_a_held_id(tmp_path) -> None:
    pool = DomainPool(range(50, 52), tmp_path)
    mine, _handle = pool.acquire(timeout=1.0)
    code = ("import sys; from pathlib import Path; from sitebot.launcher.domains import DomainPool;"
            f"print(DomainPool(range(50, 52), Path({str(tmp_path)!r})).acquire(1.0)[0])")
    other = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout)
    assert {mine, other} == {50, 51}


def test_a_domain_id_set_by_the_caller_wins() -> None:
    env = {"ROS_DOMAIN_ID": "7"}
    assert hold_domain(range(60, 61), env) == 7
    assert env == {"ROS_DOMAIN_ID": "7"}
