"""Diffusion condensation of one image's pixel embeddings (Stage 2 of CUTS).

The pipeline is Multiscale PHATE's, as CUTS uses it (``../shared/spec/METHOD.md``, "Stage 2"):

1. :func:`diffusion_potential` -- PCA, the PHATE diffusion potential (knn 100, decay 40, 2000 landmarks,
   gamma 1, t at the Von Neumann entropy knee), then PCA keeping the components above 1% of variance.
2. :func:`condense_points` -- repeatedly diffuse the points with a shrinking-to-nothing eps-ball kernel and
   merge the points that come closer than a threshold, until one point is left. Every step is a partition.
3. Salient levels -- steps where the total movement (the *gradient*) reaches a new minimum.
4. :func:`persistent_structures` -- one multi-class map of the clusters that persist across levels (the
   2024 rule, :func:`persistent_map`, or the 2023 rule, :func:`persistent_map_2023`).

It gives the same partitions as the reference (``multiscale_phate``, the test oracle) but never builds an
N x N matrix: kernels come from kd-tree ball queries and are sparse, merges are connected components.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from sklearn.cluster import MiniBatchKMeans

from cutslib.potential import DECAY, KNN, THRESH, check_points, check_weights, diffusion_potential, unique_rows

SCALE = 1.025  # eps grows by this factor before each diffusion step
GRANULARITY = 0.1  # eps0 = 0.1 * GRANULARITY * std(X) * N^(1/5)
MERGE_PERCENTILE = 0.001  # merge threshold: this percentile of pairwise distances ...
MERGE_OFFSET = 0.001  # ... plus this
MAX_POINTS = 100_000  # above this many points, condense k-means partitions instead
N_PARTITIONS = 20_000
ZERO_GRADIENT = 1e-12  # gradients below this fraction of the largest count as zero


# --------------------------------------------------------------------------------------------- result
@dataclass
class Condensation:
    """The result of diffusion condensation: one partition of the points per step.

    Only the merges are stored (who joined whom at which step); :meth:`labels` rebuilds a step's labels.
    A cluster's id is the smallest original index among its members, so ids are stable across steps.

    Attributes: ``n_steps``; ``n_clusters`` (n_steps,); ``gradient`` (n_steps - 1,), the L1 movement of
    the points during each step; ``levels``, the salient steps from fine to coarse (step 0 excluded);
    ``epsilon`` and ``merge_threshold``, the starting bandwidth and the merge distance.
    """

    merges: list  # per step: (absorbed ids, ids they joined), both (k,) int64, in condensed-point ids
    n_clusters: np.ndarray
    gradient: np.ndarray
    epsilon: float
    merge_threshold: float
    point_of: np.ndarray | None = None  # (N,) index of each original point's condensed point, if grouped
    point_ids: np.ndarray | None = None  # (M,) original id (smallest index) of each condensed point
    levels: list = field(init=False)

    def __post_init__(self):
        self.levels = salient_levels(self.gradient)

    @property
    def n_steps(self) -> int:
        return len(self.n_clusters)

    @property
    def n_points(self) -> int:
        """Number of original points (length of every label vector)."""
        return len(self.point_of) if self.point_of is not None else int(self.n_clusters[0])

    def labels(self, step: int) -> np.ndarray:
        """(N,) int64 cluster ids after ``step`` (0 = every point alone; negative counts from the end)."""
        if not -self.n_steps <= step < self.n_steps:
            raise ValueError(f"step {step} out of range for {self.n_steps} steps")
        step %= self.n_steps
        parent = np.arange(int(self.n_clusters[0]))
        for absorbed, into in self.merges[1 : step + 1]:
            parent[absorbed] = into
        while True:  # follow merge chains to their root (pointer jumping)
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
        if self.point_of is None:
            return parent
        return self.point_ids[parent][self.point_of]


def salient_levels(gradient) -> list[int]:
    """Steps where the gradient is a new running minimum and the next one is higher, step 0 excluded.

    Gradients below ``1e-12 * max`` count as zero (they are round-off of points that no longer move).
    """
    g = np.asarray(gradient, dtype=np.float64).copy()
    if g.size == 0:
        return []
    g[g < ZERO_GRADIENT * g.max()] = 0.0
    minimum, levels = g.max(), []
    for i in range(1, len(g) - 1):
        if g[i] <= minimum and g[i] < g[i + 1]:
            levels.append(i)
            minimum = g[i]
    return levels


# --------------------------------------------------------------------------------------- parameters
def condensation_parameters(points, weights=None, granularity=GRANULARITY, merge_percentile=MERGE_PERCENTILE,
                            merge_offset=MERGE_OFFSET) -> tuple[float, float]:
    """(eps0, merge threshold): 0.1 * granularity * std * N^(1/5), and the exact ``merge_percentile``-th
    percentile of all pairwise distances plus ``merge_offset`` -- computed from the few smallest distances,
    without listing every pair. ``weights``: each row stands for that many identical points (N is their sum)."""
    points = np.asarray(points, dtype=np.float64)
    if weights is None:
        n = len(points)
        epsilon = granularity * (0.1 * np.mean(np.std(points))) / (n ** (-1 / 5))
    else:
        n = int(weights.sum())
        mean = weights @ points.sum(axis=1) / (n * points.shape[1])
        std = np.sqrt(weights @ ((points - mean) ** 2).sum(axis=1) / (n * points.shape[1]))
        epsilon = granularity * (0.1 * std) / (n ** (-1 / 5))
    n_pairs = n * (n - 1) // 2
    # numpy's 'linear' percentile: the value at virtual index q * (n_pairs - 1), interpolated
    q = np.float64(merge_percentile) / 100
    virtual = n_pairs * q - q  # numpy's _compute_virtual_index with alpha = beta = 1
    lo = int(np.floor(virtual))
    frac = virtual - lo
    smallest = smallest_pair_distances(points, min(lo + 2, n_pairs), weights=weights)
    a = smallest[lo]
    b = smallest[min(lo + 1, n_pairs - 1)]
    diff = b - a
    value = b - diff * (1 - frac) if frac >= 0.5 else a + diff * frac
    return float(epsilon), float(value + merge_offset)


def smallest_pair_distances(points, k: int, tree: cKDTree | None = None, weights=None) -> np.ndarray:
    """The ``k`` smallest distances over all pairs i < j, sorted; kd-tree counts find the radius.

    ``weights``: row i stands for weights[i] identical points (pairs among its copies are at distance 0,
    a pair of rows counts weights[i] * weights[j] times)."""
    if weights is not None:
        zeros = int(np.sum(weights * (weights - 1) // 2))
        if zeros >= k:
            return np.zeros(k)
        # the k - zeros smallest row pairs hold the rest (each counts at least once)
        rest = k - zeros
        d, (i, j) = _smallest_pairs(points, rest, tree)
        order = np.argsort(d, kind="stable")
        copies = (weights[i] * weights[j])[order].astype(np.int64)
        last = int(np.searchsorted(np.cumsum(copies), rest))
        copies[last] -= int(np.cumsum(copies)[last]) - rest
        return np.concatenate([np.zeros(zeros), np.repeat(d[order][: last + 1], copies[: last + 1])])
    d, _ = _smallest_pairs(points, k, tree)
    return np.sort(np.partition(d, k - 1)[:k])


def _smallest_pairs(points, k, tree=None):
    """(distances, (i, j)) of a set of pairs i < j that holds the ``k`` smallest."""
    tree = tree if tree is not None else cKDTree(points)
    n = len(points)

    def pairs_within(radii):  # pairs i < j with d <= r, for each r
        return (np.atleast_1d(tree.count_neighbors(tree, radii)) - n) // 2

    if pairs_within(0.0)[0] >= k:
        pairs = tree.query_pairs(0.0, output_type="ndarray")
        return np.zeros(len(pairs)), (pairs[:, 0], pairs[:, 1])
    # an upper bound: the k-th smallest among each point's nearest-neighbour pairs (real pairs)
    m = min(n - 1, 2 * k // n + 2)
    while True:
        dist, idx = tree.query(points, k=m + 1)
        i = np.repeat(np.arange(n), m)
        j = idx[:, 1:].ravel()
        d = dist[:, 1:].ravel()[i != j]  # (with duplicates, self need not come first)
        i, j = i[i != j], j[i != j]
        unique = np.unique(np.minimum(i, j) * n + np.maximum(i, j), return_index=True)[1]
        if len(unique) >= k or m == n - 1:
            break
        m = min(n - 1, 2 * m)
    hi = float(np.partition(d[unique], k - 1)[k - 1]) * (1 + 1e-9) if len(unique) >= k else np.inf
    if pairs_within(hi)[0] < k:  # cannot happen for real pairs; guard against round-off
        hi = float(np.linalg.norm(points.max(0) - points.min(0))) * (1 + 1e-9) + 1e-300
    lo = 0.0
    while pairs_within(hi)[0] > 4 * k + 10_000:  # too many ties or clumps below hi: bisect down
        radii = np.geomspace(max(lo, hi * 1e-12), hi, 32)
        counts = pairs_within(radii)
        first = int(np.argmax(counts >= k))
        hi, lo = float(radii[first]), float(radii[first - 1]) if first > 0 else lo
        if hi - lo <= 1e-12 * hi:
            break
    pairs = tree.query_pairs(hi, output_type="ndarray")
    d = np.sqrt(((points[pairs[:, 0]] - points[pairs[:, 1]]) ** 2).sum(axis=1))
    return d, (pairs[:, 0], pairs[:, 1])


# ---------------------------------------------------------------------------------------- the loop
def _close_components(points, threshold):
    """Labels of the connected components of the graph 'closer than threshold', or None if no edge."""
    pairs = cKDTree(points).query_pairs(threshold, output_type="ndarray")
    if len(pairs):
        d = np.sqrt(((points[pairs[:, 0]] - points[pairs[:, 1]]) ** 2).sum(axis=1))
        pairs = pairs[d < threshold]
    if len(pairs) == 0:
        return None
    n = len(points)
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _merge(points, component, weights=None):
    """Replace each component by the unweighted mean of its members, kept at its first (smallest) index
    (members that stand for several identical points, ``weights``, count that many times).

    Returns the merged points and the index of the kept point for every input point.
    """
    n = len(points)
    first = np.full(component.max() + 1, n)
    np.minimum.at(first, component, np.arange(n))
    counts = np.bincount(component, weights=weights)
    sums = np.stack([np.bincount(component, weights=col if weights is None else col * weights)
                     for col in points.T], axis=1)
    keep = np.sort(first)
    means = sums / counts[:, None]
    merged = means[component[keep]]
    return merged, first[component], keep


def _radius(epsilon) -> float:
    """The distance beyond which exp(-(d/eps)^40) < THRESH: the kernel's eps-ball."""
    return epsilon * (-math.log(THRESH)) ** (1 / DECAY)


def _mostly_dense(points, epsilon, sample: int = 256) -> bool:
    """Whether the eps-ball kernel of ``points`` holds more than 1/64 of all pairs (estimated on a sample)."""
    n = len(points)
    if n < 2048:
        return False
    probe = points[np.random.default_rng(0).choice(n, size=min(sample, n), replace=False)]
    degree = cKDTree(points).query_ball_point(probe, _radius(epsilon) * (1 + 1e-9), return_length=True)
    return float(np.mean(degree)) > n / 64


def _diffuse(points, epsilon, sizes=None, dense: bool = False):
    """One diffusion step X <- P X with P the row-normalised kernel exp(-(d/eps)^40), entries < 1e-4 zero;
    with ``sizes``, column j of the kernel is weighted by sizes[j] (point j stands for that many points).
    ``dense``: build the kernel densely, a block of rows at a time, from BLAS distances -- the same kernel to
    round-off, and far cheaper when the eps-ball holds most pairs (the 2023 Stage 2's wide first bandwidths)."""
    if dense:
        return _diffuse_dense(points, epsilon, sizes)
    n = len(points)
    radius = _radius(epsilon)
    pairs = cKDTree(points).query_pairs(radius * (1 + 1e-9), output_type="ndarray")
    d = np.sqrt(((points[pairs[:, 0]] - points[pairs[:, 1]]) ** 2).sum(axis=1))
    w = np.exp(-np.power(d / epsilon, DECAY))
    kept = w >= THRESH
    i, j, w = pairs[kept, 0], pairs[kept, 1], w[kept]
    rows = np.concatenate([i, j, np.arange(n)])
    cols = np.concatenate([j, i, np.arange(n)])
    vals = np.concatenate([w, w, np.ones(n)])
    if sizes is not None:
        vals = vals * sizes[cols]
    kernel = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
    degree = np.asarray(kernel.sum(axis=1)).ravel()
    return (kernel @ points) / degree[:, None]


def _diffuse_dense(points, epsilon, sizes=None, block: int = 256):
    """:func:`_diffuse` with the kernel computed densely in blocks of ``block`` rows, in two reused buffers of
    block x N floats: squared distances |a|^2 + |b|^2 - 2 a.b, then exp(-((d/eps)^2)^20)."""
    n = len(points)
    sizes = np.ones(n) if sizes is None else np.asarray(sizes, dtype=np.float64)
    squared = np.einsum("ij,ij->i", points, points)
    out = np.empty_like(points)
    r, kernel = np.empty((min(block, n), n)), np.empty((min(block, n), n))
    for start in range(0, n, block):
        rows = min(block, n - start)
        k, q = kernel[:rows], r[:rows]
        np.matmul(points[start:start + rows], points.T, out=q)
        q *= -2
        q += squared[start:start + rows, None]
        q += squared[None, :]
        np.maximum(q, 0, out=q)
        q *= 1 / epsilon ** 2  # (d/eps)^2; its 20th power is (d/eps)^40, by squaring
        np.square(q, out=q)
        np.square(q, out=q)  # ^4
        np.square(q, out=k)
        np.square(k, out=k)  # ^16
        k *= q  # ^20
        np.negative(k, out=k)
        np.exp(k, out=k)
        k[k < THRESH] = 0
        k[np.arange(rows), np.arange(start, start + rows)] = 1.0  # self loops, as the sparse kernel's
        k *= sizes
        out[start:start + rows] = (k @ points) / k.sum(axis=1)[:, None]
    return out


def condense_points(points, progress: bool = False, weights=None, granularity=GRANULARITY,
                    merge_percentile=MERGE_PERCENTILE, merge_offset=MERGE_OFFSET, sized: bool = False) -> Condensation:
    """Diffusion condensation of ``points`` (N, d) until one point is left.

    Step 0 is every point alone, step 1 merges the points already closer than the threshold; every later
    step multiplies eps by 1.025, diffuses once and merges (merges cascade until no pair is close).
    ``weights``: row i stands for weights[i] identical points. Copies always merge at step 1 (distance 0),
    so only the parameters and step 1's first merge see the weights: the partitions are those of all the
    points, with each row's copies together from step 1 on.

    The defaults are Multiscale PHATE's (merged points are plain means of the merged points). ``sized=True``
    is the 2023 Stage 2's rule (:mod:`cutslib.catch`): every point stands for its cluster's original points,
    merges take their mean, and the diffusion kernel weighs each point by its cluster's size; its wide
    bandwidths make the first kernels nearly dense, so those are built densely (:func:`_diffuse_dense`).
    """
    x = check_points(points)
    weights = None if weights is None else check_weights(weights, len(x))
    epsilon, threshold = condensation_parameters(x, weights, granularity, merge_percentile, merge_offset)
    sizes = (np.ones(len(x)) if weights is None else weights) if sized else None
    eps = epsilon
    ids = np.arange(len(x))  # id of each current point = smallest original index among its members
    merges = [(np.empty(0, np.int64), np.empty(0, np.int64))]
    n_clusters, gradient = [len(x)], []
    before = x  # the points at the previous step, merged alongside to measure the movement
    diffused = False
    bar = _progress(progress, len(x))
    while True:
        absorbed, into = [], []
        while len(x) > 1 and (component := _close_components(x, threshold)) is not None:
            x, target, keep = _merge(x, component, sizes if sized else weights)
            if sized:
                sizes = np.bincount(component, weights=sizes)[component[keep]]
            weights = None  # merged points are clusters: from here on, plain means (unless sized)
            before = _merge(before, component)[0]
            moved = target != np.arange(len(target))
            absorbed.append(ids[moved])
            into.append(ids[target[moved]])
            ids = ids[keep]
        merges.append(
            (np.concatenate(absorbed), np.concatenate(into)) if absorbed else (np.empty(0, np.int64),) * 2
        )
        gradient.append(float(np.abs(before - x).sum()) if diffused else 0.0)
        n_clusters.append(len(x))
        if bar is not None:
            bar.update(n_clusters[-2] - n_clusters[-1])
        weights = None
        if len(x) == 1:
            break
        eps *= SCALE
        before = x
        # dense kernels only in the sized (2023) mode: the Multiscale path stays the reference's, bit for bit
        x = _diffuse(x, eps, sizes, dense=sized and _mostly_dense(x, eps))
        diffused = True
    if bar is not None:
        bar.close()
    return Condensation(
        merges=merges,
        n_clusters=np.asarray(n_clusters),
        gradient=np.asarray(gradient),
        epsilon=epsilon,
        merge_threshold=threshold,
    )


def _progress(progress, total):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total - 1, desc="condensation (merges)", leave=False)


# ------------------------------------------------------------------------------------- entry points
def condense(latents, knn: int = KNN, seed: int = 0, progress: bool = False, exact: bool = False) -> Condensation:
    """Condense one image's pixel embeddings (N, D): L2-normalise, :func:`diffusion_potential`, condense.

    ``exact=True``: the reference's potential on every row (see :mod:`cutslib.potential`). The fast default
    computes each distinct row once, with its multiplicity as a weight (an MRI slice's black background is
    thousands of identical rows): the same partitions as on every row, without their dense kernel.
    Above 1e5 distinct points, they are coarse-grained into about 20k seeded k-means partitions whose
    means are condensed. Labels always cover all N points, with stable ids (the smallest index of each
    cluster); with repeated rows, step 0 already has each row's copies together.
    """
    x = check_points(latents, "latents")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"latents has {int(np.sum(norms == 0))} all-zero rows; they cannot be L2-normalised")
    x = x / norms
    if exact and len(x) <= MAX_POINTS:
        return condense_points(diffusion_potential(x, knn=knn, seed=seed, exact=True), progress=progress)
    if not exact:
        first, inverse, counts = unique_rows(x)
        if len(first) <= MAX_POINTS:
            weights = counts.astype(np.float64)
            points = diffusion_potential(x[first], knn=knn, seed=seed, weights=weights)
            cond = condense_points(points, progress=progress, weights=weights)
            if len(first) < len(x):
                cond.point_of, cond.point_ids = inverse, first
            return cond
    groups = coarse_grain(x, N_PARTITIONS, seed=seed)
    first = np.full(groups.max() + 1, len(x))
    np.minimum.at(first, groups, np.arange(len(x)))
    if np.array_equal(x[first[groups]], x):  # only duplicates were grouped: keep the rows exactly
        means = x[first]
    else:
        counts = np.bincount(groups)
        means = np.stack([np.bincount(groups, weights=col) for col in x.T], axis=1) / counts[:, None]
    cond = condense_points(diffusion_potential(means, knn=knn, seed=seed, exact=exact), progress=progress)
    cond.point_of, cond.point_ids = groups, first
    return cond


def coarse_grain(x, n_groups=N_PARTITIONS, seed=0, n_top=100) -> np.ndarray:
    """(N,) group of each row: identical rows share a group; distinct rows go to about ``n_groups`` k-means
    partitions (a seeded two-level k-means: ``n_top`` clusters, then each split in proportion to its size).
    Groups are numbered in order of their first row, so a smaller group number means a smaller first index.
    """
    unique, inverse = np.unique(x, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    if len(unique) <= n_groups:
        labels = np.arange(len(unique))
    else:
        top = MiniBatchKMeans(n_top, n_init=3, batch_size=4096, random_state=seed).fit_predict(unique)
        labels = np.empty(len(unique), np.int64)
        offset = 0
        for c in range(n_top):
            members = np.flatnonzero(top == c)
            if len(members) == 0:
                continue
            k = max(1, min(len(members), round(n_groups * len(members) / len(unique))))
            if k == 1:
                sub = np.zeros(len(members), np.int64)
            else:
                from sklearn.cluster import KMeans

                sub = KMeans(k, n_init=1, max_iter=20, random_state=seed).fit_predict(unique[members])
            labels[members] = sub + offset
            offset += k
    groups = labels[inverse]
    first = np.full(groups.max() + 1, len(groups))
    np.minimum.at(first, groups, np.arange(len(groups)))
    present = np.flatnonzero(first < len(groups))
    rank = np.empty(groups.max() + 1, np.int64)
    rank[present[np.argsort(first[present])]] = np.arange(len(present))
    return rank[groups]


def persistent_structures(cond: Condensation, shape, rule: str = "2024", **options) -> np.ndarray:
    """One multi-class (H, W) map of the clusters that persist across the salient levels of ``cond``.

    ``rule`` is "2024" (:func:`persistent_map`, "CUTS + diffusion (persistent)") or "2023"
    (:func:`persistent_map_2023`, the rule behind the 2023 table); ``options`` go to that function.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or shape[0] * shape[1] != cond.n_points:
        raise ValueError(f"shape {shape} does not match the {cond.n_points} condensed points")
    if rule not in PERSISTENT_RULES:
        raise ValueError(f"unknown persistent rule {rule!r}; choose one of {sorted(PERSISTENT_RULES)}")
    levels = np.stack([cond.labels(level).reshape(shape) for level in cond.levels]) if cond.levels else \
        np.zeros((0, *shape), np.int64)
    return PERSISTENT_RULES[rule](levels, **options)


def _check_levels(levels) -> np.ndarray:
    """(L, N) int64 view of an (L, H, W) stack of non-negative label maps, fine to coarse."""
    levels = np.asarray(levels)
    if levels.ndim != 3 or levels.dtype.kind not in "iu":
        raise ValueError(f"levels must be an integer (L, H, W) stack, got {levels.dtype} of shape "
                         f"{levels.shape}")
    if levels.size and levels.min() < 0:
        raise ValueError("levels must hold non-negative cluster ids")
    return levels.reshape(len(levels), levels.shape[1] * levels.shape[2]).astype(np.int64)


def _paint(maps, ids, best_level, shape) -> np.ndarray:
    """Paint each id, in the given order, with its pixels at its best level, onto a canvas of zeros."""
    out = np.zeros(maps.shape[1], dtype=np.int64)
    for i in ids:
        out[maps[best_level[i]] == i] = i
    return out.reshape(shape)


def persistent_map(levels, min_area: float = 0.01, min_persistence: int = 2) -> np.ndarray:
    """The 2024 persistent rule, as the reference applies it, on the salient levels (L, H, W), fine to coarse.

    - The coarsest level is left out: only the other levels are counted and searched.
    - An id's persistence is the number of those levels it appears in. Its area is its pixel count at the
      finest of them where that count is largest, and that level is its best level.
    - Ids with an area below ``min_area`` of the image or a persistence below ``min_persistence`` are dropped.
    - The rest are sorted by area, largest first (ties: higher persistence, then smaller id, first) and
      painted in that order onto a canvas of zeros, each with its pixels at its best level, so that later
      (smaller) ids overwrite earlier ones. Unpainted pixels stay 0, like cluster 0; a single salient
      level leaves nothing to count, and the map is all zeros.
    """
    maps = _check_levels(levels)[:-1]
    shape = np.shape(levels)[1:]
    if not len(maps):
        return np.zeros(shape, dtype=np.int64)
    areas = np.stack([np.bincount(m, minlength=int(maps.max()) + 1) for m in maps])  # (L - 1, n_ids)
    persistence = (areas > 0).sum(axis=0)
    best_level = areas.argmax(axis=0)  # the finest level where the id is largest
    best_area = areas.max(axis=0)
    ids = np.flatnonzero((persistence >= min_persistence) & (best_area >= min_area * maps.shape[1]))
    order = ids[np.lexsort((ids, -persistence[ids], -best_area[ids]))]
    return _paint(maps, order, best_level, shape)


def persistent_map_2023(levels, tolerance: float = 0.01) -> np.ndarray:
    """The 2023 persistent rule (the one behind the 2023 table) on the salient levels (L, H, W), fine to coarse.

    - Walk the levels fine to coarse, except the coarsest. An id is stable at a level if it is present there
      and the pixels whose membership in it differs between that level and the next number at most
      ``tolerance`` of its size at that level.
    - Its persistence is its longest run of consecutive stable levels; its best level is the level where
      that run (the first, if several are as long) reaches its length. An id that is never stable has
      persistence 0 and takes the coarsest salient level (where it may be absent, and then paints nothing).
    - There is no area threshold. The ids of the walked levels are sorted by persistence, lowest first (ties:
      larger at its best level first, then smaller id) and painted in that order onto a canvas of zeros,
      later ids overwriting: the most persistent ids end on top.
    """
    maps = _check_levels(levels)
    shape = np.shape(levels)[1:]
    if len(maps) < 2:
        return np.zeros(shape, dtype=np.int64)
    n_ids = int(maps.max()) + 1
    size = np.stack([np.bincount(m, minlength=n_ids) for m in maps])  # (L, n_ids)
    persistence = np.zeros(n_ids, np.int64)
    best_level = np.full(n_ids, len(maps) - 1)
    run = np.zeros(n_ids, np.int64)
    for level in range(len(maps) - 1):
        here, after = maps[level], maps[level + 1]
        kept = np.bincount(here[here == after], minlength=n_ids)  # pixels in the id at both levels
        changed = size[level] + size[level + 1] - 2 * kept
        stable = (size[level] > 0) & (changed <= tolerance * size[level])
        run = np.where(stable, run + 1, 0)
        longer = run > persistence
        persistence[longer], best_level[longer] = run[longer], level
    ids = np.flatnonzero(size[:-1].any(axis=0))
    area = size[best_level[ids], ids]
    order = ids[np.lexsort((ids, -area, persistence[ids]))]
    return _paint(maps, order, best_level, shape)


#: The persistent rules by name: "2024" (CUTS + diffusion (persistent)) and "2023".
PERSISTENT_RULES = {"2024": persistent_map, "2023": persistent_map_2023}
