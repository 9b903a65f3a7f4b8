"""Base navigation (issue 7): costmap, global planner, regulated pure pursuit, recovery.

Core only (no ROS); the ``navigation`` node (:mod:`sitebot.nodes.navigation`) adapts it.
See docs/navigation.md.
"""
