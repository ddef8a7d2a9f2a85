"""Ctrl-C handling shared by the long-running commands (bench, train, demo).

A first Ctrl-C raises KeyboardInterrupt in the main thread; the command then stops its workers
and writes what finished. hold_interrupts() keeps further presses from breaking that cleanup;
worker processes ignore SIGINT (ignore_sigint) because a terminal sends it to the whole process
group and the main process decides when they stop.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any


def hold_interrupts(note: str = "writing what finished") -> None:
    """After a first Ctrl-C: the second prints a note, a third quits at once (exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread
    presses = [0]

    def _again(signum: int, frame: Any) -> None:
        presses[0] += 1
        if presses[0] >= 2:
            os._exit(130)
        print(f"still stopping ({note}); Ctrl-C once more quits without it", file=sys.stderr,
              flush=True)

    signal.signal(signal.SIGINT, _again)


def ignore_sigint() -> None:
    """In a worker process: SIGINT ignored (the parent stops this process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def in_worker_process() -> bool:
    """True in a multiprocessing child (not the process the user started)."""
    import multiprocessing as mp

    return mp.parent_process() is not None
