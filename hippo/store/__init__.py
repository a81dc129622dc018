"""On-disk index layout: generations switched atomically by a pointer file."""

from hippo.store.layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    IndexFiles,
    current_generation,
    read_index_files,
    write_generation,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "IndexFiles",
    "current_generation",
    "read_index_files",
    "write_generation",
]
