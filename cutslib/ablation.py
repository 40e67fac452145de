"""The lambda ablation (the paper's Fig. 4): retrain Stage 1 for each lambda, segment, score, and plot.

``L = lambda * L_con + (1 - lambda) * L_rec``: for each lambda of the grid, Stage 1 is retrained with the
profile's other settings unchanged, Stage 2 reruns on its embeddings, and the CUTS maps are scored. Everything
is cached per (lambda, seed, image), so a rerun only scores and a longer run extends a shorter one.

>>> scores = ablation.run(data.load("retina"), "arxiv2023-fast", seeds=[2021], limit=16)
>>> summary = ablation.summarize(scores)            # mean +- std over seeds, per lambda and row
>>> fig = ablation.plot(summary, "ours: arxiv2023-fast, seed 2021, 16 images")
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from cutslib import evaluate, train

#: The paper's grid (METHOD.md).
LAMBDAS = (0, 0.001, 0.01, 0.03, 0.1, 0.5, 0.9, 1)
#: The rows plotted: (method, protocol, label).
ROWS = (("cuts_kmeans", "label_hint", "CUTS + k-means, label hint"),
        ("cuts_diffusion_persistent", "label_hint", "CUTS + diffusion (persistent), label hint"),
        ("cuts_diffusion_best_oracle", "oracle", "CUTS + diffusion (best level), oracle"))
METRICS = {"dice": "Dice (higher is better)", "hausdorff": "Hausdorff, pixels (lower is better)",
           "ssim": "SSIM (higher is better)"}
#: The paper's Fig. 4 values (a copy of ../shared/spec/paper_lambda_ablation.csv shipped with the package).
PAPER_CURVE = Path(__file__).with_name("paper_lambda_ablation.csv")


def config_for(profile, lam: float) -> dict:
    """The Stage-1 settings of ``profile`` (a name, TrainConfig or dict) with lambda set to ``lam``."""
    return dict(dataclasses.asdict(train.resolve_config(profile)), lam=float(lam))


def run(dataset, profile, seeds, lambdas=LAMBDAS, limit: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Tidy scores (:func:`cutslib.evaluate.evaluate_dataset`'s columns plus ``lam``) of the :data:`ROWS`'
    methods for every lambda and seed, on the first ``limit`` images (None: all); trains and segments what is
    not cached yet."""
    methods = list(dict.fromkeys(method for method, _, _ in ROWS))
    tables = [evaluate.evaluate_dataset(dataset, seeds=seeds, config=config_for(profile, lam), methods=methods,
                                        limit=limit, progress=progress).assign(lam=float(lam))
              for lam in lambdas]
    return pd.concat(tables, ignore_index=True)


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """Per lambda, row of :data:`ROWS` and metric of :data:`METRICS`: mean and std over seeds of the per-seed
    mean over images (columns ``lam, method, protocol, metric, mean, std, n_seeds, n_images``)."""
    keep = pd.Series(False, index=scores.index)
    for method, proto, _ in ROWS:
        keep |= (scores["method"] == method) & (scores["protocol"] == proto)
    scores = scores[keep & scores["metric"].isin(list(METRICS))]
    if scores.empty:
        raise ValueError("no scores of the ablation's rows (label-hint k-means and persistent, oracle best level)")
    per_seed = scores.groupby(["lam", "method", "protocol", "metric", "seed"])["value"].agg(["mean", "count"])
    return (per_seed.reset_index().groupby(["lam", "method", "protocol", "metric"])
            .agg(mean=("mean", "mean"), std=("mean", lambda v: float(np.std(v))), n_seeds=("seed", "nunique"),
                 n_images=("count", "max")).reset_index())


def paper_curve(dataset: str = "retina") -> pd.DataFrame:
    """The paper's Fig. 4 values for ``dataset`` (columns ``lambda, dice, hausdorff, ssim``)."""
    paper = pd.read_csv(PAPER_CURVE)
    return paper[paper["dataset"] == dataset].drop(columns="dataset").reset_index(drop=True)


def table(summary: pd.DataFrame, dataset: str = "retina") -> pd.DataFrame:
    """One row per lambda: ours (mean, per row and metric) beside the paper's curve."""
    wide = summary.pivot_table(index="lam", columns=["method", "metric"], values="mean")
    wide.columns = [f"{method} {metric}" for method, metric in wide.columns]
    paper = paper_curve(dataset).set_index("lambda").add_prefix("paper ")
    return wide.join(paper, how="outer").rename_axis("lambda").reset_index()


def plot(summary: pd.DataFrame, label: str, dataset: str = "retina"):
    """Fig. 4: Dice, Hausdorff and SSIM against lambda, ours (``label`` names our run in the title; error bars:
    the std over seeds) beside the paper's; the x axis spaces the grid evenly (it spans zero and three decades)."""
    import matplotlib.pyplot as plt

    paper = paper_curve(dataset)
    grid = sorted(set(summary["lam"]) | set(paper["lambda"]))
    x = {lam: i for i, lam in enumerate(grid)}
    fig, axes = plt.subplots(1, len(METRICS), figsize=(12, 3.8))
    for ax, (metric, ylabel) in zip(axes, METRICS.items()):
        for k, (method, proto, row) in enumerate(ROWS):
            part = summary[(summary["method"] == method) & (summary["protocol"] == proto)
                           & (summary["metric"] == metric)].sort_values("lam")
            if not part.empty:
                ax.errorbar([x[v] for v in part["lam"]], part["mean"], yerr=part["std"], marker="o", ms=4,
                            capsize=3, color=f"C{k}", label=f"ours: {row}")
        ax.plot([x[v] for v in paper["lambda"]], paper[metric], "k--", marker="s", ms=4,
                label="paper, 2023 arXiv Fig. 4 (CUTS, 2023 training, 56 images)")
        ax.set_xticks(range(len(grid)), [f"{v:g}" for v in grid], rotation=45)
        ax.set_xlabel("lambda (weight of the contrastive loss)")
        ax.set_ylabel(ylabel)
        if metric != "hausdorff":
            ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.02), ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"Lambda ablation on {dataset}; ours: {label}", fontsize=10)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig
