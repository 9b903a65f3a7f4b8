"""Operator visualisation core (no ROS): what ``site_viz`` shows in rviz2, and the rviz2
config checker. ``scene`` builds marker specs and the static map from the world and the site
registry; ``rviz_config`` parses an rviz2 ``.rviz`` file and checks it against a ROS graph."""
