"""Owner-recording lock files: one process at a time builds the kernels, trains a run.

A lock is a small JSON file ``{"pid", "host", "started"}`` created with ``O_CREAT | O_EXCL``
(atomic on local file systems and NFSv3+); while held, a thread touches it every ``heartbeat``
seconds.  It is *stale*, and broken by the next process that wants it, when its owner is dead
(same host and no process with that pid) or when it was not touched for ``max_age`` seconds (an
owner on another host cannot be checked; a lock left by a crash there would otherwise hold
forever).  A file that cannot be parsed (a crash between create and
write) counts as stale once it is a few seconds old.

Usage::

    with hold(path, timeout=30, on_wait=print) as got:
        if got:
            ...  # we own the lock
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

#: An unreadable lock file younger than this may be one being written right now.
_UNREADABLE_GRACE_S = 5.0


def owner_record() -> dict:
    """What a lock records about its owner: this process's pid, host and the time (epoch s)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}


def read_owner(path: str | os.PathLike) -> dict | None:
    """The owner record of lock ``path``, ``{}`` for an unreadable file, ``None`` when absent."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_reason(path: str | os.PathLike, owner: dict | None, max_age: float | None) -> str | None:
    """Why lock ``path`` with ``owner`` may be broken (owner dead, too old), or ``None`` (held)."""
    if owner is None:
        return None
    try:
        mtime = Path(path).stat().st_mtime
    except OSError:
        return None
    if not owner:
        return "unreadable lock file" if time.time() - mtime > _UNREADABLE_GRACE_S else None
    if owner.get("host") == socket.gethostname() and not pid_alive(int(owner.get("pid") or 0)):
        return f"its owner (pid {owner.get('pid')} on {owner.get('host')}) is dead"
    if max_age is not None and time.time() - mtime > max_age:
        return f"its owner has not touched it for more than {max_age:.0f} s"
    return None


def describe(owner: dict | None) -> str:
    """``pid P on HOST since HH:MM:SS`` for messages."""
    if not owner:
        return "an unknown process"
    when = time.strftime("%H:%M:%S", time.localtime(float(owner.get("started") or 0)))
    return f"pid {owner.get('pid')} on {owner.get('host')} since {when}"


def try_acquire(path: str | os.PathLike, max_age: float | None = None) -> bool:
    """Create lock ``path`` owned by this process; break it first when stale. ``True`` if ours."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            owner = read_owner(path)
            if stale_reason(path, owner, max_age) is None:
                return False
            _break(path, owner)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(owner_record()))
        return True
    return False


def _break(path: Path, owner: dict | None) -> None:
    """Remove the stale lock ``path`` -- unless another process replaced it meanwhile.

    The file is first renamed to a name of our own, so that of two processes breaking the same
    stale lock only one removes it; if what we renamed is not the stale lock we judged (another
    process broke it and took a fresh one in between), it is put back.
    """
    aside = path.with_name(f"{path.name}.{socket.gethostname()}-{os.getpid()}.broken")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return
    if read_owner(aside) != owner:
        with contextlib.suppress(OSError):
            os.link(aside, path)  # fails when yet another process holds the lock now: then it is theirs
    aside.unlink(missing_ok=True)


def release(path: str | os.PathLike) -> None:
    """Remove lock ``path`` if this process owns it."""
    owner = read_owner(path)
    if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
        Path(path).unlink(missing_ok=True)


@contextlib.contextmanager
def hold(path: str | os.PathLike, *, timeout: float | None, poll: float = 0.5, max_age: float | None = None,
         on_wait: Callable[[dict | None], None] | None = None, heartbeat: float = 10.0) -> Iterator[bool]:
    """Acquire lock ``path`` (waiting at most ``timeout`` s; ``None``: until it is free or stale),
    yield whether we got it, release it on exit; touch it every ``heartbeat`` s while held.

    ``on_wait(owner)`` is called once, when the lock is held by someone else at the first try.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    got = try_acquire(path, max_age)
    if not got and on_wait is not None:
        on_wait(read_owner(path))
    while not got and (deadline is None or time.monotonic() < deadline):
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
        got = try_acquire(path, max_age)
    stop = threading.Event()
    if got:
        def touch():
            while not stop.wait(heartbeat):
                with contextlib.suppress(OSError):
                    os.utime(path)

        threading.Thread(target=touch, daemon=True).start()
    try:
        yield got
    finally:
        stop.set()
        if got:
            release(path)


#: Seconds a process waits for another one's kernel build before using the pure-torch paths.
KERNEL_WAIT_ENV = "KGCL_KERNEL_WAIT"
#: A kernel-build lock not touched for this long (s) is stale whoever holds it (its owner touches it every 10 s).
KERNEL_LOCK_MAX_AGE_ENV = "KGCL_KERNEL_LOCK_MAX_AGE"


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise ValueError(f"${name}={value!r}: expected a number of seconds") from None


def build_locked(build_dir: str | os.PathLike, build: Callable[[], object], *, what: str = "compiled kernels",
                 say: Callable[[str], None] = print):
    """Run ``build()`` (a ``torch.utils.cpp_extension.load*`` call) under our own lock in ``build_dir``;
    return its result, or ``None`` when another live process holds the lock for longer than
    ``$KGCL_KERNEL_WAIT`` seconds (default 30; then the caller uses its pure-torch paths).

    torch's own build lock (``build_dir/lock``, a ``FileBaton``) records no owner and is never
    broken: a build killed mid-way leaves it behind and every later process waits on it forever.
    While we hold our lock no other kgcl process builds here, so a ``lock`` file found then was
    left by a dead builder and is removed.  ``say`` prints the one waiting / fallback line.
    """
    build_dir = Path(build_dir)
    wait_s = _env_seconds(KERNEL_WAIT_ENV, 30.0)
    max_age = _env_seconds(KERNEL_LOCK_MAX_AGE_ENV, 300.0)
    ours = build_dir / "kgcl-build.lock"

    def waiting(owner):
        say(f"kgcl: waiting up to {wait_s:.0f} s for the {what} being built by {describe(owner)} "
            f"(lock {ours}; ${KERNEL_WAIT_ENV} sets the wait)")

    with hold(ours, timeout=wait_s, max_age=max_age, on_wait=waiting) as got:
        if not got:
            say(f"kgcl: the {what} are still being built by {describe(read_owner(ours))} after {wait_s:.0f} s; "
                f"using the pure-torch paths in this process (same results, slower)")
            return None
        torch_lock = build_dir / "lock"
        if torch_lock.exists():
            say(f"kgcl: removing {torch_lock} left by an interrupted build")
            torch_lock.unlink(missing_ok=True)
        return build()
