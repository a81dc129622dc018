"""Live export to Neo4j over Bolt: a sync that writes only what differs.

``export_to_neo4j`` reads what the database already holds (ids and row digests), then
sends only the rows that are missing or changed, in batches of ``UNWIND $rows ... MERGE``
(parameters only; labels and types come from a fixed list), and deletes what the index no
longer has. A second export of the same index therefore writes nothing, an export cut off
by a dropped connection resumes where it stopped when run again, and an export of a new
generation of the index writes only its changes. Each batch is its own transaction and
is idempotent, so the driver's retries of a failed batch are safe.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hippo.errors import Neo4jError
from hippo.export.graph_rows import ExportGraph, NodeRows, RelRows, build_export_graph, digest, index_meta
from hippo.ids import content_id
from hippo.live.flat import FlatIndex
from hippo.types import QueryResult

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)``."""

LABELS = ("Passage", "Entity", "Fact", "Query", "HippoIndex")
META_KEY = "hippo"
_IDENT = re.compile(r"^[A-Z][A-Za-z_]*$")
_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
COUNTERS = ("nodes_created", "nodes_deleted", "relationships_created", "relationships_deleted", "properties_set")


def _ident(name: str) -> str:
    """A label or type safe to place in Cypher text (never a value: those are parameters).

    Labels and relationship types are the one part of a query written into its text. Schema
    commands take no parameters at all, and on Neo4j 5.26 a dynamic label (``n:$(label)``) in
    ``MATCH`` or ``MERGE`` cannot use the id constraint's index: the planner falls back to
    ``AllNodesScan``, which would make every batch of an export scan the whole store. So every
    such name passes this check, and every id and property travels in ``$rows``.
    """
    if not _IDENT.match(name):
        raise ValueError(f"not a label or relationship type: {name!r}")
    return name


# --------------------------------------------------------------------------- connecting


@dataclass(frozen=True)
class Target:
    """Where to write: a Bolt URI, credentials (None: no auth) and a database."""

    uri: str
    auth: tuple[str, str] | None
    database: str = "neo4j"


def resolve_target(
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str = "neo4j",
    env: dict[str, str] | None = None,
    home: Path | None = None,
) -> Target:
    """The server to write to: ``uri`` or ``NEO4J_URI`` or the local server of ``hippo neo4j
    start`` (``home``) or bolt://127.0.0.1:7687; credentials from the arguments, else
    ``NEO4J_USERNAME``/``NEO4J_PASSWORD``, else the local server's own when ``uri`` is it."""
    from hippo.neo4j.server import status

    env = dict(os.environ) if env is None else env
    local = status(home)
    uri = uri or env.get("NEO4J_URI") or (local.bolt_uri if local else "bolt://127.0.0.1:7687")
    password = password if password is not None else env.get("NEO4J_PASSWORD")
    user = user or env.get("NEO4J_USERNAME") or "neo4j"
    if password is not None:
        return Target(uri, (user, password), database)
    if local is not None and _same_server(uri, local.bolt_uri):
        return Target(uri, local.driver_auth, database)
    return Target(uri, None, database)


def _same_server(a: str, b: str) -> bool:
    pa, pb = urlparse(a), urlparse(b)
    loop = {"localhost", "127.0.0.1", "::1"}
    host_a, host_b = pa.hostname or "", pb.hostname or ""
    same_host = host_a == host_b or (host_a in loop and host_b in loop)
    return same_host and (pa.port or 7687) == (pb.port or 7687)


@contextmanager
def connect(target: Target) -> Iterator[Any]:
    """A driver checked to reach ``target`` with its credentials and database; every
    failure becomes one :class:`Neo4jError` line that says how to fix it."""
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError, ClientError, ConfigurationError, ServiceUnavailable

    if urlparse(target.uri).scheme not in _SCHEMES:
        raise Neo4jError(f"bad Neo4j URI {target.uri!r}; use bolt://HOST:7687 or neo4j://HOST:7687 (or their +s/+ssc TLS forms)")
    try:
        driver = GraphDatabase.driver(
            target.uri, auth=target.auth, connection_timeout=5.0, max_transaction_retry_time=30.0,
            notifications_min_severity="OFF",
        )
    except (ConfigurationError, ValueError) as exc:
        raise Neo4jError(f"bad Neo4j URI {target.uri!r} ({exc}); use bolt://HOST:7687 or neo4j://HOST:7687") from None
    try:
        try:
            driver.verify_connectivity()  # fails at once; later writes retry a dropped connection
            driver.execute_query("RETURN 1", database_=target.database)
        except AuthError:
            who = f"user {target.auth[0]!r}" if target.auth else "a connection without credentials"
            raise Neo4jError(
                f"Neo4j at {target.uri} refused {who}: wrong or missing password; "
                f"set NEO4J_USERNAME/NEO4J_PASSWORD or pass --user/--password"
            ) from None
        except ServiceUnavailable as exc:
            raise Neo4jError(
                f"cannot reach Neo4j at {target.uri} ({_first_line(exc)}); start a local one with "
                f"`hippo neo4j start` or pass --uri of a running server"
            ) from None
        except ClientError as exc:
            if "DatabaseNotFound" in (exc.code or ""):
                raise Neo4jError(f"database {target.database!r} does not exist on {target.uri}; Neo4j Community has only 'neo4j' (use --database neo4j)") from None
            raise Neo4jError(f"Neo4j at {target.uri} answered {exc.code}: {_first_line(exc)}") from None
        except OSError as exc:
            raise Neo4jError(f"cannot reach Neo4j at {target.uri} ({exc}); check --uri") from None
        yield driver
    finally:
        driver.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --------------------------------------------------------------------------- schema


def schema_statements(vectors_dim: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Constraints and indexes (idempotent: ``IF NOT EXISTS``)."""
    out: list[tuple[str, dict[str, Any]]] = [
        (f"CREATE CONSTRAINT hippo_{_ident(label).lower()}_id IF NOT EXISTS FOR (n:{_ident(label)}) REQUIRE n.id IS UNIQUE", {})
        for label in ("Passage", "Entity", "Fact", "Query", "Document")
    ]
    out += [
        ("CREATE CONSTRAINT hippo_index_key IF NOT EXISTS FOR (n:HippoIndex) REQUIRE n.key IS UNIQUE", {}),
        ("CREATE FULLTEXT INDEX hippo_entity_name IF NOT EXISTS FOR (n:Entity) ON EACH [n.name]", {}),
        ("CREATE FULLTEXT INDEX hippo_passage_text IF NOT EXISTS FOR (n:Passage) ON EACH [n.title, n.text]", {}),
    ]
    if vectors_dim:
        out.append((
            "CREATE VECTOR INDEX hippo_passage_embedding IF NOT EXISTS FOR (n:Passage) ON (n.embedding) "
            "OPTIONS {indexConfig: {`vector.dimensions`: $dim, `vector.similarity_function`: 'cosine'}}",
            {"dim": int(vectors_dim)},
        ))
    return out


def ensure_schema(driver: Any, database: str, vectors_dim: int | None = None) -> dict[str, int]:
    """Create the constraints and indexes that are missing; wait until they are online."""
    added = {"constraints_added": 0, "indexes_added": 0}
    for query, params in schema_statements(vectors_dim):
        c = driver.execute_query(query, params, database_=database).summary.counters
        added["constraints_added"] += c.constraints_added
        added["indexes_added"] += c.indexes_added
    driver.execute_query("CALL db.awaitIndexes(300)", database_=database)
    return added


# --------------------------------------------------------------------------- queries


def node_upsert(label: str, vectors: bool = False) -> str:
    """Cypher that merges rows ``{id, props, h}`` of ``label``, rewriting only changed ones."""
    q = (
        f"UNWIND $rows AS r MERGE (n:{_ident(label)} {{id: r.id}}) "
        "WITH n, r WHERE n.h IS NULL OR n.h <> r.h "
        "SET n = r.props, n.h = r.h"
    )
    if vectors:
        q += " WITH n, r WHERE r.embedding IS NOT NULL CALL db.create.setNodeVectorProperty(n, 'embedding', r.embedding)"
    return q


def rel_upsert(rel: RelRows) -> str:
    """Cypher that merges rows ``{s, t, props, h}`` as ``(s)-[:TYPE]->(t)``, rewriting only changed ones."""
    return (
        f"UNWIND $rows AS r MATCH (a:{_ident(rel.start)} {{id: r.s}}) MATCH (b:{_ident(rel.end)} {{id: r.t}}) "
        f"MERGE (a)-[x:{_ident(rel.type)}]->(b) "
        "WITH x, r WHERE x.h IS NULL OR x.h <> r.h "
        "SET x = r.props, x.h = r.h"
    )


def rel_delete(rel: RelRows) -> str:
    """Cypher that deletes ``(s)-[:TYPE]->(t)`` for rows ``{s, t}``."""
    return (
        f"UNWIND $rows AS r MATCH (a:{_ident(rel.start)} {{id: r.s}})-[x:{_ident(rel.type)}]->(b:{_ident(rel.end)} {{id: r.t}}) "
        "DELETE x"
    )


def node_delete(label: str) -> str:
    """Cypher that detaches and deletes the ``label`` nodes whose ids are in ``$rows``."""
    return f"UNWIND $rows AS id MATCH (n:{_ident(label)} {{id: id}}) DETACH DELETE n"


def existing_nodes(driver: Any, database: str, label: str) -> dict[str, str | None]:
    """Id -> row digest ``h`` of every ``label`` node in the database."""
    records = driver.execute_query(f"MATCH (n:{_ident(label)}) RETURN n.id AS id, n.h AS h", database_=database).records
    return {r["id"]: r["h"] for r in records}


def existing_rels(driver: Any, database: str, rel: RelRows) -> dict[tuple[str, str], str | None]:
    """(start id, end id) -> row digest ``h`` of every relationship of ``rel``'s type and labels."""
    q = f"MATCH (a:{_ident(rel.start)})-[x:{_ident(rel.type)}]->(b:{_ident(rel.end)}) RETURN a.id AS s, b.id AS t, x.h AS h"
    return {(r["s"], r["t"]): r["h"] for r in driver.execute_query(q, database_=database).records}


def neo4j_counts(driver: Any, database: str = "neo4j") -> dict[str, dict[str, int]]:
    """Node counts by label and relationship counts by type, as the database reports them."""
    nodes = {
        label: driver.execute_query(f"MATCH (n:{_ident(label)}) RETURN count(n) AS c", database_=database).records[0]["c"]
        for label in LABELS
    }
    rels = driver.execute_query("MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS c", database_=database).records
    return {"nodes": nodes, "relationships": {r["t"]: r["c"] for r in rels}}


# --------------------------------------------------------------------------- sync


@dataclass
class SyncReport:
    """What an export did. ``written``/``deleted`` count rows per label or type; ``counters``
    add up the server's own update counters over every write."""

    uri: str
    database: str
    index: str
    generation: str
    counts: dict[str, dict[str, int]]
    written: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """True when the export changed anything in the database."""
        return any(self.counters.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of ``hippo export neo4j --json``."""
        total = sum(self.counts["nodes"].values()) + sum(self.counts["relationships"].values())
        return {
            "uri": self.uri, "database": self.database, "index": self.index, "generation": self.generation,
            "counts": self.counts, "written": self.written, "deleted": self.deleted, "counters": self.counters,
            "seconds": round(self.seconds, 3), "rows_per_s": round(total / self.seconds, 1) if self.seconds else None,
        }


def _add_counters(report: SyncReport, summary: Any) -> None:
    for name in COUNTERS:
        report.counters[name] += getattr(summary.counters, name)


def _batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


class _Writer:
    def __init__(self, driver: Any, database: str, batch_size: int, report: SyncReport, progress: Progress | None) -> None:
        self.driver, self.database, self.batch_size = driver, database, batch_size
        self.report, self.progress = report, progress

    def run(self, stage: str, query: str, rows: Sequence[Any]) -> None:
        done = 0
        for part in _batches(rows, self.batch_size):
            try:
                summary = self.driver.execute_query(query, {"rows": list(part)}, database_=self.database).summary
            except Exception as exc:
                raise Neo4jError(
                    f"export to {self.report.uri} stopped while writing {stage} ({_first_line(exc)}); "
                    f"run the same command again to resume: rows already written are skipped"
                ) from None
            _add_counters(self.report, summary)
            done += len(part)
            if self.progress:
                self.progress(stage, done, len(rows))


def _claim(driver: Any, database: str, meta: dict[str, Any], replace: bool, report: SyncReport) -> bool:
    """Refuse to overwrite data that is not this index's export unless ``replace``, then
    mark the database as this index's (the digest ``h`` stays unset until the export
    completes). Returns True when the database held another index (its queries go too)."""
    records = driver.execute_query("MATCH (m:HippoIndex {key: $key}) RETURN m.path AS path", {"key": META_KEY}, database_=database).records
    if records:
        other = records[0]["path"] != meta["path"]
        if other and not replace:
            raise Neo4jError(
                f"database {database!r} holds the export of {records[0]['path']}; pass --replace to replace it with {meta['path']}"
            )
    else:
        other = driver.execute_query(
            "MATCH (n) WHERE n:Passage OR n:Entity OR n:Fact OR n:Query RETURN count(n) > 0 AS any", database_=database
        ).records[0]["any"]
        if other and not replace:
            raise Neo4jError(
                f"database {database!r} already has Passage/Entity/Fact nodes that hippo did not export; "
                f"pass --replace to replace them, or export into an empty database"
            )
    if other or not records:
        summary = driver.execute_query(
            "MERGE (m:HippoIndex {key: $key}) SET m = {key: $key, path: $path}",
            {"key": META_KEY, "path": meta["path"]}, database_=database,
        ).summary
        _add_counters(report, summary)
    return bool(other)


def export_to_neo4j(
    index: str | Path | FlatIndex,
    target: Target,
    *,
    batch_size: int = 5000,
    vectors: bool = False,
    replace: bool = False,
    progress: Progress | None = None,
) -> SyncReport:
    """Make the database of ``target`` hold exactly the graph of ``index``; see the module doc."""
    if batch_size < 1:
        raise Neo4jError(f"batch size must be >= 1, got {batch_size}")
    files = index if isinstance(index, FlatIndex) else FlatIndex.open(index)
    graph = build_export_graph(files, vectors=vectors)
    t0 = time.perf_counter()
    with connect(target) as driver:
        db = target.database
        report = SyncReport(target.uri, db, graph.meta["path"], graph.meta["generation"], graph.counts())
        other = _claim(driver, db, graph.meta, replace, report)
        ensure_schema(driver, db, int(files.manifest["embedder"]["dim"]) if vectors else None)
        writer = _Writer(driver, db, batch_size, report, progress)
        if other:
            stale_queries = list(existing_nodes(driver, db, "Query"))
            writer.run("Query (delete)", node_delete("Query"), stale_queries)
        _sync(writer, driver, db, graph, vectors)
        meta = {**graph.meta, "key": META_KEY}
        h = digest(meta)
        summary = driver.execute_query(
            "MERGE (m:HippoIndex {key: $key}) WITH m WHERE m.h IS NULL OR m.h <> $h "
            "SET m = $props, m.h = $h, m.exported_at = datetime()",
            {"key": META_KEY, "h": h, "props": meta}, database_=db,
        ).summary
        _add_counters(report, summary)
    report.seconds = time.perf_counter() - t0
    return report


def _sync(writer: _Writer, driver: Any, db: str, graph: ExportGraph, vectors: bool) -> None:
    stale_nodes: list[tuple[NodeRows, list[str]]] = []
    for nodes in graph.nodes:
        have = existing_nodes(driver, db, nodes.label)
        todo = [r for r in nodes.rows if have.get(r["id"]) != r["h"]]
        wanted = {r["id"] for r in nodes.rows}
        stale_nodes.append((nodes, [i for i in have if i not in wanted]))
        writer.report.written[nodes.label] = len(todo)
        writer.run(nodes.label, node_upsert(nodes.label, vectors and nodes.label == "Passage"), todo)
    for rel in graph.rels:
        have_rels = existing_rels(driver, db, rel)
        todo = [r for r in rel.rows if have_rels.get((r["s"], r["t"])) != r["h"]]
        wanted_rels = {(r["s"], r["t"]) for r in rel.rows}
        stale = [{"s": s, "t": t} for (s, t) in have_rels if (s, t) not in wanted_rels]
        writer.report.written[rel.type] = len(todo)
        writer.report.deleted[rel.type] = len(stale)
        writer.run(rel.type, rel_upsert(rel), todo)
        writer.run(f"{rel.type} (delete)", rel_delete(rel), stale)
    for nodes, ids in stale_nodes:
        writer.report.deleted[nodes.label] = len(ids)
        writer.run(f"{nodes.label} (delete)", node_delete(nodes.label), ids)


# --------------------------------------------------------------------------- query activation


def query_node_id(result: QueryResult) -> str:
    """Id of the Query node of ``result``: one per (retriever, question)."""
    return content_id("q", f"{result.retriever}\x1f{result.query}")


def write_query_activation(index: str | Path | FlatIndex, result: QueryResult, target: Target) -> dict[str, Any]:
    """Store what ``result`` lit up: ``(:Query)-[:SEED {weight, source, rank}]->(:Entity)``,
    ``-[:RETRIEVED {rank, score}]->(:Passage)`` and ``-[:LINKED {rank, score}]->(:Fact)``.

    The database must hold the export of this very index generation. Writing the same
    question again replaces its node's edges. Returns the query id and edge counts.
    """
    files = index if isinstance(index, FlatIndex) else FlatIndex.open(index)
    meta = index_meta(files)
    qid = query_node_id(result)
    seeds = [{"id": s.entity_id, "weight": s.weight, "source": s.source, "rank": i} for i, s in enumerate(result.seeds)]
    hits = [{"id": h.passage_id, "rank": h.rank + 1, "score": h.score} for h in result.hits]
    facts = [{"id": f.fact.id, "rank": i + 1, "score": f.score} for i, f in enumerate(result.facts)]
    props = {"id": qid, "text": result.query, "retriever": result.retriever, "mode": result.mode, "k": len(result.hits)}

    def write(tx: Any) -> int:
        tx.run(
            "MERGE (q:Query {id: $id}) SET q += $props, q.at = datetime() "
            "WITH q OPTIONAL MATCH (q)-[old:SEED|RETRIEVED|LINKED]->() DELETE old",
            id=qid, props=props,
        ).consume()
        made = 0
        for rel, label, rows, keys in (("SEED", "Entity", seeds, "weight: r.weight, source: r.source, rank: r.rank"),
                                       ("RETRIEVED", "Passage", hits, "rank: r.rank, score: r.score"),
                                       ("LINKED", "Fact", facts, "rank: r.rank, score: r.score")):
            summary = tx.run(
                f"MATCH (q:Query {{id: $id}}) UNWIND $rows AS r MATCH (n:{_ident(label)} {{id: r.id}}) "
                f"CREATE (q)-[:{_ident(rel)} {{{keys}}}]->(n)",
                id=qid, rows=rows,
            ).consume()
            made += summary.counters.relationships_created
        expected = len(seeds) + len(hits) + len(facts)
        if made != expected:  # raised inside the transaction: it rolls back, nothing is half-written
            raise Neo4jError(f"only {made} of {expected} query edges found their nodes; re-export the index: hippo export neo4j {files.root}")
        return made

    with connect(target) as driver:
        records = driver.execute_query(
            "MATCH (m:HippoIndex {key: $key}) RETURN m.path AS path, m.generation AS generation",
            {"key": META_KEY}, database_=target.database,
        ).records
        if not records or (records[0]["path"], records[0]["generation"]) != (meta["path"], meta["generation"]):
            held = f"the export of {records[0]['path']} ({records[0]['generation']})" if records else "no hippo export"
            raise Neo4jError(
                f"database {target.database!r} at {target.uri} holds {held}; export this index first: "
                f"hippo export neo4j {files.root}"
            )
        with driver.session(database=target.database) as session:
            session.execute_write(write)
    return {"id": qid, "seeds": len(seeds), "retrieved": len(hits), "linked": len(facts)}
