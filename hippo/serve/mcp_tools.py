"""The MCP server: tools an agent calls to remember, recall, forget and explain.

Built on the official SDK (``mcp`` 2.x, :class:`~mcp.server.mcpserver.MCPServer`): a tool's
name, typed arguments and docstring become what the model reads, and its pydantic result
becomes structured content. Every tool takes the ``namespace`` it works in; the caller's key
must grant it (over HTTP the key is the request's ``Authorization: Bearer``; over stdio the
key in ``$HIPPO_API_KEY``, or full access when the server has no keys).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from hippo import __version__
from hippo.errors import HippoError
from hippo.serve.keys import Grant
from hippo.serve.problems import as_problem
from hippo.serve.service import Service
from hippo.serve.settings import MAX_K, MAX_QUERY_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS
from hippo.types import QueryResult

T = TypeVar("T")
INSTRUCTIONS = (
    "hippo is a long-term memory. Memories live in namespaces (for example one per user or project); "
    "every tool takes the namespace to use, and list_namespaces shows the ones you may use. Store "
    "self-contained facts with remember, find them with recall (associative: it follows people, places and "
    "things across memories, so it answers multi-hop questions), delete with forget, and use explain to see "
    "which facts and entities led to a result."
)

Namespace = Annotated[str, Field(description="The namespace to use, e.g. 'alice' (a-z, 0-9, '_', '-'). "
                                 "Call list_namespaces to see which ones you may use.")]
Query = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS,
                             description="A question or topic, in natural language.")]
K = Annotated[int, Field(ge=1, le=MAX_K, description="How many memories to return (default 5).")]


class Memory(BaseModel):
    """A recalled memory."""

    id: str = Field(description="The memory's id (forget takes it).")
    title: str
    text: str
    score: float = Field(description="Relevance; higher is better. Only the order matters.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="What was stored with the memory (remember's "
                                     "metadata).")


class Recalled(BaseModel):
    """Memories relevant to the query, best first."""

    namespace: str
    query: str
    memories: list[Memory]


class Stored(BaseModel):
    """What remember stored."""

    namespace: str
    ids: list[str] = Field(description="The id of the stored memory.")


class Forgotten(BaseModel):
    """What forget deleted."""

    namespace: str
    deleted: list[str]


class LinkedFact(BaseModel):
    """A fact (subject, relation, object) the query matched."""

    subject: str
    relation: str
    object: str
    score: float


class Seed(BaseModel):
    """An entity that seeded the graph search, with its weight."""

    name: str
    weight: float
    source: str = Field(description="'fact' (a matched fact names it), 'query' (the question names it) or both.")


class Explained(Recalled):
    """Recalled memories and the evidence behind their ranking."""

    mode: str = Field(description="'ppr': ranked by the knowledge graph; 'dense': by text similarity only; "
                      "'empty': the namespace holds no memories yet.")
    facts: list[LinkedFact]
    seeds: list[Seed]


class Namespaces(BaseModel):
    """Namespaces you may use that hold memories, and whether you may write."""

    namespaces: list[str]
    patterns: list[str] = Field(description="Name patterns you may use, including namespaces not created yet.")
    write: bool


def _memories(result: QueryResult) -> list[Memory]:
    return [Memory(id=h.passage_id, title=h.title, text=h.content, score=h.score, metadata=dict(h.metadata))
            for h in result.hits]


def build_mcp(service: Service, grant_for: Callable[[Context], Grant]) -> MCPServer:
    """The MCP server over ``service``; ``grant_for`` finds the caller's grant in a tool call."""
    mcp = MCPServer("hippo", instructions=INSTRUCTIONS, version=__version__)

    async def guarded(ctx: Context, call: Callable[[Grant], Awaitable[T]]) -> T:
        grant = grant_for(ctx)
        try:
            return await call(grant)
        except HippoError as exc:
            problem = as_problem(exc)
            if problem is None:
                raise ToolError("internal error; the server log has the details") from None
            raise ToolError(f"{problem.title}: {problem.detail}") from None

    @mcp.tool()
    async def remember(
        namespace: Namespace,
        text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS,
                                   description="The memory: a self-contained statement or passage. Name people and "
                                   "things instead of 'he', 'she' or 'it'.")],
        ctx: Context,
        title: Annotated[str, Field(max_length=MAX_TITLE_CHARS,
                                    description="Optional short title (e.g. the topic or a person's name).")] = "",
        id: Annotated[str, Field(max_length=256, description="Optional id to give the memory; storing again with the "
                                 "same id and other text is refused.")] = "",
        metadata: Annotated[dict[str, Any] | None, Field(description="Optional JSON object stored with the memory and "
                                                         "returned by recall (e.g. source, date, speaker).")] = None,
    ) -> Stored:
        """Store a memory in a namespace so that recall can find it later.

        Call once per distinct memory. The memory is durable when this returns. Storing the same text twice
        keeps one copy. Returns the memory's id."""
        item: dict[str, Any] = {"text": text, "title": title, **({"id": id} if id else {}),
                                **({"metadata": metadata} if metadata else {})}

        async def call(grant: Grant) -> Stored:
            return Stored(namespace=namespace, ids=await service.add(grant, namespace, [item]))

        return await guarded(ctx, call)

    @mcp.tool()
    async def recall(namespace: Namespace, query: Query, ctx: Context, k: K = 5) -> Recalled:
        """Find the memories in a namespace most relevant to a question or topic, best first.

        Retrieval is associative (a knowledge graph with Personalized PageRank): it also finds memories linked
        through shared people, places and things, not only ones with similar wording, so it suits questions that
        need several memories. An empty namespace returns no memories."""

        async def call(grant: Grant) -> Recalled:
            r = await service.retrieve(grant, namespace, query, k)
            return Recalled(namespace=namespace, query=query, memories=_memories(r))

        return await guarded(ctx, call)

    @mcp.tool()
    async def forget(
        namespace: Namespace,
        ids: Annotated[list[str], Field(min_length=1, description="Ids of the memories to delete (from remember or "
                                        "recall).")],
        ctx: Context,
    ) -> Forgotten:
        """Delete memories from a namespace by id.

        Either every id given is deleted, or none is: an unknown id is an error and then nothing changes."""

        async def call(grant: Grant) -> Forgotten:
            return Forgotten(namespace=namespace, deleted=await service.delete(grant, namespace, ids))

        return await guarded(ctx, call)

    @mcp.tool()
    async def explain(namespace: Namespace, query: Query, ctx: Context, k: K = 5) -> Explained:
        """Recall memories and show why they ranked: the facts (subject, relation, object) the query matched
        and the entities that seeded the graph search, with their weights.

        Use it to check or justify an answer built from recalled memories."""

        async def call(grant: Grant) -> Explained:
            r = await service.retrieve(grant, namespace, query, k)
            return Explained(
                namespace=namespace, query=query, memories=_memories(r), mode=r.mode,
                facts=[LinkedFact(subject=f.fact.subject, relation=f.fact.relation, object=f.fact.object, score=f.score)
                       for f in r.facts],
                seeds=[Seed(name=s.name, weight=s.weight, source=s.source) for s in r.seeds],
            )

        return await guarded(ctx, call)

    @mcp.tool()
    async def list_namespaces(ctx: Context) -> Namespaces:
        """List the namespaces you may use that already hold memories, the name patterns you may use (a
        namespace is created by its first remember), and whether you may store and delete memories."""

        async def call(grant: Grant) -> Namespaces:
            return Namespaces(namespaces=service.namespaces(grant), patterns=list(grant.patterns), write=grant.write)

        return await guarded(ctx, call)

    return mcp
