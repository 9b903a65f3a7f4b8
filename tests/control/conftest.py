"""Fixtures shared by the control tests."""
from __future__ import annotations

import pytest
from test_control_kernel import _classes


@pytest.fixture(params=["python", "c"])
def kernel_cls(request):
    """Each kernel implementation in turn: the Python reference and the C kernel."""
    cls = _classes()[request.param]
    if cls is None:
        pytest.skip("sitebot.control._control_kernel is not built (run scripts/setup_env.sh)")
    return cls
