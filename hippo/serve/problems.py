"""Errors the service answers with, as RFC 9457 problem details (``application/problem+json``).

A :class:`Problem` carries its HTTP status; the app turns it, request validation errors and
any unexpected exception into ``{"type", "title", "status", "detail", ...}`` bodies. No stack
trace ever reaches a client: an unexpected error is logged with a request id and answered
with that id only.
"""

from __future__ import annotations

import errno
from typing import Any

from hippo.errors import CorpusError, EmbedderMismatchError, HippoError

PROBLEM_JSON = "application/problem+json"
_TYPE = "https://hippo.dev/problems/"


class Problem(HippoError):
    """An error with an HTTP status, a short title and a detail that names the fix."""

    def __init__(self, status: int, title: str, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str = "") -> dict[str, Any]:
        """The problem details object."""
        slug = self.title.lower().replace(" ", "-")
        out: dict[str, Any] = {"type": _TYPE + slug, "title": self.title, "status": self.status, "detail": self.detail}
        if instance:
            out["instance"] = instance
        out.update(self.extra)
        return out


def forbidden(namespace: str) -> Problem:
    """403: the key does not reach ``namespace`` (said the same way whether it exists or not)."""
    return Problem(403, "Forbidden", f"this key does not grant the namespace {namespace!r}")


def storage_problem(exc: OSError) -> Problem | None:
    """507 for a full disk or quota, 503 for a read-only file system; None for other OS errors."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return Problem(507, "Insufficient Storage",
                       "the server's disk is full; nothing was written. Free space on the server, then retry",
                       {"Retry-After": "60"})
    if exc.errno == errno.EROFS:
        return Problem(503, "Read Only", "the server's storage is read-only; nothing was written", {"Retry-After": "60"})
    return None


def as_problem(exc: BaseException) -> Problem | None:
    """The problem a library error maps to, or None when it is unexpected (a 500)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, OSError):
        return storage_problem(exc)
    from hippo.serve.keys import NamespaceError
    from hippo.store import IndexLockedError

    if isinstance(exc, NamespaceError):
        return Problem(404, "Not Found", str(exc))
    if isinstance(exc, IndexLockedError):
        return Problem(409, "Locked", "another process is writing this namespace's index; retry in a moment",
                       {"Retry-After": "5"})
    if isinstance(exc, EmbedderMismatchError):
        return Problem(409, "Embedder Mismatch", f"this namespace was indexed with another embedder than the "
                       f"server's: {exc}")
    if isinstance(exc, CorpusError):
        return Problem(422, "Invalid Passages", str(exc))
    return None
