"""Test-wide settings: DDS traffic of this test session stays on loopback and on a domain of
its own (held with a lock file: sitebot.launcher.domains), so parallel CI jobs, other test
sessions and a developer's running stack never mix with the tests."""
from __future__ import annotations

import os

import pytest

from sitebot.launcher.domains import TEST_DOMAINS, hold_domain

# a domain id held for the whole session (a lock file), so test sessions started side by side
# on one machine never share one; a ROS_DOMAIN_ID set by the caller wins
hold_domain(TEST_DOMAINS)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: starts ROS nodes as separate processes")
