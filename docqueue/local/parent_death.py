"""Children that do not outlive their parent, even when the parent is SIGKILLed (Linux).

`prctl(PR_SET_PDEATHSIG)` asks the kernel to send a signal to this process
when the thread that forked it exits. It survives `exec` (of anything not
setuid), so it can be set between fork and exec of a Procfile command.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int, parent_pid: int) -> None:
    """Have `signum` sent to this process when its parent dies; send it now if the parent is already gone.

    `parent_pid` is the parent as the caller knew it before forking: had it died
    before the prctl, the kernel would never send the signal.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)
