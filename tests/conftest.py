"""Test-wide settings: DDS traffic of this test session stays on loopback and on a domain of
its own, so parallel CI jobs and a developer's running stack never mix with the tests."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: starts ROS nodes as separate processes")
