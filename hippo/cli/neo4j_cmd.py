"""``hippo neo4j``: a local Neo4j Community server with Browser (start, stop, status, import)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hippo.cli.common import print_json


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "neo4j", help="run a local Neo4j with Browser", description="Run a local Neo4j 5.26 Community server with "
        "Browser, fetched from Maven Central into a project-local folder (./.neo4j or HIPPO_NEO4J_HOME). Loopback only.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start the server (fetching Neo4j on first use) and wait until it answers")
    start.add_argument("--no-auth", action="store_true", help="turn authentication off (tests, throw-away data)")
    start.add_argument("--bolt-port", type=int, default=7687, help="Bolt port (default 7687; 0 picks a free one)")
    start.add_argument("--http-port", type=int, default=7474, help="HTTP/Browser port (default 7474; 0 picks a free one)")
    start.add_argument("--heap", default="1g", help="JVM heap (default 1g)")
    start.add_argument("--pagecache", default="512m", help="page cache (default 512m)")
    start.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the server (default 180)")
    stop = actions.add_parser("stop", help="stop the server this folder started (by its PID)")
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds before a SIGKILL (default 60)")
    status = actions.add_parser("status", help="is the server running; its URIs and credentials")
    imp = actions.add_parser("import", help="neo4j-admin import of `hippo export neo4j --csv` files (server stopped)")
    imp.add_argument("csv", metavar="CSVDIR", help="folder written by `hippo export neo4j DIR --csv CSVDIR`")
    imp.add_argument("--database", default="neo4j", help="database to replace (default neo4j)")
    for a in (start, stop, status, imp):
        a.add_argument("--home", type=Path, help="server folder (default: HIPPO_NEO4J_HOME or ./.neo4j)")
        a.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hippo.neo4j import server

    if args.action == "start":
        info = server.start(
            args.home, auth=not args.no_auth, bolt_port=args.bolt_port, http_port=args.http_port,
            heap=args.heap, pagecache=args.pagecache, timeout=args.timeout,
        )
        return _show(info.to_dict(), args.json, f"Neo4j {info.version} is running (pid {info.pid})")
    if args.action == "stop":
        stopped = server.stop(args.home, args.timeout)
        if args.json:
            print_json({"stopped": stopped is not None, "pid": stopped.pid if stopped else None})
        else:
            print(f"stopped Neo4j (pid {stopped.pid})" if stopped else "no Neo4j server was running for this folder")
        return 0
    if args.action == "status":
        running = server.status(args.home)
        if running is None:
            if args.json:
                print_json({"running": False})
            else:
                print("not running; start it with `hippo neo4j start`")
            return 3
        return _show({"running": True, **running.to_dict()}, args.json, f"Neo4j {running.version} is running (pid {running.pid})")
    seconds = server.admin_import(args.home or server.default_home(), Path(args.csv), args.database)
    if args.json:
        print_json({"database": args.database, "seconds": round(seconds, 3)})
    else:
        print(f"imported {args.csv} into database {args.database} in {seconds:.1f} s; start the server with `hippo neo4j start`")
    return 0


def _show(info: dict[str, object], as_json: bool, headline: str) -> int:
    if as_json:
        print_json(info)
        return 0
    print(headline)
    print(f"  Browser  {info['browser_url']}")
    print(f"  Bolt     {info['bolt_uri']}")
    print(f"  login    {info['user']} / {info['password']}" if info["auth"] else "  login    none (auth is off)")
    print(f"  folder   {info['home']}")
    return 0
