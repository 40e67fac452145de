"""The committed record of paper-settings runs: ``figures/published/<dataset>/<profile>/``.

``make figures`` and ``make test`` never write here; only ``python -m cutslib.published`` does, from results
that are already cached (or that it computes, resumably, under ``CUTS_RESULTS_DIR``). Per data set and profile:

- ``table1.md`` and ``table1.csv``: Table 1 with ours as mean ± std over the seeds beside the paper's value and
  the difference (the paper column is the 2023 arXiv Table 1, made with the 2023 training);
- ``scores.csv``: the per-image scores behind it, one row per seed, method, protocol and image, one column per
  metric (5 significant digits; :func:`read_scores` gives them back in the tidy form of
  :func:`cutslib.evaluate.evaluate_dataset`);
- ``RUN.md``: the command, commit, machine, settings hashes and the wall time of each stage;
- ``stage1.csv``: each seed's training run (cache folder, epochs, best epoch and validation loss, minutes,
  Stage-2 path).

A record grows by seeds and by methods: ``--seeds 2`` adds seed 2 to a record that holds seed 1, and ``--methods
dfc`` adds DFC's rows (replacing only the earlier rows of the seeds and methods it remakes), so the seeds and
methods of one profile can be run in different sessions or on different machines. It refuses to mix seeds trained
with other Stage-1 settings (another cache folder) or segmented by another Stage-2 path;
``RUN.md`` keeps the notes of every command that added to the record.

It stays small and text-first: data, checkpoints and embeddings never go in.

    python -m cutslib.published --dataset retina --profile arxiv2023 [--seeds 2021 2022 2023] [--methods ...]

``--summary`` writes ``figures/published/<dataset>/REPRODUCTION.md`` from every profile's ``scores.csv`` there:
the Dice of each Table 1 row, paper beside every profile (mean ± std over its seeds), and puts the same table
into the README's "Reproduction" section (between its ``reproduction:<dataset>`` markers), and rebuilds the
README's overview of every data set (``reproduction:overview``). A multi-class data set (Berkeley) gets Fig. 7's
boxes of every record there, CUTS beside the baselines.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cutslib import ablation, baselines, cache, data, evaluate, report, segment, train

PUBLISHED = cache.PROJECT_ROOT / "figures" / "published"
#: The lambda ablation's records: ``figures/published/<dataset>/lambda-ablation/<profile>/``.
ABLATION = "lambda-ablation"
CUTS_ONLY = (*evaluate.CUTS_METHODS, *evaluate.CATCH_METHODS)
BASELINES = tuple(m for m in evaluate.DEFAULT_METHODS if m not in evaluate.CUTS_METHODS)


def machine() -> str:
    """One line naming this machine: CPU count, platform, torch build and device."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} CPU cores, {platform.platform()}, Python {platform.python_version()}, "
            f"torch {torch.__version__}, {device}")


def training_record(dataset, profile, seed: int) -> dict:
    """The cached Stage-1 run of ``profile`` (a name or settings) and ``seed`` (trained first if missing):
    folder, epochs, best epoch and validation loss, wall minutes."""
    checkpoint = train.train(dataset, seed, profile, progress=False)
    log = pd.read_csv(checkpoint.parent / "log.csv")
    best = log.loc[log["val_loss"].idxmin()]
    return {"seed": seed, "folder": checkpoint.parent.name, "epochs": len(log), "best_epoch": int(best["epoch"]),
            "val_loss": float(best["val_loss"]), "minutes": log["seconds"].sum() / 60}


def build(dataset, profile: str, seeds=None, methods=CUTS_ONLY, out: Path | None = None,
          progress: bool = True) -> Path:
    """Write the record of ``profile`` on ``dataset`` (a name or a Dataset; see the module docstring) into
    ``out`` (default ``figures/published/<name>/<profile>``); returns that folder."""
    if profile not in train.PROFILES and profile != "baselines":
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(train.PROFILES)} or 'baselines'")
    commit = report.git_commit()  # the code this command runs: the commit when it starts, not when it ends
    seeds = tuple(seeds or train.profile_seeds(profile if profile in train.PROFILES else "paper"))
    dataset = data.load(dataset, progress=progress) if isinstance(dataset, str) else dataset
    name = dataset.name
    out = Path(out or PUBLISHED / name / profile)
    stage2 = "exact" if segment.stage2_exact() else "fast"
    runs = [] if profile == "baselines" else [{**training_record(dataset, profile, s), "stage2": stage2}
                                              for s in seeds]
    config = "paper" if profile == "baselines" else profile
    minutes, tables = {}, []
    for method in methods:
        start = time.perf_counter()
        tables.append(evaluate.evaluate_dataset(dataset, seeds, config, [method], progress=progress))
        minutes[method] = (time.perf_counter() - start) / 60
    scores = pd.concat(tables, ignore_index=True)
    if profile == "baselines":
        scores["profile"] = "-"  # the baselines use no Stage-1 profile
    ran = seeds
    scores, runs, earlier = with_earlier_rows(out, scores, runs)
    seeds = tuple(sorted(set(scores["seed"])))
    multiclass = evaluate.is_multiclass(dataset)  # Berkeley: ARI and VI raw and relabelled, per-class Dice
    _, pretty = evaluate.table1(evaluate.summarize(scores), NATURAL_METRICS if multiclass else evaluate.PAPER_METRICS)
    if multiclass:  # no paper values to stand beside
        pretty = pretty.drop(columns=[c for c in pretty.columns if c.endswith((" paper", " Δ"))])
    stamp = report.make_stamp(profile, {"dataset": name, "seeds": list(seeds), "methods": list(methods)}, commit)
    out.mkdir(parents=True, exist_ok=True)
    write_scores(out / "scores.csv", scores)
    if multiclass:
        natural_figure(out, scores, f"{name}: per-image scores, mean over annotators, profile {profile}, "
                       f"{plural(len(seeds), 'seed')} {list(seeds)}. The first two panels: label-free view")
    cache.write_text(out / "table1.csv", pretty.to_csv(index=False))
    path = "" if profile == "baselines" else f", Stage 2 {stage2}"
    paper = (" (each the mean over the image's annotators). The paper shows this data set in a figure (Fig. 7), "
             "not in Table 1: no paper column has values" if multiclass else ". `paper`: the 2023 arXiv Table 1 (made "
             "with the 2023 training). Δ = ours - paper")
    cache.write_text(out / "table1.md", f"# {name}: Table 1, profile `{profile}`, seeds {list(seeds)}{path}\n\n"
                     f"Ours: mean ± std over the seeds of the per-seed mean over images{paper}.\n\n"
                     + report.to_markdown(pretty)
                     + f"\n\n{stamp.text}\n")
    cache.write_text(out / "RUN.md", run_text(name, profile, ran, runs, minutes, stamp) + earlier)
    if runs:
        cache.write_text(out / "stage1.csv", pd.DataFrame(runs).assign(profile=profile).to_csv(index=False))
    return out


#: The metrics of a multi-class data set's table (Fig. 7: the paper shows no table for it).
NATURAL_METRICS = ("ari", "vi", "dice")


def natural_figure(out: Path, scores: pd.DataFrame, title: str) -> Path:
    """``fig7_boxplots.png`` in ``out``: Fig. 7's per-image boxes of ``scores`` (:func:`cutslib.paper.plot_natural`)."""
    from cutslib import paper

    return save_png(paper.plot_natural(scores, title), out / "fig7_boxplots.png")


def natural_records_figure(folder: Path) -> Path:
    """``fig7_boxplots.png`` in data set ``folder``: Fig. 7's per-image boxes of every record there, CUTS's
    methods (each named with its profile) beside the baselines, as the paper draws them."""
    from cutslib import paper

    parts, cuts, shown = [], [], []
    for path in sorted(Path(folder).glob("*/scores.csv")):
        scores, profile = read_scores(path), path.parent.name
        seeds = sorted(set(scores["seed"]))
        shown.append(f"{profile} ({plural(len(seeds), 'seed')})")
        if profile != "baselines":
            scores = scores.assign(method=scores["method"] + f" ({profile})")
            cuts += list(dict.fromkeys(scores["method"]))
        parts.append(scores)
    scores = pd.concat(parts, ignore_index=True)
    order = cuts + [m for m in BASELINES if m in set(scores["method"])]
    title = (f"{Path(folder).name}: per-image scores (mean over annotators and seeds); records: {', '.join(shown)}. "
             "The first two panels: label-free view; CUTS in blue")
    return save_png(paper.plot_natural(scores, title, order, highlight=cuts), Path(folder) / "fig7_boxplots.png")


def save_png(fig, path: Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG (atomically, 100 dpi) and close it."""
    import matplotlib.pyplot as plt

    with cache.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def run_header(title: str, stamp) -> list[str]:
    """RUN.md's first lines: ``title``, then the command as typed, the commit it started at and the machine."""
    command = " ".join(shlex.quote(a) for a in ["python", "-m", "cutslib.published", *sys.argv[1:]])
    return [title, "", f"- command: `{command}`", f"- commit (when the command started): {stamp.commit}; {stamp.text}",
            f"- machine: {machine()}"]


def build_ablation(dataset, profile: str, seeds=None, lambdas=ablation.LAMBDAS, limit: int | None = None,
                   out: Path | None = None, progress: bool = True) -> Path:
    """Write the lambda ablation (Fig. 4, :mod:`cutslib.ablation`) of ``profile`` on ``dataset``'s first
    ``limit`` images (None: all) into ``out`` (default ``figures/published/<name>/lambda-ablation/<profile>``):
    ``scores.csv`` (one row per lambda, seed, method, protocol and image), ``fig4.csv`` and ``fig4.md`` (ours
    per lambda beside the paper's curve), ``fig4_lambda_ablation.png`` and ``RUN.md``. The record is rewritten
    whole from the cache (``CUTS_RESULTS_DIR``), which trains and segments only what is missing: give every
    seed it should hold."""
    if profile not in train.PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(train.PROFILES)}")
    commit = report.git_commit()
    seeds = tuple(seeds or train.profile_seeds(profile))
    dataset = data.load(dataset, progress=progress) if isinstance(dataset, str) else dataset
    out = Path(out or PUBLISHED / dataset.name / ABLATION / profile)
    stage2 = "exact" if segment.stage2_exact() else "fast"
    start = time.perf_counter()
    runs = [{"lam": lam, **training_record(dataset, ablation.config_for(profile, lam), seed), "stage2": stage2}
            for lam in lambdas for seed in seeds]
    trained = time.perf_counter()
    scores = ablation.run(dataset, profile, seeds, lambdas, limit, progress)
    minutes = {"Stage 1 (every lambda and seed)": (trained - start) / 60,
               "Stage 2 and scoring": (time.perf_counter() - trained) / 60}
    keys, ran = ("lam", *SCORE_KEYS), seeds  # the record keeps the other seeds it holds (with_earlier_rows)
    scores, runs, earlier = with_earlier_rows(out, scores, runs, keys)
    seeds = tuple(sorted(set(scores["seed"])))
    out.mkdir(parents=True, exist_ok=True)
    write_scores(out / "scores.csv", scores, keys)
    summary = ablation.summarize(read_scores(out / "scores.csv", dataset.name, profile, keys))  # as recorded
    images = f"{int(summary['n_images'].max())} of {len(dataset.images)} images"
    stamp = report.make_stamp(profile, {"dataset": dataset.name, "seeds": list(seeds), "lambdas": list(lambdas),
                                        "limit": limit, "stage2": stage2}, commit)
    cache.write_text(out / "fig4.csv", ablation.table(summary, dataset.name).to_csv(index=False))
    what = f"profile `{profile}`, seeds {list(seeds)}, {images}, Stage 2 {stage2}"
    cache.write_text(out / "fig4.md", f"# {dataset.name}: the lambda ablation (Fig. 4), {what}\n\n"
                     "Ours: mean ± std over the seeds of the per-seed mean over images. `paper`: the 2023 arXiv "
                     "Fig. 4 (made with the 2023 training, 56 images; one CUTS curve). All metrics: `fig4.csv`.\n\n"
                     + report.to_markdown(ablation_dice(summary, dataset.name)) + f"\n\n{stamp.text}\n")
    save_png(ablation.plot(summary, f"{profile}, {plural(len(seeds), 'seed')}, {images}", dataset.name),
             out / "fig4_lambda_ablation.png")
    cache.write_text(out / "stage1.csv", pd.DataFrame(runs).assign(profile=profile).to_csv(index=False))
    lines = run_header(f"# How the lambda ablation of `{dataset.name}` / `{profile}` was made", stamp) + [
             f"- {what}; lambdas {list(lambdas)}", f"- seeds run by this command: {list(ran)}", "",
             f"Stage 1 (`{profile}` with lambda set per row: {train.PROFILES[profile]})", "",
             "| lambda | seed | cache folder | epochs | best epoch | best val loss | wall time (min) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['lam']:g} | {r['seed']} | `{r['folder']}` | {r['epochs']} | {r['best_epoch']} | "
              f"{r['val_loss']:.5f} | {r['minutes']:.1f} |" for r in runs]
    lines += ["", "Wall minutes of this command (0 where cached by an earlier run)", "", "| step | minutes |",
              "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in minutes.items()]
    cache.write_text(out / "RUN.md", "\n".join(lines) + "\n" + earlier)
    return out


def ablation_dice(summary: pd.DataFrame, dataset: str = "retina") -> pd.DataFrame:
    """The ablation's Dice per lambda: the paper's beside each row of :data:`cutslib.ablation.ROWS` (mean ±
    std over the seeds)."""
    dice = summary[summary["metric"] == "dice"]
    paper = ablation.paper_curve(dataset).set_index("lambda")["dice"]
    table = pd.DataFrame({"lambda": sorted(set(dice["lam"]) | set(paper.index))})
    table["paper"] = [f"{paper[v]:.3f}" if v in paper.index else "-" for v in table["lambda"]]
    for method, proto, label in ablation.ROWS:
        rows = dice[(dice["method"] == method) & (dice["protocol"] == proto)].set_index("lam")
        table[label] = [("-" if v not in rows.index else f"{rows.loc[v, 'mean']:.3f}"
                         + (f" ± {rows.loc[v, 'std']:.3f}" if rows.loc[v, "n_seeds"] > 1 else ""))  # no spread of one
                        for v in table["lambda"]]
    table["lambda"] = [f"{v:g}" for v in table["lambda"]]
    return table


#: The columns that name one row of ``scores.csv``; every other column is a metric.
SCORE_KEYS = ("seed", "method", "protocol", "image_id")


def with_earlier_rows(out: Path, scores: pd.DataFrame, runs: list[dict], keys=SCORE_KEYS):
    """``scores`` and ``runs`` joined with the record's rows already in ``out`` that this command did not remake
    (other seeds, other methods of the same seeds, and for the lambda ablation other lambdas), and the earlier
    RUN.md notes; a ValueError if the rows kept were scored on other images, trained with other settings or
    segmented by another Stage-2 path. ``keys``: the scores' key columns (the ablation adds ``lam``)."""
    if not (out / "scores.csv").exists():
        return scores, runs, ""
    old = read_scores(out / "scores.csv", scores["dataset"].iloc[0], scores["profile"].iloc[0], keys)
    remade_by = [k for k in keys if k not in ("protocol", "image_id")]  # what one command makes or remakes
    remade = set(zip(*(scores[k] for k in remade_by)))
    old = old[[row not in remade for row in zip(*(old[k] for k in remade_by))]]
    if old.empty:
        return scores, runs, ""
    if set(old["image_id"]) != set(scores["image_id"]):
        raise ValueError(f"{out} holds scores of other images ({old['image_id'].nunique()}) than this command's "
                         f"({scores['image_id'].nunique()}); write this record elsewhere (out=) or remove the old one")
    if runs and (out / "stage1.csv").exists():
        before = pd.read_csv(out / "stage1.csv").drop(columns="profile", errors="ignore")
        setting = [k for k in ("lam",) if k in runs[0]]  # what the Stage-1 settings vary by (the ablation's lambda)
        run_key = [*setting, "seed"]  # what names one Stage-1 run
        kept = before[before["seed"].isin(old["seed"])]
        both = pd.concat([kept.assign(stage2=kept.get("stage2", "unknown")), pd.DataFrame(runs)], ignore_index=True)
        folders = both.groupby(setting)["folder"].nunique().max() if setting else both["folder"].nunique()
        if folders > 1 or both["stage2"].nunique() > 1:
            raise ValueError(f"{out} holds seeds {sorted(set(kept['seed']))} made with other settings (Stage-1 "
                             f"folders {sorted(set(both['folder']))}, Stage-2 paths {sorted(set(both['stage2']))}); "
                             "write this record elsewhere (out=) or remove the old one")
        ran = {tuple(r[k] for k in run_key) for r in runs}
        others = [r for r in before.to_dict("records") if tuple(r[k] for k in run_key) not in ran]
        runs = sorted(others + runs, key=lambda r: tuple(r[k] for k in run_key))
    scores = pd.concat([old, scores], ignore_index=True)
    notes = (out / "RUN.md").read_text() if (out / "RUN.md").exists() else ""
    # every earlier heading one level below this one (deeper levels stop rendering as headings after a few runs)
    earlier = "\n## Earlier commands that made this record\n\n" + re.sub(r"(?m)^#+ ", "### ", notes).lstrip("# ")
    return scores, runs, earlier


def write_scores(path: Path, scores: pd.DataFrame, keys=SCORE_KEYS) -> None:
    """Write tidy ``scores`` (one row per metric value) to ``path`` in the record's wide form: one row per
    ``keys`` (default :data:`SCORE_KEYS`; the lambda ablation adds ``lam``), one column per metric, values to 5
    significant digits. The data set and profile are left out: they are the record's folder names
    (:func:`read_scores` puts them back)."""
    keys = list(keys)
    if scores.duplicated([*keys, "metric"]).any():
        raise ValueError(f"scores for {path} hold two values for one {', '.join(keys)} and metric")
    tidy = scores.assign(value=[float(f"{v:.5g}") for v in scores["value"]])  # keeps the file small
    wide = tidy.pivot(index=keys, columns="metric", values="value").reset_index()
    rows = tidy[keys].drop_duplicates()  # the rows in the order they came, as the tables show them
    metrics = list(dict.fromkeys(tidy["metric"]))
    cache.write_text(path, rows.merge(wide, on=keys, how="left")[[*keys, *metrics]].to_csv(index=False))


def read_scores(path: Path, dataset: str | None = None, profile: str | None = None, keys=SCORE_KEYS) -> pd.DataFrame:
    """The tidy scores of a record's ``scores.csv`` (columns dataset, profile, ``keys``, metric, value);
    ``dataset`` and ``profile`` default to the folder names ``<dataset>/<profile>/scores.csv`` (the profile of
    ``baselines`` is '-'). An empty cell is a metric not computed for that row."""
    path, keys = Path(path), list(keys)
    wide = pd.read_csv(path, dtype={"image_id": str})
    metrics = wide.columns.drop(keys, errors="ignore")
    numeric = all(pd.api.types.is_numeric_dtype(wide[m]) for m in metrics)
    if not set(keys) <= set(wide.columns) or metrics.empty or not numeric or "value" in metrics:
        raise ValueError(f"{path} is not a record's scores table (columns {list(wide.columns)}; it needs "
                         f"{keys} and one column per metric)")
    if profile is None:
        profile = "-" if path.parent.name == "baselines" else path.parent.name
    tidy = (wide.rename_axis("row").reset_index()  # row by row, each row's metrics in the file's column order
            .melt(id_vars=["row", *keys], var_name="metric", value_name="value")
            .sort_values("row", kind="stable").dropna(subset=["value"]).drop(columns="row").reset_index(drop=True))
    tidy.insert(0, "profile", profile)
    tidy.insert(0, "dataset", dataset or path.parent.parent.name)
    return tidy


#: The rows of the reproduction summary: (method, protocol, what the row is).
SUMMARY_ROWS = (
    ("cuts_kmeans", "label_hint", "CUTS + k-means, label hint"),
    ("cuts_diffusion_persistent", "label_hint", "CUTS + diffusion (persistent, 2024 rule), label hint"),
    ("cuts_diffusion_persistent2023", "label_hint", "CUTS + diffusion (persistent, 2023 rule), label hint"),
    ("cuts_diffusion_best_oracle", "oracle", "CUTS + diffusion (best level), oracle"),
    ("cuts_catch2023_persistent", "label_hint", "CUTS + 2023 Stage 2 (CATCH-style; persistent, 2023 rule), label hint"),
    ("cuts_catch2023_best_oracle", "oracle", "CUTS + 2023 Stage 2 (CATCH-style; best level), oracle"),
    ("cuts_diffusion_persistent", "label_free", "CUTS + diffusion (persistent), label-free"),
    ("cuts_diffusion_persistent", "one_click", "CUTS + diffusion (persistent), one click"),
    ("cuts_kmeans", "label_free", "CUTS + k-means, label-free"),
)
#: The rows of a multi-class data set's summary (Berkeley, Fig. 7; means over each image's annotators): (method,
#: protocol, metric, what the row is).
NATURAL_ROWS = (
    ("cuts_kmeans", "raw", "ari", "CUTS + k-means, ARI, raw (label-free)"),
    ("cuts_diffusion_persistent", "raw", "ari", "CUTS + diffusion (persistent), ARI, raw (label-free)"),
    ("cuts_diffusion_fixed_level", "raw", "ari", "CUTS + diffusion (fixed level), ARI, raw (label-free)"),
    ("cuts_diffusion_best_oracle", "oracle_raw", "ari", "CUTS + diffusion (best level), ARI, raw (oracle)"),
    ("cuts_kmeans", "iou_relabel", "dice", "CUTS + k-means, per-class Dice after IoU matching (uses the truth)"),
    ("cuts_diffusion_persistent", "iou_relabel", "dice",
     "CUTS + diffusion (persistent), per-class Dice after IoU matching (uses the truth)"),
    ("cuts_diffusion_best_oracle", "oracle_relabel", "dice",
     "CUTS + diffusion (best level), per-class Dice after IoU matching (oracle)"),
)
#: The first cell of a multi-class summary's header (``write_summary`` tells the two kinds apart by it).
NATURAL_HEAD = "Mean over annotators"
#: Column order of the summary (profiles found in the folder; others follow in name order).
SUMMARY_PROFILES = ("arxiv2023", "arxiv2023-fast", "paper", "fast", "fast-window", "fast-bn")
#: (windowed, dense) profile pairs, and the windowed encoder's criterion: each of these rows' mean Dice within the
#: dense seeds' standard deviation, or within WINDOWED_TOLERANCE if that is smaller.
WINDOWED_PAIRS = (("fast", "paper"), ("fast-window", "paper"), ("fast-bn", "paper"),
                  ("arxiv2023-fast", "arxiv2023"))
WINDOWED_ROWS = (SUMMARY_ROWS[0], SUMMARY_ROWS[1], SUMMARY_ROWS[3])
WINDOWED_TOLERANCE = 0.01
#: The baselines' rows of the summary, binary or multi-class (key: True): (protocol, metric) -> what it is.
BASELINE_VIEWS = {False: {("label_hint", "dice"): "label hint", ("direct", "dice"): "held-out test images"},
                  True: {("raw", "ari"): "ARI, raw", ("iou_relabel", "dice"): "per-class Dice, IoU matching"}}


def readme_markers(name: str) -> tuple[str, str]:
    """The README's start and end lines around data set ``name``'s reproduction table."""
    return f"<!-- reproduction:{name}:start -->", f"<!-- reproduction:{name}:end -->"


def summary_table(folder: Path) -> str:
    """The Markdown Dice table of :data:`SUMMARY_ROWS` over the profiles recorded in ``folder`` (for a multi-class
    data set, the ARI and Dice of :data:`NATURAL_ROWS`)."""
    found = {p.parent.name: p for p in sorted(Path(folder).glob("*/scores.csv")) if p.parent.name != "baselines"}
    if not found:
        raise FileNotFoundError(f"no profile records (*/scores.csv) in {folder}; run `python -m cutslib.published "
                                "--dataset NAME --profile P` first")
    order = [p for p in SUMMARY_PROFILES if p in found] + sorted(set(found) - set(SUMMARY_PROFILES))
    summary = {}
    for profile in order:
        summary[profile] = evaluate.summarize(read_scores(found[profile])).set_index(["method", "protocol", "metric"])
    natural = "raw" in summary[order[0]].index.get_level_values("protocol")  # multi-class (Berkeley) records
    rows = NATURAL_ROWS if natural else [(m, p, "dice", label) for m, p, label in SUMMARY_ROWS]
    counts = {p: int(summary[p]["n_seeds"].max()) for p in order}
    heads = [f"`{p}` ({plural(counts[p], 'seed')})" for p in order]
    paper = evaluate.paper_table().set_index(["dataset", "method"])["dice"]
    dataset = evaluate.PAPER_DATASET.get(Path(folder).name)
    lines = [f"| {NATURAL_HEAD if natural else 'Dice'} | paper | " + " | ".join(heads) + " |",
             "|---" * (len(order) + 2) + "|"]
    for method, proto, metric, label in rows:
        cells, name = [], evaluate.PAPER_ROWS.get((method, proto))
        for profile in order:
            table = summary[profile]
            if (method, proto, metric) not in table.index:
                cells.append("-")
                continue
            row = table.loc[(method, proto, metric)]
            cells.append(f"{row['mean']:.3f}" + (f" ± {row['std']:.3f}" if row["n_seeds"] > 1 else "")  # no spread of one
                         + (f" ({plural(int(row['n_seeds']), 'seed')})" if row["n_seeds"] != counts[profile] else ""))
        value = f"{paper[(dataset, name)]:.3f}" if (dataset, name) in paper.index and metric == "dice" else "-"
        lines.append(f"| {label} | {value} | " + " | ".join(cells) + " |")
    lines += windowed_check(summary)
    if (Path(folder) / "baselines" / "scores.csv").exists():  # the other methods: label hint; the UNet: held out
        table = evaluate.summarize(read_scores(Path(folder) / "baselines" / "scores.csv"))
        shown = BASELINE_VIEWS[natural]
        table = table[np.array([(p, k) in shown for p, k in zip(table["protocol"], table["metric"])], dtype=bool)
                      & (table["n_seeds"] > 0)]
        table = table.sort_values("method", key=lambda m: m.map({b: i for i, b in enumerate(BASELINES)}), kind="stable")
        lines += ["", f"| Baselines{'' if natural else ', Dice'} | protocol | paper | ours (mean ± std over seeds) |",
                  "|---|---|---|---|"]
        lines += [f"| {row.method} | {shown[(row.protocol, row.metric)]} | "
                  + ("-" if pd.isna(row.paper) else f"{row.paper:.3f}")
                  + f" | {row.mean:.3f} ± {row.std:.3f} ({plural(int(row.n_seeds), 'seed')}) |"
                  for row in table.itertuples()]
    runs = [pd.read_csv(found[p].parent / "stage1.csv") for p in order if (found[p].parent / "stage1.csv").exists()]
    if runs:
        lines += ["", "| Stage 1 | seeds | epochs | best validation loss | wall minutes per seed |", "|---|---|---|---|---|"]
        for run in runs:
            lines.append(f"| `{run['profile'].iloc[0]}` | {', '.join(map(str, run['seed']))} | "
                         f"{', '.join(map(str, run['epochs']))} | {run['val_loss'].mean():.5f}"
                         + (f" ± {run['val_loss'].std(ddof=0):.5f}" if len(run) > 1 else "")
                         + f" | {run['minutes'].mean():.1f} |")
    return "\n".join(lines) + "\n"


#: The overview's Dice columns: (method, protocol, heading); the 2023 Stage 2's methods go in their twins' columns.
OVERVIEW_COLUMNS = (("cuts_kmeans", "label_hint", "k-means, label hint"),
                    ("cuts_diffusion_persistent", "label_hint", "persistent (2024 rule), label hint"),
                    ("cuts_diffusion_persistent2023", "label_hint", "persistent (2023 rule), label hint"),
                    ("cuts_diffusion_best_oracle", "oracle", "best level, oracle"))
CATCH_TWINS = {"cuts_catch2023_persistent": "cuts_diffusion_persistent2023",
               "cuts_catch2023_best_oracle": "cuts_diffusion_best_oracle"}


#: Data sets of ours that stand in for slices the paper never published (their lines are not comparable).
SUBSTITUTES = ("brain_ventricles", "brain_tumor_lgg")


def overview(root: Path | None = None) -> pd.DataFrame:
    """Every binary data set's records under ``root`` (default :data:`PUBLISHED`), one row per data set, line and
    column of :data:`OVERVIEW_COLUMNS`: ``dataset, stage1`` ("the paper" or a profile), ``seeds, stage2, column,
    mean, std`` (NaN for one seed and for the paper) and ``rival`` (the best other unsupervised method, label hint)."""
    root = Path(root or PUBLISHED)
    paper = evaluate.paper_table().set_index(["dataset", "method"])["dice"]
    order = list(evaluate.PAPER_DATASET)  # the paper's order, then any other data set
    folders = sorted((p for p in root.iterdir() if p.is_dir()),
                     key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))
    rows = []
    for folder in folders:
        found = {p.parent.name: p for p in folder.glob("*/scores.csv")}
        profiles = [p for p in SUMMARY_PROFILES if p in found and p in train.PROFILES]  # not the retired ones
        tables = {p: evaluate.summarize(read_scores(found[p])) for p in found}
        if not profiles or any((tables[p]["protocol"] == "raw").any() for p in profiles):
            continue  # no CUTS record yet, or a multi-class data set (Berkeley: its own table)
        name, theirs = folder.name, evaluate.PAPER_DATASET.get(folder.name)
        rivals = [(paper[(theirs, m)], m) for m in baselines.UNSUPERVISED + ("stego",) if (theirs, m) in paper.index]
        line = dict(dataset=name, stage1="the paper", seeds=0, stage2="2023 code", std=np.nan,
                    rival="{1} {0:.3f}".format(*max(rivals)) if rivals else "-")
        rows += [dict(line, column=h, mean=paper[(theirs, evaluate.PAPER_ROWS[(m, p)])]) for m, p, h in OVERVIEW_COLUMNS
                 if (theirs, evaluate.PAPER_ROWS[(m, p)]) in paper.index]
        base = tables.get("baselines", pd.DataFrame(columns=["method", "protocol", "metric", "n_seeds", "mean"]))
        base = base[(base["protocol"] == "label_hint") & (base["metric"] == "dice") & (base["n_seeds"] > 0)
                    & base["method"].isin(baselines.UNSUPERVISED)]
        rival = "-" if base.empty else "{method} {mean:.3f}".format(**base.loc[base["mean"].idxmax()])
        for profile in profiles:
            table = tables[profile].query("metric == 'dice'").set_index(["method", "protocol"])
            runs = found[profile].parent / "stage1.csv"
            stage2 = pd.read_csv(runs).get("stage2", pd.Series(["-"])).iloc[0] if runs.exists() else "-"
            for path, twin in ((stage2, {}), ("2023 (CATCH-style)", {v: k for k, v in CATCH_TWINS.items()})):
                keys = {h: (twin.get(m) if twin else m, p) for m, p, h in OVERVIEW_COLUMNS}
                keys = {h: key for h, key in keys.items() if key in table.index}
                seeds = max((int(table.loc[key, "n_seeds"]) for key in keys.values()), default=0)  # this line's own
                for h, key in keys.items():
                    row = table.loc[key]
                    rows.append(dict(dataset=name, stage1=profile, seeds=seeds, stage2=path, column=h,
                                     mean=row["mean"], std=row["std"] if row["n_seeds"] > 1 else np.nan, rival=rival))
    return pd.DataFrame(rows, columns=["dataset", "stage1", "seeds", "stage2", "column", "mean", "std", "rival"])


def overview_table(root: Path | None = None) -> str:
    """:func:`overview` as a Markdown table: a line for the paper, then one per profile and Stage 2."""
    heads = [h for *_, h in OVERVIEW_COLUMNS]
    lines = ["| data set | Stage 1 (seeds) | Stage 2 | " + " | ".join(heads) + " | best other unsupervised, label hint |",
             "|---" * (len(heads) + 4) + "|"]
    for (name, stage1, seeds, stage2, rival), line in overview(root).groupby(
            ["dataset", "stage1", "seeds", "stage2", "rival"], sort=False):
        values = line.set_index("column")
        cells = ["-" if h not in values.index else f"{values.loc[h, 'mean']:.3f}"
                 + ("" if np.isnan(values.loc[h, "std"]) else f" ± {values.loc[h, 'std']:.3f}") for h in heads]
        label = stage1 if stage1 == "the paper" else f"`{stage1}` ({seeds})"
        lines.append(f"| {name} | {label} | {stage2} | " + " | ".join(cells) + f" | {rival} |")
    return "\n".join(lines) + "\n"


def overview_figure(root: Path | None = None) -> Path:
    """``overview.png`` in ``root``: :func:`overview` as a picture, a panel per data set, each line's Dice (± std
    over seeds) per column beside the paper's value (a black bar)."""
    import matplotlib.pyplot as plt

    root = Path(root or PUBLISHED)
    frame = overview(root)
    heads = [h for *_, h in OVERVIEW_COLUMNS]
    names = list(dict.fromkeys(frame["dataset"]))
    ours = [line for line in dict.fromkeys(zip(frame["stage1"], frame["stage2"])) if line[0] != "the paper"]
    colours = {line: plt.cm.tab10(i % 10) for i, line in enumerate(ours)}
    fig, axes = plt.subplots(1, len(names), figsize=(3.3 * len(names) + 1.6, 4.2), sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names):
        part = frame[frame["dataset"] == name]
        lines = list(dict.fromkeys(zip(part["stage1"], part["stage2"])))
        for j, (stage1, stage2) in enumerate(lines):
            sub = part[(part["stage1"] == stage1) & (part["stage2"] == stage2)]
            y = np.array([heads.index(c) for c in sub["column"]], dtype=float)
            if stage1 == "the paper":
                ax.scatter(sub["mean"], y, marker="|", s=400, color="k", linewidths=2, zorder=3)
                continue
            y += 0.5 * ((j - 1) / max(len(lines) - 2, 1) - 0.5) if len(lines) > 2 else 0
            ax.errorbar(sub["mean"], y, xerr=sub["std"].fillna(0), fmt="o", ms=4, capsize=2,
                        color=colours[(stage1, stage2)])
        ax.set(xlim=(0, 1), title=name + (" (not the paper's slices)" if name in SUBSTITUTES else ""), xlabel="Dice")
        ax.title.set_fontsize(9)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(range(len(heads)), heads, fontsize=8)
    axes[0, 0].invert_yaxis()
    handles = [plt.Line2D([], [], color="k", marker="|", ls="", ms=12, mew=2, label="the paper (2023 arXiv Table 1)")]
    seeds = frame.groupby(["stage1", "stage2"])["seeds"].max()
    handles += [plt.Line2D([], [], color=colours[line], marker="o", ls="", ms=5,
                           label=f"{line[0]}, Stage 2 {line[1]} (up to {plural(seeds[line], 'seed')})") for line in ours]
    rows = -(-len(handles) // 3)
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("CUTS, Dice under the paper's protocols: our records (mean ± std over seeds) beside the paper",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.045 * rows, 1, 1))
    return save_png(fig, root / "overview.png")


def write_overview(readme: Path, root: Path | None = None) -> bool:
    """Put :func:`overview_table` and :func:`overview_figure` into ``readme``'s ``reproduction:overview`` block;
    False if it has none."""
    start, end = readme_markers("overview")
    text = Path(readme).read_text()
    if start not in text or end not in text:
        return False
    figure = overview_figure(root).relative_to(Path(readme).parent)
    replace_block(readme, "overview", overview_table(root) + f"\n![overview]({figure})\n")
    return True


def replace_block(readme: Path, name: str, body: str) -> None:
    """Put ``body`` between ``readme``'s :func:`readme_markers` of ``name`` (which must be there)."""
    text, (start, end) = Path(readme).read_text(), readme_markers(name)
    head, rest = text.split(start, 1)
    cache.write_text(Path(readme), head + start + "\n" + body + end + rest.split(end, 1)[1])


def windowed_check(summary: dict) -> list[str]:
    """Table lines: each windowed profile's mean Dice minus its dense pair's, whether that is within the
    criterion (:data:`WINDOWED_TOLERANCE`; a verdict needs at least 2 dense seeds), and the difference's 95%
    interval over seeds (:func:`welch_interval`), which says whether it can be told from seed noise."""
    lines = []
    for windowed, dense in WINDOWED_PAIRS:
        if windowed not in summary or dense not in summary:
            continue
        lines += ["", f"| windowed `{windowed}` minus dense `{dense}`, Dice | difference | tolerance: dense std, "
                  f"at most {WINDOWED_TOLERANCE} | within | 95% interval over seeds (Welch) |", "|---|---|---|---|---|"]
        for method, proto, label in WINDOWED_ROWS:
            key = (method, proto, "dice")
            if key not in summary[windowed].index or key not in summary[dense].index:
                continue
            w, d = summary[windowed].loc[key], summary[dense].loc[key]
            difference, tolerance = w["mean"] - d["mean"], min(d["std"], WINDOWED_TOLERANCE)
            if d["n_seeds"] > 1:
                verdict = f"{tolerance:.3f} | " + ("yes" if abs(difference) <= tolerance else
                                                    f"**no**, {'higher' if difference > 0 else 'lower'}")
            else:
                verdict = f"- | needs 2+ `{dense}` seeds"
            low, high = welch_interval(w, d)
            interval = "-" if np.isnan(low) else f"{low:+.3f} to {high:+.3f}"
            lines.append(f"| {label} | {difference:+.3f} | {verdict} | {interval} |")
    return lines


def welch_interval(a, b, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` confidence interval of mean(a) - mean(b) by Welch's t, from two summary rows (``mean``,
    ``std`` with ddof 0, ``n_seeds``); NaNs when either has fewer than 2 seeds."""
    from scipy import stats

    n = np.array([a["n_seeds"], b["n_seeds"]], dtype=float)
    if n.min() < 2:
        return float("nan"), float("nan")
    var = np.array([a["std"], b["std"]], dtype=float) ** 2 / (n - 1)  # each mean's squared standard error
    se = math.sqrt(var.sum())
    if se == 0:
        return (a["mean"] - b["mean"],) * 2
    df = var.sum() ** 2 / np.sum(var ** 2 / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return a["mean"] - b["mean"] - half, a["mean"] - b["mean"] + half


def plural(n: int, word: str) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} {word}{'s' if n != 1 else ''}"


def windowed_figure(folder: Path) -> list[Path]:
    """``<windowed>_vs_<dense>.png`` in ``folder``: per image, the Dice of each windowed profile (mean over its
    seeds) against its dense pair's, for the rows of :data:`WINDOWED_ROWS`; above the diagonal, the windowed
    encoder did better."""
    import matplotlib.pyplot as plt

    paths = []
    for windowed, dense in WINDOWED_PAIRS:
        files = [Path(folder) / p / "scores.csv" for p in (windowed, dense)]
        if not all(f.exists() for f in files):
            continue
        scores = [read_scores(f).query("metric == 'dice'") for f in files]
        seeds = [s["seed"].nunique() for s in scores]
        per_image = [s.groupby(["method", "protocol", "image_id"])["value"].mean() for s in scores]
        fig, axes = plt.subplots(1, len(WINDOWED_ROWS), figsize=(3.1 * len(WINDOWED_ROWS), 3.4), layout="constrained")
        for ax, (method, proto, label) in zip(axes, WINDOWED_ROWS):
            ax.set_title("\n".join(label.rsplit(", ", 1)), fontsize=9)
            if not all((method, proto) in p.index.droplevel(2) for p in per_image):
                ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
                continue
            w = per_image[0][(method, proto)]
            d = per_image[1][(method, proto)].reindex(w.index)
            ax.plot([0, 1], [0, 1], color="0.6", lw=0.8)
            ax.scatter(d, w, s=12, alpha=0.7, edgecolors="none")
            ax.text(0.04, 0.96, f"mean {w.mean():.3f} windowed\n{d.mean():.3f} dense", transform=ax.transAxes,
                    va="top", fontsize=8)
            ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel=f"dense ({dense}), {plural(seeds[1], 'seed')}")
        axes[0].set_ylabel(f"windowed ({windowed}), {plural(seeds[0], 'seed')}")
        fig.suptitle(f"{Path(folder).name}: Dice per image, windowed against dense encoder", fontsize=10, y=1.06)
        paths.append(save_png(fig, Path(folder) / f"{windowed}_vs_{dense}.png"))
    return paths


def write_summary(name: str, readme: Path | None = cache.PROJECT_ROOT / "README.md") -> Path:
    """``REPRODUCTION.md`` of data set ``name`` from its records, and the same table in ``readme``'s block for
    ``name`` (between :func:`readme_markers`)."""
    folder = PUBLISHED / name
    table = summary_table(folder)
    out = folder / "REPRODUCTION.md"
    natural = table.startswith(f"| {NATURAL_HEAD} |")
    figures = [natural_records_figure(folder)] if natural else windowed_figure(folder)
    built = (f"Built by `python -m cutslib.published --dataset {name} --summary` from `*/scores.csv` here. Ours: mean "
             "± std over each profile's seeds of the per-seed mean over all images")
    if natural:
        intro = (f"# {name}: our runs, scored as in Fig. 7\n\n{built}, each image's score the mean over its "
                 "annotators. ARI raw compares the label map as it is (label-free, except the oracle row, which picks "
                 "the best level with the truth); the per-class Dice after IoU matching, the paper's metric here, "
                 "first merges segments using the ground truth. The paper shows this data set in a figure (Fig. 7), "
                 "not in Table 1: no paper column has values.\n\n")
    else:
        intro = (f"# {name}: Dice of our runs beside the paper's\n\n{built}. `paper`: the 2023 arXiv Table 1, made "
                 "with the 2023 training (the profile `arxiv2023` is that training); both persistent rules stand "
                 "beside its one persistent row. Label-free and one-click rows have no paper value.\n\n")
    cache.write_text(out, intro + table
                     + "".join(f"\n![{f.stem}]({f.relative_to(folder)})\n" for f in figures)
                     + "".join(f"\n## The lambda ablation (Fig. 4), `{f.parent.name}`\n\nTable, per-image scores and "
                               f"run: [{f.parent.relative_to(folder)}/]({f.parent.relative_to(folder)}/fig4.md)\n\n"
                               f"![{f.stem}]({f.relative_to(folder)})\n"
                               for f in sorted((folder / ABLATION).glob("*/fig4_lambda_ablation.png"))))
    if readme is not None and readme.exists():
        text = readme.read_text()
        start, end = readme_markers(name)
        if start not in text or end not in text:
            raise ValueError(f"{readme} has no {start} ... {end} block for {name}'s reproduction table")
        replace_block(readme, name, table)
        write_overview(readme, folder.parent)
    return out


def run_text(name, profile, seeds, runs, minutes, stamp) -> str:
    """RUN.md: how this command made (or added ``seeds`` to) the record; ``runs``: every seed's Stage 1."""
    lines = run_header(f"# How `{name}` / `{profile}` was made", stamp) + [
             f"- seeds run by this command: {list(seeds)}", ""]
    if runs:
        lines[-1:] = [f"- Stage 2: the {runs[-1]['stage2']} path (`CUTS_STAGE2` / "
                      "`--stage2`)", ""]
        if any(m in evaluate.CATCH_METHODS for m in minutes):
            lines[-1:] = ["- the `cuts_catch2023_*` rows: the 2023 Stage 2 (`cutslib.catch`, CATCH-style, our own "
                          f"implementation, version {segment.CATCH_VERSION})", ""]
    if runs:
        cfg = train.PROFILES[profile]
        lines += [f"Stage 1 (`{profile}`: {cfg})", "", "| seed | cache folder | epochs | best epoch | best val loss |"
                  " wall time (min) |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['seed']} | `{r['folder']}` | {r['epochs']} | {r['best_epoch']} | {r['val_loss']:.5f} | "
                  f"{r['minutes']:.1f} |" for r in runs]
        lines.append("")
    lines += [f"Stage 2 and scoring, per method over seeds {list(seeds)} (wall minutes of this command; 0 where cached by an "
              "earlier run)", "", "| method | minutes |", "|---|---|"]
    lines += [f"| {m} | {v:.1f} |" for m, v in minutes.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutslib.published", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--profile", help="a Stage-1 profile, or 'baselines' for the other methods")
    parser.add_argument("--summary", action="store_true", help="write REPRODUCTION.md and the README's table "
                        "from the records already made")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: the profile's seeds")
    parser.add_argument("--methods", nargs="+", help="default: the CUTS rows (or every baseline for 'baselines')")
    parser.add_argument("--stage2", choices=("fast", "exact"), help="the Stage-2 path (default $CUTS_STAGE2 or "
                        "cutslib.segment.DEFAULT_PATH)")
    parser.add_argument("--out", type=Path, help="write the record here (default figures/published/DATASET/PROFILE)")
    parser.add_argument("--ablation", action="store_true", help="the lambda ablation (Fig. 4) of --profile instead "
                        "of Table 1, into figures/published/DATASET/lambda-ablation/PROFILE")
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(ablation.LAMBDAS),
                        help="with --ablation (default: the paper's grid)")
    parser.add_argument("--limit", type=int, help="with --ablation: the first LIMIT images (default: all)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.summary:
        print(write_summary(args.dataset))
        return 0
    if not args.profile:
        parser.error("give --profile (or --summary)")
    if args.stage2:
        os.environ["CUTS_STAGE2"] = args.stage2
    if args.ablation:
        print(build_ablation(args.dataset, args.profile, args.seeds, args.lambdas, args.limit, args.out,
                             progress=not args.no_progress))
        return 0
    methods = args.methods or (BASELINES if args.profile == "baselines" else CUTS_ONLY)
    print(build(args.dataset, args.profile, args.seeds, methods, out=args.out, progress=not args.no_progress))
    return 0


if __name__ == "__main__":
    sys.exit(main())
