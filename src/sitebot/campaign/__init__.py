"""Campaigns: randomized runs of scenario templates and their statistics (docs/campaigns.md).

Core modules (no ROS): ``stats`` (Wilson intervals, exact McNemar and Fisher tests).  The
templates themselves are a form of scenario file: ``sitebot.regress.template``.
"""
