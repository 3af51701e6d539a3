"""Import PyBullet without its build-time banner, which its C code leaves (with no newline) in
the C stderr buffer on import, to appear at process exit in the middle of our output."""

from __future__ import annotations

import ctypes
import os
import sys


def _quiet_import():
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import pybullet

        ctypes.CDLL(None).fflush(None)  # push the banner into /dev/null while fd 2 points there
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    return pybullet


p = _quiet_import()
