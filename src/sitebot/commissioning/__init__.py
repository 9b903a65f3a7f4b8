"""Bringing a robot to a new site (no ROS): what a site bundle still lacks before the first
mission (:mod:`sitebot.commissioning.readiness`)."""
