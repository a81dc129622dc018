"""``hippo.Client``: a namespace on a ``hippo serve`` server, with the local engine's methods.

>>> import hippo
>>> mem = hippo.Client("http://localhost:8080", key, namespace="alice")     # doctest: +SKIP
>>> mem.add([{"text": "Alice Smith founded Acme Corp."}])                   # doctest: +SKIP
>>> mem.retrieve("Who founded Acme?", k=5).hits                            # doctest: +SKIP

``retrieve``, ``retrieve_many``, ``answer``, ``add``, ``delete`` and ``info`` take the same
arguments and return the same types (:class:`~hippo.types.QueryResult`, ...) as
:class:`hippo.Engine` and the writable index, so code moves between local and remote
unchanged. Errors raise :class:`ServerError` (a :class:`~hippo.HippoError`) with the
server's problem details. Needs ``httpx`` (in the ``serve`` extra).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from hippo.errors import HippoError
from hippo.serve.wire import answer_from_json, result_from_json
from hippo.types import Answer, Passage, QueryResult

RETRY_STATUSES = (429, 503)
"""Statuses after which nothing was done and the server says when to retry."""


class ServerError(HippoError):
    """The server refused or failed a request; ``status`` and ``problem`` (RFC 9457) say why."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        title = problem.get("title", "Error")
        super().__init__(f"{status} {title}: {problem.get('detail', '')}".rstrip(": "))


def _passage_json(p: Mapping[str, Any] | Passage | str) -> dict[str, Any]:
    if isinstance(p, str):
        return {"text": p}
    if isinstance(p, Passage):
        out: dict[str, Any] = {"text": p.text, "id": p.id}
        if p.title:
            out["title"] = p.title
        if p.metadata:
            out["metadata"] = dict(p.metadata)
        return out
    return {k: v for k, v in p.items() if v is not None}


class Client:
    """One namespace of a hippo server. ``key`` is sent as ``Authorization: Bearer``.

    ``retries``: how often a request answered 429 or 503 (nothing was done) is sent again,
    after the ``Retry-After`` the server gives. Use it as a context manager, or :meth:`close`.
    """

    def __init__(self, url: str, key: str | None = None, namespace: str = "default", *, timeout: float = 120.0,
                 retries: int = 3, _http: Any = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.namespace_name = namespace
        self.retries = retries
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http: httpx.Client = _http or httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._owner = _http is None

    def namespace(self, name: str) -> Client:
        """Another namespace on the same server and connection."""
        return Client(self.url, namespace=name, retries=self.retries, _http=self._http)

    def close(self) -> None:
        """Close the connection (only the client that opened it does)."""
        if self._owner:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self.retries + 1):
            r = self._http.request(method, path, **kwargs)
            if r.status_code < 400:
                return r.json()
            if r.status_code in RETRY_STATUSES and attempt < self.retries:
                time.sleep(min(30.0, float(r.headers.get("Retry-After", "1") or 1)))
                continue
            try:
                problem = r.json()
            except ValueError:
                problem = {"title": r.reason_phrase, "detail": r.text[:200]}
            raise ServerError(r.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def _ns(self) -> str:
        return f"/v1/ns/{self.namespace_name}"

    def retrieve(self, query: str, k: int | None = None, retriever: str = "hippo") -> QueryResult:
        """Top-``k`` passages for ``query`` with the facts and seeds used (as :meth:`hippo.Engine.retrieve`)."""
        params: dict[str, Any] = {"q": query, "retriever": retriever}
        if k is not None:
            params["k"] = k
        return result_from_json(self._call("GET", f"{self._ns}/retrieve", params=params))

    def retrieve_many(self, queries: Sequence[str], k: int | None = None, retriever: str = "hippo") -> list[QueryResult]:
        """One result per query, in one request (as :meth:`hippo.Engine.retrieve_many`)."""
        if isinstance(queries, str):
            raise TypeError("retrieve_many takes a list of queries; use retrieve() for one")
        if not queries:
            return []
        body: dict[str, Any] = {"queries": list(queries), "retriever": retriever}
        if k is not None:
            body["k"] = k
        data = self._call("POST", f"{self._ns}/retrieve", json=body)
        return [result_from_json(r) for r in data["results"]]

    def answer(self, question: str, k: int | None = None, retriever: str = "hippo") -> Answer:
        """The server's LLM answers from the top passages (as :meth:`hippo.Engine.answer`)."""
        body: dict[str, Any] = {"question": question, "retriever": retriever}
        if k is not None:
            body["k"] = k
        return answer_from_json(self._call("POST", f"{self._ns}/ask", json=body))

    def add(self, passages: Sequence[Mapping[str, Any] | Passage | str], update: bool = False) -> list[str]:
        """Store passages (``{"text", "title"?, "id"?, "metadata"?}``, :class:`~hippo.Passage` or plain
        strings); returns their ids once durable. ``update`` replaces passages whose id exists."""
        body = {"passages": [_passage_json(p) for p in passages]}
        data = self._call("PUT" if update else "POST", f"{self._ns}/passages", json=body)
        return list(data["ids"])

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete passages by id; unknown ids raise :class:`ServerError` (404) and nothing is deleted."""
        return list(self._call("DELETE", f"{self._ns}/passages", json={"ids": list(ids)})["deleted"])

    def info(self) -> dict[str, Any]:
        """Counts, embedder, extractor, config and versions of the namespace's index."""
        data: dict[str, Any] = self._call("GET", self._ns)
        return data

    def namespaces(self) -> list[str]:
        """Namespaces this key reaches that hold passages."""
        return [n["name"] for n in self._call("GET", "/v1/ns")["namespaces"]]

    def health(self) -> dict[str, Any]:
        """``/healthz``."""
        data: dict[str, Any] = self._call("GET", "/healthz")
        return data
