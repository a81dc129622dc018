"""The living index: segments, the writer, snapshots, compaction (``store/`` owns the files)."""
