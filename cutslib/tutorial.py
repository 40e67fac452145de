"""Check helpers for the workshop tutorials (``notebooks/tutorials/``).

Each ``check_*`` takes the attendee's answer, prints "not done yet" while it is still ``None``, prints "correct"
when it matches the library, and otherwise raises an ``AssertionError`` that says *what* is wrong: each check
knows the usual mistakes and names the one the answer matches.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from cutslib import condensation, losses, metrics, protocol, sampling


class ExerciseError(AssertionError):
    """An exercise answer is wrong; the message says how."""


def _pending(answer, exercise: str) -> bool:
    if answer is None:
        print(f"{exercise} not done yet: replace the None placeholder above, then rerun this cell.")
        return True
    return False


def _diagnose(exercise: str, answer_of: Callable, cases: list, right: Callable, mistakes: dict,
              same: Callable, show: Callable) -> None:
    """Compare ``answer_of(case)`` with ``right(case)`` on every case; name the mistake it matches if wrong."""
    got = [answer_of(case) for case in cases]
    if any(g is None for g in got):
        print(f"{exercise} not done yet: your function still returns None.")
        return
    expected = [right(case) for case in cases]
    if all(same(g, e) for g, e in zip(got, expected)):
        print(f"{exercise}: correct")
        return
    for message, wrong in mistakes.items():
        if all(same(g, wrong(case)) for g, case in zip(got, cases)):
            raise ExerciseError(f"{exercise}: {message}")
    i = next(i for i, (g, e) in enumerate(zip(got, expected)) if not same(g, e))
    raise ExerciseError(f"{exercise}: wrong on test case {i}: {show(cases[i], got[i], expected[i])}")


# --------------------------------------------------------------------------------- T1: positives
def _first_positive(anchor, candidates, scores, height, width, first=True, strict=True, toward=True):
    passed = scores > 0.5 if strict else scores >= 0.5
    if passed.any():
        index = int(np.argmax(passed)) if first else int(np.argmax(np.where(passed, scores, -np.inf)))
        return tuple(int(v) for v in candidates[index])
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    step = np.where(np.asarray(anchor) < centre, 1, -1) * (1 if toward else -1)
    return tuple(int(v) for v in np.asarray(anchor) + step)


def positive_cases(image: torch.Tensor, n_anchors: int = 64, seed: int = 0) -> list[tuple]:
    """(anchor, candidates (K, 2), SSIM scores (K,), height, width, the sampler's positive) for ``n_anchors``
    anchors of ``image`` (1, C, H, W), plus cases where no candidate passes and where two tie above 0.5."""
    _, _, h, w = image.shape
    generator = torch.Generator().manual_seed(seed)
    anchors = sampling.sample_anchors(1, h, w, n_anchors, generator)
    candidates = sampling.candidate_offsets(anchors, h, w, 20, generator)
    k, c = candidates.shape[2], image.shape[1]
    patches = sampling.extract_patches(image, candidates.reshape(1, -1, 2)).reshape(1, n_anchors, k, c, 5, 5)
    scores = sampling.patch_ssim(sampling.extract_patches(image, anchors)[:, :, None], patches)
    pairs = sampling.sample_pairs(image, torch.Generator().manual_seed(seed), n_anchors=n_anchors)
    cases = [(tuple(anchors[0, s].tolist()), candidates[0, s].numpy(), scores[0, s].numpy(), h, w,
              tuple(pairs.positives[0, s].tolist())) for s in range(n_anchors)]
    grid = np.array([[10, 11], [12, 13], [14, 15]])
    cases += [((5, h - 6), grid, np.array([0.2, 0.5, 0.1]), h, w, (6, h - 7)),  # none passes: fallback
              ((h - 6, 5), grid, np.array([0.5, 0.7, 0.9]), h, w, (12, 13))]  # the first that passes, not the best
    return cases


def check_positive(fn, image: torch.Tensor) -> None:
    """T1: ``fn(anchor, candidates, scores, height, width) -> (row, col)`` is the positive CUTS picks."""
    exercise = "Exercise 2"
    if _pending(fn, exercise):
        return
    cases = positive_cases(image)
    for case in cases:  # the reference rule must agree with the library's sampler on every case
        assert _first_positive(*case[:5]) == case[5], case

    def answer(case):
        result = fn(*case[:5])
        return None if result is None else tuple(int(v) for v in np.asarray(result).ravel())

    _diagnose(exercise, answer, cases, lambda c: c[5], {
        "you take the candidate with the best SSIM. That is the 2023 rule; CUTS 2024 takes the FIRST candidate, in "
        "draw order, whose SSIM passes 0.5.": lambda c: _first_positive(*c[:5], first=False),
        "a candidate passes only if its SSIM is strictly above 0.5 (> not >=).":
            lambda c: _first_positive(*c[:5], strict=False),
        "when no candidate passes, step one pixel diagonally TOWARD the image centre: +1 on an axis where the "
        "anchor lies before the centre ((size - 1) / 2), else -1. Yours steps away from it.":
            lambda c: _first_positive(*c[:5], toward=False),
    }, lambda a, b: a == b,
        lambda c, g, e: f"anchor {c[0]} in a {c[3]}x{c[4]} image, SSIMs {np.round(c[2], 2).tolist()}: you "
                        f"return {g}, CUTS picks {e}")


# --------------------------------------------------------------------------------- T1: NT-Xent
def _nt_xent_variant(z, tau, diagonal=False, positive=True, rows="all", temperature=True, reduce="mean"):
    n = len(z)
    s = n // 2
    sim = z @ z.T / (tau if temperature else 1.0)
    partner = (torch.arange(n) + s) % n
    numerator = sim[torch.arange(n), partner]
    mask = torch.ones(n, n, dtype=torch.bool)
    if not diagonal:
        mask.fill_diagonal_(False)
    if not positive:
        mask[torch.arange(n), partner] = False
    per_row = torch.logsumexp(sim.masked_fill(~mask, float("-inf")), dim=1) - numerator
    per_row = per_row[:s] if rows == "anchors" else per_row
    return per_row.mean() if reduce == "mean" else per_row.sum()


def nt_xent_cases(seed: int = 0) -> list[tuple]:
    """(z (2S, D) L2-normalised, tau) test cases, including a batch with near-duplicate rows."""
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for s, d, tau in ((8, 128, 0.1), (5, 16, 0.5), (3, 4, 1.0)):
        z = torch.randn(2 * s, d, generator=generator, dtype=torch.float64)
        z[s:] += 2 * z[:s]  # positives resemble their anchors, as after training
        cases.append((torch.nn.functional.normalize(z, dim=-1), tau))
    return cases


def check_nt_xent(fn) -> None:
    """T1: ``fn(z, tau) -> scalar`` is NT-Xent of the 2S normalised rows ``z`` (anchors first)."""
    exercise = "Exercise 3"
    if _pending(fn, exercise):
        return
    cases = nt_xent_cases()

    def right(case):
        z, tau = case
        s = len(z) // 2
        return float(losses.nt_xent(z[None, :s], z[None, s:], temperature=tau))

    def answer(case):
        value = fn(*case)
        return None if value is None else float(value)

    def variant(**kwargs):
        return lambda case: float(_nt_xent_variant(*case, **kwargs))

    _diagnose(exercise, answer, cases, right, {
        "your denominator includes row i itself (exp(z_i . z_i / tau) = exp(1 / tau), the largest term). Exclude "
        "the diagonal, e.g. sim.fill_diagonal_(float('-inf')) before the logsumexp.": variant(diagonal=True),
        "your denominator leaves out the positive. In NT-Xent the sum runs over every j != i: the positive AND "
        "the 2S - 2 negatives.": variant(positive=False),
        "you average over the S anchor rows only. Every one of the 2S rows is an anchor for its partner: "
        "average over all 2S rows.": variant(rows="anchors"),
        "you forgot the temperature: divide the similarities by tau before the exp.": variant(temperature=False),
        "you sum the per-row losses; L is their mean over the 2S rows.": variant(reduce="sum"),
    }, lambda a, b: abs(a - b) <= 1e-5 * max(1.0, abs(b)),
        lambda c, g, e: f"S = {len(c[0]) // 2}, tau = {c[1]}: you get {g:.6f}, NT-Xent is {e:.6f}")


def check_losses_fall(history, window: int = 5) -> None:
    """T1: both columns of ``history`` (steps, 2) = (contrastive, reconstruction) fall over training."""
    history = np.asarray(history, dtype=np.float64)
    if history.ndim != 2 or history.shape[1] != 2 or len(history) < 2 * window:
        raise ExerciseError(f"history must be (steps >= {2 * window}, 2), got shape {history.shape}")
    if not np.isfinite(history).all():
        raise ExerciseError("a loss became NaN or Inf: the learning rate is too high, or lambda is outside [0, 1]")
    first, last = history[:window].mean(0), history[-window:].mean(0)
    for name, a, b in zip(("contrastive", "reconstruction"), first, last):
        if not b < a:
            raise ExerciseError(f"the {name} loss did not fall (first {window} steps {a:.4f}, last {window} "
                                f"{b:.4f}). Does it get any weight (lambda must be strictly between 0 and 1), "
                                "and did you train for enough steps?")
        print(f"{name:>15} loss: first {window} steps {a:.4f} -> last {window} steps {b:.4f} (falls)")


# --------------------------------------------------------------------------------- T2: salient levels
def _salient_variant(g, start="max", first=1, tie=True, rise=True, update=True):
    g = np.asarray(g, dtype=np.float64)
    minimum = {"max": g.max() if len(g) else 0.0, "g0": g[0] if len(g) else 0.0}[start]
    levels = []
    for i in range(first, len(g) - 1):
        low = g[i] <= minimum if tie else g[i] < minimum
        if low and (g[i] < g[i + 1] if rise else True):
            levels.append(i)
            minimum = g[i] if update else minimum
    return levels


SALIENT_CASES = (
    [0, 4, 3, 3.5, 2, 2, 2.5, 1, 1.5, 0, 0],  # a tie at the running minimum (2, 2)
    [0, 5, 3, 4, 3, 6, 1, 0.5, 0.7, 2, 0],  # 3 again after a rise: equals the running minimum, a level
    [0, 1, 2, 3, 2.5, 4, 0.1, 0.2, 0.05, 0.06, 0],  # 2.5 is a local minimum above the running minimum 1
    [0, 2, 1, 1, 0.4, 0.4, 0.9, 0],  # a flat stretch: only its last step rises
)


def check_salient_levels(fn, gradient=None) -> None:
    """T2: ``fn(g) -> list of steps`` is the salient-level rule (``condensation.salient_levels``)."""
    exercise = "Exercise 1"
    if _pending(fn, exercise):
        return
    cases = [np.asarray(g, dtype=np.float64) for g in SALIENT_CASES]
    if gradient is not None:
        g = np.asarray(gradient, dtype=np.float64).copy()
        g[g < condensation.ZERO_GRADIENT * g.max()] = 0.0
        cases.append(g)

    def answer(g):
        levels = fn(g.copy())
        return None if levels is None else [int(i) for i in levels]

    def variant(**kwargs):
        return lambda g: _salient_variant(g, **kwargs)

    _diagnose(exercise, answer, cases, condensation.salient_levels, {
        "you start the running minimum at g[0], but g[0] is always 0 (nothing has moved before step 1), so "
        "no later step can be a new minimum. Start it at max(g) (or +infinity).": variant(start="g0"),
        "step 0 is never a salient level (it is every point alone): start the loop at i = 1.": variant(first=0),
        "a step whose gradient EQUALS the running minimum counts too: use <=, not <.": variant(tie=False),
        "you keep steps where the gradient does not rise afterwards: also require g[i] < g[i + 1].":
            variant(rise=False),
        "you never lower the running minimum: after keeping step i, set it to g[i].": variant(update=False),
    }, lambda a, b: list(a) == list(b), lambda g, got, e: f"g = {np.round(g, 3).tolist()}: you return {got}, "
                                                         f"the rule gives {e}")


# --------------------------------------------------------------------------------- T2: one diffusion step
def _diffuse_variant(x, eps, decay=condensation.DECAY, normalise="rows", scaled=True):
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    kernel = np.exp(-np.power(d / eps if scaled else d, decay))
    kernel[kernel < condensation.THRESH] = 0
    if normalise == "rows":
        kernel = kernel / kernel.sum(1, keepdims=True)
    elif normalise == "columns":
        kernel = kernel / kernel.sum(0, keepdims=True)
    return kernel @ x


def diffusion_cases(points, seed: int = 0) -> list[tuple]:
    """(points, eps) cases: ``points`` at a few bandwidths, and a small random cloud."""
    points = np.asarray(points, dtype=np.float64)
    eps0 = condensation.condensation_parameters(points)[0]
    cloud = np.random.default_rng(seed).normal(size=(30, 2))
    return [(points, eps0 * 40), (points, eps0 * 150), (cloud, 0.8)]


def check_diffusion_step(fn, points) -> None:
    """T2: ``fn(x, eps) -> (N, d)`` is one diffusion step of condensation (``condensation._diffuse``)."""
    exercise = "Exercise 2"
    if _pending(fn, exercise):
        return
    cases = diffusion_cases(points)

    def answer(case):
        moved = fn(case[0].copy(), case[1])
        return None if moved is None else np.asarray(moved, dtype=np.float64)

    def variant(**kwargs):
        return lambda case: _diffuse_variant(*case, **kwargs)

    def same(a, b):
        return a.shape == b.shape and np.allclose(a, b, rtol=1e-6, atol=1e-9)

    _diagnose(exercise, answer, cases, lambda c: condensation._diffuse(*c), {
        "you do not normalise the kernel: divide each ROW by its sum, so that every point moves to a weighted "
        "AVERAGE of its neighbours.": variant(normalise=None),
        "you normalise the kernel's columns; divide each ROW by its sum (P = K / K.sum(1, keepdims=True)).":
            variant(normalise="columns"),
        "the kernel is exp(-(d / eps) ** 40), not a Gaussian exp(-(d / eps) ** 2): the power 40 makes it an "
        "almost hard eps-ball.": variant(decay=2),
        "divide the distances by eps before taking the power: exp(-(d / eps) ** 40).": variant(scaled=False),
    }, same, lambda c, g, e: f"{len(c[0])} points, eps = {c[1]:.4f}: your points differ from the right ones by "
                             f"up to {np.abs(g - e).max() if g.shape == e.shape else 'a shape mismatch'}")


# --------------------------------------------------------------------------------- T3: label-free rule
def cluster_stats(labels, image):
    """Per cluster of ``labels`` (H, W): (ids, fraction of the image, share of its pixels on the outermost rows
    and columns, Otsu's between-class variance ``f (1 - f) (mu_in - mu_out)^2`` of the grey levels)."""
    labels = np.asarray(labels)
    gray = np.asarray(image, dtype=np.float64)
    gray = gray.mean(-1) if gray.ndim == 3 else gray
    ids, dense = np.unique(labels, return_inverse=True)
    dense = dense.reshape(labels.shape)
    size = np.bincount(dense.ravel(), minlength=len(ids)).astype(np.float64)
    fraction = size / labels.size
    border = np.zeros(labels.shape, bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    edge = np.bincount(dense[border], minlength=len(ids)) / size
    mean_in = np.bincount(dense.ravel(), weights=gray.ravel(), minlength=len(ids)) / size
    mean_out = (gray.sum() - mean_in * size) / np.maximum(labels.size - size, 1)
    between = fraction * (1 - fraction) * (mean_in - mean_out) ** 2
    return ids, fraction, edge, between


def _label_free_variant(labels, image, sizes=True, skip_unassigned=True, order=("edge", "contrast", "size")):
    ids, fraction, edge, between = cluster_stats(labels, image)
    ok = ids >= 0 if skip_unassigned else np.ones(len(ids), bool)
    if sizes:
        ok &= (fraction >= 0.01) & (fraction <= 0.5)
    ok = np.flatnonzero(ok)
    if not len(ok):
        real = np.flatnonzero(ids >= 0)
        return labels == ids[real[np.argmin(fraction[real])]] if len(real) else np.zeros(labels.shape, bool)
    keys = {"edge": edge[ok], "contrast": -between[ok], "size": fraction[ok]}
    return labels == ids[ok[np.lexsort([keys[k] for k in reversed(order)])[0]]]


def label_free_cases(size: int = 64, extra=()) -> list[tuple]:
    """(labels, image, what the case tests) cases that tell the usual mistakes apart, plus ``extra`` ones."""
    rows, cols = np.indices((size, size))
    lesion = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (size / 6) ** 2  # enclosed disc, ~9%
    inner = (rows >= size // 10) & (rows < size - size // 10) & (cols >= size // 10) & (cols < size - size // 10)
    cases = []
    # 1. a dark enclosed region (>50%) around a lesion, a bright frame, an enclosed speck (<1%)
    labels = np.where(lesion, 1, np.where(inner, 2, 0))
    labels[size // 4: size // 4 + 3, size // 4: size // 4 + 3] = 3
    gray = np.choose(labels, [0.6, 0.3, 0.0, 1.0])
    cases.append((labels, gray, "a frame, a dark region over half the image, a lesion and a speck inside it"))
    # 2. a bright band on the left edge (high contrast) and a dimmer enclosed lesion
    labels = np.where(lesion, 1, 0)
    labels[:, : size // 5] = 2
    gray = np.choose(labels, [0.2, 0.5, 1.0])
    cases.append((labels, gray, "a bright band along the left edge and a dimmer lesion inside the image"))
    # 3. a lesion inside a bright ring of unassigned (-1) pixels
    ring = ~lesion & ((rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (size / 4) ** 2)
    labels = np.where(lesion, 1, np.where(ring, -1, 0))
    gray = np.where(lesion, 0.6, np.where(ring, 1.0, 0.2))
    cases.append((labels, gray, "a lesion inside a bright ring of unassigned (-1) pixels"))
    # 4. nothing between 1% and 50%: the smallest real cluster, never -1
    labels = np.zeros((size, size), np.int64)
    labels[:2, :2] = -1
    labels[size // 2, size // 2] = 6
    cases.append((labels, np.where(labels == 6, 1.0, 0.2), "one cluster covers everything but a pixel and -1s"))
    return cases + [(labels, image, description) for labels, image, description in extra]


def check_label_free(fn, extra=()) -> None:
    """T3: ``fn(labels, image) -> bool mask`` is ``protocol.label_free``'s choice."""
    exercise = "Exercise 3"
    if _pending(fn, exercise):
        return
    cases = label_free_cases(extra=extra)

    def answer(case):
        mask = fn(*case[:2])
        return None if mask is None else np.asarray(mask)

    def variant(**kwargs):
        return lambda case: _label_free_variant(*case[:2], **kwargs)

    def same(a, b):
        return a.shape == b.shape and np.array_equal(a.astype(bool), b)

    def show(case, got, expected):
        labels = case[0]
        picked = np.unique(labels[got.astype(bool)]).tolist() if got.shape == labels.shape else "?"
        return (f"{case[2]}: you pick cluster(s) {picked}, the rule picks cluster "
                f"{np.unique(labels[expected]).tolist()}")

    _diagnose(exercise, answer, cases, lambda c: protocol.label_free(*c[:2]), {
        "keep only the clusters covering 1% to 50% of the image before anything else: background is the "
        "majority, specks are noise.": variant(sizes=False),
        "id -1 means 'unassigned' and is never a candidate (nor the fallback).": variant(skip_unassigned=False),
        "you rank by contrast before the border share. First keep the clusters with the SMALLEST edge share "
        "(a lesion lies inside the field of view), then take the largest between-class variance.":
            variant(order=("contrast", "edge", "size")),
    }, same, show)


# --------------------------------------------------------------------------------- T3: the oracle
def _level_dice(levels, truth):
    """(L,) Dice of each level of ``levels`` (L, H, W), binarised with the label hint."""
    return np.array([metrics.dice(protocol.label_hint(level, truth), truth) for level in levels])


def _oracle_case(size: int = 128):
    """(levels, truth): a made-up stack whose worst level is neither the finest nor the coarsest."""
    rows, cols = np.indices((size, size))
    truth = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (size / 6) ** 2
    grid = lambda n: (rows * n // size) * n + cols * n // size  # noqa: E731 (an n x n grid of squares)
    levels = np.stack([grid(4), truth.astype(np.int64), np.zeros((size, size), np.int64), grid(8)])
    return levels, truth


def check_oracle(fn, stacks, truths) -> None:
    """T3: ``fn(levels, truth) -> float`` is the oracle's Dice ("best one") of a fine-to-coarse level stack."""
    exercise = "Exercise 4"
    if _pending(fn, exercise):
        return
    cases = [_oracle_case()] + list(zip(stacks, [np.asarray(t, bool) for t in truths]))

    def answer(case):
        value = fn(*case)
        return None if value is None else float(value)

    _diagnose(exercise, answer, cases, lambda c: protocol.oracle([{"dice": d} for d in _level_dice(*c)])["dice"], {
        "you keep the WORST level: the oracle keeps the best Dice (max over the levels).":
            lambda c: float(_level_dice(*c).min()),
        "you average over the levels: the oracle keeps the best one.": lambda c: float(_level_dice(*c).mean()),
        "you score only the finest level: the oracle scores every level.": lambda c: float(_level_dice(*c)[0]),
        "you score only the coarsest level: the oracle scores every level.":
            lambda c: float(_level_dice(*c)[-1]),
    }, lambda a, b: abs(a - b) < 1e-9, lambda c, g, e: f"a stack of {len(c[0])} levels: you get {g:.4f}, the "
                                                        f"oracle {e:.4f}")
