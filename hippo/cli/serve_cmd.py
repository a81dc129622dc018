"""``hippo serve``: run the REST API and MCP server (needs ``pip install "hippo[serve]"``)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import tempfile
from pathlib import Path
from typing import Any

from hippo.cli.common import add_config_args, resolve_config
from hippo.cli.llm_args import add_llm_args, with_llm_args
from hippo.errors import ConfigError, HippoError

EPILOG = """\
keys file (--keys FILE, or the JSON itself in $HIPPO_SERVE_KEYS):
  {"<key>": {"namespaces": ["alice", "team-*"], "write": true, "name": "alice-app", "metrics": false}}
  A key reaches the namespaces it names (shell patterns allowed), read-only unless "write" is true;
  "name" is how it appears in logs (default: a fingerprint; keys are never logged); "metrics" lets it
  read /metrics. Clients send "Authorization: Bearer <key>". A key outside its namespaces gets 403.

endpoints (OpenAPI at /docs):
  GET    /v1/ns                          namespaces this key reaches
  GET    /v1/ns/{ns}                     info: counts, embedder, extractor, config
  POST   /v1/ns/{ns}/passages            {"passages": [{"text", "title"?, "id"?, "metadata"?}]} -> {"ids": [...]} once durable
  PUT    /v1/ns/{ns}/passages            the same, replacing passages whose id exists
  DELETE /v1/ns/{ns}/passages            {"ids": [...]}
  GET    /v1/ns/{ns}/retrieve?q=...&k=5  {"hits": [{"passage_id", "title", "content", "score", ...}], "facts", "seeds"}
  POST   /v1/ns/{ns}/retrieve            {"queries": [...], "k": 5} -> {"results": [...]}
  POST   /v1/ns/{ns}/ask                 {"question": ...} -> the LLM's answer (needs --llm-base-url)
  GET    /healthz, /readyz, /metrics (Prometheus), /docs
  /mcp                                   MCP over streamable HTTP: tools remember, recall, forget, explain,
                                         list_namespaces, each taking the namespace to use

namespaces: names of 1-64 characters a-z 0-9 _ -; each is an index folder under --root, created
by its first write. Errors are JSON problem details (RFC 9457) without stack traces.
concurrency: many readers (concurrent retrieves of a namespace share one batched call), each
seeing every commit at its next read; one writer per namespace behind a bounded queue (503 when
full), holding the index's writer lock while it is in use (--writer-idle); a write is one segment
of the living index, durable when acknowledged; open namespaces are cached (LRU); one embedder
and one spaCy pipeline are loaded at start and shared by all namespaces.
shutdown (SIGINT/SIGTERM): new writes get 503, queued ones are rejected before they start,
running ones finish, then each writer waits for its background merge; a write is atomic, so
none is ever half-applied.
startup errors (missing or malformed keys, a key without namespaces, an unwritable root) print
one line and exit 1. Logs are JSON lines on stderr.
test-only: --set embed.model=hashing:64 serves with a deterministic bag-of-words embedder (no
model load); never for real data.

examples:
  hippo serve --root memories/ --port 8080 --keys keys.json
  hippo serve --root memories/ --no-auth                 # loopback only
  hippo serve --root memories/ --mcp-stdio               # for desktop agents that spawn the server
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve", help="serve namespaced memories over a REST API and MCP",
        description="Serve the namespaces under --root (one hippo index each) over a REST API at /v1, MCP over "
        "streamable HTTP at /mcp, or MCP over stdio (--mcp-stdio).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--root", required=True, metavar="DIR", help="folder of the namespaces (created if missing)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    auth = p.add_argument_group("auth")
    auth.add_argument("--keys", metavar="FILE", help="API keys JSON (default: $HIPPO_SERVE_KEYS, the JSON itself)")
    auth.add_argument("--no-auth", action="store_true", help="no keys, full access; only on a loopback --host")
    auth.add_argument("--public-metrics", action="store_true", help="serve /metrics without a key")
    auth.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                      help="allow browser calls from ORIGIN (repeatable; default: CORS off)")
    p.add_argument("--mcp-stdio", action="store_true",
                   help="speak MCP over stdin/stdout instead of HTTP; with keys, the session acts as the key in "
                   "$HIPPO_API_KEY, without keys it has full access")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-body-bytes", type=int, default=8 << 20, metavar="N", help="largest request body (8 MiB)")
    lim.add_argument("--max-batch", type=int, default=256, metavar="N", help="passages or ids per write (256)")
    lim.add_argument("--max-queries", type=int, default=64, metavar="N", help="queries per batch retrieve (64)")
    lim.add_argument("--max-k", type=int, default=100, metavar="N", help="largest k (100)")
    lim.add_argument("--rate", type=float, default=50.0, metavar="R", help="requests/s per key, 0 = unlimited (50)")
    lim.add_argument("--burst", type=int, default=100, metavar="N", help="requests a key may make at once (100)")
    lim.add_argument("--read-timeout", type=float, default=30.0, metavar="S", help="seconds per read (30)")
    lim.add_argument("--write-timeout", type=float, default=600.0, metavar="S",
                     help="seconds a request waits for its write (600)")
    lim.add_argument("--write-queue", type=int, default=64, metavar="N", help="queued writes per namespace (64)")
    lim.add_argument("--read-threads", type=int, default=4, metavar="N", help="reads computed at once (4)")
    lim.add_argument("--no-batch-reads", dest="batch_reads", action="store_false",
                     help="answer each retrieve alone (default: concurrent retrieves of a namespace share one batch)")
    lim.add_argument("--write-threads", type=int, default=2, metavar="N", help="namespaces written at once (2)")
    lim.add_argument("--max-open", type=int, default=32, metavar="N", help="namespaces kept open, LRU (32)")
    lim.add_argument("--writer-idle", type=float, default=60.0, metavar="S",
                     help="seconds a namespace's writer holds its index (and writer lock) open after its last "
                     "write (60)")
    lim.add_argument("--cache-mb", type=int, default=8192, metavar="MB",
                     help="index bytes the open namespaces may map before the LRU one closes (8192)")
    lim.add_argument("--drain-timeout", type=float, default=60.0, metavar="S",
                     help="seconds shutdown waits for running writes (60)")
    p.add_argument("--log-format", choices=["json", "text"], default="json", help="log lines on stderr (json)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    add_config_args(p)
    add_llm_args(p)
    p.set_defaults(func=run)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_root(root: Path) -> Path:
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise HippoError(f"--root {root} is not a writable folder ({exc.strerror or exc}); give a folder this "
                         f"user can write") from None
    return root.resolve()


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import mcp  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise HippoError(f"hippo serve needs the serve extra ({exc.name} is missing): pip install 'hippo[serve]'") from None
    from hippo.serve.keys import FULL_ACCESS, STDIO_KEY_ENV, load_keys
    from hippo.serve.observe import setup_logging
    from hippo.serve.settings import Limits, ServeSettings

    if args.no_auth and not _loopback(args.host):
        raise ConfigError(f"--no-auth serves every namespace to anyone who can connect, so it is allowed only on a "
                          f"loopback --host (127.0.0.1, ::1, localhost), not {args.host}; give --keys FILE instead")
    loaded = None if args.no_auth else load_keys(args.keys)
    if loaded is None and not args.no_auth and not args.mcp_stdio:
        raise ConfigError("give --keys FILE (or the keys JSON in $HIPPO_SERVE_KEYS), or --no-auth on a loopback host")
    root = _check_root(Path(args.root))
    try:
        limits = Limits(
            max_body_bytes=args.max_body_bytes, max_passages=args.max_batch, max_queries=args.max_queries,
            max_k=args.max_k, rate=args.rate, burst=args.burst, read_timeout=args.read_timeout,
            write_timeout=args.write_timeout, write_queue=args.write_queue, read_threads=args.read_threads,
            batch_reads=args.batch_reads, write_threads=args.write_threads, max_engines=args.max_open,
            cache_bytes=args.cache_mb << 20, writer_idle=args.writer_idle,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    config = with_llm_args(resolve_config(args), args)
    settings = ServeSettings(root, config, loaded[0] if loaded else None, args.host, limits,
                             tuple(args.cors_origin), args.public_metrics, args.drain_timeout)
    setup_logging(args.log_format, args.log_level)
    import logging

    log = logging.getLogger("hippo.serve")
    for warning in loaded[1] if loaded else []:
        log.warning(warning)
    from hippo.embed import make_embedder

    embedder = make_embedder(config.embed, config.llm)
    embedder.encode_queries(["warm up"])  # load the model now, not on the first request
    if config.retrieval.query_ner or config.extract.extractor in ("spacy", "precomputed"):
        from hippo.extract.spacy_ie import load_spacy_model

        load_spacy_model(config.extract.spacy_model)  # once per process, shared by queries and extraction
    llm = _llm_client(config)

    if args.mcp_stdio:
        import anyio

        from hippo.serve.app import build_service, run_stdio

        grant = FULL_ACCESS
        if settings.keys is not None:
            key = os.environ.get(STDIO_KEY_ENV, "")
            found = settings.keys.lookup(key) if key else None
            if found is None:
                raise HippoError(f"with keys, --mcp-stdio acts as the key in ${STDIO_KEY_ENV}, which is "
                                 f"{'unknown' if key else 'not set'}; set it to one of the keys")
            grant = found
        anyio.run(run_stdio, build_service(settings, embedder, llm), grant, args.drain_timeout)
        return 0

    from hippo.serve.app import create_app

    app = create_app(settings, embedder, llm=llm)
    server = uvicorn.Server(uvicorn.Config(
        app, host=args.host, port=args.port, log_config=None, access_log=False, server_header=False,
        timeout_graceful_shutdown=int(args.drain_timeout), lifespan="on", timeout_keep_alive=5,
    ))
    server.run()
    if not server.started:
        raise HippoError(f"could not serve on {args.host}:{args.port} (see the log line above: port in use?)")
    return 0


def _llm_client(config: Any) -> Any:
    """The shared LLM client when one is configured (``--llm-base-url``, ``llm.base_url`` or
    ``$OPENAI_BASE_URL``), else None (``ask`` answers 501)."""
    if not (config.llm.base_url or os.environ.get("OPENAI_BASE_URL")):
        return None
    from hippo.llm import make_llm_client

    return make_llm_client(config.llm)

