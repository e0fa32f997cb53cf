"""The experiment store's file-system side: one writer per experiment, durable replacement.

``ExclusiveLock``: an exclusive, non-blocking ``flock`` on ``PATH.lock``. The
lock file holds one line naming its holder ("pid 123 on host h since
2024-05-01 12:00:00"), read back for the message a second writer gets. The
kernel drops the lock when its holder exits or dies (SIGKILL included), so a
stale lock file never blocks anyone: the next writer takes it over. The holder
removes the file on release, while still holding the lock; an opener that
locked a file removed under it notices (the path names another inode) and
tries again on the new one.

``replace_durably``: a new file under a fresh temporary name (``mkstemp``: never
reused, so no process adopts another's leftovers), fsynced, renamed into place,
its folder fsynced. ``check_writable``: the refusal made before anything is created.
"""
import fcntl
import os
import socket
import tempfile
import time

from minilottery.errors import StoreError


def fsync_dir(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(final, write):
    """Make ``final`` by ``write(tmp_path)`` on a temporary ``.NAME.XXXXXXXX.tmp`` beside it; returns its size."""
    folder = os.path.dirname(os.path.abspath(final))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(final) + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        size = os.path.getsize(tmp)
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_dir(folder)
    return size


def check_writable(path, what="experiment file", error=StoreError):
    """Refuse, before anything is created, an output path that cannot be written (missing folders
    are fine: they are made when the file is written)."""
    if not os.fspath(path):
        raise error(f"{what}: the path is empty: give the path of a file")
    if os.path.isdir(path):
        raise error(f"{path} is a directory, not an {what}: give the path of a file")
    if os.path.islink(path) and not os.path.exists(path):
        raise error(f"{what} {path} is a symbolic link to {os.readlink(path)}, which does not exist: "
                    f"remove the link or give the path of a file")
    if os.path.exists(path) and not os.path.isfile(path):
        raise error(f"{what} {path} exists and is not a regular file (a device, a pipe, a socket): "
                    f"give the path of a file")
    probe = os.path.dirname(os.path.realpath(path))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise error(f"{what} {path} cannot be created: {probe} is a file, not a folder: choose another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise error(f"{what} {path} cannot be written: no write permission in {probe}: choose another path")


class LockHeld(Exception):
    """The lock is held by someone else; ``holder`` is the line they wrote."""

    def __init__(self, holder):
        super().__init__(holder)
        self.holder = holder


class ExclusiveLock:
    def __init__(self, path):
        self.path, self.fd = str(path), None

    def acquire(self):
        """Take the lock at once or raise LockHeld; OSError where the file cannot be made."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 400, 0).decode("utf-8", "replace").strip()
                os.close(fd)
                raise LockHeld(holder or "another process (starting up)") from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)                       # its holder removed it as we opened it: take the new one
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        line = f"pid {os.getpid()} on host {socket.gethostname()} since {stamp}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, line.encode(), 0)
        self.fd = fd

    def release(self):
        if self.fd is None:
            return
        try:
            os.unlink(self.path)               # while still locked: nobody can hold this inode
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None
