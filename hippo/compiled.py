"""Optional numba kernels, compiled once per process (and cached on disk by numba)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_KERNELS: dict[str, Any] = {}


def numba_kernel(name: str, make: Callable[[Any], Any]) -> Any:
    """The kernel ``make(numba)`` returns, made on first use; None when numba is not installed
    (``pip install 'hippo[scale]'``), and the caller takes its numpy or torch path."""
    if name not in _KERNELS:
        try:
            import numba
        except ImportError:
            _KERNELS[name] = None
        else:
            _KERNELS[name] = make(numba)
    return _KERNELS[name]
