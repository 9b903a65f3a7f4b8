"""``sitebot regress``: CI simulation regression runs (docs/regress.md).

Core modules (no ROS): ``scenario`` (file format, loader, variations), ``template``
(scenario templates with random variables, for campaigns), ``prepare`` (per-run
world and parameter files), ``metrics`` (metrics and verdicts from ground truth), ``bag``
(rosbag2/MCAP via rosbags), ``report`` (JUnit, HTML), ``results`` (flaky, baselines,
incidents, dataset export), ``cli`` (the runner). ROS side: ``driver`` (launch, drive,
inject, record) run inside ``worker`` processes.
"""
