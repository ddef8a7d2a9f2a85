"""Ctrl-C handling shared by the long-running commands (bench, train, demo).

A first Ctrl-C raises KeyboardInterrupt in the main thread; the command then stops its workers
and writes what finished. hold_interrupts() keeps further presses from breaking that cleanup;
worker processes ignore SIGINT (ignore_sigint) because a terminal sends it to the whole process
group and the main process decides when they stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
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


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """A Ctrl-C during the block takes effect right after it: for starting worker processes,
    which a KeyboardInterrupt half-way through a spawn would leave orphaned. Children started
    inside also inherit SIGINT blocked, so a terminal's Ctrl-C cannot kill them mid-start-up.

    (Blocking the signal in this thread alone is not enough: the kernel hands it to another
    thread and Python still raises KeyboardInterrupt here, so the handler is deferred too.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []
    old_handler = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) \
        if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGINT, old_handler)
    if pressed:
        if callable(old_handler):
            old_handler(signal.SIGINT, None)
        elif old_handler != signal.SIG_IGN:
            raise KeyboardInterrupt


def ignore_sigint() -> None:
    """In a worker process: SIGINT ignored (the parent stops this process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def in_worker_process() -> bool:
    """True in a multiprocessing child (not the process the user started)."""
    import multiprocessing as mp

    return mp.parent_process() is not None
