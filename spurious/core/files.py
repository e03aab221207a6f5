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


#: bytes our temporary name adds to a file's name (".NAME." + 8 random characters + ".tmp")
TEMPORARY_NAME_EXTRA = 16


def _special(path: str) -> str | None:
    """For an existing path that is not a regular file or folder: None if we may write straight into
    it (a character device such as /dev/null, a FIFO with a reader such as a shell's >(...)), else why not."""
    mode = os.stat(path).st_mode
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        return "is not a regular file (a socket or a block device)"
    try:  # O_NONBLOCK: a FIFO without a reader says ENXIO instead of blocking
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as error:
        if error.errno == errno.ENXIO:
            return "is a FIFO with no reader (writing would block)"
        return f"cannot write ({_why(error)})"
    return None


def _name_fits(path: str, option: str):
    folder = os.path.dirname(os.path.abspath(path)) or "/"
    try:
        longest = os.pathconf(folder if os.path.isdir(folder) else "/", "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    name = os.path.basename(os.path.abspath(path))
    if len(name.encode()) + TEMPORARY_NAME_EXTRA > longest:
        raise SpuriousError(f"{option}: the name {name[:40]}... is too long ({len(name.encode())} bytes; at most "
                            f"{longest - TEMPORARY_NAME_EXTRA} here)")


def check_output_file(path: str, option: str):
    """A file we may write: not a folder, in an existing folder we can write, writable if it exists.
    A symbolic link is followed (the file it names is written); a character device (/dev/null) or a
    FIFO with a reader (a shell's >(...)) is written directly; anything else that is not a regular
    file is refused."""
    if not path:
        raise SpuriousError(f"{option}: empty path")
    if os.path.isdir(path):
        raise SpuriousError(f"{option} {path}: is a folder, not a file")
    if os.path.exists(path) and not os.path.isfile(path):
        why = _special(path)
        if why:
            raise SpuriousError(f"{option} {path}: {why}")
        return
    target = os.path.realpath(path)
    _name_fits(target, option)
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
    if not os.path.isdir(path):
        _name_fits(path.rstrip("/\\") or path, option)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path.rstrip("/\\") or path))
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        raise SpuriousError(f"{option} {path}: its parent folder {folder} {what}")
    why = unwritable_folder(folder)
    if why:
        raise SpuriousError(f"{option} {path}: cannot write ({why})")


def write_atomic(path: str | os.PathLike, data: str | bytes):
    path = os.fspath(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    if os.path.exists(path) and not os.path.isfile(path):  # /dev/null, a pipe: straight in, never replaced
        with open(path, "wb") as fh:
            fh.write(blob)
        return
    path = os.path.realpath(path)  # through a symbolic link, not over it
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
