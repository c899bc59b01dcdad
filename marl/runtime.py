"""Process-wide settings a training run makes once: torch's intra-op threads and, on glibc, an
allocator that keeps freed memory for reuse instead of handing it back to the OS."""

from __future__ import annotations

import ctypes
import platform
import sys

import torch

# mallopt(3) parameters
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's upper limit on 64-bit


def configure(threads: int) -> None:
    torch.set_num_threads(threads)
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """By default glibc maps large blocks fresh for every allocation and unmaps them on free, so
    every PPO epoch page-faults its activations in again: 350k minor faults in 4 updates at E=256,
    ~12% of an update's time. Blocks up to 32 MB now come from the heap, and the heap is never
    trimmed below 1 GB, so the memory is reused; the price is that RSS stays at its peak.
    Returns whether the settings took (False off glibc)."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    settings = ((_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
