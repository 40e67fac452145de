"""Score every method on a data set under every protocol, and summarise beside the paper's Table 1.

>>> scores = evaluate_dataset(data.load("retina"), seeds=(1,), methods=["slic", "cuts_kmeans"], limit=5)
>>> table = summarize(scores)           # mean +- std over seeds of the per-seed means, with the paper's values
>>> print(format_summary(table))

``scores`` is tidy: one row per image x method x protocol x metric x seed (columns ``dataset, profile, seed,
method, protocol, image_id, metric, value``; ``profile`` names the Stage-1 training profile, see
:func:`profile_name`); it is also written, atomically, to ``scores.csv`` in a cached folder per data set, seed
and method, and all together to ``results/<dataset>/evaluation-<hash>.csv``.

Protocols (the ``protocol`` column; see :mod:`cutslib.protocol`):

- binary data sets: ``label_hint`` (the paper's), ``one_click`` and ``label_free`` for every unsupervised
  label map; ``oracle`` (label hint + best level per image and metric, the paper's "best one") for
  ``cuts_diffusion_best_oracle``; ``direct`` for methods that output the foreground themselves (the
  supervised UNet, SAM).
- multi-class data sets (berkeley), against every annotator (mean): ``raw`` (ARI and VI of the label map as it
  is: the label-free view) and ``iou_relabel`` (ARI, VI and the paper's per-class Dice after IoU matching, which
  uses the ground truth); ``oracle_raw`` and ``oracle_relabel`` for ``cuts_diffusion_best_oracle``.

Methods: the baselines of :mod:`cutslib.baselines`, ``unet_supervised`` (scored on its held-out test images
only), and CUTS from Stage 2 (:func:`cutslib.segment.segment_dataset`): ``cuts_kmeans``,
``cuts_diffusion_persistent`` (the 2024 persistent rule), ``cuts_diffusion_persistent2023`` (the 2023 rule,
on the same levels), ``cuts_diffusion_best_oracle`` (oracle over the salient levels) and
``cuts_diffusion_fixed_level`` (the label-free level choice :func:`cutslib.protocol.fixed_level`). From the 2023
Stage 2 (:mod:`cutslib.catch`, run only when named): ``cuts_catch2023_persistent`` (its levels, the 2023 rule, as
the 2023 table was made) and ``cuts_catch2023_best_oracle``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from cutslib import baselines, cache, metrics, protocol, unet
from cutslib.data import n_first

CUTS_METHODS = ("cuts_kmeans", "cuts_diffusion_persistent", "cuts_diffusion_persistent2023",
                "cuts_diffusion_best_oracle", "cuts_diffusion_fixed_level")
#: CUTS from the 2023 Stage 2 (the CATCH-style condensation); not among the defaults.
CATCH_METHODS = ("cuts_catch2023_persistent", "cuts_catch2023_best_oracle")
#: The Stage-2 map each single-map CUTS method scores (a key of :mod:`cutslib.segment`'s files).
CUTS_MAPS = {"cuts_kmeans": "kmeans", "cuts_diffusion_persistent": "persistent",
             "cuts_diffusion_persistent2023": "persistent2023", "cuts_catch2023_persistent": "persistent2023"}
#: Methods whose salient levels are scored with the oracle (best level per image and metric).
ORACLE_METHODS = ("cuts_diffusion_best_oracle", "cuts_catch2023_best_oracle")
#: Bump when a score changes for the same predictions (metric or protocol rules), so cached scores are redone.
SCORING_VERSION = 3  # 3: multi-class sets also scored raw (no relabelling), with per-class Dice
METHODS = (*baselines.UNSUPERVISED, "unet_supervised", *baselines.SAM_METHODS, *CUTS_METHODS, *CATCH_METHODS)
DEFAULT_METHODS = ("random", "watershed_otsu", "felzenszwalb", "slic", "dfc", "unet_supervised", *CUTS_METHODS)
#: Methods whose output is already the foreground mask: scored as they are (protocol ``direct``).
DIRECT = ("unet_supervised", *baselines.SAM_METHODS)
COLUMNS = ["dataset", "profile", "seed", "method", "protocol", "image_id", "metric", "value"]

#: Table 1 of the paper (2023 arXiv version), a copy of ../shared/spec/paper_table1.csv shipped with the package.
PAPER_TABLE = Path(__file__).with_name("paper_table1.csv")
#: Our data set -> the paper's (Table 1).
PAPER_DATASET = {"retina": "retina", "brain_ventricles": "brain_ventricles", "brain_tumor_cuts": "brain_tumor",
                 "brain_tumor_lgg": "brain_tumor"}
#: Our (method, protocol) -> the paper's method, for the rows the paper reports.
PAPER_ROWS = {(m, "label_hint"): m for m in ("random", "watershed_otsu", "felzenszwalb", "slic", "dfc",
                                              "cuts_kmeans", "cuts_diffusion_persistent")}
# the paper's persistent row came from the 2023 code: both of our persistent rules, and the 2023 Stage 2, stand beside it
PAPER_ROWS[("cuts_diffusion_persistent2023", "label_hint")] = "cuts_diffusion_persistent"
PAPER_ROWS[("cuts_catch2023_persistent", "label_hint")] = "cuts_diffusion_persistent"
PAPER_ROWS |= {("cuts_diffusion_best_oracle", "oracle"): "cuts_diffusion_best_oracle",
               ("cuts_catch2023_best_oracle", "oracle"): "cuts_diffusion_best_oracle",
               ("unet_supervised", "direct"): "unet_supervised", ("sam_point", "direct"): "sam_point",
               ("stego", "label_hint"): "stego", ("nnunet_supervised", "direct"): "nnunet_supervised"}
PAPER_METRICS = ("dice", "hausdorff", "ssim", "ergas", "rmse")


def is_multiclass(dataset) -> bool:
    """True for data sets scored as multi-class label maps (annotations, or masks with more than 2 labels)."""
    return dataset.annotations is not None or (dataset.masks is not None and dataset.masks.max() > 1)


def profile_name(config) -> str:
    """The name of the Stage-1 profile ``config``: a profile's name as given, the name of the built-in profile
    with exactly these settings, or ``custom-<settings hash>``."""
    if isinstance(config, str):
        return config
    from cutslib.train import PROFILES, config_key, resolve_config

    cfg = resolve_config(config)
    named = [name for name, known in PROFILES.items() if known == cfg]
    return named[0] if named else f"custom-{cache.settings_hash(config_key(cfg))}"


def _truths(dataset, i: int) -> list[np.ndarray]:
    if dataset.annotations is not None:
        return list(dataset.annotations[i])
    return [dataset.masks[i]]


def _levels_or_persistent(seg: dict) -> np.ndarray:
    """The salient levels; the persistent map alone if condensation found no salient level."""
    levels = np.asarray(seg["levels"])
    return levels if len(levels) else np.asarray(seg["persistent"])[None]


def predictions(dataset, method: str, seed: int, config="quick", progress: bool = True, sam_checkpoint=None,
                limit: int | None = None):
    """Yield ``(index, levels)`` for every image ``method`` is scored on; ``levels`` is an (L, H, W) stack.

    L = 1 except for the CUTS salient levels (fine to coarse). ``limit``: the first images only. CUTS is
    transductive: Stage 1 trains on the whole data set, Stage 2 segments the first ``limit`` images. The UNet
    trains on the whole data set's 7:1:2 split and yields its held-out test images (all of them: ``limit``
    does not apply).
    """
    method = baselines.ALIASES.get(method, method)
    n = n_first(limit, len(dataset))
    if method in baselines.UNSUPERVISED + baselines.SAM_METHODS:
        scored = dataset if n == len(dataset) else dataset.subset(np.arange(n))
        folder = baselines.baseline_dataset(scored, method, seed, progress, sam_checkpoint=sam_checkpoint)
        for i, image_id in enumerate(scored.ids):
            yield i, baselines.load_baseline(folder, image_id)[None]
    elif method == "unet_supervised":
        profile = config if str(config) in unet.PROFILES else "quick"
        checkpoint = unet.train_unet(dataset, seed, profile, progress)
        index = [dataset.ids.index(image_id) for image_id in unet.test_ids(checkpoint)]
        for i, labels in zip(index, unet.predict(checkpoint, dataset.images[index])):
            yield i, labels[None]
    elif method in CUTS_METHODS + CATCH_METHODS:
        from cutslib import segment

        stage2 = "catch2023" if method in CATCH_METHODS else "multiscale"
        keys = segment.CATCH_KEYS if method in CATCH_METHODS else segment.KEYS
        folder = segment.segment_dataset(dataset, seed, config=config, progress=progress, limit=n, stage2=stage2)
        for i, image_id in enumerate(dataset.ids[:n]):
            seg = segment.load_segmentation(folder, image_id, keys)
            if method in CUTS_MAPS:
                yield i, np.asarray(seg[CUTS_MAPS[method]])[None]
            elif method in ORACLE_METHODS:
                yield i, _levels_or_persistent(seg)
            else:
                levels = _levels_or_persistent(seg)
                yield i, levels[protocol.fixed_level(levels)][None]
    elif method in baselines.CITED_ONLY:
        raise ValueError(f"{method} does not run here: {baselines.CITED_ONLY[method]}")
    else:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def score_image(method: str, levels, truths, image, multiclass: bool) -> list[tuple[str, str, float]]:
    """``(protocol, metric, value)`` triples for one image's prediction ``levels`` (L, H, W)."""
    levels = np.asarray(levels)
    rows = []
    if multiclass:  # Figure 7's views (cutslib.paper): raw ARI/VI, and ARI/VI/per-class Dice after IoU matching
        from cutslib.paper import natural_scores_over

        if method in ORACLE_METHODS:
            per_level = [natural_scores_over(truths, level) for level in levels]
            named = {f"oracle_{short}": protocol.oracle([s[p] for s in per_level])
                     for short, p in (("raw", "raw"), ("relabel", "iou_relabel"))}
        else:
            named = natural_scores_over(truths, levels[0])
    else:
        truth = truths[0]
        if method in DIRECT:
            named = {"direct": metrics.binary_scores(levels[0], truth)}
        elif method in ORACLE_METHODS:
            named = {"oracle": protocol.oracle(
                [metrics.binary_scores(protocol.label_hint(level, truth), truth) for level in levels])}
        else:
            named = {p: metrics.binary_scores(protocol.binarise(levels[0], p, truth=truth, image=image), truth)
                     for p in protocol.BINARISATIONS}
    for name, values in named.items():
        rows += [(name, metric, value) for metric, value in values.items()]
    return rows


def evaluate_method(dataset, method: str, seed: int, config="quick", progress: bool = True,
                    sam_checkpoint=None, limit: int | None = None) -> pd.DataFrame:
    """The tidy scores of one method and seed on a data set (its first ``limit`` images); cached as
    ``scores.csv`` in a folder of its own."""
    if dataset.masks is None:
        raise ValueError(f"{dataset.name}: evaluation needs ground-truth masks (pass a mask folder)")
    settings = {"method": method, "config": str(config), "data": cache.images_digest(dataset, masks=True),
                "limit": None if method == "unet_supervised" else limit,
                "sam_checkpoint": str(sam_checkpoint) if method in baselines.SAM_METHODS else None,
                "version": SCORING_VERSION}
    if method in CUTS_METHODS:
        from cutslib import segment

        settings["segment_version"] = segment.VERSION
        settings["stage2"] = "exact" if segment.stage2_exact() else "fast"
    elif method in CATCH_METHODS:
        from cutslib import segment

        settings["segment_version"] = segment.CATCH_VERSION
    path = cache.run_dir("evaluate", dataset.name, seed, settings) / "scores.csv"
    if path.exists():
        return pd.read_csv(path, dtype={"image_id": str})
    multiclass = is_multiclass(dataset)
    profile = profile_name(config)
    rows = []
    for i, levels in predictions(dataset, method, seed, config, progress, sam_checkpoint, limit):
        for proto, metric, value in score_image(method, levels, _truths(dataset, i), dataset.images[i],
                                                multiclass):
            rows.append((dataset.name, profile, seed, method, proto, dataset.ids[i], metric, value))
    table = pd.DataFrame(rows, columns=COLUMNS)
    cache.write_text(path, table.to_csv(index=False))
    return table


def evaluate_dataset(dataset, seeds=(1, 2, 3), config="quick", methods=DEFAULT_METHODS, limit: int | None = None,
                     progress: bool = True, sam_checkpoint=None) -> pd.DataFrame:
    """Score ``methods`` on ``dataset`` (its first ``limit`` images) for every seed; a tidy DataFrame.

    ``config`` is the Stage-1 profile of CUTS (a name or a config); the UNet uses its own profile of the same
    name ("quick" for a custom config), and always scores its held-out test images. SAM methods without
    ``sam_checkpoint`` are skipped with a message (so are methods that cannot run on this data set, e.g. the
    UNet on multi-class masks). The combined table is written to
    ``results/<dataset>/evaluation-<hash>.csv``; its path is in ``table.attrs["path"]``.
    """
    methods = [baselines.ALIASES.get(m, m) for m in methods]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
    tables = []
    for method in methods:
        if method in baselines.SAM_METHODS and not sam_checkpoint:
            print(f"skipping {method}: no SAM checkpoint given (pass sam_checkpoint= / --sam-checkpoint)")
            continue
        if method == "unet_supervised" and is_multiclass(dataset):
            print(f"skipping {method}: the supervised UNet is for binary masks only")
            continue
        for seed in seeds:
            tables.append(evaluate_method(dataset, method, seed, config, progress, sam_checkpoint, limit))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    settings = {"methods": methods, "seeds": list(seeds), "config": str(config), "limit": limit,
                "data": cache.images_digest(dataset, masks=True)}  # the images and masks themselves
    path = cache.results_dir() / dataset.name / f"evaluation-{cache.settings_hash(settings)}.csv"
    cache.write_text(path, table.to_csv(index=False))
    table.attrs["path"] = str(path)
    return table


def paper_table(path=PAPER_TABLE) -> pd.DataFrame:
    """The paper's Table 1 (``dataset, method, dice, hausdorff, ssim, ergas, rmse``)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"the paper's table is not at {path}")
    return pd.read_csv(path)


def summarize(scores: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean +- std over seeds of the per-seed mean over images, with the paper's value and our difference.

    One row per ``dataset, profile, method, protocol, metric`` (columns ``mean, std, n_seeds, n_images, paper,
    diff, note``); std uses ddof 0 (0 with one seed). ``paper`` is filled where the paper has that data set,
    method and protocol (:data:`PAPER_ROWS`). Table 1 rows that did not run here (STEGO, nnU-Net, SAM without a
    checkpoint) are added with ``note`` "cited from the paper" and an empty ``profile``.
    """
    if paper is None:
        paper = paper_table() if PAPER_TABLE.exists() else pd.DataFrame(columns=["dataset", "method"])
    keys = ["dataset", "profile", "method", "protocol", "metric"]
    if scores.empty:
        return pd.DataFrame(columns=keys + ["mean", "std", "n_seeds", "n_images", "paper", "diff", "note"])
    if "profile" not in scores:
        raise ValueError("scores have no 'profile' column (the Stage-1 profile that made them); add one, e.g. "
                         "scores.assign(profile='quick')")
    per_seed = scores.groupby(keys + ["seed"], sort=False)["value"].agg(["mean", "count"]).reset_index()
    summary = per_seed.groupby(keys, sort=False).agg(
        mean=("mean", "mean"), std=("mean", lambda v: float(np.std(v))), n_seeds=("seed", "nunique"),
        n_images=("count", "max")).reset_index()
    summary["note"] = ""
    paper_long = paper.melt(id_vars=["dataset", "method"], var_name="metric", value_name="paper")
    lookup = {(d, m, k): v for d, m, k, v in paper_long[["dataset", "method", "metric", "paper"]].itertuples(
        index=False)}

    def paper_value(row):
        name = PAPER_ROWS.get((row.method, row.protocol))
        return lookup.get((PAPER_DATASET.get(row.dataset), name, row.metric), np.nan)

    summary["paper"] = [paper_value(row) for row in summary.itertuples()]
    summary["diff"] = summary["mean"] - summary["paper"]
    cited = []
    for dataset in summary["dataset"].unique():
        ran = set(summary.loc[summary["dataset"] == dataset, "method"])
        for (method, proto), name in PAPER_ROWS.items():
            if method in ran or method not in baselines.CITED_ONLY:
                continue
            for metric in PAPER_METRICS:
                value = lookup.get((PAPER_DATASET.get(dataset), name, metric))
                if value is not None:
                    cited.append(dict(dataset=dataset, profile="", method=method, protocol=proto, metric=metric,
                                      mean=np.nan, std=np.nan, n_seeds=0, n_images=0, paper=value, diff=np.nan,
                                      note=baselines.CITED_ONLY[method]))
    if cited:
        summary = pd.concat([summary, pd.DataFrame(cited)], ignore_index=True)
    return summary


def table1(summary: pd.DataFrame, metrics=PAPER_METRICS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 in wide form, one row per data set, profile, method and protocol, in the paper's method order
    (the profiles of one method and protocol side by side).

    Returns ``(numeric, pretty)``. ``numeric`` has ``<metric>_mean, _std, _paper, _diff`` columns plus
    ``n_seeds, n_images, note``; ``pretty`` has "mean ± std" text cells with the paper's value and our
    difference in the adjacent columns.
    """
    keys = ["dataset", "profile", "method", "protocol"]
    summary = summary[summary.metric.isin(metrics)]
    wide = summary.pivot_table(index=keys, columns="metric", values=["mean", "std", "paper", "diff"], sort=False)
    numeric = pd.DataFrame(index=wide.index)
    for m in metrics:
        for part in ("mean", "std", "paper", "diff"):
            numeric[f"{m}_{part}"] = wide[(part, m)] if (part, m) in wide.columns else np.nan
    info = summary.groupby(keys, sort=False).agg(n_seeds=("n_seeds", "max"), n_images=("n_images", "max"),
                                                 note=("note", "first"))
    numeric = numeric.join(info).reset_index()
    order = {m: i for i, m in enumerate(METHODS + tuple(baselines.CITED_ONLY))}
    numeric = numeric.sort_values(["dataset", "method", "protocol", "profile"],
                                  key=lambda c: c.map(order) if c.name == "method" else c)
    numeric = numeric.reset_index(drop=True)

    def cell(mean, std, n_seeds):
        if pd.isna(mean):
            return ""
        text = f"{mean:.0f}" if abs(mean) >= 1000 else f"{mean:.3g}"
        return text + (f" ± {std:.2g}" if n_seeds > 1 else "")

    pretty = numeric[keys].copy()
    for m in metrics:
        pretty[m] = [cell(a, b, n) for a, b, n in zip(numeric[f"{m}_mean"], numeric[f"{m}_std"], numeric.n_seeds)]
        pretty[f"{m} paper"] = numeric[f"{m}_paper"]
        pretty[f"{m} Δ"] = numeric[f"{m}_diff"]
    pretty["seeds"], pretty["images"], pretty["note"] = numeric.n_seeds, numeric.n_images, numeric.note
    return numeric, pretty


def _fmt(value: float) -> str:
    """Like the paper: no decimals from 100 up, 2 from 10 up, 3 below."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) >= 10 else f"{value:.3f}"


def format_summary(summary: pd.DataFrame, metrics_shown=PAPER_METRICS) -> str:
    """A plain-text table: one line per data set, profile, method and protocol; each cell "mean ± std (paper's)".

    Every line names the Stage-1 profile that made its numbers (``-`` on lines cited from the paper).
    """
    if summary.empty:
        return "(no scores)"
    shown = [m for m in metrics_shown if m in set(summary["metric"])] or sorted(summary["metric"].unique())

    def cell(row):
        if np.isnan(row["mean"]):
            ours = "-"
        else:
            ours = _fmt(row["mean"]) + (f" ± {_fmt(row['std'])}" if row["n_seeds"] > 1 else "")
        return ours + ("" if np.isnan(row["paper"]) else f" ({_fmt(row['paper'])})")

    keys = ["dataset", "profile", "method", "protocol"]
    table = summary[summary["metric"].isin(shown)].copy()
    table["cell"] = table.apply(cell, axis=1)
    table["profile"] = table["profile"].replace("", "-")
    wide = table.pivot_table(index=keys, columns="metric", values="cell", aggfunc="first", sort=False)[shown]
    notes = table.groupby(keys, sort=False)["note"].first()
    wide["note"] = notes.reindex(wide.index).fillna("")
    buffer = io.StringIO()
    buffer.write("each cell: ours, made with the profile on its line (mean ± std over seeds of the per-seed mean "
                 "over images), then (the paper's Table 1, 2023 arXiv)\n")
    buffer.write(wide.reset_index().to_string(index=False))
    return buffer.getvalue()
