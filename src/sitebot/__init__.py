"""sitebot: a ROS 2 stack for mobile manipulators on infrastructure sites."""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("SITEBOT_OPEN_LOG"):     # tests: which process reads which world file
    from sitebot.openlog import install as _install
    _install(_os.environ["SITEBOT_OPEN_LOG"])
