"""The tutorials' exercise checks (``cutslib.tutorial``) and the exercise copies generated from the solutions.

Every check must accept the right answer, wait on ``None``, and name each usual mistake by its own message.
Runtime: a few seconds.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cutslib import condensation, data, losses, metrics, protocol, tutorial

TUTORIALS = Path(__file__).resolve().parent.parent / "notebooks" / "tutorials"


def _generator():
    spec = importlib.util.spec_from_file_location("make_exercises", TUTORIALS / "make_exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raises(check, *args, match):
    with pytest.raises(tutorial.ExerciseError, match=match):
        check(*args)


# ------------------------------------------------------------------------------------------- T1
@pytest.fixture(scope="module")
def demo_image():
    return torch.from_numpy(data.load("demo").images[0]).permute(2, 0, 1)[None]


def _positive(anchor, candidates, scores, height, width, best=False, at_least=False, away=False):
    passed = scores >= 0.5 if at_least else scores > 0.5
    if passed.any():
        return tuple(candidates[np.argmax(np.where(passed, scores, -1)) if best else np.argmax(passed)])
    step = np.where(np.array(anchor) < [(height - 1) / 2, (width - 1) / 2], 1, -1)
    return tuple(np.array(anchor) + (-step if away else step))


def test_check_positive_accepts_the_rule_and_names_each_mistake(demo_image, capsys):
    tutorial.check_positive(None, demo_image)
    tutorial.check_positive(lambda *case: None, demo_image)
    assert capsys.readouterr().out.count("not done yet") == 2
    tutorial.check_positive(_positive, demo_image)
    assert "correct" in capsys.readouterr().out
    _raises(tutorial.check_positive, lambda *c: _positive(*c, best=True), demo_image, match="2023 rule")
    _raises(tutorial.check_positive, lambda *c: _positive(*c, at_least=True), demo_image, match="strictly above")
    _raises(tutorial.check_positive, lambda *c: _positive(*c, away=True), demo_image, match="TOWARD")
    _raises(tutorial.check_positive, lambda *c: tuple(c[0]), demo_image, match="wrong on test case")


def _nt_xent(z, tau, diagonal=False, positive=True, anchors_only=False, temperature=True, total=False):
    n = len(z)
    sim = z @ z.T / (tau if temperature else 1)
    partner = (torch.arange(n) + n // 2) % n
    exp = sim.exp()
    denominator = exp.sum(1) - (0 if diagonal else exp.diagonal()) - (0 if positive else exp[range(n), partner])
    rows = -torch.log(exp[range(n), partner] / denominator)
    rows = rows[: n // 2] if anchors_only else rows
    return rows.sum() if total else rows.mean()


def test_check_nt_xent_accepts_the_loss_and_names_each_mistake(capsys):
    tutorial.check_nt_xent(_nt_xent)
    assert "correct" in capsys.readouterr().out
    for kwargs, match in [({"diagonal": True}, "includes row i itself"), ({"positive": False}, "leaves out"),
                          ({"anchors_only": True}, "S anchor rows only"), ({"temperature": False}, "temperature"),
                          ({"total": True}, "sum the per-row")]:
        _raises(tutorial.check_nt_xent, lambda z, tau, kw=kwargs: _nt_xent(z, tau, **kw), match=match)
    _raises(tutorial.check_nt_xent, lambda z, tau: 2 * _nt_xent(z, tau), match="wrong on test case 0")


def test_nt_xent_cases_agree_with_the_library():
    for z, tau in tutorial.nt_xent_cases():
        s = len(z) // 2
        assert torch.allclose(_nt_xent(z, tau), losses.nt_xent(z[None, :s], z[None, s:], tau))


def test_check_losses_fall():
    falling = np.linspace([3.0, 1.0], [2.0, 0.5], 20)
    tutorial.check_losses_fall(falling)
    flat_rec = falling.copy()
    flat_rec[:, 1] = 0.7
    _raises(tutorial.check_losses_fall, flat_rec, match="reconstruction loss did not fall")
    _raises(tutorial.check_losses_fall, falling[:4], match="history must be")
    falling[3, 0] = np.nan
    _raises(tutorial.check_losses_fall, falling, match="NaN")


# ------------------------------------------------------------------------------------------- T2
def _salient(g, start=None, first=1, strict=False, rise=True, update=True):
    minimum = max(g) if start is None else start
    levels = []
    for i in range(first, len(g) - 1):
        if (g[i] < minimum if strict else g[i] <= minimum) and (not rise or g[i] < g[i + 1]):
            levels.append(i)
            if update:
                minimum = g[i]
    return levels


def test_check_salient_levels_accepts_the_rule_and_names_each_mistake(capsys):
    cond = condensation.condense_points(np.random.default_rng(0).normal(size=(60, 2)))
    tutorial.check_salient_levels(_salient, cond.gradient)
    assert "correct" in capsys.readouterr().out
    for kwargs, match in [({"start": 0.0}, "always 0"), ({"first": 0}, "step 0 is never"),
                          ({"strict": True}, "EQUALS"), ({"rise": False}, "does not rise"),
                          ({"update": False}, "never lower")]:
        _raises(tutorial.check_salient_levels, lambda g, kw=kwargs: _salient(g, **kw), match=match)


def test_salient_cases_tell_every_mistake_apart():
    right = [condensation.salient_levels(g) for g in tutorial.SALIENT_CASES]
    for kwargs in ({"start": "g0"}, {"first": 0}, {"tie": False}, {"rise": False}, {"update": False}):
        assert [tutorial._salient_variant(np.array(g), **kwargs) for g in tutorial.SALIENT_CASES] != right, kwargs


def _diffuse(x, eps, power=40, rows=True, divide=True, normalise=True):
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    k = np.exp(-((d / eps) if divide else d) ** power)
    k[k < 1e-4] = 0
    return (k / k.sum(1 if rows else 0, keepdims=True) if normalise else k) @ x


def test_check_diffusion_step_accepts_the_step_and_names_each_mistake(capsys):
    points = np.random.default_rng(1).normal(size=(80, 2))
    tutorial.check_diffusion_step(_diffuse, points)
    assert "correct" in capsys.readouterr().out
    for kwargs, match in [({"power": 2}, "Gaussian"), ({"rows": False}, "columns"),
                          ({"divide": False}, "before taking the power"), ({"normalise": False}, "do not normalise")]:
        _raises(tutorial.check_diffusion_step, lambda x, e, kw=kwargs: _diffuse(x, e, **kw), points, match=match)
    _raises(tutorial.check_diffusion_step, lambda x, e: x, points, match="wrong on test case 0")


# ------------------------------------------------------------------------------------------- T3
def _label_free(labels, image, sizes=True, unassigned=False, contrast_first=False):
    ids, fraction, edge, between = tutorial.cluster_stats(labels, image)
    ok = np.ones(len(ids), bool) if unassigned else ids >= 0
    if sizes:
        ok &= (fraction >= 0.01) & (fraction <= 0.5)
    if not ok.any():
        real = np.flatnonzero(ids >= 0)
        return labels == ids[real[np.argmin(fraction[real])]]
    candidates = np.flatnonzero(ok)
    keys = (fraction, edge, -between) if contrast_first else (fraction, -between, edge)
    return labels == ids[candidates[np.lexsort([k[candidates] for k in keys])[0]]]


def test_cluster_stats_and_the_cases_follow_protocol_label_free():
    for labels, image, _ in tutorial.label_free_cases():
        assert np.array_equal(_label_free(labels, image), protocol.label_free(labels, image))


def test_check_label_free_accepts_the_rule_and_names_each_mistake(capsys):
    retina = data.load("retina", progress=False)
    from skimage.segmentation import slic

    real = [(slic(retina.images[i], n_segments=n, start_label=0, channel_axis=-1), retina.images[i], f"retina {i}")
            for i, n in ((0, 10), (1, 50))]
    tutorial.check_label_free(_label_free, extra=real)
    assert "correct" in capsys.readouterr().out
    for kwargs, match in [({"sizes": False}, "1% to 50%"), ({"unassigned": True}, "unassigned"),
                          ({"contrast_first": True}, "contrast before the border")]:
        _raises(tutorial.check_label_free, lambda lab, img, kw=kwargs: _label_free(lab, img, **kw), match=match)
    _raises(tutorial.check_label_free, lambda lab, img: lab == lab.max(), match="you pick cluster")


# ------------------------------------------------------------------------------------------- copies
def test_exercise_copies_are_generated_from_the_solutions():
    make = _generator()
    solutions = sorted(TUTORIALS.glob("*_solutions.ipynb"))
    assert len(solutions) >= 3
    for path in solutions:
        exercise = make.exercise_path(path)
        assert exercise.read_text() == make.exercise_text(path), (
            f"{exercise.name} is not what `python notebooks/tutorials/make_exercises.py` makes from {path.name}")
        assert any(make.BEGIN in "".join(c["source"]) for c in json.loads(path.read_text())["cells"]), path.name


def test_generator_replaces_each_solution_block_by_its_stub():
    make = _generator()
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": [
        "x = 1\n", "### BEGIN SOLUTION my_x =\n", "my_x = x + 1\n", "### END SOLUTION\n",
        "def f():\n", "    ### BEGIN SOLUTION return\n", "    return 2\n", "    ### END SOLUTION\n"]}
    out = make.exercise_notebook({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    assert "".join(out["cells"][0]["source"]) == (
        "x = 1\nmy_x = None  # TODO: your code here\ndef f():\n    return None  # TODO: your code here\n")
    with pytest.raises(ValueError, match="END SOLUTION"):
        make.exercise_notebook({"cells": [dict(cell, source=["### BEGIN SOLUTION y =\n", "y = 1\n"])], "metadata": {}})


def test_every_tutorial_but_the_setup_check_has_exercises():
    notebooks = sorted(p for p in TUTORIALS.glob("T*.ipynb") if not p.stem.endswith("_solutions"))
    assert notebooks[0].name.startswith("T0_")
    assert not notebooks[0].with_name(notebooks[0].stem + "_solutions.ipynb").exists()
    for path in notebooks[1:]:
        assert path.with_name(path.stem + "_solutions.ipynb").exists(), f"{path.name} has no solutions copy"


def test_check_oracle_accepts_the_best_level_and_names_each_mistake(capsys):
    retina = data.load("retina", progress=False)
    from skimage.segmentation import slic

    truths = retina.masks[:3].astype(bool)
    stacks = [np.stack([slic(img, n_segments=n, start_label=0, channel_axis=-1) for n in (200, 50, 10, 5)])
              for img in retina.images[:3]]

    def dice_per_level(levels, truth):
        return [metrics.dice(protocol.label_hint(level, truth), truth) for level in levels]

    tutorial.check_oracle(lambda lv, t: max(dice_per_level(lv, t)), stacks, truths)
    assert "correct" in capsys.readouterr().out
    for answer, match in [(lambda lv, t: min(dice_per_level(lv, t)), "WORST"),
                          (lambda lv, t: np.mean(dice_per_level(lv, t)), "average"),
                          (lambda lv, t: dice_per_level(lv, t)[0], "finest"),
                          (lambda lv, t: dice_per_level(lv, t)[-1], "coarsest"),
                          (lambda lv, t: 0.5, "wrong on test case 0")]:
        _raises(tutorial.check_oracle, answer, stacks, truths, match=match)
