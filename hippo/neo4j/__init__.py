"""A local Neo4j Community server with Browser (``hippo neo4j start|stop|status``)."""

from hippo.neo4j.server import ServerInfo, default_home, start, status, stop

__all__ = ["ServerInfo", "default_home", "start", "status", "stop"]
