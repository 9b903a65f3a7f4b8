"""Test-wide settings: DDS traffic of this test session stays on loopback and on a domain of
its own (held with a lock file: sitebot.launcher.domains), so parallel CI jobs, other test
sessions and a developer's running stack never mix with the tests."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from sitebot.launcher.domains import TEST_DOMAINS, hold_domain, local_dds_env
from sitebot.security.keys import KEY_ENV, ensure_key

# a domain id held for the whole session (a lock file), so test sessions started side by side
# on one machine never share one; a ROS_DOMAIN_ID set by the caller wins
hold_domain(TEST_DOMAINS)
local_dds_env()          # loopback discovery, config/fastdds.xml for every process
os.environ.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "1")
# the site's authority key of this session (signed roles and requests, docs/security.md):
# a fresh one in a private folder, found by every node the tests start through the
# environment (a key file given by the caller wins)
if not os.environ.get(KEY_ENV):
    _key_dir = tempfile.mkdtemp(prefix="sitebot-key-")
    atexit.register(shutil.rmtree, _key_dir, True)
    os.environ[KEY_ENV] = str(ensure_key(Path(_key_dir) / "authority.key"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: starts ROS nodes as separate processes")
