"""Files we write: written whole or not at all (a temporary file in the same folder, renamed into
place, so an interrupt, a signal or a full disk never leaves a half-written result under the real
name), and their paths checked before any work: one line naming the problem, never a traceback
at the end.

One rule for every option: a file option (--json, --output/-o, --store, export files) needs an existing
folder; a folder option (--html, --out) may name a folder that does not exist yet, which is created
like `mkdir` (its parent must exist: a missing parent is more likely a typo). Writability is tested by
trying, not by `os.access`, which says yes to root on a read-only file system or in /proc."""
from __future__ import annotations

import errno
import os
import stat
import tempfile

from .errors import SpuriousError


def _why(error: OSError) -> str:
    if error.errno == errno.EROFS:
        return "read-only file system"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return os.strerror(error.errno) if error.errno else str(error)


def unwritable_folder(folder: str) -> str | None:
    """Why new files cannot be made in `folder` (None if they can): a probe file, removed at once."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".spurious-probe-", dir=folder)
    except OSError as error:
        return _why(error)
    os.close(fd)
    os.unlink(probe)
    return None


def unwritable_file(path: str) -> str | None:
    """Why an existing file cannot be written (None if it can); opened for appending, nothing written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError as error:
        return _why(error)
    os.close(fd)
    return None


def check_output_file(path: str, option: str):
    """A file we may write: not a folder, in an existing folder we can write, writable if it exists.
    A symbolic link is followed (the file it names is written); a character device such as /dev/null
    is written directly; a FIFO, socket or block device is refused (writing would block or destroy)."""
    if not path:
        raise SpuriousError(f"{option}: empty path")
    if os.path.isdir(path):
        raise SpuriousError(f"{option} {path}: is a folder, not a file")
    target = os.path.realpath(path)
    if os.path.exists(target) and not os.path.isfile(target):
        if stat.S_ISCHR(os.stat(target).st_mode):
            why = unwritable_file(target)
            if why:
                raise SpuriousError(f"{option} {path}: cannot write ({why})")
            return
        raise SpuriousError(f"{option} {path}: is not a regular file (a FIFO, socket or device)")
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        raise SpuriousError(f"{option} {path}: folder {folder} {what}")
    why = unwritable_file(path) if os.path.exists(path) else unwritable_folder(folder)
    if why:
        raise SpuriousError(f"{option} {path}: cannot write ({why})")


def check_output_folder(path: str, option: str):
    """A folder we may write into: an existing writable folder, or a new one whose parent exists and
    is writable (created by the writer, after the work)."""
    if not path:
        raise SpuriousError(f"{option}: empty path")
    if os.path.exists(path) and not os.path.isdir(path):
        raise SpuriousError(f"{option} {path}: is a file, not a folder")
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path.rstrip("/\\") or path))
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        raise SpuriousError(f"{option} {path}: its parent folder {folder} {what}")
    why = unwritable_folder(folder)
    if why:
        raise SpuriousError(f"{option} {path}: cannot write ({why})")


def write_atomic(path: str | os.PathLike, data: str | bytes):
    path = os.path.realpath(os.fspath(path))  # through a symbolic link, not over it
    blob = data.encode("utf-8") if isinstance(data, str) else data
    if os.path.exists(path) and stat.S_ISCHR(os.stat(path).st_mode):  # /dev/null, a terminal
        with open(path, "wb") as fh:
            fh.write(blob)
        return
    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
