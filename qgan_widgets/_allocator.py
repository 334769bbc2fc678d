"""Batch jobs keep the memory TensorFlow frees instead of handing it back to the OS (Linux, glibc).

TensorFlow allocates and frees its tensors' buffers at every op. With glibc's defaults, blocks above
128 KiB (a batch of tiles, a convolution's buffer) are mapped from the OS and unmapped when freed, and
the next one is faulted in page by page again: the full demo took 16.7 million page faults and 50 s of
system time on 2 cores. :func:`keep_freed_memory` raises malloc's mmap and trim thresholds so that
freed memory stays in the process for reuse: measured on the full demo from an empty cache (a 2-core
Xeon, seed 0, the same numbers), 256 s instead of 297 s (the VAE 147 s instead of 180 s; 13.6 million
faults, 40 s of system time). The price: a process keeps its peak heap until it exits (about 1.5 GiB
for the demo), so batch jobs call it (the command line's demo, sweep, bench and vae-study, a sweep's
workers, the tests) and the classroom's kernels do not. ``QGAN_KEEP_FREED=0`` turns it off.
"""
from __future__ import annotations

import os
import sys

__all__ = ["keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 << 20
"""Bytes from which glibc's malloc maps a block from the OS for itself: its largest (default 128 KiB)."""
TRIM_THRESHOLD = 1 << 30
"""Free bytes at the top of the heap glibc keeps before returning them to the OS (default 128 KiB)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>


def keep_freed_memory() -> bool:
    """Set the thresholds above for this process; True when they took effect (False off glibc/Linux or
    with ``QGAN_KEEP_FREED=0``). Idempotent."""
    from qgan_widgets import env_flag

    switched_off = "QGAN_KEEP_FREED" in os.environ and not env_flag("QGAN_KEEP_FREED")  # on unless set to 0/false
    if not sys.platform.startswith("linux") or switched_off:
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
