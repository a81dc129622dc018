"""On-disk index layout: generations switched atomically by a pointer file."""

from hippo.store.layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    IndexFiles,
    check_writable,
    collect_garbage,
    current_generation,
    discard_uncommitted,
    next_generation,
    read_index_files,
    write_generation,
)
from hippo.store.locks import IndexLockedError, writer_lock

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "IndexFiles",
    "IndexLockedError",
    "check_writable",
    "collect_garbage",
    "current_generation",
    "discard_uncommitted",
    "next_generation",
    "read_index_files",
    "write_generation",
    "writer_lock",
]
