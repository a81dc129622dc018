"""The only owner of index files: segments, the manifest that lists them, locks and the resume cache."""

from hippo.store.locks import IndexLockedError, writer_lock
from hippo.store.segments import (
    FORMAT_NAME,
    FORMAT_VERSION,
    OpenIndex,
    SegmentFiles,
    check_writable,
    collect_garbage,
    commit,
    is_format1,
    open_index_files,
    read_history,
    read_manifest,
    write_segment,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "IndexLockedError",
    "OpenIndex",
    "SegmentFiles",
    "check_writable",
    "collect_garbage",
    "commit",
    "is_format1",
    "open_index_files",
    "read_history",
    "read_manifest",
    "write_segment",
    "writer_lock",
]
