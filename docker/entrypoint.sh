#!/bin/bash
# Entry point of the sitebot images: the ROS 2 environment, then the workspace's install
# space on top of it, then the command (the image's CMD unless `docker run` gives one).
set -e
# shellcheck source=/dev/null
source "/opt/ros/${ROS_DISTRO:?ROS_DISTRO is not set (the ros base image sets it)}/setup.bash"
# shellcheck source=/dev/null
source /ws/install/setup.bash
exec "$@"
