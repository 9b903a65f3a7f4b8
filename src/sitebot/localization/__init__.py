"""Localization: an EKF fusing wheel odometry, IMU and fiducial (AprilTag) fixes into the
map pose (no ROS here; the node is ``sitebot.nodes.localization``). See
docs/localization.md."""
from sitebot.localization.config import (INPUT_FIELDS, SCHEMA, EkfConfig, InputConfig,
                                         ekf_config_from_params)
from sitebot.localization.ekf import (STATE_DEAD_RECKONING, STATE_DIVERGED, STATE_OK, Ekf, Health,
                                      Measurement, Result, markers_from_registry)

__all__ = ["SCHEMA", "EkfConfig", "InputConfig", "INPUT_FIELDS", "ekf_config_from_params",
           "Ekf", "Health", "Measurement", "Result", "markers_from_registry", "STATE_OK",
           "STATE_DEAD_RECKONING", "STATE_DIVERGED"]
