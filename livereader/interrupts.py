"""Ctrl-C and SIGTERM in the commands: both stop a run the same way, its outputs finalised.

SIGTERM is raised as :class:`Terminated`, a ``KeyboardInterrupt``, in the main thread wherever it is (the handler
:func:`terminate`, installed by each command for its run), so one ``except KeyboardInterrupt`` handles both;
:func:`exit_code` tells them apart (130 after Ctrl-C, 143 after SIGTERM, as shells report them).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is so that a run stops as for Ctrl-C."""


def terminate(signum: int, frame: object) -> None:
    """The SIGTERM handler: raise :class:`Terminated`."""
    raise Terminated()


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """130 after Ctrl-C, 143 after SIGTERM."""
    return 143 if isinstance(interrupt, Terminated) else 130


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Ctrl-C held back until the block ends, where it is raised as usual. Interrupting torch's import, which
    initialises C extensions, can leave Python to die of the signal or abort at exit instead of ending cleanly
    (seen about once in ten tries); a batch's lines passed on are not cut mid-line."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
