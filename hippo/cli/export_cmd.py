"""``hippo export``: the graph of an index to Neo4j (live or as import CSV) or GraphML."""

from __future__ import annotations

import argparse
import sys

from hippo.cli.common import print_json, progress_bar


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="export the graph to Neo4j or GraphML", description="Export the knowledge graph of an index.")
    targets = p.add_subparsers(dest="target", metavar="TARGET", required=True)

    n = targets.add_parser(
        "neo4j", help="sync the graph into Neo4j over Bolt, or write neo4j-admin import CSV",
        description="Make a Neo4j database hold the graph of index DIR. A re-run writes only what changed "
        "(nothing, for the same index) and resumes an interrupted export. Without --uri it writes to "
        "NEO4J_URI or to the server of `hippo neo4j start`, whose password it finds by itself.",
    )
    n.add_argument("index", metavar="DIR", help="index directory")
    n.add_argument("--uri", help="Bolt URI (default: NEO4J_URI, else the local server, else bolt://127.0.0.1:7687)")
    n.add_argument("--user", help="user name (default: NEO4J_USERNAME, else neo4j)")
    n.add_argument("--password", help="password (default: NEO4J_PASSWORD, else the local server's)")
    n.add_argument("--database", default="neo4j", help="database name (default neo4j, the only one in Community)")
    n.add_argument("--batch-size", type=int, default=5000, help="rows per transaction (default 5000)")
    n.add_argument("--vectors", action="store_true", help="also store passage embeddings and a vector index")
    n.add_argument("--replace", action="store_true", help="replace graph data that is not this index's export")
    n.add_argument("--csv", metavar="OUT", help="write neo4j-admin import files into folder OUT instead of connecting")
    n.add_argument("--json", action="store_true", help="print the report as JSON")
    n.set_defaults(func=run_neo4j)

    g = targets.add_parser("graphml", help="write the PageRank graph as GraphML (Gephi, yEd)", description="Write the PageRank graph of index DIR as GraphML.")
    g.add_argument("index", metavar="DIR", help="index directory")
    g.add_argument("--out", required=True, metavar="FILE", help="GraphML file to write")
    g.add_argument("--json", action="store_true", help="print the report as JSON")
    g.set_defaults(func=run_graphml)


def run_neo4j(args: argparse.Namespace) -> int:
    if args.csv:
        from hippo.export.neo4j_csv import export_neo4j_csv

        plan = export_neo4j_csv(args.index, args.csv, vectors=args.vectors)
        if args.json:
            print_json(plan)
            return 0
        total = sum(plan["counts"]["nodes"].values()) + sum(plan["counts"]["relationships"].values())
        print(f"wrote {total} rows for neo4j-admin into {plan['path']} in {plan['seconds']:.1f} s")
        print(f"import into the local server (stopped): hippo neo4j import {plan['path']}")
        print(f"or, in a Neo4j installation, from {plan['path']}: {plan['command']}")
        return 0
    from hippo.export.neo4j_bolt import export_to_neo4j, resolve_target

    target = resolve_target(args.uri, args.user, args.password, args.database)
    report = export_to_neo4j(
        args.index, target, batch_size=args.batch_size, vectors=args.vectors, replace=args.replace, progress=progress_bar()
    )
    if args.json:
        print_json(report.to_dict())
        return 0
    d = report.to_dict()
    written = sum(report.written.values())
    deleted = sum(report.deleted.values())
    total = sum(report.counts["nodes"].values()) + sum(report.counts["relationships"].values())
    state = "already up to date" if not report.changed else f"wrote {written} and deleted {deleted} of {total} rows"
    print(f"{report.index} ({report.generation}) -> {report.uri} database {report.database}: {state} in {d['seconds']:.1f} s", file=sys.stdout)
    print("nodes: " + ", ".join(f"{k} {v}" for k, v in report.counts["nodes"].items()))
    print("relationships: " + ", ".join(f"{k} {v}" for k, v in report.counts["relationships"].items()))
    return 0


def run_graphml(args: argparse.Namespace) -> int:
    from hippo.export.graphml import export_graphml

    info = export_graphml(args.index, args.out)
    if args.json:
        print_json(info)
    else:
        print(f"wrote {info['nodes']} nodes and {info['edges']} edges to {info['path']}")
    return 0
