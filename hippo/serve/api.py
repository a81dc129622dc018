"""The REST routes, under ``/v1`` (versioned paths)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from hippo.serve.keys import Grant, describe_grant
from hippo.serve.models import (
    NOT_BLANK,
    AnswerOut,
    AskIn,
    BatchOut,
    DeletedOut,
    IdsIn,
    IdsOut,
    NamespaceOut,
    NamespacesOut,
    PassagesIn,
    ProblemOut,
    QueriesIn,
    RetrieveOut,
    Retriever,
)
from hippo.serve.service import Service
from hippo.serve.settings import MAX_K, MAX_QUERY_CHARS
from hippo.serve.wire import answer_json, result_json

GRANT_KEY = "hippo.grant"
"""Where the auth guard leaves the request's :class:`Grant` in the ASGI scope."""


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemOut, "description": description, "content": {"application/problem+json": {}}}


COMMON: dict[int | str, dict[str, Any]] = {
    401: _problem("No key, or an unknown key"),
    403: _problem("The key does not grant this namespace (or may not write it)"),
    404: _problem("Not a valid namespace name, or unknown passage ids"),
    413: _problem("Body or batch larger than the server allows"),
    422: _problem("Malformed body or parameters, with details"),
    429: _problem("Rate limit of the key exceeded (Retry-After)"),
    503: _problem("Writes queued to the limit, or the server is shutting down (Retry-After)"),
    504: _problem("The request took longer than the server's timeout"),
}
WRITES: dict[int | str, dict[str, Any]] = {
    **COMMON,
    409: _problem("Ids already hold other text (use PUT), or another process is writing"),
    507: _problem("The server's disk is full; nothing was written"),
}


def grant_of(request: Request) -> Grant:
    """The grant the auth guard found for this request."""
    grant: Grant = request.scope[GRANT_KEY]
    return grant


def service_of(request: Request) -> Service:
    """The app's service."""
    service: Service = request.app.state.service
    return service


GrantDep = Annotated[Grant, Depends(grant_of)]
ServiceDep = Annotated[Service, Depends(service_of)]
router = APIRouter(prefix="/v1")


@router.get("/ns", response_model=NamespacesOut, responses=COMMON, summary="List namespaces",
            description="The namespaces this key reaches that hold passages, and the key's rights.")
async def list_namespaces(grant: GrantDep, service: ServiceDep) -> dict[str, Any]:
    names = service.namespaces(grant)
    return {"namespaces": [NamespaceOut(name=n) for n in names], "key": describe_grant(grant)}


@router.get("/ns/{ns}", responses=COMMON, summary="Describe a namespace",
            description="Counts, embedder, extractor, config and versions of the namespace's index (404 while empty).")
async def info(ns: str, grant: GrantDep, service: ServiceDep) -> dict[str, Any]:
    return await service.info(grant, ns)


@router.post("/ns/{ns}/passages", response_model=IdsOut, responses=WRITES, summary="Add passages",
             description="Store passages; returns their ids once the write is durable. A passage whose id exists with "
             "other text is refused (409, use PUT); the same text twice is stored once. Creates the namespace.")
async def add(ns: str, body: PassagesIn, grant: GrantDep, service: ServiceDep) -> dict[str, Any]:
    ids = await service.add(grant, ns, [p.model_dump(exclude_none=True) for p in body.passages])
    return {"namespace": ns, "ids": ids}


@router.put("/ns/{ns}/passages", response_model=IdsOut, responses=WRITES, summary="Add or replace passages",
            description="Like POST, but a passage whose id exists replaces it (update).")
async def update(ns: str, body: PassagesIn, grant: GrantDep, service: ServiceDep) -> dict[str, Any]:
    ids = await service.add(grant, ns, [p.model_dump(exclude_none=True) for p in body.passages], update=True)
    return {"namespace": ns, "ids": ids}


@router.delete("/ns/{ns}/passages", response_model=DeletedOut, responses=WRITES, summary="Delete passages",
               description="Delete passages by id. Unknown ids are refused (404) and then nothing is deleted.")
async def delete(ns: str, body: IdsIn, grant: GrantDep, service: ServiceDep) -> dict[str, Any]:
    deleted = await service.delete(grant, ns, body.ids)
    return {"namespace": ns, "deleted": deleted}


@router.get("/ns/{ns}/retrieve", response_model=RetrieveOut, responses=COMMON, summary="Retrieve",
            description="The top-k passages for q with the linked facts and seed entities that explain the ranking. "
            "A namespace with no passages yet gives no hits.")
async def retrieve(
    ns: str, grant: GrantDep, service: ServiceDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, pattern=NOT_BLANK, description="The query")],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Passages to return")] = 5,
    retriever: Annotated[Retriever, Query(description="Ranking algorithm")] = "hippo",
) -> dict[str, Any]:
    result = await service.retrieve(grant, ns, q, k, retriever)
    return {"namespace": ns, **result_json(result)}


@router.post("/ns/{ns}/retrieve", response_model=BatchOut, responses=COMMON, summary="Retrieve a batch",
             description="Retrieve for many queries at once (one embedding batch, one batched PageRank).")
async def retrieve_many(ns: str, body: QueriesIn, grant: GrantDep, service: ServiceDep) -> dict[str, Any]:
    results = await service.retrieve_many(grant, ns, body.queries, body.k, body.retriever)
    return {"namespace": ns, "results": [result_json(r) for r in results]}


@router.post("/ns/{ns}/ask", response_model=AnswerOut,
             responses={**COMMON, 501: _problem("No LLM is configured on the server")}, summary="Ask the LLM",
             description="Retrieve, then let the server's LLM answer from the top passages (HippoRAG 2's QA step).")
async def ask(ns: str, body: AskIn, grant: GrantDep, service: ServiceDep) -> dict[str, Any]:
    answer = await service.ask(grant, ns, body.question, body.k, body.retriever)
    return {"namespace": ns, **answer_json(answer)}
