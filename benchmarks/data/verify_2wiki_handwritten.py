"""Verify benchmarks/data/2wiki_handwritten.json against the 2Wiki corpus (no retrieval, no models)."""
import json, re, sys, unicodedata
from collections import Counter

from pathlib import Path

HERE = Path(__file__).resolve().parent
QFILE = HERE / "2wiki_handwritten.json"
CORPUS = HERE.parents[2] / "shared" / "data" / "2wiki" / "corpus.json"
TYPES = ("compositional", "comparison", "inference", "bridge-comparison")

corpus = json.load(open(CORPUS, encoding="utf-8"))
data = json.load(open(QFILE, encoding="utf-8"))
pairs = {(p["title"], p["text"]): i for i, p in enumerate(corpus)}
title_count = Counter(p["title"] for p in corpus)
errors = []

def norm(s):
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[a-z0-9]+", s))

# 1. structure, ids, types
ids = [q["id"] for q in data]
if len(set(ids)) != len(ids):
    errors.append("duplicate ids")
types = Counter()
for q in data:
    m = re.fullmatch(r"2wikih-(\d{3})-(" + "|".join(TYPES) + ")", q["id"])
    if not m:
        errors.append(f"{q['id']}: bad id")
        continue
    types[m[2]] += 1
    for k in ("question", "answer", "answer_aliases", "paragraphs", "reasoning"):
        if k not in q:
            errors.append(f"{q['id']}: missing {k}")

# 2. every gold paragraph is an exact corpus passage with a unique title
gold_idx = {}
for q in data:
    idxs = []
    for p in q["paragraphs"]:
        key = (p["title"], p["paragraph_text"])
        if key not in pairs:
            errors.append(f"{q['id']}: paragraph not in corpus: {p['title']!r}")
            continue
        if title_count[p["title"]] != 1:
            errors.append(f"{q['id']}: title not unique in corpus: {p['title']!r}")
        if p.get("is_supporting") is not True:
            errors.append(f"{q['id']}: paragraph not marked supporting")
        idxs.append(pairs[key])
    if len(set(idxs)) != len(idxs):
        errors.append(f"{q['id']}: repeated gold passage")
    if not 2 <= len(idxs) <= 4:
        errors.append(f"{q['id']}: {len(idxs)} gold passages")
    gold_idx[q["id"]] = idxs

# 3. no duplicate questions, no duplicate gold sets
nq = Counter(norm(q["question"]) for q in data)
errors += [f"duplicate question: {k}" for k, v in nq.items() if v > 1]
gs = Counter(frozenset(v) for v in gold_idx.values())
errors += [f"two questions share the same gold set {sorted(k)}" for k, v in gs.items() if v > 1]

# 4. answer support and leakage
for q in data:
    typ = q["id"].split("-", 2)[2]
    answers = [q["answer"]] + q["answer_aliases"]
    texts = [norm(p["title"] + " " + p["paragraph_text"]) for p in q["paragraphs"]]
    if typ in ("compositional", "inference"):
        if not any(norm(a) in texts[-1] for a in answers):
            errors.append(f"{q['id']}: answer not found in the last-hop passage")
        if any(norm(a) in texts[0] for a in answers):
            errors.append(f"{q['id']}: answer already in the first passage (no hop needed)")
        for p in q["paragraphs"][1:]:                      # bridge entities must not be named
            if norm(p["title"]) in norm(q["question"]):
                errors.append(f"{q['id']}: bridge {p['title']!r} named in the question")
        if norm(q["answer"]) in norm(q["question"]):
            errors.append(f"{q['id']}: answer appears in the question")
    else:
        if q["answer"] not in ("yes", "no") and norm(q["answer"].split(" (")[0]) not in norm(q["question"]):
            errors.append(f"{q['id']}: comparison answer is not one of the compared items")
        if typ == "bridge-comparison":
            for p in q["paragraphs"][1::2]:                # directors are bridges
                if norm(p["title"]) in norm(q["question"]):
                    errors.append(f"{q['id']}: bridge {p['title']!r} named in the question")

# 5. shortcut report: a non-gold passage naming both the start entity and the answer (manual review)
shortcuts = []
for q in data:
    typ = q["id"].split("-", 2)[2]
    if typ not in ("compositional", "inference"):
        continue
    start = norm(re.sub(r"\s*\(.*?\)$", "", q["paragraphs"][0]["title"]))
    ans = [norm(a) for a in [q["answer"]] + q["answer_aliases"] if len(norm(a)) > 4]
    for i, p in enumerate(corpus):
        if i in gold_idx[q["id"]]:
            continue
        t = norm(p["title"] + " " + p["text"])
        if start in t and any(a in t for a in ans):
            shortcuts.append(f"{q['id']}: passage {i} {p['title']!r} names both start entity and answer")

# 5b. other-route report: a non-gold passage naming a gold entity (start or bridge) together with the answer
other_routes = []
def base(t):
    return norm(re.sub(r"\s*\(.*?\)$", "", t))
for q in data:
    typ = q["id"].split("-", 2)[2]
    if typ not in ("compositional", "inference"):
        continue
    ans = [norm(a) for a in [q["answer"]] + q["answer_aliases"] if len(norm(a)) > 4]
    ents = [base(p["title"]) for p in q["paragraphs"]]
    for i, p in enumerate(corpus):
        if i in gold_idx[q["id"]]:
            continue
        t = norm(p["title"] + " " + p["text"])
        if any(a in t for a in ans) and any(e in t for e in ents):
            other_routes.append(f"{q['id']}: passage {i} {p['title']!r} names a gold entity and the answer")
# 5c. comparison leakage: one compared item's passage naming the other compared item
for q in data:
    typ = q["id"].split("-", 2)[2]
    if typ not in ("comparison", "bridge-comparison"):
        continue
    items = q["paragraphs"] if typ == "comparison" else q["paragraphs"][0::2]
    for a in items:
        for b in items:
            if a is not b and base(b["title"]) in norm(a["paragraph_text"]):
                other_routes.append(f"{q['id']}: {a['title']!r} mentions the other compared item {b['title']!r}")

# 6. load through hippo's own question loader and gold matcher (format check only; no index, no retrieval)
sys.path.insert(0, "/work/main")
from hippo.evaluation import GoldMatcher, load_questions
from hippo.corpus import read_corpus
loaded = load_questions(QFILE)
passages = read_corpus(CORPUS)
gm = GoldMatcher([p.id for p in passages], [p.title for p in passages], [p.content for p in passages])
how = Counter(gm.match(t, c)[1] for qq in loaded for t, c in qq.gold)

# report
spread = Counter(i * 8 // len(corpus) for v in gold_idx.values() for i in v)
print(f"questions: {len(data)}  unique ids: {len(set(ids))}  unique questions: {len(nq)}")
print("per type:", dict(types))
print("gold passages per question:", dict(sorted(Counter(len(v) for v in gold_idx.values()).items())))
n_gold = sum(len(v) for v in gold_idx.values())
print(f"gold passages: {n_gold} entries, {len({i for v in gold_idx.values() for i in v})} distinct corpus passages")
print("gold passages per eighth of the corpus (by position):", [spread[k] for k in range(8)])
print(f"hippo load_questions: {len(loaded)} questions; gold matched by:", dict(how))
print(f"shortcut candidates for manual review: {len(shortcuts)}")
for s in shortcuts:
    print("  ", s)
print(f"other evidence routes for manual review: {len(other_routes)}")
for s_ in other_routes:
    print("  ", s_)
print("errors:", len(errors))
for e in errors:
    print("  ", e)
sys.exit(1 if errors else 0)
