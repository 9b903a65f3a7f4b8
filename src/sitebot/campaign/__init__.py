"""Campaigns: randomized runs of scenario templates and their statistics (docs/campaigns.md).

Core modules (no ROS): ``template`` (scenario templates with random variables, drawn per
seed), ``stats`` (Wilson intervals, exact McNemar and Fisher tests).
"""
