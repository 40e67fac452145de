"""The baselines of the paper's Table 1 that can run offline, with the paper's settings (METHOD.md).

>>> labels = run_baseline("slic", image)                  # (H, W) int label map
>>> folder = baseline_dataset(ds, "felzenszwalb", seed=1)  # one <id>.npz per image, cached

Unsupervised methods return a multi-cluster label map; the protocols of :mod:`cutslib.protocol` turn it into
a binary mask. ``unet_supervised`` (see :mod:`cutslib.unet`) is trained per data set and is run through
:func:`cutslib.evaluate.evaluate_dataset`. SAM needs the optional ``segment-anything`` package and a checkpoint
path from the user, and its prompts come from the ground truth. STEGO needs DINO weights that cannot be
fetched here: its row is cited from the paper.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import filters, segmentation
from tqdm.auto import tqdm

from cutslib import cache
from cutslib.dfc import DFCConfig, dfc_segment
from cutslib.protocol import click_point

#: Felzenszwalb (scale, sigma) per data set (METHOD.md); every other data set uses ``FELZENSZWALB_DEFAULT``.
FELZENSZWALB = {"retina": (200, 1.0), "brain_ventricles": (1000, 2.0)}
FELZENSZWALB_DEFAULT = (1, 0.8)
#: Methods :func:`run_baseline` runs on one image, without training or weights.
UNSUPERVISED = ("random", "watershed_otsu", "felzenszwalb", "slic", "dfc")
#: SAM with one point prompt and with a box prompt (need a checkpoint and the ground truth for the prompt).
SAM_METHODS = ("sam_point", "sam_box")
#: Rows of Table 1 that are not run here, and why.
CITED_ONLY = {
    "stego": "cited from the paper (needs DINO ViT-S/8 weights)",
    "nnunet_supervised": "cited from the paper (nnU-Net is not part of this companion)",
    "sam_point": "cited from the paper (needs a SAM checkpoint: pass sam_checkpoint=...)",
}
ALIASES = {"watershed": "watershed_otsu", "unet": "unet_supervised"}
DETERMINISTIC = ("watershed_otsu", "felzenszwalb", "slic", *SAM_METHODS)  # one cache for every seed


def _check_image(image) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C) with C = 1 or 3, got shape {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or Inf")
    return image


def _unit(image: np.ndarray) -> np.ndarray:
    """[-1, 1] -> [0, 1], single-channel images squeezed to (H, W)."""
    unit = np.clip((image + 1) / 2, 0, 1)
    return unit[..., 0] if unit.shape[-1] == 1 else unit


def random_labels(image, seed: int = 0) -> np.ndarray:
    """Each pixel 0 or 1 with probability 1/2 (the paper's "random": RMSE sqrt(0.5), SSIM ~0)."""
    return np.random.default_rng(seed).integers(0, 2, image.shape[:2]).astype(np.int32)


def watershed_otsu(image) -> np.ndarray:
    """The paper's "watershed": an Otsu threshold of the grey levels after a 3x3 Gaussian blur (sigma 0.8)."""
    gray = _check_image(image).mean(axis=-1)
    blurred = ndimage.gaussian_filter(gray, sigma=0.8, radius=1)
    if blurred.max() == blurred.min():
        return np.zeros(gray.shape, np.int32)
    return (blurred > filters.threshold_otsu(blurred)).astype(np.int32)


def felzenszwalb(image, dataset: str | None = None) -> np.ndarray:
    """Felzenszwalb's graph segmentation with the paper's per-data-set scale and sigma, min_size 10."""
    scale, sigma = FELZENSZWALB.get(dataset, FELZENSZWALB_DEFAULT)
    unit = _unit(_check_image(image))
    channel_axis = -1 if unit.ndim == 3 else None
    return segmentation.felzenszwalb(unit, scale=scale, sigma=sigma, min_size=10,
                                     channel_axis=channel_axis).astype(np.int32)


def slic(image) -> np.ndarray:
    """SLIC superpixels with n_segments = 10 (scikit-image defaults otherwise)."""
    unit = _unit(_check_image(image))
    channel_axis = -1 if unit.ndim == 3 else None
    return segmentation.slic(unit, n_segments=10, channel_axis=channel_axis, start_label=0).astype(np.int32)


def sam_segment(image, truth, checkpoint, prompt: str = "point", model_type: str = "vit_b") -> np.ndarray:
    """Segment Anything with one prompt from the ground truth; returns an (H, W) int32 0/1 mask.

    ``prompt="point"``: one positive click at the ground-truth pixel farthest from the mask boundary
    (:func:`cutslib.protocol.click_point`); ``prompt="box"``: the ground truth's bounding box. Needs the
    optional ``segment-anything`` package and a checkpoint file (e.g. ``sam_vit_b_01ec64.pth``).
    """
    if not checkpoint:
        raise ValueError("SAM needs a checkpoint: pass the path of a Segment Anything checkpoint "
                         "(e.g. sam_vit_b_01ec64.pth, from the segment-anything project page)")
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"SAM checkpoint not found: {checkpoint}")
    try:
        from segment_anything import SamPredictor, sam_model_registry
    except ImportError as exc:
        raise RuntimeError("SAM needs the optional package segment-anything: pip install 'cutslib[sam]'") from exc
    image = _check_image(image)
    truth = np.asarray(truth) > 0
    if truth.shape != image.shape[:2]:
        raise ValueError(f"ground truth shape {truth.shape} does not match image shape {image.shape[:2]}")
    if not truth.any():
        return np.zeros(truth.shape, np.int32)
    rgb = (np.repeat(_unit(image)[..., None], 3, -1) if image.shape[-1] == 1 else _unit(image))
    predictor = SamPredictor(sam_model_registry[model_type](checkpoint=str(checkpoint)))
    predictor.set_image((rgb * 255).astype(np.uint8))
    if prompt == "point":
        row, col = click_point(truth)
        masks, scores, _ = predictor.predict(point_coords=np.array([[col, row]]), point_labels=np.array([1]),
                                             multimask_output=True)
    elif prompt == "box":
        rows, cols = np.nonzero(truth)
        masks, scores, _ = predictor.predict(box=np.array([cols.min(), rows.min(), cols.max(), rows.max()]),
                                             multimask_output=False)
    else:
        raise ValueError(f"unknown SAM prompt {prompt!r}; use 'point' or 'box'")
    return masks[np.argmax(scores)].astype(np.int32)


def run_baseline(method: str, image, seed: int = 0, dataset: str | None = None, truth=None,
                 sam_checkpoint=None, dfc_config: DFCConfig = DFCConfig()) -> np.ndarray:
    """Run one baseline on one (H, W, C) image in [-1, 1]; returns an (H, W) int32 label map.

    ``method``: one of ``UNSUPERVISED`` or ``SAM_METHODS`` ("watershed" is accepted for "watershed_otsu").
    ``seed`` matters for random and DFC; ``dataset`` (a name) picks Felzenszwalb's settings. SAM needs
    ``truth`` (for its prompt) and ``sam_checkpoint``; without a checkpoint it raises ValueError saying so.
    """
    method = check_method(method)
    image = _check_image(image)
    if method == "random":
        return random_labels(image, seed)
    if method == "watershed_otsu":
        return watershed_otsu(image)
    if method == "felzenszwalb":
        return felzenszwalb(image, dataset)
    if method == "slic":
        return slic(image)
    if method == "dfc":
        return dfc_segment(image, seed, dfc_config)
    return sam_segment(image, truth, sam_checkpoint, prompt=method.split("_")[1])


def check_method(method: str) -> str:
    """The canonical name of a baseline that runs per image, or a ValueError saying why it cannot."""
    method = ALIASES.get(method, method)
    if method in UNSUPERVISED + SAM_METHODS:
        return method
    if method == "unet_supervised":
        raise ValueError("unet_supervised is trained per data set: use cutslib.unet.train_unet / predict, "
                         "or cutslib.evaluate.evaluate_dataset")
    if method in CITED_ONLY:
        raise ValueError(f"{method} does not run here: {CITED_ONLY[method]}")
    raise ValueError(f"unknown baseline {method!r}; choose one of {UNSUPERVISED + SAM_METHODS}")


def baseline_dataset(dataset, method: str, seed: int = 0, progress: bool = True, sam_checkpoint=None,
                     dfc_config: DFCConfig = DFCConfig()) -> Path:
    """Run a baseline on every image of a Dataset; cached, one ``<id>.npz`` (array ``labels``) per image.

    The folder is ``results/<dataset>/seed<k>/baseline-<method>-<hash>/``; images already done are skipped,
    so an interrupted run resumes. Deterministic methods ignore ``seed`` and are cached under seed 0.
    """
    method = check_method(method)
    if method in SAM_METHODS and dataset.masks is None:
        raise ValueError(f"{dataset.name}: SAM's prompts need ground-truth masks")
    seed, settings = baseline_settings(dataset, method, seed, sam_checkpoint, dfc_config)
    folder = cache.run_dir(f"baseline-{method}", dataset.name, seed, settings)
    for i, image_id in enumerate(tqdm(dataset.ids, desc=f"{method} on {dataset.name}", disable=not progress)):
        path = folder / f"{image_id}.npz"
        if path.exists():
            continue
        truth = None if dataset.masks is None else dataset.masks[i]
        labels = run_baseline(method, dataset.images[i], seed=seed, dataset=dataset.name, truth=truth,
                              sam_checkpoint=sam_checkpoint, dfc_config=dfc_config)
        cache.save_npz(path, labels=labels)
    return folder


def baseline_settings(dataset, method: str, seed: int = 0, sam_checkpoint=None,
                      dfc_config: DFCConfig = DFCConfig()) -> tuple[int, dict]:
    """(seed, settings) that key a baseline's cache folder (deterministic methods: seed 0)."""
    method = check_method(method)
    settings = {"method": method, "dataset": dataset.name,
                "data": cache.images_digest(dataset, masks=method in SAM_METHODS)}
    if method == "dfc":
        settings["dfc"] = asdict(dfc_config)
    if method in SAM_METHODS:
        settings["checkpoint"] = str(sam_checkpoint)
    return (0 if method in DETERMINISTIC else seed), settings


def load_baseline(folder, image_id: str) -> np.ndarray:
    """The label map of one image from a :func:`baseline_dataset` folder."""
    path = Path(folder) / f"{image_id}.npz"
    if not path.exists():
        raise FileNotFoundError(f"no baseline result for image {image_id!r} in {folder}")
    return cache.load_npz(path)["labels"]
