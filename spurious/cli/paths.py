"""Output paths checked before any work: one line naming the problem, never a traceback at the end."""
from __future__ import annotations

import os

from ..core.errors import SpuriousError


def check_output_file(path: str, option: str):
    """A file we may write: not a folder, in an existing writable folder, and writable if it exists."""
    if os.path.isdir(path):
        raise SpuriousError(f"{option} {path}: is a folder, not a file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SpuriousError(f"{option} {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise SpuriousError(f"{option} {path}: not writable")
