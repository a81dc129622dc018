"""API keys and namespace names: who may read or write which namespace.

A keys file is JSON ``{"<key>": {"namespaces": ["alice", "team-*"], "write": true}}``. Each key
grants namespaces by exact name or shell-style pattern (``*``, ``?``), read-only unless
``write`` is true. Optional fields: ``name`` (how the key appears in logs; default a short
fingerprint, never the key), ``metrics`` (may read ``/metrics``). Keys are looked up by their
SHA-256 digest, so a key is never compared character by character nor kept in a log line.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hippo.errors import HippoError

NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
"""A namespace name: 1-64 of ``a-z 0-9 _ -``, starting with a letter or digit. No dots, no
slashes, no upper case: a name is always one plain folder under ``--root``."""
PATTERN_RE = re.compile(r"^[a-z0-9_*?-]{1,64}$")
KEYS_ENV = "HIPPO_SERVE_KEYS"
"""Environment variable that may hold the keys JSON itself (instead of ``--keys FILE``)."""
STDIO_KEY_ENV = "HIPPO_API_KEY"
"""Environment variable naming the key an ``--mcp-stdio`` session acts as (with keys)."""
_FIELDS = {"namespaces", "write", "name", "metrics"}


class NamespaceError(HippoError):
    """A namespace name is not valid."""


class KeysError(HippoError):
    """A keys file or variable is missing or malformed."""


def check_namespace(name: str) -> str:
    """``name`` if it is a valid namespace name, else :class:`NamespaceError` saying the rule."""
    if not isinstance(name, str) or not NAMESPACE_RE.match(name):
        shown = name if isinstance(name, str) and len(name) <= 80 else f"{str(name)[:80]}..."
        raise NamespaceError(
            f"{shown!r} is not a valid namespace name: use 1-64 characters of a-z, 0-9, '_' and '-', "
            f"starting with a letter or digit"
        )
    return name


def fingerprint(key: str) -> str:
    """A short, non-reversible name for a key in logs: ``key-`` and 8 hex digits of its SHA-256."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Grant:
    """What one key may do."""

    name: str
    patterns: tuple[str, ...]
    write: bool = False
    metrics: bool = False

    def allows(self, namespace: str) -> bool:
        """Whether the key reaches ``namespace`` (exact name or pattern match)."""
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.patterns)

    def visible(self, names: Iterable[str]) -> list[str]:
        """The names this key reaches, sorted."""
        return sorted(n for n in names if self.allows(n))


FULL_ACCESS = Grant("no-auth", ("*",), write=True, metrics=True)
"""The grant of every request when the server runs with ``--no-auth`` (loopback only)."""


class KeyRing:
    """Keys by SHA-256 digest; :meth:`lookup` finds a key's grant."""

    def __init__(self, grants: Mapping[str, Grant]) -> None:
        self._by_digest = {hashlib.sha256(k.encode()).digest(): g for k, g in grants.items()}

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, key: str) -> Grant | None:
        """The grant of ``key``, or None for an unknown key."""
        return self._by_digest.get(hashlib.sha256(key.encode()).digest())


def parse_keys(text: str, source: str) -> tuple[KeyRing, list[str]]:
    """A key ring from keys JSON, and warnings (short keys). Raises :class:`KeysError`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeysError(f"{source}: malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                        f'expected {{"<key>": {{"namespaces": ["alice", "team-*"], "write": true}}}}') from None
    if not isinstance(data, dict) or not data:
        raise KeysError(f'{source}: expected a non-empty JSON object {{"<key>": {{"namespaces": [...], "write": true}}}}')
    grants: dict[str, Grant] = {}
    warnings: list[str] = []
    for i, (key, spec) in enumerate(data.items(), 1):
        where = f"{source}: key #{i}"  # never the key itself
        if not key or key != key.strip() or any(c.isspace() for c in key):
            raise KeysError(f"{where}: a key must be a non-empty string without spaces")
        if not isinstance(spec, dict):
            raise KeysError(f'{where}: expected an object {{"namespaces": [...], "write": true}}, got {type(spec).__name__}')
        unknown = sorted(set(spec) - _FIELDS)
        if unknown:
            raise KeysError(f"{where}: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(_FIELDS))}")
        patterns = spec.get("namespaces")
        if not isinstance(patterns, list) or not patterns:
            raise KeysError(f'{where} grants no namespace: give "namespaces": ["name", "prefix-*", ...]')
        for p in patterns:
            if not isinstance(p, str) or not PATTERN_RE.match(p):
                raise KeysError(f"{where}: {p!r} is not a namespace name or pattern (a-z, 0-9, '_', '-', '*', '?')")
        for flag in ("write", "metrics"):
            if not isinstance(spec.get(flag, False), bool):
                raise KeysError(f'{where}: "{flag}" must be true or false')
        name = spec.get("name", fingerprint(key))
        if not isinstance(name, str) or not name:
            raise KeysError(f'{where}: "name" must be a non-empty string')
        if len(key) < 16:
            warnings.append(f"{where} ({name}) is shorter than 16 characters: easy to guess")
        grants[key] = Grant(name, tuple(patterns), bool(spec.get("write", False)), bool(spec.get("metrics", False)))
    return KeyRing(grants), warnings


def load_keys(path: str | Path | None, env: Mapping[str, str] | None = None) -> tuple[KeyRing, list[str]] | None:
    """Keys from ``path``, else from ``$HIPPO_SERVE_KEYS`` (the JSON itself); None when neither."""
    env = os.environ if env is None else env
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeysError(f"keys file not found: {p}; create it, e.g. "
                            f'{{"<key>": {{"namespaces": ["alice"], "write": true}}}}') from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeysError(f"cannot read keys file {p}: {getattr(exc, 'strerror', None) or exc}") from None
        return parse_keys(text, str(p))
    from_env = env.get(KEYS_ENV)
    if from_env:
        return parse_keys(from_env, f"${KEYS_ENV}")
    return None


def bearer(header: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def describe_grant(grant: Grant) -> dict[str, Any]:
    """JSON form of a grant (for ``GET /v1/whoami``): name, patterns, rights."""
    return {"name": grant.name, "namespaces": list(grant.patterns), "write": grant.write}
