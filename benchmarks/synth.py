"""Synthetic corpora for scale benchmarks, shaped like a real hippo index (issue 8).

    python benchmarks/synth.py --measure                       # real indexes -> results/synth_stats.json
    python benchmarks/synth.py --passages 100000 --out DIR     # generate (also: --seed, --dim)
    python benchmarks/synth.py --check DIR                     # generated statistics next to the real ones

**The vectors are random unit vectors with planted structure, for cost measurement only**:
retrieval quality measured on them means nothing.

Measured (``--measure``; MuSiQue-100 with gpt-3.5 OpenIE unless said; full figures in
``benchmarks/results/synth_stats.json``):

* facts per passage: mean 9.1, median 9, p90 14, p99 23, max 57 (0.1 % have none);
  distinct entities per passage: mean 10.5, median 10, p90 17, max 48 (about 1.17 per fact,
  correlation 0.92 with the fact count).
* |C(e)| (passages containing an entity): 91.2 % of entities are in one passage, 5.3 % in
  two, 1.4 % in three; the top entity ("united states") is in 169 passages (0.86 % of all
  passage-entity pairs), the next ones in about 30. Rank-frequency slope over ranks 1-1000
  is only 0.57: the head of a 1,890-passage corpus is flat.
* facts stated by more than one passage: 0.87 % (2wiki spaCy 1.5 %); self-loops 0.1 %.
* Heaps' law V(n) = K n^beta on random passage prefixes: MuSiQue-100 beta = 0.96 (100
  unrelated question clusters, so almost linear), 2wiki beta = 0.91 (K = 23). We extrapolate
  with beta = 0.91, the 2wiki figure, anchored at MuSiQue's 16,228 entities for 1,890 passages.
* synonymy (cosine >= 0.8, MiniLM entity vectors): 30 % of entities have at least one such
  neighbour, 0.88 neighbours per entity on average (2.9 per entity that has one); pair
  cosines: p10 0.807, median 0.844, p90 0.92. Density grows with the corpus (2wiki: 51 %,
  2.9 per entity); the generator keeps the MuSiQue density at every size.

Generated vs real (``--check``; seed 0; 2 shared, busy cores):

=============================  =========  =========  =========  =========
statistic                      MuSiQue    10^4       10^5       10^6
=============================  =========  =========  =========  =========
entities / facts               16k / 17k  75k / 91k  613k/909k  4.99M/9.10M
facts per passage (mean, p90)  9.1, 14    9.2, 14    9.2, 14    9.2, 14
entities per passage           10.5, 17   10.6, 17   10.6, 17   10.6, 17
|C(e)| = 1 / = 2               .912/.053  .899/.055  .894/.055  .892/.056
top entity share / top-100     .86%/6.8%  .81%/7.5%  .81%/7.3%  .81%/7.6%
shared facts / self-loops      .87%/.12%  .87%/.10%  .87%/.12%  .87%/.12%
Heaps beta (own prefixes)      0.96       0.94       0.94       0.92
synonym: with any / mean       .30/0.88   .30/0.86   .29/0.85*  .31/0.91*
query target = nearest fact    -          1.0        1.0*       1.0*
wall time / peak RSS           -          6 s/0.4 GB 40 s/1.3GB 7.2 min/6.2 GB
=============================  =========  =========  =========  =========

(* on 4,000 / 1,000 sampled entities and 200 queries, exact against all rows.) On 10^4
passages the exact kNN finds 32,196 of the 33,929 planted pairs (95 %; the rest were drawn
just above 0.8 and the noise pushed them under). On the 10^6 corpus
the vocabulary of its random 1,832-passage prefixes is 16,182 entities, against MuSiQue's
16,228 for 1,890 passages: the growth model is self-consistent. On disk: 138 MB, 1.3 GB
and 12 GB (float16 vectors are most of it).

Model (all vectorised numpy; seeded; memory grows with entities and passages, see meta.json):

* passages draw (facts, distinct entities) pairs from the measured joint histogram;
* entity mentions come from an approximate Pitman-Yor process with discount beta (copying a
  previous mention with probability proportional to count - beta), whose hapax fraction,
  frequency-of-frequencies and Heaps exponent match the measured ones, plus one "hub" entity
  that takes the measured top-1 share of mentions (the "united states" of the corpus);
* each passage's rarest entity is its title and hub: facts cover every entity of the
  passage, then extra facts join random pairs (subject = hub with probability 0.6);
  relations are the 300 commonest MuSiQue OpenIE phrases, with their frequencies;
* a few facts are copied into other passages until the measured shared-fact rate is reached.

Vectors (float16, L2-normalised):
* entities: clustered like a real embedding space (see ``_Clustered``: a shared direction, topics
  of ~200 and sub-topics of ~10 entities; random pairs at cosine 0.125, nearest neighbour 0.67
  and 10th nearest 0.54 at the median on 10^4 passages, against 0.13-0.15 / 0.72-0.81 / 0.53-0.61
  on the real MuSiQue and 2wiki entity vectors), plus planted synonym groups (cliques sized by the measured
  synonym-degree histogram): members are sqrt(c) u + sqrt(1 - c) n with u the group centre,
  n a random unit vector orthogonal to u and c drawn from the measured pair-cosine
  distribution, so pairs in a group have cosine about c;
* facts: normalise(0.5 v_s + 0.4 v_o + 0.2 v_r + 0.55 n) (v_r a random vector per relation);
* passages: normalise(0.8 m + 0.6 n), m the normalised sum of the passage's fact vectors;
* queries: c f + sqrt(1 - c^2) n, n orthogonal to the target fact f, c uniform in [0.7, 0.8].
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
STATS = HERE / "results" / "synth_stats.json"
REAL = {
    "musique100-openie": HERE / ".cache" / "musique100-openie",
    "musique100-spacy": HERE / ".cache" / "musique100-spacy",
    "2wiki-spacy": HERE / ".cache" / "2wiki-spacy",
}
BASE, HEAPS_FROM = "musique100-openie", "2wiki-spacy"
SYN_THRESHOLD = 0.8
HUB_SUBJECT = 0.6
FACT_MIX = (0.5, 0.4, 0.2, 0.55)  # subject, object, relation, noise
PASSAGE_MIX = (0.8, 0.6)  # facts, noise
N_QUERIES, QUERY_COS = 1000, (0.7, 0.8)
CHUNK = 1 << 16
GEOMETRY = (0.36, 0.55, 0.45, 0.61)  # shared direction, topic, sub-topic, noise (see _Clustered)
TOPIC_SIZE, SUBTOPIC_SIZE = 200, 10
NOTE = ("Vectors are random unit vectors with planted synonym, fact/passage and query structure; "
        "they are only meant for cost measurement, not for judging retrieval quality.")

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]


# ---------------------------------------------------------------- statistics

def _quantiles(x: npt.ArrayLike) -> dict[str, float]:
    a = np.asarray(x, dtype=np.float64)
    q = np.percentile(a, [10, 50, 90, 99]) if len(a) else np.zeros(4)
    return {"mean": round(float(a.mean()), 4) if len(a) else 0.0, "p10": float(q[0]), "p50": float(q[1]),
            "p90": float(q[2]), "p99": float(q[3]), "max": float(a.max()) if len(a) else 0.0}


def passage_entities(s: I64, o: I64, indptr: I64, indices: I64, n_entities: int) -> tuple[I64, I64]:
    """Distinct (passage, entity) containment pairs, sorted: ``(rows, cols)``."""
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    key = np.unique(np.concatenate([rows * n_entities + s[indices], rows * n_entities + o[indices]]))
    return key // n_entities, key % n_entities


def heaps(rows: I64, cols: I64, n_passages: int, n_entities: int, seed: int = 0, trials: int = 5) -> dict[str, Any]:
    """Distinct entities V(n) on random passage prefixes and the fit V(n) = K n^beta."""
    rng = np.random.default_rng(seed)
    ns = np.unique(np.geomspace(min(50, n_passages), n_passages, 12).astype(np.int64))
    v = np.zeros(len(ns))
    for _ in range(trials):
        pos = rng.permutation(n_passages)[rows]
        first = np.full(n_entities, n_passages, dtype=np.int64)
        np.minimum.at(first, cols, pos)
        v += np.searchsorted(np.sort(first), ns, side="left")
    v /= trials
    beta, logk = np.polyfit(np.log(ns), np.log(np.maximum(v, 1)), 1)
    return {"beta": round(float(beta), 4), "K": round(float(np.exp(logk)), 3), "n": ns.tolist(),
            "V": v.round(1).tolist()}


def structure_stats(s: I64, o: I64, indptr: I64, indices: I64, n_entities: int) -> dict[str, Any]:
    """Facts/entities per passage, |C(e)|, shared facts and Heaps growth of one corpus."""
    n_p, n_f = len(indptr) - 1, len(s)
    rows, cols = passage_entities(s, o, indptr, indices, n_entities)
    k = np.diff(indptr)
    d = np.bincount(rows, minlength=n_p)
    c = np.bincount(cols, minlength=n_entities)
    cs = np.sort(c)[::-1]
    r = np.arange(1, len(cs) + 1)
    top = min(1000, len(cs))
    fpc = np.bincount(indices, minlength=n_f)
    return {
        "passages": n_p, "entities": n_entities, "facts": n_f,
        "facts_per_passage": _quantiles(k), "passages_without_facts": round(float((k == 0).mean()), 5),
        "entities_per_passage": _quantiles(d),
        "entities_per_fact_in_passage": round(float(d.sum() / max(k.sum(), 1)), 4),
        "entity_passage_count": {
            **_quantiles(c),
            "fraction_with_count": {str(i): round(float((c == i).mean()), 5) for i in (1, 2, 3, 4, 5)},
            "fraction_ge_10": round(float((c >= 10).mean()), 5),
            "top10": cs[:10].tolist(),
            "top1_share": round(float(cs[0] / max(cs.sum(), 1)), 5),
            "top100_share": round(float(cs[:100].sum() / max(cs.sum(), 1)), 5),
            "zipf_exponent_rank_1_1000": round(float(-np.polyfit(np.log(r[:top]), np.log(cs[:top]), 1)[0]), 4),
        },
        "shared_fact_fraction": round(float((fpc > 1).mean()), 5),
        "fact_passage_count_max": int(fpc.max()) if n_f else 0,
        "self_loop_fraction": round(float((s == o).mean()), 5),
        "heaps": heaps(rows, cols, n_p, n_entities),
    }


def synonymy_stats(vectors: npt.NDArray[Any], sample: int = 0, seed: int = 0, block: int = 1 << 14) -> dict[str, Any]:
    """Neighbours at cosine >= 0.8 of every entity (or of ``sample`` random ones, exactly,
    against all entities): fraction with one or more, mean count, pair-cosine quantiles."""
    n = len(vectors)
    rng = np.random.default_rng(seed)
    who = np.arange(n) if not sample or sample >= n else np.sort(rng.choice(n, sample, replace=False))
    deg = np.zeros(len(who), dtype=np.int64)
    cos_l = []
    for qa in range(0, len(who), 4096):
        q = np.asarray(vectors[who[qa : qa + 4096]], dtype=np.float32)
        for a in range(0, n, block):
            sims = q @ np.asarray(vectors[a : a + block], dtype=np.float32).T
            r, col = np.nonzero(sims >= SYN_THRESHOLD)
            other = who[qa + r] != a + col
            deg[qa:qa + len(q)] += np.bincount(r[other], minlength=len(q))
            cos_l.append(sims[r[other], col[other]])
    cos = np.concatenate(cos_l)
    return {
        "entities_scored": int(len(who)), "entities": n,
        "fraction_with_synonym": round(float((deg > 0).mean()), 5),
        "mean_synonyms": round(float(deg.mean()), 4),
        "mean_synonyms_if_any": round(float(deg[deg > 0].mean()), 4) if (deg > 0).any() else 0.0,
        "degree_histogram": np.bincount(deg).tolist()[:64],
        "cosine_quantiles": np.percentile(cos, np.arange(0, 101, 5)).round(4).tolist() if len(cos) else [],
    }


def _real_arrays(root: Path) -> tuple[Path, I64, I64, I64, I64, int]:
    from hippo.store.layout import current_generation
    gen = root / str(current_generation(root))
    s, o = np.load(gen / "fact_subject.npy"), np.load(gen / "fact_object.npy")
    n_e = len(np.load(gen / "entity_passage_count.npy"))
    return gen, s, o, np.load(gen / "passage_fact_indptr.npy"), np.load(gen / "passage_fact_indices.npy"), n_e


def measure() -> dict[str, Any]:
    """Statistics of the real indexes plus the tables the generator samples from."""
    out: dict[str, Any] = {"indexes": {}}
    for name, root in REAL.items():
        gen, s, o, ip, ix, n_e = _real_arrays(root)
        st = structure_stats(s, o, ip, ix, n_e)
        st["synonymy"] = synonymy_stats(np.load(gen / "entity_vectors.npy"))
        st["index"] = str(gen.relative_to(REPO))
        out["indexes"][name] = st
        print(f"measured {name}", file=sys.stderr)
    gen, s, o, ip, ix, n_e = _real_arrays(REAL[BASE])
    rows, _ = passage_entities(s, o, ip, ix, n_e)
    kd = np.stack([np.diff(ip), np.bincount(rows, minlength=len(ip) - 1)], axis=1)
    pairs, counts = np.unique(kd, axis=0, return_counts=True)
    fpc = np.bincount(ix, minlength=len(s))
    rel: dict[str, int] = {}
    for line in (gen / "facts.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)["r"]
        rel[r] = rel.get(r, 0) + 1
    top_rel = sorted(rel.items(), key=lambda kv: (-kv[1], kv[0]))[:300]
    base = out["indexes"][BASE]
    out["model"] = {
        "base": BASE, "heaps_from": HEAPS_FROM,
        "beta": round(out["indexes"][HEAPS_FROM]["heaps"]["beta"], 2),
        "base_passages": len(ip) - 1, "base_entities": n_e, "base_mentions": int(len(rows)),
        "top1_share": base["entity_passage_count"]["top1_share"],
        "facts_entities_histogram": np.concatenate([pairs, counts[:, None]], axis=1).tolist(),
        "shared_fact_fraction": base["shared_fact_fraction"],
        "self_loop_fraction": base["self_loop_fraction"],
        "shared_fact_multiplicity": np.bincount(fpc)[2:].tolist(),
        "synonym_degree_histogram": base["synonymy"]["degree_histogram"],
        "synonym_cosine_quantiles": base["synonymy"]["cosine_quantiles"],
        "relations": [r for r, _ in top_rel], "relation_counts": [c for _, c in top_rel],
    }
    return out


# ---------------------------------------------------------------- structure

def _py_new_rate(n: npt.NDArray[np.float64], theta: float, d: float) -> npt.NDArray[np.float64]:
    """P(mention n is a new entity) when the entity count follows its Pitman-Yor expectation."""
    return np.asarray(theta ** (1 - d) * (theta + n) ** (d - 1))


def _py_types(m: float, theta: float, d: float) -> float:
    return float((theta ** (1 - d) * (theta + m) ** d - theta) / d)


def _py_theta(mentions: int, types: int, d: float) -> float:
    lo, hi = 1e-3, 1e9
    for _ in range(200):
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if _py_types(mentions, mid, d) < types else (lo, mid)
    return lo


def _pitman_yor(m: int, theta: float, d: float, rng: np.random.Generator) -> I64:
    """(m,) entity labels of m mentions: a vectorised approximate Pitman-Yor process.

    A mention is new with the expected rate; an old one copies a uniformly chosen earlier
    mention (weight count) or an earlier copied mention (weight count - 1), mixed so that
    an entity is chosen with weight count - d. Copy chains are resolved by pointer jumping.
    """
    n = np.arange(m, dtype=np.float64)
    new = rng.random(m) < _py_new_rate(n, theta, d)
    new[0] = True
    parent = np.arange(m, dtype=np.int64)
    old = np.flatnonzero(~new)
    types_before: npt.NDArray[np.float64] = (np.cumsum(new) - new)[old].astype(np.float64)
    prev = old.astype(np.float64)
    any_prev = (rng.random(len(old)) * prev).astype(np.int64)
    t = np.arange(len(old))
    old_prev = old[np.minimum((rng.random(len(old)) * t).astype(np.int64), np.maximum(t - 1, 0))]
    use_any = (rng.random(len(old)) < (1 - d) * prev / (prev - d * types_before)) | (t == 0)
    parent[old] = np.where(use_any, any_prev, old_prev)
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    label: I64 = (np.cumsum(new) - 1)[parent]
    return label


def _first_appearance(labels: I64) -> tuple[I64, int]:
    """Renumber labels 0.. in order of first appearance; (new labels, count)."""
    uniq, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    return rank[inv], len(uniq)


def _structure(n_passages: int, model: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Entities, facts and passage provenance (no text, no vectors)."""
    hist = np.asarray(model["facts_entities_histogram"], dtype=np.int64)
    pick = rng.choice(len(hist), n_passages, p=hist[:, 2] / hist[:, 2].sum())
    k, d = hist[pick, 0], hist[pick, 1]
    m = int(d.sum())
    # Mentions: one hub entity takes its share, the rest follow the Pitman-Yor process.
    beta, share = float(model["beta"]), float(model["top1_share"])
    base_m = model["base_mentions"] * (1 - share)
    theta = _py_theta(int(base_m), model["base_entities"] - 1, beta)
    hub = rng.random(m) < share
    raw = np.zeros(m, dtype=np.int64)
    raw[~hub] = _pitman_yor(int((~hub).sum()), theta, beta, rng) + 1
    ent, n_e = _first_appearance(raw)
    # Distinct entities of each passage, rarest first (the hub of its facts and its title).
    prow = np.repeat(np.arange(n_passages, dtype=np.int64), d)
    key = prow * n_e + ent
    _, first = np.unique(key, return_index=True)
    prow, ent = prow[first], ent[first]
    count = np.bincount(ent, minlength=n_e)
    order = np.lexsort((ent, count[ent], prow))
    prow, ent = prow[order], ent[order]
    d = np.bincount(prow, minlength=n_passages)
    ent_ptr = np.concatenate([[0], np.cumsum(d)])
    # Facts: object j covers entity 1 + j, subjects cover what objects cannot and (last fact) the
    # hub, entity 0; the other subjects are the hub or random, extra objects random.
    frow = np.repeat(np.arange(n_passages, dtype=np.int64), k)
    j = np.arange(len(frow)) - np.repeat(np.cumsum(k) - k, k)
    fd, fk, base = d[frow], k[frow], ent_ptr[frow]
    span = np.maximum(fd - 1, 1)
    o_loc = np.where(j < fd - 1, 1 + j, 1 + rng.integers(0, 1 << 30, len(j)) % span)
    s_rand = np.where(rng.random(len(j)) < HUB_SUBJECT, 0, rng.integers(0, 1 << 30, len(j)) % np.maximum(fd, 1))
    s_loc = np.where(j < fd - 1 - fk, fk + 1 + j, np.where((s_rand == o_loc) | (j == fk - 1), 0, s_rand))
    o_loc = np.where(fd <= 1, 0, o_loc)
    free = (j >= fd - 1) & (j >= fd - 1 - fk)  # extra facts: a self-loop here uncovers nothing
    loop = free & (rng.random(len(j)) < model["self_loop_fraction"] / max(float(free.mean()), 1e-9))
    o_loc = np.where(loop, s_loc, o_loc)
    s_ent, o_ent = ent[base + s_loc], ent[base + o_loc]
    w = np.asarray(model["relation_counts"], dtype=np.float64)
    r = rng.choice(len(w), len(j), p=w / w.sum()).astype(np.int64)
    # Distinct facts, numbered by first appearance; drop repeats inside a passage.
    fkey = (s_ent * n_e + o_ent) * len(w) + r
    fact, n_f = _first_appearance(fkey)
    pf = np.unique(frow * n_f + fact, return_index=True)[1]
    pf.sort()
    frow, fact = frow[pf], fact[pf]
    subj = np.zeros(n_f, dtype=np.int64)
    obj, rel = np.zeros(n_f, dtype=np.int64), np.zeros(n_f, dtype=np.int32)
    subj[fact], obj[fact], rel[fact] = s_ent[pf], o_ent[pf], r[pf]
    # Shared facts: copy single-passage facts into random other passages up to the measured rate.
    fpc = np.bincount(fact, minlength=n_f)
    extra = int(round(model["shared_fact_fraction"] * n_f)) - int((fpc > 1).sum())
    if extra > 0:
        mult = np.asarray(model["shared_fact_multiplicity"], dtype=np.float64)
        chosen = rng.choice(np.flatnonzero(fpc == 1), extra, replace=False)
        copies = 1 + rng.choice(len(mult), extra, p=mult / mult.sum())
        cf = np.repeat(chosen, copies)
        cp = rng.integers(0, n_passages, len(cf))
        key = np.unique(np.concatenate([frow * n_f + fact, cp * n_f + cf]))
        frow, fact = key // n_f, key % n_f
    else:
        order = np.lexsort((fact, frow))
        frow, fact = frow[order], fact[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(frow, minlength=n_passages))]).astype(np.int64)
    title = np.where(d > 0, ent[np.minimum(ent_ptr[:-1], len(ent) - 1)], rng.integers(0, n_e, n_passages))
    return {"fact_subject": subj, "fact_object": obj, "fact_relation": rel, "passage_fact_indptr": indptr,
            "passage_fact_indices": fact, "n_entities": n_e, "title_entity": title, "theta": theta}


# ---------------------------------------------------------------- text

def _words(n: int, rng: np.random.Generator) -> list[str]:
    """n distinct capitalised words: a third of two, the rest of three consonant-vowel
    syllables, each with an optional final n/r/s/l (the spelling parses back uniquely)."""
    cons, vows, tails = "bcdfghklmnprstvz", "aeiou", ["", "n", "r", "s", "l"]
    syl = [c + v for c in cons for v in vows]
    n2 = min(n // 3, len(syl) ** 2 * len(tails))
    out: list[str] = []
    for width, count in ((2, n2), (3, n - n2)):
        for x in rng.choice(len(syl) ** width * len(tails), count, replace=False).tolist():
            x, tail = divmod(x, len(tails))
            parts = []
            for _ in range(width):
                x, i = divmod(x, len(syl))
                parts.append(syl[i])
            out.append(("".join(parts) + tails[tail]).capitalize())
    return [out[i] for i in rng.permutation(n).tolist()]


def _table(strings: list[str]) -> tuple[npt.NDArray[np.uint8], I64]:
    data = [s.encode() for s in strings]
    off = np.concatenate([[0], np.cumsum([len(b) for b in data])]).astype(np.int64)
    return np.frombuffer(b"".join(data), dtype=np.uint8), off


def _gather(table: npt.NDArray[np.uint8], off: I64, tokens: I64) -> npt.NDArray[np.uint8]:
    """Bytes of the table entries ``tokens`` concatenated."""
    lens = off[tokens + 1] - off[tokens]
    out_start = np.cumsum(lens) - lens
    src = np.repeat(off[tokens] - out_start, lens) + np.arange(int(lens.sum()))
    gathered: npt.NDArray[np.uint8] = table[src]
    return gathered


def _write_strings(path: Path, table: npt.NDArray[np.uint8], off: I64, tokens: I64, owner: I64, n: int) -> None:
    """``path.bin`` + ``path.off.npy``: string i is the concatenation of the tokens with owner i
    (``owner`` sorted), written in chunks."""
    lens = np.bincount(owner, weights=off[tokens + 1] - off[tokens], minlength=n).astype(np.int64)
    np.save(path.with_suffix(".off.npy"), np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))
    step = 1 << 23
    with open(path.with_suffix(".bin"), "wb") as f:
        for a in range(0, len(tokens), step):
            f.write(_gather(table, off, tokens[a : a + step]).tobytes())


def _write_text(out: Path, st: dict[str, Any], relations: list[str], rng: np.random.Generator) -> None:
    n_e = st["n_entities"]
    n_w = 4 * int(np.ceil(np.sqrt(n_e))) + 64
    words = _words(n_w, rng)
    # Entity e is word[x // n_w] + " " + word[x % n_w], x = a bijection of e: unique names.
    mult = int(rng.integers(1, n_w * n_w // 2)) * 2 + 1
    while np.gcd(mult, n_w * n_w) != 1:
        mult += 2
    x = (np.arange(n_e, dtype=np.int64) * mult + int(rng.integers(0, n_w * n_w))) % (n_w * n_w)
    wt, wo = _table(words + [" "])
    tok = np.stack([x // n_w, np.full(n_e, n_w), x % n_w], axis=1).ravel()
    _write_strings(out / "entity_names", wt, wo, tok, np.repeat(np.arange(n_e), 3), n_e)
    names = np.fromfile(out / "entity_names.bin", dtype=np.uint8)
    noff = np.load(out / "entity_names.off.npy")
    n_p = len(st["passage_fact_indptr"]) - 1
    title = st["title_entity"]
    _write_strings(out / "passage_titles", names, noff, title, np.arange(n_p), n_p)
    # Texts: "Subject relation object." per fact, joined by a space.
    rt, ro = _table(relations + [" ", ". ", "."])
    table = np.concatenate([names, rt])
    off = np.concatenate([noff, noff[-1] + ro[1:]])
    sp, dot_sp, dot = n_e + len(relations), n_e + len(relations) + 1, n_e + len(relations) + 2
    indptr, facts = st["passage_fact_indptr"], st["passage_fact_indices"]
    owner = np.repeat(np.arange(n_p, dtype=np.int64), np.diff(indptr))
    last = np.zeros(len(facts), dtype=bool)
    last[indptr[1:][np.diff(indptr) > 0] - 1] = True
    tok = np.stack([st["fact_subject"][facts], np.full(len(facts), sp), n_e + st["fact_relation"][facts],
                    np.full(len(facts), sp), st["fact_object"][facts], np.where(last, dot, dot_sp)], axis=1)
    _write_strings(out / "passage_texts", table, off, tok.ravel(), np.repeat(owner, 6), n_p)


# ---------------------------------------------------------------- vectors

def _unit(x: F32) -> F32:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(n, 1e-12), dtype=np.float32)


def _random_unit(rows: int, dim: int, rng: np.random.Generator) -> F32:
    return _unit(rng.standard_normal((rows, dim), dtype=np.float32))


def _orthogonal_unit(base: F32, rng: np.random.Generator) -> F32:
    """Random unit vectors orthogonal to the (unit) rows of ``base``."""
    n = rng.standard_normal(base.shape, dtype=np.float32)
    n -= np.einsum("kd,kd->k", n, base)[:, None] * base
    return _unit(n)


class _NpyWriter:
    """Write a (rows, dim) float16 .npy in row chunks, without holding it in memory."""

    def __init__(self, path: Path, rows: int, dim: int) -> None:
        self.f = open(path, "wb")
        np.lib.format.write_array_header_1_0(self.f, {"descr": "<f2", "fortran_order": False, "shape": (rows, dim)})
        self.left = rows

    def write(self, chunk: F32) -> None:
        self.left -= len(chunk)
        self.f.write(np.ascontiguousarray(chunk, dtype="<f2").tobytes())

    def close(self) -> None:
        self.f.close()
        assert self.left == 0, "wrote the wrong number of rows"


def _sample_cosines(quantiles: list[float], n: int, rng: np.random.Generator) -> F32:
    q = np.asarray(quantiles, dtype=np.float64)
    return np.asarray(np.interp(rng.random(n), np.linspace(0, 1, len(q)), q), dtype=np.float32)


class _Clustered:
    """Entity vectors with the geometry of a real embedding space, not uniform on the sphere:
    ``normalise(a g + b t + c s + e n)`` with ``g`` one shared direction, ``t`` a topic of
    about :data:`TOPIC_SIZE` entities, ``s`` a sub-topic of about :data:`SUBTOPIC_SIZE`, ``n``
    noise; weights :data:`GEOMETRY` (squared: 0.13, 0.30, 0.20, 0.37) give random pairs a mean
    cosine of 0.13, topic mates 0.43, sub-topic mates 0.63, as measured on MiniLM entity vectors
    (MuSiQue-100: random pairs 0.13, 10th nearest neighbour 0.53 at the median; 2wiki: 0.15 and
    0.61). Uniform random vectors have none of this neighbourhood structure, which makes every
    approximate search look worse than it is on real embeddings."""

    def __init__(self, n: int, dim: int, rng: np.random.Generator) -> None:
        self.shared = _random_unit(1, dim, rng)[0]
        self.topics = _random_unit(max(1, n // TOPIC_SIZE), dim, rng).astype(np.float16)
        self.subtopics = _random_unit(max(1, n // SUBTOPIC_SIZE), dim, rng).astype(np.float16)

    def draw(self, rows: int, rng: np.random.Generator) -> F32:
        a, b, c, e = GEOMETRY
        sub = rng.integers(0, len(self.subtopics), rows)
        topic = sub % len(self.topics)
        x = (a * self.shared + b * self.topics[topic].astype(np.float32) + c * self.subtopics[sub].astype(np.float32)
             + e * _random_unit(rows, len(self.shared), rng))
        return _unit(x)


def _entity_vectors(n_e: int, dim: int, model: dict[str, Any], rng: np.random.Generator) -> tuple[npt.NDArray[np.float16], int]:
    """(E, dim) float16 entity vectors with planted synonym cliques; (vectors, planted pairs)."""
    vec = np.empty((n_e, dim), dtype=np.float16)
    clustered = _Clustered(n_e, dim, rng)
    for a in range(0, n_e, CHUNK):
        vec[a : a + CHUNK] = clustered.draw(min(CHUNK, n_e - a), rng)
    deg = np.asarray(model["synonym_degree_histogram"], dtype=np.float64)
    sizes = np.arange(len(deg)) + 1  # a clique of g members gives each member g - 1 synonyms
    groups_per_entity = deg[1:] / sizes[1:] / deg.sum()
    n_groups = rng.poisson(groups_per_entity * n_e)
    size = np.repeat(sizes[1:], n_groups)
    size = size[np.cumsum(size) <= n_e]
    members = rng.permutation(n_e)[: int(size.sum())]
    group = np.repeat(np.arange(len(size)), size)
    cos = _sample_cosines(model["synonym_cosine_quantiles"], len(size), rng)
    centre = clustered.draw(len(size), rng).astype(np.float32) if len(size) else np.zeros((0, dim), np.float32)
    for a in range(0, len(members), CHUNK):
        g = group[a : a + CHUNK]
        c = np.sqrt(cos[g])[:, None]
        vec[members[a : a + CHUNK]] = _unit(c * centre[g] + np.sqrt(1 - c * c) * _orthogonal_unit(centre[g], rng))
    return vec, int((size * (size - 1) // 2).sum())


def _write_vectors(out: Path, st: dict[str, Any], dim: int, model: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    ent, planted = _entity_vectors(st["n_entities"], dim, model, rng)
    np.save(out / "entity_vectors.npy", ent)
    rel_vec = _random_unit(len(model["relations"]), dim, rng)
    s, o, r = st["fact_subject"], st["fact_object"], st["fact_relation"]
    indptr, facts = st["passage_fact_indptr"], st["passage_fact_indices"]
    n_p, n_f = len(indptr) - 1, len(s)
    owner = np.repeat(np.arange(n_p, dtype=np.int64), np.diff(indptr))
    by_fact = np.lexsort((owner, facts))
    f_sorted, p_sorted = facts[by_fact], owner[by_fact]
    acc = np.zeros((n_p, dim), dtype=np.float32)
    ws, wo, wr, wn = FACT_MIX
    writer = _NpyWriter(out / "fact_vectors.npy", n_f, dim)
    for a in range(0, n_f, CHUNK):
        b = min(n_f, a + CHUNK)
        fv = _unit(ws * ent[s[a:b]].astype(np.float32) + wo * ent[o[a:b]].astype(np.float32)
                   + wr * rel_vec[r[a:b]] + wn * _random_unit(b - a, dim, rng))
        writer.write(fv)
        lo, hi = np.searchsorted(f_sorted, [a, b])
        fl, pl = f_sorted[lo:hi] - a, p_sorted[lo:hi]
        order = np.argsort(pl, kind="stable")
        fl, pl = fl[order], pl[order]
        starts = np.flatnonzero(np.concatenate([[True], pl[1:] != pl[:-1]])) if len(pl) else np.zeros(0, np.int64)
        if len(pl):
            acc[pl[starts]] += np.add.reduceat(fv[fl], starts, axis=0)
    writer.close()
    del ent
    pw, nw = PASSAGE_MIX
    writer = _NpyWriter(out / "passage_vectors.npy", n_p, dim)
    for a in range(0, n_p, CHUNK):
        m = acc[a : a + CHUNK]
        has = (np.linalg.norm(m, axis=1) > 0)[:, None]
        writer.write(_unit(np.where(has, pw * _unit(m), 0) + nw * _random_unit(len(m), dim, rng)))
    writer.close()
    del acc
    # Queries: near a random target fact.
    q = min(N_QUERIES, n_f)
    target = np.sort(rng.choice(n_f, q, replace=False))
    fvec = np.load(out / "fact_vectors.npy", mmap_mode="r")
    f = _unit(np.asarray(fvec[target], dtype=np.float32))
    c = rng.uniform(*QUERY_COS, q).astype(np.float32)[:, None]
    np.save(out / "queries.npy", _unit(c * f + np.sqrt(1 - c * c) * _orthogonal_unit(f, rng)).astype(np.float16))
    lo, hi = np.searchsorted(f_sorted, target), np.searchsorted(f_sorted, target, side="right")
    rows = [{"fact": int(t), "passages": p_sorted[a:b].tolist(), "subject": int(s[t]), "object": int(o[t]),
             "cosine": round(float(cc), 4)} for t, a, b, cc in zip(target, lo, hi, c[:, 0])]
    (out / "queries.json").write_text(json.dumps(rows, indent=0) + "\n", encoding="utf-8")
    return {"planted_synonym_pairs": planted}


# ---------------------------------------------------------------- generate / check

def load_model(path: Path = STATS) -> dict[str, Any]:
    """The sampling tables written by ``--measure``."""
    if not path.exists():
        raise SystemExit(f"{path} is missing: run python benchmarks/synth.py --measure first")
    model: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["model"]
    return model


def generate(n_passages: int, out: str | Path, seed: int = 0, dim: int = 384) -> dict[str, Any]:
    """Write a synthetic corpus of ``n_passages`` passages into ``out``; returns its meta.json."""
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model()
    rng = np.random.default_rng(seed)
    st = _structure(n_passages, model, rng)
    timings = {"structure": time.perf_counter() - t0}
    for name in ("fact_subject", "fact_object", "fact_relation", "passage_fact_indptr", "passage_fact_indices"):
        np.save(out / f"{name}.npy", st[name])
    (out / "relations.json").write_text(json.dumps(model["relations"], indent=0) + "\n", encoding="utf-8")
    _write_text(out, st, model["relations"], rng)
    timings["text"] = time.perf_counter() - t0 - sum(timings.values())
    vec_info = _write_vectors(out, st, dim, model, rng)
    timings["vectors"] = time.perf_counter() - t0 - sum(timings.values())
    meta = {
        "note": NOTE, "generator": "benchmarks/synth.py", "seed": seed, "dim": dim,
        "passages": n_passages, "entities": st["n_entities"], "facts": len(st["fact_subject"]),
        "passage_facts": len(st["passage_fact_indices"]), "relations": len(model["relations"]),
        "queries": min(N_QUERIES, len(st["fact_subject"])),
        "model": {"beta": model["beta"], "theta": round(st["theta"], 3), "hub_share": model["top1_share"],
                  "hub_subject": HUB_SUBJECT, "fact_mix_subject_object_relation_noise": FACT_MIX,
                  "passage_mix_facts_noise": PASSAGE_MIX, "query_cosine": QUERY_COS,
                  "synonym_threshold": SYN_THRESHOLD, **vec_info, "stats": str(STATS.relative_to(REPO))},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "wall_s": round(time.perf_counter() - t0, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def check(folder: str | Path, synonym_sample: int = 4000, query_sample: int = 200) -> dict[str, Any]:
    """The real-index statistics recomputed on a generated folder (synonymy and query
    linking on samples, exact against all rows)."""
    folder = Path(folder)

    def load(name: str) -> npt.NDArray[Any]:
        arr: npt.NDArray[Any] = np.load(folder / f"{name}.npy", mmap_mode="r")
        return arr

    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    st = structure_stats(np.asarray(load("fact_subject")), np.asarray(load("fact_object")),
                         np.asarray(load("passage_fact_indptr")), np.asarray(load("passage_fact_indices")),
                         meta["entities"])
    st["synonymy"] = synonymy_stats(load("entity_vectors"), synonym_sample)
    queries = np.asarray(load("queries"), dtype=np.float32)[:query_sample]
    target = np.array([q["fact"] for q in json.loads((folder / "queries.json").read_text())])[:query_sample]
    fv = load("fact_vectors")
    best, arg = np.full(len(queries), -np.inf, np.float32), np.zeros(len(queries), np.int64)
    for a in range(0, len(fv), 1 << 17):
        sims = queries @ np.asarray(fv[a : a + (1 << 17)], dtype=np.float32).T
        i = sims.argmax(axis=1)
        better = sims[np.arange(len(i)), i] > best
        best[better], arg[better] = sims[np.arange(len(i)), i][better], a + i[better]
    st["query_target_is_nearest_fact"] = round(float((arg == target).mean()), 4)
    return st


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list) or len(v) <= 10:
            out[prefix + k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: --measure, --passages N --out DIR, --check DIR."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure", action="store_true", help=f"measure the real indexes into {STATS.name}")
    ap.add_argument("--passages", type=int, help="generate this many passages")
    ap.add_argument("--out", type=Path, help="folder to write the generated corpus into")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--check", type=Path, help="recompute the statistics of a generated folder")
    ap.add_argument("--synonym-sample", type=int, default=4000,
                    help="--check: entities whose exact neighbours are counted (0 = all)")
    args = ap.parse_args(argv)
    if args.measure:
        STATS.write_text(json.dumps(measure(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {STATS}")
    if args.passages:
        if args.out is None:
            ap.error("--passages needs --out")
        print(json.dumps(generate(args.passages, args.out, args.seed, args.dim), indent=1))
    if args.check:
        real = _flat(json.loads(STATS.read_text(encoding="utf-8"))["indexes"][BASE])
        got = check(args.check, args.synonym_sample)
        (args.check / "check.json").write_text(json.dumps(got, indent=1) + "\n", encoding="utf-8")
        flat = _flat(got)
        print(f"{'statistic':58} {'real ' + BASE:>24} {'generated':>24}")
        for k in flat:
            print(f"{k:58} {str(real.get(k, '')):>24} {str(flat[k]):>24}")
    if not (args.measure or args.passages or args.check):
        ap.error("give --measure, --passages N --out DIR, or --check DIR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
