"""``sitebot launch``: run ROS 2 YAML launch files on machines without ROS's launch.

The files stay valid for ``ros2 launch``: only real tags and attributes of the ROS 2 YAML
frontend are accepted (see ``docs/launch.md`` for the supported subset); anything else is
a :class:`~sitebot.errors.LaunchError` naming the file and line.

* :func:`load_launch` -- resolve a file into a :class:`LaunchDescription` (pure).
* :func:`run` -- run a description in the foreground (the CLI).
* :func:`launched` -- context manager that runs a launch in the background (tests).
* :func:`main` -- the ``sitebot launch`` subcommand.
"""
from sitebot.launcher.model import ArgInfo, LaunchDescription, LaunchFile, NodeProcess
from sitebot.launcher.packages import ExecutableResolver, find_package_share, resolve_executable
from sitebot.launcher.params import format_param_value
from sitebot.launcher.parser import load_launch, parse_launch_file
from sitebot.launcher.runner import LaunchHandle, find_launch_file, launched, main, run

__all__ = [
    "ArgInfo",
    "ExecutableResolver",
    "LaunchDescription",
    "LaunchFile",
    "LaunchHandle",
    "NodeProcess",
    "find_launch_file",
    "find_package_share",
    "format_param_value",
    "launched",
    "load_launch",
    "main",
    "parse_launch_file",
    "resolve_executable",
    "run",
]
