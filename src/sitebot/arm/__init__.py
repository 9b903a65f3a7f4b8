"""Arm motion planning (core, no ROS): kinematics and IK, collision checking, OMPL
planning with shortcutting, ruckig time parameterization, named poses, the bench."""
