"""cutslib.levels (the notebooks' level helpers) and cutslib.paper (Figure 7's views, Table 1's rows not run).

Runtime: about 30 s on the shared 2-core machine (one condensation of 48x48 pixels, SLIC on one Berkeley image).
"""

import numpy as np
import pandas as pd
import pytest

from cutslib import evaluate, levels, metrics, paper, protocol
from cutslib.condensation import condense
from cutslib.data import load


@pytest.fixture(scope="module")
def crop(retina_embeddings):
    cond = condense(retina_embeddings[48], seed=0)
    stack = np.stack([cond.labels(step).reshape(48, 48) for step in cond.levels])
    truth = load("retina", progress=False).masks[0, 40:88, 40:88].astype(bool)
    return stack, truth


def test_counts_pick_and_oracle_level_on_a_real_condensation(crop):
    stack, truth = crop
    counts = levels.cluster_counts(stack)
    assert len(counts) == len(stack) >= 2 and (np.diff(counts) <= 0).all()
    with pytest.raises(ValueError, match="fine to coarse"):
        levels.cluster_counts(stack[::-1])
    pick = levels.pick_levels(stack, 4)
    assert pick[0] == 0 and pick[-1] == len(stack) - 1 and len(pick) == min(4, len(stack))
    assert list(levels.pick_levels(stack, 100)) == list(range(len(stack)))
    with pytest.raises(ValueError, match="at least 1"):
        levels.pick_levels(stack, 0)
    dice = [metrics.dice(protocol.label_hint(level, truth), truth) for level in stack]
    best = levels.oracle_level(stack, truth)
    assert dice[best] == max(dice) and best == int(np.argmax(dice))
    # the oracle's Dice in Table 1 is the Dice of this level
    assert protocol.oracle([metrics.binary_scores(protocol.label_hint(lv, truth), truth) for lv in stack])["dice"] \
        == dice[best]
    hd = [metrics.hausdorff(protocol.label_hint(level, truth), truth) for level in stack]
    assert hd[levels.oracle_level(stack, truth, "hausdorff")] == min(hd)
    with pytest.raises(ValueError, match="unknown metric"):
        levels.oracle_level(stack, truth, "nope")


@pytest.fixture(scope="module")
def berkeley():
    return load("berkeley", progress=False)


def test_relabelling_rewards_a_refinement_of_the_truth_and_raw_ari_does_not(berkeley):
    truth = np.asarray(berkeley.annotations[0][0])
    refined = truth * 2 + (np.arange(truth.shape[1]) % 16 < 8)  # every region cut in vertical stripes
    scores = paper.natural_scores(refined, truth)
    assert scores["iou_relabel"]["ari"] == pytest.approx(1) and scores["iou_relabel"]["dice"] == pytest.approx(1)
    assert scores["raw"]["ari"] < 0.8 and scores["raw"]["vi"] > 0.5
    assert paper.per_class_dice(truth, truth) == pytest.approx(1)
    one = np.zeros_like(truth)  # one segment: the largest region's Dice only, averaged over every region
    largest = np.bincount(truth.ravel() - truth.min()).max() / truth.size
    assert paper.per_class_dice(one, truth) == pytest.approx(2 * largest / (1 + largest) / len(np.unique(truth)))


def test_score_natural_on_a_berkeley_image(berkeley):
    table = paper.score_natural(berkeley, ["slic"], seeds=[1], config="smoke", limit=1)
    assert set(table.protocol) == {"raw", "iou_relabel"} and table.image_id.nunique() == 1
    assert set(table[table.protocol == "raw"].metric) == {"ari", "vi"}
    assert set(table[table.protocol == "iou_relabel"].metric) == {"ari", "vi", "dice"}
    assert table.uses_truth.tolist() == [p != "raw" for p in table.protocol]
    raw = table.set_index(["protocol", "metric"])["value"]
    slic = evaluate.predictions(berkeley, "slic", 1, limit=1, progress=False)
    labels = next(slic)[1][0]
    expected = np.mean([metrics.adjusted_rand_index(labels, t) for t in berkeley.annotations[0]])
    assert raw["raw", "ari"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="several annotators"):
        paper.score_natural(load("retina", progress=False), ["slic"], [1], "smoke", limit=1)


def test_add_not_run_fills_the_papers_rows_with_a_note():
    summary = pd.DataFrame([dict(dataset="retina", profile="smoke", method="slic", protocol="label_hint", metric="dice", mean=0.5,
                                 std=0.0, n_seeds=1, n_images=1, paper=0.567, diff=-0.067, note="")])
    full = paper.add_not_run(summary, ["retina"])
    added = full[full.note == paper.NOT_RUN]
    assert {"random", "dfc", "unet_supervised", "cuts_kmeans"} <= set(added.method)
    assert "slic" not in set(added.method) and "stego" not in set(added.method)  # ran / cited-only elsewhere
    table = evaluate.paper_table()
    dfc = added[(added.method == "dfc") & (added.metric == "dice")]
    assert dfc.paper.item() == table[(table.dataset == "retina") & (table.method == "dfc")].dice.item()
    numeric, pretty = evaluate.table1(full)
    assert (pretty.loc[pretty.method == "dfc", "note"] == paper.NOT_RUN).all()
