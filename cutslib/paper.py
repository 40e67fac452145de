"""What two of the paper's outputs compute beyond :mod:`cutslib.evaluate`: Figure 7's scores of natural images and
Table 1's rows that a profile did not run.

Figure 7 (Berkeley) scores each method's label map against every annotator, three ways, and says which ones use
the ground truth:

- ``raw``: ARI and VI of the label map as it is. ARI and VI compare partitions, so they need no relabelling; this
  is the label-free view.
- ``iou_relabel``: each predicted id first takes the ground-truth id it overlaps best by IoU
  (:func:`cutslib.protocol.iou_relabel`), which merges segments *using the ground truth*: any refinement of the
  truth then scores ARI 1. Beside ARI and VI, the paper's metric for Berkeley: the per-class Dice after this IoU
  matching (:func:`per_class_dice`).
- ``oracle``: "CUTS + diffusion (best one)": the best salient level per image and metric, under ``raw`` and under
  ``iou_relabel`` (protocols ``oracle_raw`` and ``oracle_relabel``); choosing the level uses the ground truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cutslib import metrics, protocol

__all__ = ["per_class_dice", "natural_scores", "natural_scores_over", "score_natural", "plot_natural", "USES_TRUTH",
           "add_not_run", "NOT_RUN"]

#: Whether each Figure 7 protocol uses the ground truth.
USES_TRUTH = {"raw": False, "iou_relabel": True, "oracle_raw": True, "oracle_relabel": True}
#: The note on Table 1 rows the paper reports but the profile did not run.
NOT_RUN = "not run in this profile"


def per_class_dice(pred, truth) -> float:
    """The mean over the ground-truth classes of the Dice of each class, after IoU matching of ``pred`` to
    ``truth``: class c's Dice compares the pixels relabelled c with the pixels of truth c."""
    return _class_dice(protocol.iou_relabel(pred, truth), np.asarray(truth))


def _class_dice(relabelled, truth) -> float:
    return float(np.mean([metrics.dice(relabelled == c, truth == c) for c in np.unique(truth)]))


def natural_scores(labels, truth) -> dict[str, dict[str, float]]:
    """``{"raw": {ari, vi}, "iou_relabel": {ari, vi, dice}}`` of one label map against one annotator."""
    relabelled, truth = protocol.iou_relabel(labels, truth), np.asarray(truth)
    return {"raw": metrics.multiclass_scores(labels, truth),
            "iou_relabel": {**metrics.multiclass_scores(relabelled, truth), "dice": _class_dice(relabelled, truth)}}


def natural_scores_over(truths, labels) -> dict[str, dict[str, float]]:
    """:func:`natural_scores` of one label map, each the mean over the annotators ``truths``."""
    per = [natural_scores(labels, t) for t in truths]
    return {p: {k: float(np.mean([s[p][k] for s in per])) for k in per[0][p]} for p in per[0]}


def score_natural(dataset, methods, seeds, config, limit: int | None = None) -> pd.DataFrame:
    """Tidy Figure 7 scores (``dataset, seed, method, protocol, uses_truth, image_id, metric, value``), each the
    mean over the image's annotators. Predictions come from :func:`cutslib.evaluate.predictions` (cached)."""
    from cutslib import evaluate

    if dataset.annotations is None:
        raise ValueError(f"{dataset.name}: Figure 7 needs several annotators per image (dataset.annotations)")
    rows = []
    for seed in seeds:
        for method in methods:
            for i, levels in evaluate.predictions(dataset, method, seed, config, progress=False, limit=limit):
                scored = evaluate.score_image(method, levels, list(dataset.annotations[i]), None, multiclass=True)
                rows += [(dataset.name, seed, method, p, USES_TRUTH[p], dataset.ids[i], k, v) for p, k, v in scored]
    return pd.DataFrame(rows, columns=["dataset", "seed", "method", "protocol", "uses_truth", "image_id", "metric",
                                       "value"])


#: Figure 7's panels: (view, metric, title); the view "raw" holds protocols raw and oracle_raw, "relabelled"
#: holds iou_relabel and oracle_relabel.
PANELS = (("raw", "ari", "ARI, raw (higher is better)"), ("raw", "vi", "VI, raw (lower is better)"),
          ("relabelled", "ari", "ARI after IoU relabelling\n(uses the ground truth)"),
          ("relabelled", "vi", "VI after IoU relabelling\n(uses the ground truth)"),
          ("relabelled", "dice", "per-class Dice after IoU matching\n(the paper's metric; uses the ground truth)"))
VIEW = {"raw": "raw", "oracle_raw": "raw", "iou_relabel": "relabelled", "oracle_relabel": "relabelled"}


def plot_natural(scores: pd.DataFrame, title: str, order=None, highlight=()):
    """Figure 7: per-image boxes (and points; each image's mean over the seeds) of each method under each of
    :data:`PANELS`, from tidy scores of a multi-class data set (:func:`score_natural` or
    :func:`cutslib.evaluate.evaluate_dataset`); ``order``: the methods, left to right (default: as they come);
    ``highlight``: methods whose boxes are tinted (CUTS beside the baselines)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    scores = (scores.groupby(["method", "protocol", "metric", "image_id"], sort=False)["value"].mean().reset_index()
              .assign(view=lambda t: t["protocol"].map(VIEW)))
    order = list(order if order is not None else dict.fromkeys(scores["method"]))
    rows = 1 if len(order) <= 5 else 2  # many methods: wider panels on two rows
    cols = -(-len(PANELS) // rows)
    width = max(3.1, 0.45 * len(order) + 0.6)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(PANELS):]:
        ax.remove()
    for ax, (view, metric, panel) in zip(axes.flat, PANELS):
        part = scores[(scores["view"] == view) & (scores["metric"] == metric)]
        sns.boxplot(data=part, x="method", y="value", order=order, ax=ax, fliersize=0, hue="method", hue_order=order,
                    palette={m: "#a6cee3" if m in highlight else "0.85" for m in order}, legend=False)
        sns.stripplot(data=part, x="method", y="value", order=order, ax=ax, size=2, alpha=0.35, color="C0")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel("Dice" if metric == "dice" else metric.upper())
        ax.tick_params(axis="x", rotation=70, labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def add_not_run(summary: pd.DataFrame, datasets) -> pd.DataFrame:
    """``summary`` (of :func:`cutslib.evaluate.summarize`) plus, for each data set in ``datasets``, the paper's rows
    that did not run and are not cited-only, with the paper's value and the note :data:`NOT_RUN`."""
    from cutslib import baselines, evaluate

    paper = evaluate.paper_table()
    extra = []
    for name in datasets:
        ran = set(summary.loc[summary.dataset == name, "method"])
        rows = paper[paper.dataset == evaluate.PAPER_DATASET.get(name)]
        for (method, proto), paper_name in evaluate.PAPER_ROWS.items():
            if method in ran or method in baselines.CITED_ONLY:
                continue
            for row in rows[rows.method == paper_name].itertuples(index=False):
                extra += [dict(dataset=name, profile="", method=method, protocol=proto, metric=m, mean=np.nan,
                               std=np.nan, n_seeds=0, n_images=0, paper=getattr(row, m), diff=np.nan, note=NOT_RUN)
                          for m in evaluate.PAPER_METRICS]
    return pd.concat([summary, pd.DataFrame(extra)], ignore_index=True) if extra else summary
