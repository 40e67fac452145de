"""The published record: built from real (tiny) runs, with the paper's numbers beside ours (runtime ~1 min)."""

import numpy as np
import pytest
import pandas as pd

from cutslib import data, published


def test_record_holds_table_scores_and_run_notes(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "results"))
    retina = data.load("retina", progress=False)
    crops = data.Dataset(name="retina", images=np.ascontiguousarray(retina.images[:4, 40:64, 40:64]),
                         masks=np.ascontiguousarray(retina.masks[:4, 40:64, 40:64]), ids=retina.ids[:4])
    methods = ["cuts_kmeans", "random", "cuts_catch2023_persistent", "cuts_catch2023_best_oracle"]
    commits = iter(["abc1234", "def5678+dirty"])  # the code changes while the command runs
    monkeypatch.setattr(published.report, "git_commit", lambda: next(commits))
    out = published.build(crops, "smoke", seeds=[1, 2], methods=methods, out=tmp_path / "rec", progress=False)
    wide = pd.read_csv(out / "scores.csv")  # one row per seed, method, protocol and image; a column per metric
    assert list(wide.columns[:4]) == ["seed", "method", "protocol", "image_id"] and "dataset" not in wide
    assert {"dice", "hausdorff", "ssim", "ergas", "rmse"} <= set(wide.columns[4:])
    assert not wide.duplicated(["seed", "method", "protocol", "image_id"]).any()
    scores = published.read_scores(out / "scores.csv", "retina", "smoke")
    assert len(scores) == wide.iloc[:, 4:].notna().sum().sum()
    assert set(scores["seed"]) == {1, 2} and set(scores["method"]) == set(methods)
    assert set(scores.query("method == 'cuts_catch2023_best_oracle'")["protocol"]) == {"oracle"}
    assert set(scores["image_id"].astype(str)) == set(crops.ids) and scores["value"].notna().all()
    assert set(scores["profile"]) == {"smoke"} and set(scores["dataset"]) == {"retina"}
    table = pd.read_csv(out / "table1.csv")
    hint = table[(table.method == "cuts_kmeans") & (table.protocol == "label_hint")].iloc[0]
    assert hint["profile"] == "smoke" and hint["dice paper"] == 0.673 and " ± " in hint["dice"]
    catch = table[(table.method == "cuts_catch2023_persistent") & (table.protocol == "label_hint")].iloc[0]
    assert catch["dice paper"] == 0.685  # the 2023 Stage 2 stands beside the paper's persistent row
    assert "the 2023 arXiv Table 1" in (out / "table1.md").read_text()
    run = (out / "RUN.md").read_text()
    assert "commit (when the command started): abc1234;" in run and "commit=abc1234" in run and "def5678" not in run
    assert "| 1 | `train-" in run and "| 2 | `train-" in run and "| cuts_kmeans |" in run
    assert "the 2023 Stage 2 (`cutslib.catch`" in run  # the rows of the other Stage 2 say which made them
    stage1 = pd.read_csv(out / "stage1.csv")
    assert list(stage1["seed"]) == [1, 2] and (stage1["epochs"] == 1).all() and stage1["val_loss"].gt(0).all()


def test_record_grows_by_seeds_and_refuses_another_stage2_path(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "results"))
    retina = data.load("retina", progress=False)
    crops = data.Dataset(name="retina", images=np.ascontiguousarray(retina.images[:3, 40:64, 40:64]),
                         masks=np.ascontiguousarray(retina.masks[:3, 40:64, 40:64]), ids=retina.ids[:3])
    build = lambda seed: published.build(crops, "smoke", seeds=[seed], methods=["cuts_kmeans"],
                                         out=tmp_path / "rec", progress=False)
    monkeypatch.setenv("CUTS_STAGE2", "fast")
    read = lambda folder: published.read_scores(folder / "scores.csv", "retina", "smoke")
    first = read(build(1))
    out = build(2)  # another session adds seed 2
    scores, stage1 = read(out), pd.read_csv(out / "stage1.csv")
    assert set(scores["seed"]) == {1, 2} and list(stage1["seed"]) == [1, 2] and set(stage1["stage2"]) == {"fast"}
    pd.testing.assert_frame_equal(scores[scores.seed == 1].reset_index(drop=True), first)
    assert "seeds [1, 2]" in (out / "table1.md").read_text()
    hint = pd.read_csv(out / "table1.csv").query("method == 'cuts_kmeans' and protocol == 'label_hint'").iloc[0]
    assert hint["seeds"] == 2
    run = (out / "RUN.md").read_text()
    assert "seeds run by this command: [2]" in run and "Earlier commands" in run and "seeds run by this command: [1]" in run
    assert "| 1 | `train-" in run and "| 2 | `train-" in run
    assert len(read(build(2))) == len(scores)  # rerunning a seed replaces its rows
    assert "\n#### " not in (out / "RUN.md").read_text()  # earlier notes' headings stay where Markdown renders them
    more = read(published.build(crops, "smoke", seeds=[2], methods=["random"], out=tmp_path / "rec",
                                progress=False))  # another method of seed 2 joins the record
    assert set(zip(more["seed"], more["method"])) == {(1, "cuts_kmeans"), (2, "cuts_kmeans"), (2, "random")}
    pd.testing.assert_frame_equal(more[more.method == "cuts_kmeans"].reset_index(drop=True), scores)
    monkeypatch.setenv("CUTS_STAGE2", "exact")
    with pytest.raises(ValueError, match="Stage-2 paths"):
        build(3)
    assert set(pd.read_csv(out / "scores.csv")["seed"]) == {1, 2}  # nothing overwritten


def test_the_baselines_record_grows_by_methods(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "results"))
    retina = data.load("retina", progress=False)
    crops = data.Dataset(name="retina", images=np.ascontiguousarray(retina.images[:2, 40:64, 40:64]),
                         masks=np.ascontiguousarray(retina.masks[:2, 40:64, 40:64]), ids=retina.ids[:2])
    build = lambda methods: published.build(crops, "baselines", seeds=[1], methods=methods, out=tmp_path / "rec",
                                            progress=False)
    first = pd.read_csv(build(["random", "slic"]) / "scores.csv")
    out = build(["slic", "watershed_otsu"])  # a later command adds a method and remakes one
    scores = pd.read_csv(out / "scores.csv")
    assert sorted(set(scores["method"])) == ["random", "slic", "watershed_otsu"]
    assert len(scores[scores.method == "slic"]) == len(first[first.method == "slic"])
    assert "Earlier commands" in (out / "RUN.md").read_text() and not (out / "stage1.csv").exists()


def test_command_line_writes_the_record_where_out_says(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(published, "PUBLISHED", tmp_path / "published")  # the default place, kept empty
    assert published.main(["--dataset", "brain_tumor_cuts", "--profile", "baselines", "--methods", "random",
                           "--seeds", "1", "--out", str(tmp_path / "elsewhere"), "--no-progress"]) == 0
    scores = published.read_scores(tmp_path / "elsewhere" / "scores.csv", "brain_tumor_cuts", "-")
    assert set(scores["method"]) == {"random"} and scores["image_id"].nunique() == 6
    assert not (tmp_path / "published").exists()


def _scores(profile, seeds, dice):
    """Tidy scores of one method on two images: seed s has Dice dice[s] on both."""
    return pd.DataFrame([dict(dataset="retina", profile=profile, seed=s, method="cuts_kmeans", protocol="label_hint",
                              image_id=i, metric="dice", value=dice[s]) for s in seeds for i in ("a", "b")])


def test_scores_file_round_trips_and_refuses_what_it_cannot_hold(tmp_path):
    tidy = pd.concat([_scores("fast", {2: 0.123456789, 1: 0.5}, {2: 0.123456789, 1: 0.5}),
                      _scores("fast", {1: 7.0}, {1: 7.0}).assign(metric="hausdorff")], ignore_index=True)
    path = tmp_path / "retina" / "fast" / "scores.csv"
    path.parent.mkdir(parents=True)
    published.write_scores(path, tidy)
    assert path.read_text().splitlines()[:2] == ["seed,method,protocol,image_id,dice,hausdorff",
                                                 "2,cuts_kmeans,label_hint,a,0.12346,"]  # order kept, 5 digits
    back = published.read_scores(path)  # data set and profile from the folder names; the missing cell is no row
    expected = tidy.assign(value=tidy["value"].round(5)).sort_values(["seed", "image_id"], kind="stable")
    pd.testing.assert_frame_equal(back.sort_values(["seed", "image_id"], kind="stable").reset_index(drop=True),
                                  expected.reset_index(drop=True))
    with pytest.raises(ValueError, match="two values"):
        published.write_scores(path, pd.concat([tidy, tidy.iloc[:1]]))
    tidy.to_csv(path, index=False)  # a file in another form (here the tidy one) is refused, not misread
    with pytest.raises(ValueError, match="not a record's scores table"):
        published.read_scores(path)


def test_summary_puts_every_profile_beside_the_paper_and_into_the_readme(tmp_path, monkeypatch):
    monkeypatch.setattr(published, "PUBLISHED", tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- reproduction:retina:start -->\nold table\n<!-- reproduction:retina:end -->\n"
                      "<!-- reproduction:brain_tumor_cuts:start -->\nother\n<!-- reproduction:brain_tumor_cuts:end -->\nrest\n"
                      "<!-- reproduction:overview:start -->\n<!-- reproduction:overview:end -->\n")
    with pytest.raises(FileNotFoundError, match="no profile records"):
        published.write_summary("retina", readme)
    for profile, dice in (("fast", {1: 0.6, 2: 0.8}), ("arxiv2023", {2021: 0.7})):
        (tmp_path / "retina" / profile).mkdir(parents=True)
        published.write_scores(tmp_path / "retina" / profile / "scores.csv", _scores(profile, dice, dice))
    catch = _scores("fast", {2: 0.9}, {2: 0.9}).replace("cuts_kmeans", "cuts_catch2023_persistent")
    fast = published.read_scores(tmp_path / "retina" / "fast" / "scores.csv")
    published.write_scores(tmp_path / "retina" / "fast" / "scores.csv", pd.concat([fast, catch]))
    pd.DataFrame(dict(seed=[1, 2], epochs=[200, 200], val_loss=[0.006, 0.004], minutes=[10.0, 12.0],
                      profile="fast")).to_csv(tmp_path / "retina" / "fast" / "stage1.csv", index=False)
    (tmp_path / "retina" / "baselines").mkdir()
    baseline = _scores("-", {1: 0.5, 2: 0.6, 3: 0.7}, {1: 0.5, 2: 0.6, 3: 0.7})
    published.write_scores(tmp_path / "retina" / "baselines" / "scores.csv", pd.concat(
        [baseline.replace("cuts_kmeans", "slic"),
         baseline.replace("cuts_kmeans", "random").assign(value=lambda t: t["value"] - 0.4)]))  # random added later
    (tmp_path / "retina" / "lambda-ablation" / "fast").mkdir(parents=True)
    (tmp_path / "retina" / "lambda-ablation" / "fast" / "fig4_lambda_ablation.png").write_bytes(b"png")
    out = published.write_summary("retina", readme)
    table = out.read_text()
    assert "![fig4_lambda_ablation](lambda-ablation/fast/fig4_lambda_ablation.png)" in table  # the ablation's figure
    assert "(lambda-ablation/fast/fig4.md)" in table and "lambda-ablation" not in readme.read_text()
    # the baselines beside the paper, not as a profile column
    assert "| slic | label hint | 0.567 | 0.600 ± 0.082 (3 seeds) |" in table
    assert table.index("| random | label hint |") < table.index("| slic |")  # listed in the canonical order
    row = next(line for line in table.splitlines() if line.startswith("| CUTS + k-means, label hint"))
    # paper 0.673; arxiv2023 first (one seed: no spread printed); fast: mean 0.7, std 0.1 over its two seeds
    assert row == "| CUTS + k-means, label hint | 0.673 | 0.700 | 0.700 ± 0.100 |"
    assert "`arxiv2023` (1 seed) | `fast` (2 seeds)" in table
    assert "| CUTS + diffusion (best level), oracle | 0.735 | - | - |" in table  # not run here: dashes
    # a row with fewer seeds than its profile's record says how many
    assert "| CUTS + 2023 Stage 2 (CATCH-style; persistent, 2023 rule), label hint | 0.685 | - | 0.900 (1 seed) |" in table
    assert "| CUTS + k-means, label-free | - |" in table  # no paper row
    assert "| `fast` | 1, 2 | 200, 200 | 0.00500 ± 0.00100 | 11.0 |" in table
    text = readme.read_text()
    assert "old table" not in text and row in text  # another data set's block is left alone
    assert "<!-- reproduction:retina:end -->\n<!-- reproduction:brain_tumor_cuts:start -->\nother\n" \
           "<!-- reproduction:brain_tumor_cuts:end -->\nrest\n" in text
    # the overview of every data set: the paper's line, then each profile (its 2023 Stage 2 on a line of its own)
    overview = text.split("<!-- reproduction:overview:start -->\n")[1].split("<!-- reproduction:overview:end -->")[0]
    assert overview == published.overview_table(tmp_path) + "\n![overview](overview.png)\n"
    assert (tmp_path / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the same as a picture
    assert "| retina | the paper | 2023 code | 0.673 | 0.685 | 0.685 | 0.735 | stego 0.649 |" in overview
    assert "| retina | `arxiv2023` (1) | - | 0.700 | - | - | - | slic 0.600 |" in overview
    assert "| retina | `fast` (2) | - | 0.700 ± 0.100 | - | - | - | slic 0.600 |" in overview
    # each line counts its own seeds: the 2023 Stage 2 ran on one of fast's two
    assert "| retina | `fast` (1) | 2023 (CATCH-style) | - | - | 0.900 | - | slic 0.600 |" in overview
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="reproduction:retina:start"):
        published.write_summary("retina", readme)


def test_summary_checks_the_windowed_profile_against_the_dense_seeds_spread(tmp_path, monkeypatch):
    """Issue 11's criterion: the windowed mean within the dense seeds' std, or within 0.01 if that is smaller."""
    monkeypatch.setattr(published, "PUBLISHED", tmp_path)
    records = (("paper", {1: 0.68, 2: 0.70, 3: 0.72}), ("fast", {1: 0.70, 2: 0.71, 3: 0.72}),
               ("arxiv2023", {2021: 0.66}), ("arxiv2023-fast", {2021: 0.60}))
    for profile, dice in records:
        (tmp_path / "retina" / profile).mkdir(parents=True)
        published.write_scores(tmp_path / "retina" / profile / "scores.csv", _scores(profile, dice, dice))
    table = published.summary_table(tmp_path / "retina")
    # dense std 0.016 > 0.01, so the tolerance is 0.01; fast is 0.710 against 0.700
    assert "| CUTS + k-means, label hint | +0.010 | 0.010 | yes |" in table
    assert "| CUTS + k-means, label hint | -0.060 | - | needs 2+ `arxiv2023` seeds |" in table
    fast = _scores("fast", {1: 0.70, 2: 0.71, 3: 0.72}, {1: 0.70, 2: 0.71, 3: 0.723})
    published.write_scores(tmp_path / "retina" / "fast" / "scores.csv", fast)
    table = published.summary_table(tmp_path / "retina")
    assert "| CUTS + k-means, label hint | +0.011 | 0.010 | **no**, higher |" in table
    published.write_scores(tmp_path / "retina" / "fast" / "scores.csv",
                           _scores("fast", {1: 0.68, 2: 0.69, 3: 0.703}, {1: 0.68, 2: 0.69, 3: 0.703}))
    assert "| CUTS + k-means, label hint | -0.009 | 0.010 | yes |" in published.summary_table(tmp_path / "retina")
    published.write_scores(tmp_path / "retina" / "fast" / "scores.csv",
                           _scores("fast", {1: 0.68, 2: 0.69, 3: 0.697}, {1: 0.68, 2: 0.69, 3: 0.697}))
    table = published.summary_table(tmp_path / "retina")
    assert "| CUTS + k-means, label hint | -0.011 | 0.010 | **no**, lower |" in table
    # and whether the difference can be told from seed noise: Welch's interval, "-" with one dense seed
    assert "| CUTS + k-means, label hint | -0.011 | 0.010 | **no**, lower | -0.054 to +0.032 |" in table
    assert "needs 2+ `arxiv2023` seeds | - |" in table
    published.write_scores(tmp_path / "retina" / "fast" / "scores.csv", fast)
    # the same comparison per image, as a picture beside REPRODUCTION.md (rows not run say so)
    paths = published.windowed_figure(tmp_path / "retina")
    assert [p.name for p in paths] == ["fast_vs_paper.png", "arxiv2023-fast_vs_arxiv2023.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_committed_records_read_back_and_match_their_summaries():
    """Every committed record reads back, and REPRODUCTION.md and the README's block were built from the records
    as they are now (a record changed without ``--summary`` fails here)."""
    readme = (published.cache.PROJECT_ROOT / "README.md").read_text()
    folders = sorted({p.parent.parent for p in published.PUBLISHED.glob("*/*/scores.csv")})
    assert folders, "no committed records"
    for folder in folders:
        for path in folder.glob("*/scores.csv"):
            scores = published.read_scores(path)
            assert len(scores) and set(scores["dataset"]) == {folder.name} and scores["value"].notna().all()
        if not any(p.parent.name != "baselines" for p in folder.glob("*/scores.csv")):
            continue  # baselines alone: no summary yet
        table = published.summary_table(folder)
        assert table in (folder / "REPRODUCTION.md").read_text(), f"{folder.name}: rerun --summary"
        start, end = published.readme_markers(folder.name)
        assert readme.split(start)[1].split(end)[0].strip() == table.strip(), f"{folder.name}: README block"
    start, end = published.readme_markers("overview")
    overview = readme.split(start)[1].split(end)[0]
    assert overview.strip() == (published.overview_table() + "\n![overview](figures/published/overview.png)").strip()
    for path in published.PUBLISHED.glob(f"*/{published.ABLATION}/*/scores.csv"):  # the lambda ablations
        from cutslib import ablation

        scores = published.read_scores(path, path.parents[2].name, path.parent.name,
                                       keys=("lam", *published.SCORE_KEYS))
        table = ablation.table(ablation.summarize(scores), path.parents[2].name)
        assert np.allclose(table.drop(columns="lambda"), pd.read_csv(path.parent / "fig4.csv").drop(columns="lambda"),
                           rtol=0, atol=1e-9, equal_nan=True), f"{path.parent}: fig4.csv is not its scores' summary"
        assert f"({path.parent.relative_to(path.parents[2])}/fig4.md)" in (path.parents[2] / "REPRODUCTION.md").read_text()


def test_lambda_ablation_record_retrains_per_lambda_and_stands_beside_the_paper(tmp_path, monkeypatch):
    """A real (tiny) ablation: two lambdas, two Stage-1 runs, scores per lambda, the paper's curve beside ours."""
    from cutslib import ablation

    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "results"))
    retina = data.load("retina", progress=False)
    crops = data.Dataset(name="retina", images=np.ascontiguousarray(retina.images[:3, 40:64, 40:64]),
                         masks=np.ascontiguousarray(retina.masks[:3, 40:64, 40:64]), ids=retina.ids[:3])
    out = published.build_ablation(crops, "smoke", seeds=[1], lambdas=(0, 1), limit=2, out=tmp_path / "abl",
                                   progress=False)
    scores = published.read_scores(out / "scores.csv", "retina", "smoke", keys=("lam", *published.SCORE_KEYS))
    assert set(scores["lam"]) == {0.0, 1.0} and set(scores["image_id"]) == set(crops.ids[:2])
    assert scores["value"].notna().all()
    stage1 = pd.read_csv(out / "stage1.csv")
    assert list(stage1["lam"]) == [0.0, 1.0] and stage1["folder"].nunique() == 2  # one Stage-1 run per lambda
    assert stage1.loc[0, "val_loss"] != stage1.loc[1, "val_loss"]  # lambda 1: contrastive only, another loss
    summary = ablation.summarize(scores)
    assert len(summary) == 2 * len(ablation.ROWS) * len(ablation.METRICS) and (summary["n_images"] == 2).all()
    fig4 = pd.read_csv(out / "fig4.csv")
    assert list(fig4["lambda"]) == list(ablation.LAMBDAS)  # the paper's whole grid; ours only where run
    assert fig4.loc[0, "paper dice"] == 0.682 and fig4.loc[7, "paper dice"] == 0.471
    assert fig4["cuts_kmeans dice"].notna().sum() == 2
    md = (out / "fig4.md").read_text()
    assert "seeds [1], 2 of 3 images" in md and "| 0.001 | 0.682 | - | - | - |" in md
    assert "| 1 | 0.471 | " in md and " ± " not in md.split("| lambda |")[1]  # one seed: no spread printed
    assert (out / "fig4_lambda_ablation.png").stat().st_size > 10_000
    run = (out / "RUN.md").read_text()
    assert "| 0 | 1 | `train-" in run and "| 1 | 1 | `train-" in run
    with pytest.raises(ValueError, match="no scores of the ablation's rows"):
        ablation.summarize(scores[scores["method"] == "nothing"])
    # a second seed joins the record; the first seed's rows, runs and notes stay
    out = published.build_ablation(crops, "smoke", seeds=[2], lambdas=(0, 1), limit=2, out=out, progress=False)
    both = published.read_scores(out / "scores.csv", "retina", "smoke", keys=("lam", *published.SCORE_KEYS))
    assert set(both["seed"]) == {1, 2} and both[both["seed"] == 1].reset_index(drop=True).equals(scores)
    stage1 = pd.read_csv(out / "stage1.csv")
    assert list(zip(stage1["lam"], stage1["seed"])) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert stage1.groupby("lam")["folder"].nunique().eq(1).all()  # one setting per lambda, over both seeds
    assert "seeds [1, 2], 2 of 3 images" in (out / "fig4.md").read_text() and " ± " in (out / "fig4.md").read_text()
    run = (out / "RUN.md").read_text()
    assert "- seeds run by this command: [2]" in run and "## Earlier commands that made this record" in run
    assert "- seeds run by this command: [1]" in run.split("Earlier commands")[1]
    with pytest.raises(ValueError, match="other images"):  # another image set would mix two means
        published.build_ablation(crops, "smoke", seeds=[3], lambdas=(0,), limit=3, out=out, progress=False)


def test_berkeley_record_scores_partitions_and_draws_fig7(tmp_path, monkeypatch):
    """A multi-class data set's record: ARI and VI (raw and relabelled) and per-class Dice, Fig. 7's boxes, and a
    summary of the same rows (no paper column: the paper shows Berkeley in a figure)."""
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(published, "PUBLISHED", tmp_path / "published")
    berkeley = data.load("berkeley", progress=False)
    crops = data.Dataset(name="berkeley", images=np.ascontiguousarray(berkeley.images[:2, 40:72, 40:72]),
                         masks=np.ascontiguousarray(berkeley.masks[:2, 40:72, 40:72]),
                         ids=berkeley.ids[:2], annotations=[a[:, 40:72, 40:72].copy() for a in berkeley.annotations[:2]])
    out = published.build(crops, "smoke", seeds=[1], methods=["cuts_kmeans", "cuts_diffusion_best_oracle"],
                          progress=False)
    base = published.build(crops, "baselines", seeds=[1], methods=["slic"], progress=False)
    assert out == tmp_path / "published" / "berkeley" / "smoke" and base.name == "baselines"
    scores = published.read_scores(out / "scores.csv")
    assert set(scores["protocol"]) == {"raw", "iou_relabel", "oracle_raw", "oracle_relabel"}
    table = pd.read_csv(out / "table1.csv")
    assert {"ari", "vi", "dice"} <= set(table.columns) and not {"hausdorff", "dice paper"} & set(table.columns)
    assert "Fig. 7" in (out / "table1.md").read_text()
    assert (out / "fig7_boxplots.png").stat().st_size > 10_000
    readme = tmp_path / "README.md"
    readme.write_text("<!-- reproduction:berkeley:start -->\n<!-- reproduction:berkeley:end -->\n")
    summary = published.write_summary("berkeley", readme).read_text()
    kmeans = scores.query("method == 'cuts_kmeans' and protocol == 'raw' and metric == 'ari'")["value"].mean()
    assert f"| CUTS + k-means, ARI, raw (label-free) | - | {kmeans:.3f} |" in summary
    assert "| slic | ARI, raw | - |" in summary and "| slic | per-class Dice, IoU matching | - |" in summary
    assert "| CUTS + diffusion (best level), per-class Dice after IoU matching (oracle) | - | 0." in summary
    assert summary.startswith("# berkeley: our runs, scored as in Fig. 7") and "![fig7_boxplots](fig7_boxplots.png)" in summary
    assert (tmp_path / "published" / "berkeley" / "fig7_boxplots.png").stat().st_size > 10_000  # CUTS beside baselines


def test_welch_interval_is_scipys_from_the_seed_means():
    from scipy import stats

    fast, dense = np.array([0.61, 0.58, 0.62, 0.64]), np.array([0.57, 0.59, 0.56])
    expected = stats.ttest_ind(fast, dense, equal_var=False).confidence_interval(0.95)

    def row(v):  # a summary row: std with ddof 0, as evaluate.summarize gives it
        return pd.Series({"mean": v.mean(), "std": v.std(), "n_seeds": len(v)})

    assert np.allclose(published.welch_interval(row(fast), row(dense)), (expected.low, expected.high), atol=1e-12)
    assert np.isnan(published.welch_interval(row(fast), row(dense[:1]))).all()
    assert published.welch_interval(row(np.ones(2)), row(np.zeros(3))) == (1.0, 1.0)  # no spread at all


def test_persistent_lottery_reads_the_committed_retina_records():
    """benchmarks/persistent_lottery.py runs on the committed records, and its per-seed persistent Dice is the
    record's own (the mean over images of the label-hint persistent rows)."""
    import subprocess
    import sys

    root = published.cache.PROJECT_ROOT
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "persistent_lottery.py"), "--root",
                          str(published.PUBLISHED)], capture_output=True, text=True, check=True, cwd=root).stdout
    scores = pd.read_csv(published.PUBLISHED / "retina" / "paper" / "scores.csv")
    rows = scores[(scores["method"] == "cuts_diffusion_persistent") & (scores["protocol"] == "label_hint")]
    for seed, mean in rows.groupby("seed")["dice"].mean().items():
        line = next(l for l in out.splitlines() if l.split()[:2] == ["paper", str(seed)])
        assert abs(float(line.split()[2]) - mean) < 5e-4, line
    assert "images: 56;" in out and "seeds per profile" in out.splitlines()[-1]
