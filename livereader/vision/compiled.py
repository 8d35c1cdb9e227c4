"""Whether this process reads with the compiled kernels (:mod:`livereader.vision.kernels`) or with their plain
references, which give the same results (``tests/test_kernels.py``).

numba compiles the kernels at their first call and caches them on disk. Compiling takes 13-19 s of one core,
once after install (or after numba or the kernels change); loading them from the cache about 0.5 s. So that no
frame waits for a compiler, the first search of a process starts one background process that compiles or loads
them (``python -m livereader.vision.kernels``, which runs :func:`livereader.vision.kernels.compile_all`), and the
plain references read until it has ended. Then this process loads the kernels from the cache, between two frames
(:func:`load_if_ready`, called before a frame's clock starts): a frame's budget and a stream's pacing never count
the load, so what is read does not depend on when it happens. Where no process can be started, the kernels are
compiled here, at the next frame's start; where the background process fails, the references read on.
"""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

_compiler: subprocess.Popen[bytes] | None = None  # the background process, once started
_kernels: ModuleType | None = None  # the kernels module, once this process uses it
_here = False  # whether no background process could be started: the kernels compile in this one


def kernels() -> ModuleType | None:
    """The kernels module, or None while this process has not loaded it (the references read meanwhile); the first
    call starts the background process (see the module). Never loads or compiles: :func:`load_if_ready` does."""
    global _compiler, _here
    if _kernels is None and _compiler is None and not _here:
        try:
            _compiler = subprocess.Popen([sys.executable, "-m", "livereader.vision.kernels"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        except OSError:  # no process can be started here: compile in this one, at the next frame's start
            _here = True
    return _kernels


def load_if_ready() -> None:
    """Load the kernels where the background process has compiled them (or where they must be compiled here):
    about 0.5 s, once. Called before a frame's clock starts."""
    if _kernels is None and (_here or (_compiler is not None and _compiler.poll() == 0)):
        from livereader.vision.kernels import compile_all

        compile_all()  # loads every kernel from the cache (or compiles it), and uses them from now on


def use_kernels() -> ModuleType:
    """Read with the kernels from now on in this process; each compiles at its first call where the cache does not
    hold it (tests, and the background process itself)."""
    global _kernels
    from livereader.vision import kernels as module

    _kernels = module
    return module
