"""Whether this process reads with the compiled kernels (:mod:`livereader.kernels`) or with their plain
references, which read the same (``tests/test_kernels.py``; the full fit's corners agree within 0.005 px).

numba compiles the kernels at their first call and caches them on disk. Compiling takes about 30 s of one core,
once after install (or after numba or the kernels change); loading them from the cache about 1 s in a new process.
So that no frame waits for a compiler, a process starts one background process (:func:`start`: at its first
search, or earlier where the command line knows it will read) that compiles or loads them (``python -m
livereader.kernels``, at low priority), and the plain references read until it has ended. Then this
process loads the kernels from the cache (about 0.5 s, once): a stream before its first frame where the
background process is done by then (:func:`wait`), and otherwise between two frames, before a frame's clock starts
(:func:`load_if_ready`), so that neither a frame's budget nor a stream's pacing counts the load, and what is read
does not depend on when it happens; a thread that finds another loading them reads its frame with the references.
Where no process can be started, no cache location is writable (the background process exits with ``NOT_CACHED``),
or loading fails, the references read on.

A compile beside the reading slows it by about 30% on two cores, and a short run ends before the compile does, so
it gains nothing from it: such a run (``livereader --video`` of a short file) calls :func:`defer` instead, which
starts the background process when the run exits where the kernels are not known to be cached (:func:`cached`:
the stamp that a background process writes once it has compiled them), for the runs after it.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import ModuleType
from typing import IO

NOT_CACHED = 3  # the background process's exit status where numba can cache nothing here
LOCK_WAIT = 300.0  # seconds a background process waits for another one's compile (one_compiler), at most

_lock = threading.Lock()  # one thread starts the background process and loads the kernels
_forced = threading.local()  # the kernels module while compile_all runs them on this thread
_compiler: subprocess.Popen[bytes] | None = None  # the background process, once started (a forked child: None)
_kernels: ModuleType | None = None  # the kernels module, once this process has loaded it
_failed = False  # no background process, or it or the load failed: the references read on
_deferred = False  # the background process starts when this process exits (defer)


def kernels() -> ModuleType | None:
    """The kernels module once this process has loaded it, else None (the references read; see the module). Starts
    the background process where none is running; never loads or compiles."""
    module = loaded()
    if module is None:
        start()
    return module


def loaded() -> ModuleType | None:
    """The kernels module where this process has loaded it (as :func:`kernels`), else None, without starting the
    background process: for a stage that also runs outside every search (Reed-Solomon decoding in evaluations),
    where no frame's start would ever load what the process compiled."""
    forced: ModuleType | None = getattr(_forced, "module", None)
    return forced or _kernels


def start(*, now: bool = False) -> None:
    """Start the background process that compiles or loads the kernels, unless one has been started (by this
    process) or cannot be; where :func:`defer` made it wait for this process's exit, only with ``now`` (a run that
    will last: it then starts at once)."""
    global _deferred
    if _started() or (_deferred and not now):  # without the lock: another thread may hold it while it loads them
        return
    with _lock:
        if _started() or (_deferred and not now):
            return
        _deferred = False
        _spawn()
        if _compiler is not None:
            threading.Thread(target=_compiler.wait, daemon=True).start()  # reaped when it ends, searched or not


def _spawn() -> None:
    """Start the background process (``python -m livereader.kernels``), or note that none can be started."""
    global _compiler, _failed
    if not sys.executable or getattr(sys, "frozen", False):  # no interpreter to run it with
        _failed = True
        return
    env = dict(os.environ)  # this livereader first on its path; the cache where this process will look for it
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), *filter(None, [env.get("PYTHONPATH")])])
    if env.get("NUMBA_CACHE_DIR"):
        env["NUMBA_CACHE_DIR"] = os.path.abspath(env["NUMBA_CACHE_DIR"])
    try:  # at low priority (on POSIX it lowers its own: os.nice), out of reach of the terminal's Ctrl-C
        _compiler = subprocess.Popen(
            [sys.executable, "-m", "livereader.kernels"], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=os.name != "nt",
            creationflags=getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0)
            | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0))
    except (OSError, ValueError):
        _failed = True


def defer() -> bool:
    """For a run that ends before a compile would: where the kernels are cached (:func:`cached`), :func:`start` now,
    and the run reads with them once loaded; where they are not, start no background process until this process
    exits (it then compiles them for the next run, on its own), and read with the references meanwhile (until then
    :func:`start` does nothing unless told ``now``). Returns whether the start waits for the exit."""
    global _deferred
    if not _deferred and cached():
        start()
        return False
    with _lock:
        if _started() or _deferred:
            return _deferred
        atexit.register(_start_at_exit)  # before the flag: an interrupt between the two leaves nothing waiting
        _deferred = True
    return True


def _start_at_exit() -> None:
    """The deferred start (:func:`defer`), as this process exits: the background process outlives it (a session of
    its own) and caches the kernels. No thread reaps it: none can start while the interpreter shuts down."""
    global _deferred
    with _lock:
        if _deferred and not _started():
            _spawn()
        _deferred = False


def cached() -> bool:
    """Whether a background process has cached the kernels for this copy of ``livereader/kernels.py`` (its size and
    modification time, which numba's cache checks too), this numba and this Python, in the cache this process loads
    from: the stamp (:func:`stamp_path`) that it writes once they are compiled (:func:`mark_cached`) says so. A stamp
    that is wrong (its cache deleted since) only costs a compile beside the reading, as without one."""
    try:
        return stamp_path().read_text(encoding="utf-8") == _stamp()
    except (OSError, ValueError):  # none, unreadable, or not text
        return False


def mark_cached() -> None:
    """Write the stamp of :func:`cached` (the background process, once the kernels are compiled or loaded); where it
    cannot be written, the next short run compiles beside its reading, as a run without a stamp does."""
    path = stamp_path()
    try:
        handle, partial = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stamp:
            stamp.write(_stamp())
        os.replace(partial, path)  # whole or not at all, for a reader that looks meanwhile
    except (OSError, ValueError):
        Path(partial).unlink(missing_ok=True)


def stamp_path() -> Path:
    """The stamp of :func:`cached`: beside the lock of :func:`one_compiler` (one per user, copy and cache)."""
    return lock_path().with_suffix(".stamp")


def _stamp() -> str:
    """What :func:`mark_cached` writes: the numba package, the Python version and the kernels' file that the cache
    holds compiled (files by place, size and modification time: a new install of numba changes them; looking them
    up costs 0.1 ms, numba's version from its metadata 25 ms)."""
    from importlib.util import find_spec

    numba = find_spec("numba")
    files = [Path(__file__).with_name("kernels.py"), *([Path(numba.origin)] if numba and numba.origin else [])]
    stats = ", ".join(f"{path} {stat.st_size} B {stat.st_mtime_ns} ns" for path, stat in ((p, p.stat()) for p in files))
    return f"Python {sys.version.split()[0]}: {stats}\n"


def load_if_ready() -> None:
    """Load the kernels where the background process has compiled them (about 0.5 s, once); called before a
    frame's clock starts."""
    compiler = _compiler
    if _kernels is None and not _failed and compiler is not None and compiler.poll() is not None:
        _load()


def _started() -> bool:
    """Whether the kernels are loaded, will never be, or have a background process of this process's own."""
    return _kernels is not None or _failed or _compiler is not None


def wait(timeout: float | None = None) -> None:
    """Wait up to ``timeout`` seconds (None: until it ends) for the background process, started if need be, and
    load the kernels if it is done: before a stream's first frame, and in benchmarks."""
    start()
    if _compiler is not None and _kernels is None:
        try:
            _compiler.wait(timeout)
        except subprocess.TimeoutExpired:
            return
    load_if_ready()


def _load() -> None:
    global _kernels, _failed
    if not _lock.acquire(blocking=False):  # another thread is loading them: this frame reads with the references
        return
    try:
        if _kernels is not None or _failed or _compiler is None:
            return
        if _compiler.returncode != 0:  # failed, or nothing cached: compiling here would stall frames
            _failed = True
            return
        try:
            from livereader import kernels as module

            _forced.module = module
            module.compile_all()  # every kernel loaded from the cache
            _kernels = module
        except Exception:  # numba missing or broken here: the references read on
            _failed = True
        finally:
            _forced.module = None
    finally:
        _lock.release()


def _reset_in_child() -> None:
    """A forked child starts afresh: its copy of the lock may be held, and its parent's background process (started
    or deferred to its exit) is not its own."""
    global _lock, _compiler, _deferred
    _lock, _compiler, _deferred = threading.Lock(), None, False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def lock_path() -> Path:
    """The file whose lock :func:`one_compiler` takes: one per user, copy of livereader and cache location; in the
    cache directory that ``NUMBA_CACHE_DIR`` names, else beside the kernels' cache in the package's ``__pycache__``
    (made if need be, as numba would), where this user may write (not a folder that others can fill), else in the
    temporary directory."""
    cache = os.environ.get("NUMBA_CACHE_DIR")
    user = os.getuid() if hasattr(os, "getuid") else ""
    place = f"{user}\0{Path(__file__).resolve()}\0{os.path.abspath(cache) if cache else ''}"
    name = f"livereader-kernels-{hashlib.sha256(place.encode()).hexdigest()[:16]}.lock"
    folder = Path(cache) if cache else Path(__file__).parent / "__pycache__"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.gettempdir()) / name
    return folder / name if os.access(folder, os.W_OK) else Path(tempfile.gettempdir()) / name


@contextmanager
def one_compiler(wait: float = LOCK_WAIT) -> Iterator[None]:
    """Around a background process's compile (or load) of the kernels, so that background processes started
    together (each worker process of a pool starts its own) compile once: the first takes an exclusive ``fcntl``
    lock on :func:`lock_path` and holds it while it compiles or loads; each other one waits until that lock is
    free (at most ``wait`` seconds, so that a holder that hangs holds no one for long), lets it go at once and
    loads what the first cached, beside the others. Where there is no ``fcntl`` (Windows) or the file cannot be
    locked, no lock."""
    with ExitStack() as stack:
        try:
            handle: IO[str] | None = stack.enter_context(open(lock_path(), "a"))
        except OSError:  # no lock here
            handle = None
        # another one compiles (or loads): wait until it is done, let the lock go, and load beside the others
        if handle is not None and not _locked(handle):
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not _locked(handle):
                time.sleep(0.1)
            stack.close()
        yield


def _locked(handle: IO[str]) -> bool:
    """Whether the lock on ``handle`` was taken now (False: another process holds it; True also where locking
    fails or there is no ``fcntl``, as there is nothing to wait for)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def use_kernels() -> ModuleType:
    """Read with the kernels from now on in this process; each compiles at its first call where the cache does not
    hold it (tests, and the background process itself)."""
    global _kernels
    from livereader import kernels as module

    _kernels = module
    return module
