"""Fuzz ``hippo serve`` from its own OpenAPI document with schemathesis.

    flock /tmp/hippo-cpu.lock python benchmarks/serve_fuzz.py --work /tmp/serve-bench --max-examples 250

A real server process (the test-only hashing embedder: the fuzz is about HTTP handling, not
ranking) gets valid and invalid requests for every operation of ``/openapi.json``, generated
by schemathesis (examples, coverage and fuzzing phases, fixed seed), with a key that may read
and write every namespace. Every answer is checked: no 5xx (``not_a_server_error``), plus
the conformance checks named by ``--checks``. One worker: with two, CPython 3.11.7's
``ast.parse`` in hypothesis fails in threads ("AST constructor recursion depth mismatch"). The schemathesis JSON report and a summary
(cases per operation, failures) are written to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from serve_common import BENCH_KEY, KEYS, RESULTS, machine

from fake_openai import ReplayServer
from serve_proc import HASHING, ServerProcess

def _reader(body: dict[str, Any]) -> str:
    """The fake LLM's reader: a fixed answer in HippoRAG 2's format."""
    return "Thought: the passages say so.\nAnswer: Berlin"


CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/serve-bench"))
    ap.add_argument("--max-examples", type=int, default=250)
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--checks", default=CHECKS)
    ap.add_argument("--out", default="serve_fuzz")
    args = ap.parse_args()
    root = args.work / "fuzz"
    shutil.rmtree(root, ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    keys = args.work / "fuzz-keys.json"
    keys.write_text(json.dumps(KEYS))
    report = args.work / "fuzz-report.ndjson"
    llm = ReplayServer(handlers=[_reader]).start()  # the local fake OpenAI server: ask answers too
    srv = ServerProcess(root, "--keys", str(keys), "--rate", "0", *HASHING, "--llm-base-url", llm.base_url,
                        "--set", f"llm.cache={args.work / 'fuzz-llm-cache.sqlite'}", log=args.work / "fuzz-server.log",
                        env={"OPENAI_API_KEY": "fake"}).start()
    t0 = time.monotonic()
    try:
        cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{srv.url}/openapi.json",
               "-H", f"Authorization: Bearer {BENCH_KEY}", "--checks", args.checks,
               "--max-examples", str(args.max_examples), "--seed", str(args.seed), "--workers", "1",
               "--phases", "examples,coverage,fuzzing", "--report", "ndjson", "--report-ndjson-path", str(report),
               "--no-color", "--request-timeout", "120", "--suppress-health-check", "all", "--continue-on-failure",
               "--generation-database", "none"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=args.work)  # its cache goes there
    finally:
        code = srv.stop()
        llm.stop()
    elapsed = time.monotonic() - t0
    log = srv.log()
    statuses: Counter[str] = Counter()
    per_op: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    cases = 0
    for line in report.read_text().splitlines():
        event = json.loads(line)
        if "ScenarioFinished" in event:
            rec = event["ScenarioFinished"].get("recorder", {})
            label = rec.get("label", "?")
            for interaction in (rec.get("interactions") or {}).values():
                response = interaction.get("response") or {}
                statuses[str(response.get("status_code", "none"))] += 1
                per_op[label] += 1
                cases += 1
            for check_list in (rec.get("checks") or {}).values():
                for check in check_list:
                    if str(check.get("status")).lower() == "failure":
                        failures.append({"operation": label, "check": check.get("name"),
                                         "message": (check.get("failure_info") or {}).get("failure", {}).get("title")})
    server_errors = sum(v for k, v in statuses.items() if k.startswith("5"))
    result = {
        "command": f"flock /tmp/hippo-cpu.lock python benchmarks/serve_fuzz.py --max-examples {args.max_examples} "
                   f"--seed {args.seed}",
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "schemathesis_exit": proc.returncode,
        "checks": args.checks.split(","), "cases": cases, "seconds": round(elapsed, 1),
        "statuses": dict(sorted(statuses.items())), "server_errors_5xx": server_errors,
        "cases_per_operation": dict(sorted(per_op.items())),
        "failed_checks": dict(Counter(f"{f['check']}: {f['operation']}" for f in failures)),
        "failure_examples": failures[:20], "tracebacks_in_server_log": log.count('"trace"'), "server_exit": code,
        "summary": proc.stdout[-3000:],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "summary"}, indent=1))
    print(proc.stdout[-3000:])


if __name__ == "__main__":
    main()
