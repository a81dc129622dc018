import igraph as ig
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from hippo.graph.ppr import PPRSolver, personalized_pagerank


def random_graph(rng, n, m, isolated=0):
    """Random weighted multigraph on n nodes (the last `isolated` nodes have no edges)."""
    live = n - isolated
    src = rng.integers(0, live, m)
    dst = rng.integers(0, live, m)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    w = rng.uniform(0.1, 3.0, len(src))
    return src, dst, w


def adjacency(n, src, dst, w):
    a = sp.coo_matrix((np.r_[w, w], (np.r_[src, dst], np.r_[dst, src])), shape=(n, n)).tocsr()
    a.sum_duplicates()
    return a


@pytest.mark.parametrize("method", ["cg", "power", "cg-scipy"])
@pytest.mark.parametrize("seed", range(6))
def test_matches_igraph_prpack(seed, method):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    src, dst, w = random_graph(rng, n, int(n * rng.uniform(1.5, 6)), isolated=int(rng.integers(0, 4)))
    reset = np.where(rng.random(n) < 0.1, rng.random(n), 0.0)
    reset[-1] += 0.5  # mass on an isolated node too
    damping = float(rng.choice([0.5, 0.85]))
    g = ig.Graph(n=n, edges=list(zip(src.tolist(), dst.tolist())), directed=False)  # parallel edges kept
    expected = np.array(g.personalized_pagerank(damping=damping, directed=False, weights=w.tolist(), reset=reset.tolist(), implementation="prpack"))
    backend = "scipy" if method.endswith("-scipy") else "torch"
    solver = PPRSolver(adjacency(n, src, dst, w), backend=backend)
    got = solver.run(reset, damping=damping, tol=1e-10, max_iter=1000, method=method.split("-")[0])
    assert np.abs(got - expected).max() < 1e-6
    assert got.sum() == pytest.approx(1.0, abs=1e-9)


def test_matches_networkx_on_small_graph():
    rng = np.random.default_rng(42)
    n = 30
    src, dst, w = random_graph(rng, n, 80)
    G = nx.Graph()
    G.add_nodes_from(range(n))
    for s, d, x in zip(src, dst, w):
        if G.has_edge(s, d):
            G[s][d]["weight"] += x
        else:
            G.add_edge(int(s), int(d), weight=float(x))
    reset = rng.random(n)
    pers = {i: float(reset[i]) for i in range(n)}
    expected = nx.pagerank(G, alpha=0.5, personalization=pers, weight="weight", tol=1e-14, max_iter=1000, dangling=pers)
    got = personalized_pagerank(adjacency(n, src, dst, w), reset, damping=0.5, tol=1e-13, max_iter=1000)
    assert np.abs(got - np.array([expected[i] for i in range(n)])).max() < 1e-8


def test_default_tolerance_is_within_1e_6_of_exact():
    rng = np.random.default_rng(7)
    n = 3000
    solver = PPRSolver(adjacency(n, *random_graph(rng, n, 12000, isolated=20)))
    reset = rng.random(n) * (rng.random(n) < 0.3)
    exact = solver.run(reset, tol=1e-14, max_iter=10_000, method="power")
    for method in ("cg", "power"):
        assert np.abs(solver.run(reset, method=method) - exact).sum() < 1e-6


def test_unknown_method():
    with pytest.raises(ValueError, match="valid: cg, power"):
        personalized_pagerank(adjacency(2, np.array([0]), np.array([1]), np.array([1.0])), [1, 0], method="jacobi")


@pytest.mark.parametrize("backend", ["torch", "scipy"])
def test_batch_equals_single_runs(backend):
    rng = np.random.default_rng(1)
    n = 200
    solver = PPRSolver(adjacency(n, *random_graph(rng, n, 800)), backend=backend)
    resets = rng.random((n, 5)) * (rng.random((n, 5)) < 0.2)
    resets[0] += 1.0
    batch = solver.run(resets, tol=1e-12)
    for b in range(5):
        assert np.abs(batch[:, b] - solver.run(resets[:, b], tol=1e-12)).max() < 1e-12


def test_reset_is_sanitised_and_validated():
    a = adjacency(3, np.array([0]), np.array([1]), np.array([1.0]))
    pi = personalized_pagerank(a, [np.nan, -1.0, 1.0])
    assert pi[2] == pytest.approx(1.0)  # isolated node seeded: all mass stays there
    with pytest.raises(ValueError, match="no positive mass"):
        personalized_pagerank(a, [0.0, -1.0, np.nan])
    with pytest.raises(ValueError, match="entries"):
        personalized_pagerank(a, [1.0, 1.0])


def test_mass_flows_along_edges():
    # path 0 - 1 - 2: seeding 0 gives 1 more mass than 2
    a = adjacency(3, np.array([0, 1]), np.array([1, 2]), np.array([1.0, 1.0]))
    pi = personalized_pagerank(a, [1.0, 0.0, 0.0], damping=0.5)
    assert pi[0] > pi[1] > pi[2] > 0


def test_production_settings_match_igraph_ranking():
    """Default retrieval settings (tol 1e-5: the float32 path) against prpack."""
    rng = np.random.default_rng(11)
    n = 2000
    src, dst, w = random_graph(rng, n, 9000, isolated=5)
    reset = np.zeros(n)
    reset[:300] = 0.05 * rng.random(300)  # passage-like seeds on many nodes
    reset[rng.integers(300, n, 5)] += 1.0  # a few strong entity seeds
    g = ig.Graph(n=n, edges=list(zip(src.tolist(), dst.tolist())), directed=False)
    exact = np.array(g.personalized_pagerank(damping=0.5, directed=False, weights=w.tolist(), reset=reset.tolist(), implementation="prpack"))
    solver = PPRSolver(adjacency(n, src, dst, w))
    for got in (solver.run(reset, tol=1e-5), solver.run(np.stack([reset, reset], axis=1), tol=1e-5)[:, 1]):
        assert np.abs(got - exact).sum() < 1e-4
        assert np.argsort(-got[:300])[:10].tolist() == np.argsort(-exact[:300])[:10].tolist()
