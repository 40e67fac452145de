"""evaluate_dataset on 4 real retina images, the summary beside the paper, the CLI (runtime ~10 s of CPU)."""

import numpy as np
import pandas as pd
import pytest

from cutslib import data, evaluate, unet
from cutslib.cli import main


@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path))
    monkeypatch.setitem(unet.PROFILES, "quick", unet.UNetConfig(base_channels=4, depth=2, epochs=1))
    return tmp_path


@pytest.fixture(scope="module")
def retina():
    return data.load("retina", progress=False)


def test_tidy_table_with_every_protocol(retina, results):
    scores = evaluate.evaluate_dataset(retina, seeds=(1, 2), methods=["random", "slic"], limit=4, progress=False)
    assert list(scores.columns) == evaluate.COLUMNS
    # one row per image x method x protocol x metric x seed
    assert len(scores) == 4 * 2 * 3 * 6 * 2
    assert set(scores["protocol"]) == {"label_hint", "one_click", "label_free"}
    assert scores["value"].notna().all()
    saved = pd.read_csv(scores.attrs["path"], dtype={"image_id": str})
    pd.testing.assert_frame_equal(saved, scores, check_dtype=False)
    slic = scores[scores["method"] == "slic"].pivot_table(index=["protocol", "image_id", "metric"],
                                                            columns="seed", values="value")
    np.testing.assert_allclose(slic[1], slic[2])   # deterministic baseline: same for every seed


def test_summary_carries_the_papers_values(retina, results):
    scores = evaluate.evaluate_dataset(retina, seeds=(1, 2), methods=["random"], limit=4, progress=False)
    summary = evaluate.summarize(scores)
    row = summary.query("method == 'random' and protocol == 'label_hint' and metric == 'rmse'").iloc[0]
    assert row["paper"] == 0.707 and row["n_seeds"] == 2 and row["n_images"] == 4
    per_seed = scores.query("protocol == 'label_hint' and metric == 'rmse'").groupby("seed")["value"].mean()
    assert row["mean"] == pytest.approx(per_seed.mean()) and row["std"] == pytest.approx(per_seed.std(ddof=0))
    assert row["diff"] == pytest.approx(row["mean"] - 0.707)
    assert np.isnan(summary.query("protocol == 'one_click'")["paper"]).all()
    stego = summary.query("method == 'stego'")
    assert len(stego) == 5 and stego["note"].str.contains("cited from the paper").all()
    text = evaluate.format_summary(summary)
    assert "random" in text and "(0.707)" in text and "stego" in text
    assert set(scores["profile"]) == {"quick"}
    for line in text.splitlines()[2:]:   # every line that stands beside the paper's names its profile
        assert (" quick " in line) != ("cited from the paper" in line), line
    numeric, pretty = evaluate.table1(summary)
    hint = pretty.query("method == 'random' and protocol == 'label_hint'").iloc[0]
    assert hint["rmse paper"] == 0.707 and hint["rmse Δ"] == pytest.approx(row["diff"])
    assert hint["rmse"] == f"{row['mean']:.3g} ± {row['std']:.2g}"   # two seeds: mean ± std
    assert list(pretty.columns[:4]) == ["dataset", "profile", "method", "protocol"]
    assert list(pretty.columns[4:7]) == ["dice", "dice paper", "dice Δ"]   # the paper's value sits beside ours
    assert pretty.query("method == 'stego'")["dice"].eq("").all() and len(numeric) == len(pretty)


def test_profiles_stay_apart_and_both_persistent_rules_stand_beside_the_paper():
    # hand-made scores: two profiles x two seeds x two images of the 2023 persistent rule, label hint
    rows = [("retina", profile, seed, "cuts_diffusion_persistent2023", "label_hint", image, "dice", value)
            for profile, base in (("quick", 0.5), ("arxiv2023", 0.7)) for seed in (1, 2)
            for image, value in (("a", base + 0.01 * seed), ("b", base + 0.03 * seed))]
    scores = pd.DataFrame(rows, columns=evaluate.COLUMNS)
    summary = evaluate.summarize(scores)
    assert set(summary.loc[summary["note"] != "", "profile"]) == {""}   # cited rows (STEGO, ...) name none
    summary = summary[summary["note"] == ""].set_index("profile")
    # per-seed means: quick 0.52, 0.54 -> 0.53 ± 0.01; arxiv2023 0.72, 0.74
    assert summary.loc["quick", "mean"] == pytest.approx(0.53) and summary.loc["quick", "std"] == pytest.approx(0.01)
    assert summary.loc["arxiv2023", "mean"] == pytest.approx(0.73)
    assert (summary["paper"] == 0.685).all()   # the paper's persistent row (made with the 2023 code)
    text = evaluate.format_summary(summary.reset_index()).splitlines()
    assert len(text) == 4 and "0.530 ± 0.010 (0.685)" in text[2] and " quick " in text[2]
    assert " arxiv2023 " in text[3] and "0.730 ± 0.010 (0.685)" in text[3]
    numeric, _ = evaluate.table1(summary.reset_index(), metrics=("dice",))
    assert list(numeric["profile"]) == ["arxiv2023", "quick"]   # side by side, not averaged together
    with pytest.raises(ValueError, match="no 'profile' column"):
        evaluate.summarize(scores.drop(columns="profile"))


def test_profile_names():
    from cutslib import segment, train

    assert evaluate.profile_name("paper") == "paper"
    assert evaluate.profile_name(train.PROFILES["quick"]) == "quick"
    assert evaluate.profile_name({"epochs": 3, "warmup_epochs": 0}).startswith("custom-")
    assert set(evaluate.CUTS_MAPS.values()) <= set(segment.KEYS)


def test_unet_is_scored_only_on_held_out_images(retina, results):
    subset = retina.subset(np.arange(10))
    scores = evaluate.evaluate_dataset(subset, seeds=(1,), methods=["unet_supervised"], progress=False)
    train, val, test = unet.split(10, seed=1)
    scored = set(scores["image_id"])
    assert scored == {subset.ids[i] for i in test}
    assert scored.isdisjoint(subset.ids[i] for i in np.concatenate([train, val]))
    assert set(scores["protocol"]) == {"direct"}


def test_sam_without_checkpoint_is_skipped_with_a_message(retina, results, capsys):
    scores = evaluate.evaluate_dataset(retina, seeds=(1,), methods=["sam_point", "random"], limit=2,
                                       progress=False)
    assert "skipping sam_point: no SAM checkpoint" in capsys.readouterr().out
    assert set(scores["method"]) == {"random"}


def test_oracle_and_multiclass_scoring_on_hand_made_levels():
    truth = np.zeros((32, 32), int)
    truth[8:20, 8:20] = 1
    levels = np.stack([np.where(truth > 0, 1, 0), np.zeros_like(truth)])
    rows = evaluate.score_image("cuts_diffusion_best_oracle", levels, [truth], None, multiclass=False)
    best = {metric: value for proto, metric, value in rows}
    assert {proto for proto, _, _ in rows} == {"oracle"} and best["dice"] == pytest.approx(1.0)
    parts = np.repeat(np.arange(4), 8)[None].repeat(32, 0)
    rows = evaluate.score_image("slic", parts[None] // 2, [parts // 2, parts], None, multiclass=True)
    scores = {metric: value for _, metric, value in rows}
    assert {proto for proto, _, _ in rows} == {"raw", "iou_relabel"}
    named = {(proto, metric): value for proto, metric, value in rows}
    # a coarsening of both annotators: raw ARI below 1, while IoU relabelling (which uses the truth) is exact for
    # the annotator it coarsens; the paper's per-class Dice is reported for the relabelled view only
    assert named[("raw", "ari")] < 1 and ("raw", "dice") not in named and ("iou_relabel", "dice") in named
    # perfect against the coarse annotator; against the fine one, relabelling cannot split a cluster
    assert 0 < scores["ari"] < 1 and scores["vi"] == pytest.approx(0.5)


def test_bad_requests_are_clear_errors(retina, results):
    with pytest.raises(ValueError, match="unknown method"):
        evaluate.evaluate_dataset(retina, methods=["magic"], limit=1)
    with pytest.raises(ValueError, match="limit must be >= 1"):
        evaluate.evaluate_dataset(retina, methods=["random"], limit=-1, progress=False)
    with pytest.raises(ValueError, match="ground-truth"):
        evaluate.evaluate_method(data.load("demo"), "random", 1)
    assert main(["evaluate", "--images", "/nonexistent", "--masks", "/nonexistent"]) == 2


def test_cli_evaluate_and_baseline(results, capsys):
    assert main(["evaluate", "--dataset", "retina", "--methods", "random", "--limit", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "random" in out and "label_free" in out and "scores:" in out
    assert main(["baseline", "--dataset", "retina", "--method", "sam_point", "--no-progress"]) == 2
    assert "SAM needs a checkpoint" in capsys.readouterr().err
