"""The process's memory allocator: freed frame-sized buffers kept for the next frame.

A network call's feature maps are frame-sized buffers (megabytes each), made and freed in
every call on the calls' threads. glibc's malloc gives blocks like these back to the kernel
when they are freed, from the per-thread arenas above all, so each call would fault its
buffers in afresh and the kernel would spend a share of the run's CPU time on it. In one heap
that is never trimmed they are reused.
"""

from __future__ import annotations

import ctypes
import platform

# mallopt's parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -2, -3, -8
_SETTINGS = (
    (_M_ARENA_MAX, 1),  # one heap for all threads: a thread's own arena is trimmed as it frees
    (_M_MMAP_THRESHOLD, 32 << 20),  # blocks up to 32 MiB (glibc's largest) from the heap, not mmap
    (_M_TRIM_THRESHOLD, 1 << 30),  # and the heap's free top kept, up to 1 GiB
    (_M_TOP_PAD, 64 << 20),  # grown 64 MiB at a time, not a frame's buffer at a time
)


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep and reuse freed memory (call it before threads start: the
    arenas threads already have stay theirs). False where the C library is not glibc, and
    nothing changes."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(parameter, value) == 1 for parameter, value in _SETTINGS)
