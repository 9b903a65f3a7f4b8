"""sitebot: a ROS 2 stack for mobile manipulators on infrastructure sites."""

__version__ = "0.1.0"
