"""The control loop: the kernel (C, with a pure-Python reference) and its shared types.

See ``docs/control.md`` for the contract.
"""
from __future__ import annotations

from sitebot.control.kernel import (IMPLEMENTATION, CControlKernel, ControlKernel, Interface, KernelConfig, KernelOutput, PyControlKernel, Reject, RtLoop, Status, kernel_config_from_description, kernel_joint_names)
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
