"""Query encoders for one short question at a time, measured side by side (issue 22).

    python benchmarks/query_encoders.py            # writes benchmarks/results/query_encoders.json

Candidates, each encoding the 100 MuSiQue-100 questions one at a time, interleaved question by
question (so a noisy neighbour hits all of them alike), ``--rounds`` times:

* ``sentence-transformers``: ``SentenceTransformer.encode`` as ``SentenceTransformerEmbedder``
  calls it (one torch thread, inference mode): the path before this change;
* ``torch-lean``: the ``tokenizers`` tokenizer, the transformer's ``forward``, mean pooling
  and normalisation, one torch thread, inference mode: no sentence-transformers per call;
* ``torchscript``: the same module traced and frozen with ``torch.jit``;
* ``onnxruntime``: :class:`hippo.embed.onnx_query.OnnxQueryEncoder` (the graph exported with
  ``torch.onnx``, one ONNX Runtime thread).

Also: a question with two NER mentions (three texts, as ``Engine.prepare`` encodes them) as a
padded batch vs one by one, 1,000 questions as a batch (sentence-transformers, as
``retrieve_many`` encodes them), and each candidate's cosine to sentence-transformers.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
QUESTIONS = HERE.parent.parent / "shared" / "data" / "musique100" / "questions.json"


def pct(ms: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2),
            "mean": round(float(np.mean(ms)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--questions", default=str(QUESTIONS))
    ap.add_argument("--out", default=str(HERE / "results" / "query_encoders.json"))
    args = ap.parse_args()

    import torch

    from hippo.embed.onnx_query import _batch, _pooled, _tokenizer, query_encoder
    from hippo.embed.st import SentenceTransformerEmbedder
    from hippo.threads import torch_threads_for

    questions = [q["question"] for q in json.loads(Path(args.questions).read_text())]
    emb = SentenceTransformerEmbedder()
    st = emb._load()
    tok = _tokenizer(emb._path, emb.max_seq_length)
    pooled = _pooled(st[0].auto_model).eval()

    def st_encode(texts: list[str]) -> Any:
        with torch_threads_for(len(texts)), torch.inference_mode():
            return st.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)

    def lean(texts: list[str]) -> Any:
        ids, mask = _batch(tok, texts)
        with torch_threads_for(len(texts)), torch.inference_mode():
            return pooled(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()

    ids, mask = _batch(tok, questions[:2])
    with torch.inference_mode():
        traced = torch.jit.freeze(torch.jit.trace(pooled, (torch.from_numpy(ids), torch.from_numpy(mask)), check_trace=False))

    def script(texts: list[str]) -> Any:
        ids, mask = _batch(tok, texts)
        with torch_threads_for(len(texts)), torch.inference_mode():
            return traced(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()

    t = time.perf_counter()
    onnx = query_encoder(emb._path, emb.max_seq_length)
    onnx_ready_s = time.perf_counter() - t
    assert onnx is not None, "the ONNX query encoder is not available (see the log)"

    candidates = {"sentence-transformers": st_encode, "torch-lean": lean, "torchscript": script, "onnxruntime": onnx.encode}
    reference = st_encode(questions)
    cosine = {}
    for name, fn in candidates.items():
        got = np.concatenate([fn([q]) for q in questions])
        cosine[name] = round(float((got * reference).sum(axis=1).min()), 7)
        for q in questions[:10]:
            fn([q])  # warm
    times: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    for r in range(args.rounds):
        for i, q in enumerate(questions):
            turn = order[(i + r) % len(order):] + order[: (i + r) % len(order)]
            for name in turn:
                s = time.perf_counter()
                candidates[name]([q])
                times[name].append(1000 * (time.perf_counter() - s))
    single = {name: pct(ms) for name, ms in times.items()}

    # A question and two mentions, as Engine.prepare encodes them: padded batch vs one by one.
    triples = [[q, q.split()[-1].strip("?"), " ".join(q.split()[2:4])] for q in questions]
    mixed: dict[str, list[float]] = {"padded": [], "one_by_one": []}
    for r in range(args.rounds):
        for texts in triples:
            for name in (("padded", "one_by_one") if r % 2 == 0 else ("one_by_one", "padded")):
                s = time.perf_counter()
                if name == "padded":
                    onnx.encode(texts)
                else:
                    [onnx.encode([t]) for t in texts]
                mixed[name].append(1000 * (time.perf_counter() - s))

    batch = (questions * 10)[:1000]
    batch_s = {}
    for name, fn in (("sentence-transformers", st_encode), ("sentence-transformers", st_encode)):
        s = time.perf_counter()
        fn(batch)
        batch_s[name] = round(time.perf_counter() - s, 2)  # second run kept (warm)
    result = {"questions": len(questions), "rounds": args.rounds, "single_query_ms": single, "cosine_min_to_st": cosine,
              "question_plus_two_mentions_ms": {k: pct(v) for k, v in mixed.items()},
              "batch_1000_s": batch_s, "onnx_ready_s": round(onnx_ready_s, 2),
              "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                          "torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__},
              "command": " ".join(["python", "benchmarks/query_encoders.py", *sys.argv[1:]])}
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
