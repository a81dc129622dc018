"""The ASGI application: REST under ``/v1``, MCP at ``/mcp``, health, readiness and metrics.

A guard in front of everything authenticates (``Authorization: Bearer``), applies the key's
rate limit and the body limit, answers errors as problem details, and writes one structured
log line and the metrics of each request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from hippo import __version__
from hippo.errors import HippoError
from hippo.protocols import Embedder, LLMClient
from hippo.serve.api import GRANT_KEY, router
from hippo.serve.keys import FULL_ACCESS, Grant, NamespaceError, bearer, check_namespace
from hippo.serve.mcp_tools import build_mcp
from hippo.serve.models import StatusOut
from hippo.serve.namespaces import Namespaces
from hippo.serve.observe import Metrics
from hippo.serve.problems import PROBLEM_JSON, Problem, as_problem, forbidden
from hippo.serve.service import Service
from hippo.serve.settings import ServeSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("hippo.serve")
access = logging.getLogger("hippo.serve.access")
NS_PREFIX = "/v1/ns/"
REQUEST_ID_KEY = "hippo.request_id"
PUBLIC = ("/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json")
DESCRIPTION = """Namespaced long-term memory over hippo indexes: add, update, delete and retrieve passages
(HippoRAG 2 knowledge graph + Personalized PageRank), batch retrieve, ask an LLM, describe a namespace.
Authenticate with `Authorization: Bearer <key>`; a key reaches only the namespaces its keys-file entry grants.
Errors are RFC 9457 problem details. MCP (streamable HTTP) is served at `/mcp`."""


def problem_response(problem: Problem, instance: str = "") -> JSONResponse:
    """A problem as an ``application/problem+json`` response."""
    return JSONResponse(problem.body(instance), status_code=problem.status, headers=problem.headers,
                        media_type=PROBLEM_JSON)


class RateLimiter:
    """A token bucket per key: ``rate`` requests per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets: dict[object, tuple[float, float]] = {}

    def wait_for(self, who: object) -> float:
        """0 when ``who`` may go now (a token is taken), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        tokens, last = self._buckets.get(who, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[who] = (tokens - 1.0, now)
            return 0.0
        self._buckets[who] = (tokens, now)
        return (1.0 - tokens) / self.rate


class _TooLarge(Exception):
    pass


class Guard:
    """Authentication, rate limits, body limit, problem details, request log and metrics."""

    def __init__(self, app: ASGIApp, settings: ServeSettings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.limiter = RateLimiter(settings.limits.rate, settings.limits.burst)

    def _needs_key(self, path: str) -> bool:
        if path in PUBLIC:
            return False
        if path == "/metrics":
            return not self.settings.public_metrics
        return path.startswith(("/v1", "/mcp"))

    def _authenticate(self, scope: Scope) -> Grant:
        if self.settings.keys is None:
            return FULL_ACCESS
        header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        key = bearer(header)
        challenge = {"WWW-Authenticate": 'Bearer realm="hippo"'}
        if key is None:
            raise Problem(401, "Unauthorized", "send the key as 'Authorization: Bearer <key>'", challenge)
        grant = self.settings.keys.lookup(key)
        if grant is None:
            raise Problem(401, "Unauthorized", "unknown key", challenge)
        return grant

    async def _body(self, scope: Scope, receive: Receive) -> Receive:
        """Read the body (at most the limit) and hand it on; 413 past the limit."""
        limit = self.settings.limits.max_body_bytes
        length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > limit:
            raise _TooLarge()
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(self.settings.limits.read_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":  # the client left before sending it all
                        raise _Disconnected()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise _TooLarge()
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise Problem(408, "Request Timeout", f"the body did not arrive within "
                          f"{self.settings.limits.read_timeout:g} s; nothing was done") from None
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = uuid.uuid4().hex[:12]
        scope[REQUEST_ID_KEY] = rid
        path: str = scope["path"]
        state = {"status": 0}
        grant: Grant | None = None

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            if self._needs_key(path):
                grant = self._authenticate(scope)
                wait = self.limiter.wait_for(id(grant) if self.settings.keys is not None else _client(scope))
                if wait > 0:
                    self.metrics.rejected.inc()
                    raise Problem(429, "Too Many Requests", f"this key is over its rate limit of "
                                  f"{self.settings.limits.rate:g} requests/s; retry after {wait:.2f} s",
                                  {"Retry-After": str(max(1, round(wait + 0.5)))})
                scope[GRANT_KEY] = grant
                _check_path_namespace(path, grant)
            if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
                receive = await self._body(scope, receive)
                if path.startswith("/v1/"):
                    _json_content_type(scope)
            await self.app(scope, receive, tracked)
        except _Disconnected:
            state["status"] = 499
        except _TooLarge:
            await _send_problem(Problem(413, "Body Too Large", f"the request body is over "
                                        f"{self.settings.limits.max_body_bytes} bytes; send less per request"),
                                path, tracked, state)
        except Problem as problem:
            await _send_problem(problem, path, tracked, state)
        except NamespaceError as exc:
            await _send_problem(Problem(404, "Not Found", str(exc)), path, tracked, state)
        except Exception:
            log.exception("unexpected error", extra={"request_id": rid, "path": path})
            await _send_problem(Problem(500, "Internal Error", f"an unexpected error; the server log has it under "
                                        f"request id {rid}", request_id=rid), path, tracked, state)
        finally:
            elapsed = time.perf_counter() - t0
            route = scope.get("route")
            template = getattr(route, "path", None) or _unrouted(path)
            status = state["status"] or 499
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(elapsed)
            ns = (scope.get("path_params") or {}).get("ns")
            access.info("request", extra={
                "request_id": rid, "method": scope["method"], "route": template, "namespace": ns,
                "status": status, "ms": round(elapsed * 1000, 2), "key": grant.name if grant else None,
            })


class _Disconnected(Exception):
    pass


def _check_path_namespace(path: str, grant: Grant) -> None:
    """Refuse a namespace the key does not reach before anything else looks at the request
    (routing, method, body): 404 for a name that cannot be one, 403 for one not granted."""
    if not path.startswith(NS_PREFIX):
        return
    name = path[len(NS_PREFIX):].split("/", 1)[0]
    if not name and path == NS_PREFIX:
        return
    check_namespace(name)
    if not grant.allows(name):
        raise forbidden(name)


def _json_content_type(scope: Scope) -> None:
    """The REST API reads only JSON: a body sent without a type, or as curl's default form
    type (``curl -d '{...}'``), is read as JSON (and answered 422 if it is not)."""
    headers = [(k, v) for k, v in scope.get("headers", ()) if k != b"content-type"]
    given = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
    if given in (b"", b"application/x-www-form-urlencoded"):
        scope["headers"] = [*headers, (b"content-type", b"application/json")]


def _unrouted(path: str) -> str:
    """A metrics label for a request answered before routing (or matching no route)."""
    if path.startswith("/mcp"):
        return "/mcp"
    return "/v1/ns/{ns}/*" if path.startswith(NS_PREFIX) else "unmatched"


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


async def _send_problem(problem: Problem, path: str, send: Send, state: dict[str, int]) -> None:
    if state["status"]:  # the response already started: nothing more can be said
        return
    response = problem_response(problem, path)
    await response({"type": "http"}, _never, send)


async def _never() -> Message:  # pragma: no cover - a plain response never receives
    return {"type": "http.disconnect"}


def _install_handlers(api: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        problem = as_problem(exc)
        if problem is None:
            raise exc
        return problem_response(problem, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        problem = Problem(422, "Invalid Request", f"{len(errors)} problem(s) with the request; see errors",
                          errors=errors)
        return problem_response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: "Not Found", 405: "Method Not Allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else "see the API documentation at /docs"
        if exc.status_code == 404:
            detail = f"no such endpoint: {request.method} {request.url.path}; the API is documented at /docs"
        if exc.status_code == 400:  # FastAPI could not decode the body: a malformed body, like invalid JSON
            problem = Problem(422, "Invalid Request", "the body is not JSON text (UTF-8)",
                              errors=[{"loc": ["body"], "msg": detail, "type": "json_invalid"}])
            return problem_response(problem, request.url.path)
        problem = Problem(exc.status_code, titles.get(exc.status_code, "Error"), detail, dict(exc.headers or {}))
        return problem_response(problem, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Starlette sends this answer, then re-raises: the guard logs the error with its trace.
        rid = request.scope.get(REQUEST_ID_KEY, "?")
        return problem_response(Problem(500, "Internal Error", f"an unexpected error; the server log has it under "
                                        f"request id {rid}", request_id=rid), request.url.path)

    api.add_exception_handler(Exception, on_unexpected)
    api.add_exception_handler(HippoError, on_problem)
    api.add_exception_handler(OSError, on_problem)
    api.add_exception_handler(RequestValidationError, on_validation)
    api.add_exception_handler(StarletteHTTPException, on_http)


def create_app(
    settings: ServeSettings,
    embedder: Embedder,
    *,
    llm: LLMClient | None = None,
) -> ASGIApp:
    """The service as an ASGI app for uvicorn. ``embedder`` (and ``llm``, which enables
    ``ask``) are shared by every namespace."""
    service = build_service(settings, embedder, llm)
    namespaces = service.ns
    metrics = Metrics()

    def grant_for(ctx: Context) -> Grant:
        if settings.keys is None:
            return FULL_ACCESS
        grant = settings.keys.lookup(bearer((ctx.headers or {}).get("authorization")) or "")
        if grant is None:  # the guard already refused it; a second look costs a hash
            raise ToolError("Unauthorized: send the key as 'Authorization: Bearer <key>'")
        return grant

    mcp = build_mcp(service, grant_for)
    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True,
                                      host=settings.host, max_request_body_size=settings.limits.max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            service.ready = True
            for name in namespaces.outdated():
                log.warning("namespace %s holds a format-1 index (written before the living index) and is not served "
                            "until upgraded: hippo upgrade %s", name, settings.root / name,
                            extra={"event": "outdated", "namespace": name})
            log.info("serving", extra={"event": "start", "root": str(settings.root), "namespaces": len(namespaces.names()),
                                       "auth": settings.keys is not None})
            try:
                yield
            finally:
                service.ready = False
                outcome = await namespaces.drain(settings.drain_timeout)
                log.info("stopped", extra={"event": "stop", **outcome})

    api = FastAPI(title="hippo", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json", redirect_slashes=False)
    api.state.service = service
    _install_handlers(api)
    api.include_router(router)

    @api.get("/healthz", response_model=StatusOut, summary="Liveness", tags=["ops"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "detail": {"version": __version__, "uptime_s": round(time.time() - service.started, 1)}}

    @api.get("/readyz", response_model=StatusOut, summary="Readiness", tags=["ops"],
             responses={503: {"description": "Starting or shutting down"}})
    async def readyz() -> Response:
        writable = os.access(settings.root, os.W_OK)
        ready = service.ready and not namespaces.draining and writable
        body = {"status": "ready" if ready else "unavailable",
                "detail": {"draining": namespaces.draining, "root_writable": writable}}
        return JSONResponse(body, status_code=200 if ready else 503)

    @api.get("/metrics", summary="Prometheus metrics", tags=["ops"], response_class=Response,
             responses={403: {"description": "The key may not read metrics"}})
    async def prometheus(request: Request) -> Response:
        grant: Grant | None = request.scope.get(GRANT_KEY)
        if grant is not None and not grant.metrics:
            raise Problem(403, "Forbidden", 'this key may not read metrics: give it "metrics": true in the keys file')
        metrics.queue.clear()
        for ns, depth in namespaces.queue_depth().items():
            metrics.queue.labels(ns).set(depth)
        metrics.engines.set(len(namespaces.engines))
        metrics.writers.set(namespaces.open_writers())
        metrics.engine_bytes.set(namespaces.engines.nbytes)
        if service.batcher is not None:
            metrics.batches.set(service.batcher.batches)
            metrics.batched.set(service.batcher.queries)
        metrics.passages.clear()
        for ns, count in namespaces.engines.passage_counts().items():
            metrics.passages.labels(ns).set(count)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/mcp" or path.startswith("/mcp/")):
            await mcp_app(scope, receive, send)
        else:
            await api(scope, receive, send)

    app: ASGIApp = Guard(dispatch, settings, metrics)
    if settings.cors_origins:
        cors = CORSMiddleware(app, allow_origins=list(settings.cors_origins),
                              allow_methods=["GET", "POST", "PUT", "DELETE"],
                              allow_headers=["Authorization", "Content-Type", "Mcp-Session-Id", "Mcp-Protocol-Version"])
        app = cors
    return app


def build_service(settings: ServeSettings, embedder: Embedder, llm: LLMClient | None = None) -> Service:
    """The namespaces under the root and the operations on them (shared by HTTP and stdio)."""
    llm_settings = {f"llm.{k}": v for k, v in settings.config.to_dict()["llm"].items()}
    namespaces = Namespaces(
        settings.root, settings.config, embedder, llm=llm, query_overrides=llm_settings if llm is not None else None,
        max_engines=settings.limits.max_engines, max_bytes=settings.limits.cache_bytes,
        write_queue=settings.limits.write_queue, write_threads=settings.limits.write_threads,
        writer_idle=settings.limits.writer_idle,
    )
    return Service(namespaces, settings.limits, llm is not None)


async def run_stdio(service: Service, grant: Grant, drain_timeout: float = 60.0) -> None:
    """Speak MCP over stdin/stdout with ``grant``'s rights until stdin closes."""
    mcp = build_mcp(service, lambda ctx: grant)
    service.ready = True
    try:
        await mcp.run_stdio_async()
    finally:
        await service.ns.drain(drain_timeout)
