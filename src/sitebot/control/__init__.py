"""The control loop: the kernel (C, with a pure-Python reference) and its shared types.

Modules: ``types`` (the kernel's types; numbers from the C header), ``kernel_py`` (the
Python reference), ``kernel`` (the implementation selector and the robot's kernel
configuration), ``trajectory`` (validation before the kernel), ``monitor`` (the loop's
bookkeeping for the ROS side), ``hardware_loop`` (the hardware loop's decisions),
``lockstep`` (the simulator's driver), ``hardware`` (the hardware seam), ``ros2_control``
(the controllers' topic contracts).  See ``docs/control.md`` for the contract.
"""
from __future__ import annotations

from sitebot.control.kernel import (IMPLEMENTATION, CControlKernel, ControlKernel, PyControlKernel,
                                    RtLoop, kernel_config_from_description, kernel_joint_names)
from sitebot.control.types import Interface, KernelConfig, KernelOutput, Reject, Status
from sitebot.types import StopCategory

__all__ = [
    "IMPLEMENTATION",
    "CControlKernel",
    "ControlKernel",
    "Interface",
    "KernelConfig",
    "KernelOutput",
    "PyControlKernel",
    "Reject",
    "RtLoop",
    "Status",
    "StopCategory",
    "kernel_config_from_description",
    "kernel_joint_names",
]
