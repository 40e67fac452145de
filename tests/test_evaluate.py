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
    numeric, pretty = evaluate.table1(summary)
    hint = pretty.query("method == 'random' and protocol == 'label_hint'").iloc[0]
    assert hint["rmse paper"] == 0.707 and hint["rmse Δ"] == pytest.approx(row["diff"])
    assert hint["rmse"] == f"{row['mean']:.3g} ± {row['std']:.2g}"   # two seeds: mean ± std
    assert list(pretty.columns[3:6]) == ["dice", "dice paper", "dice Δ"]   # the paper's value sits beside ours
    assert pretty.query("method == 'stego'")["dice"].eq("").all() and len(numeric) == len(pretty)


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
    assert {proto for proto, _, _ in rows} == {"iou_relabel"}
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
