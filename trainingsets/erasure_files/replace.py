"""Writing a file's new version beside it, then renaming it over the original: readers see one or the other."""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


class ErasureFileError(Exception):
    """A file is not what the database says (a line missing, another record at it): retrying will not help.

    Messages name lines and files, never a value of the data.
    """


@contextlib.contextmanager
def replacing(path: Path):
    """Yields a temporary path beside `path`; `commit` (the second value) renames it over `path`."""
    temp = path.with_name(f".{path.name}.erase-{uuid.uuid4().hex[:8]}.partial")

    def commit() -> None:
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        shutil.copymode(path, temp)
        os.replace(temp, path)
        _fsync_folder(path.parent)

    try:
        yield temp, commit
    finally:
        temp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the file system lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
