"""The data sets: checked downloads, preparation to 128 x 128 arrays, and a cache of the result; and the user's
own folders of images (and masks) at a size of their choosing.

>>> from cutslib import data
>>> ds = data.load("retina")          # fetch (SHA-256 checked), prepare, cache; instant the second time
>>> ds.images.shape, ds.masks.shape   # (56, 128, 128, 3) float32 in [-1, 1], (56, 128, 128) int
>>> demo = data.load("demo")          # scikit-image's retina.jpg, no download, no mask
>>> mine = data.load_folder("my_pngs/", mask_dir="my_masks/")

Every downloadable file is listed in ``registry.tsv`` (data set, public URL, SHA-256, size, licence).

Environment:

- ``CUTS_DATA_DIR``: the cache folder (default: ``data/`` in the project). Downloads go to
  ``<dir>/raw/<host>/<path of the URL>``, prepared arrays to ``<dir>/prepared/<name>-v<version>.npz``.
- ``CUTS_DATA_MIRROR``: a local folder or an ``http://`` base URL laid out as ``<host>/<path of the URL>``.
  When set, it replaces the network.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from cutslib.cache import PROJECT_ROOT, atomic_path, load_npz, save_npz

# pooch, requests, tqdm and cutslib.datasets (scipy.io, nibabel, scikit-image) are imported where they are used,
# so that `cuts data list` and `cuts --help` start fast.
log = logging.getLogger(__name__)
# Bump when a change in ``cutslib.datasets`` changes the prepared arrays: old caches are then ignored.
PREPARATION_VERSION = 1
SIZE = 128  # the side of the built-in sets' images (cutslib.datasets.SIZE)
# Load name -> data-set name in the registry.
SOURCES = {
    "retina": "retina",
    "brain_ventricles": "brain_ventricles_fs10",
    "brain_tumor_cuts": "brain_tumor_cuts",
    "brain_tumor_lgg": "brain_tumor_lgg",
    "berkeley": "bsds500_test",
}
NAMES = (*SOURCES, "demo")
MIRROR_HINT = ("set CUTS_DATA_MIRROR to a folder or an http:// base URL laid out as <host>/<path of the URL>, "
               "e.g. `export CUTS_DATA_MIRROR=/path/to/shared/data`")


# --- the Dataset ---------------------------------------------------------------------------------------------


def n_first(limit: int | None, total: int, name: str = "limit") -> int:
    """How many images "the first ``limit``" of ``total`` means: all if None, else at most ``total``."""
    if limit is None:
        return total
    if int(limit) < 1:
        raise ValueError(f"{name} must be >= 1 or None, got {limit}")
    return min(int(limit), total)

@dataclass
class Dataset:
    """Images, masks and ids of one data set. Checked on creation (shapes, dtypes, finite values, range)."""

    name: str
    images: np.ndarray                      # float32 (N, S, S, C) in [-1, 1]; S = 128 for the built-in sets
    masks: np.ndarray | None                # int (N, S, S) label maps, or None
    ids: list[str]
    flags: dict[str, str] = field(default_factory=dict)          # id -> note, e.g. "empty mask"
    annotations: list[np.ndarray] | None = None                  # per image (A, S, S): every annotator
    frames: dict[str, Frame] = field(default_factory=dict)       # id -> where a folder image sits in its square

    def __post_init__(self):
        self.ids = [str(i) for i in self.ids]
        validate(self)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return self.images.shape[-1]

    def subset(self, indices) -> Dataset:
        """A new Dataset with the images at ``indices`` (ints or a boolean mask)."""
        indices = np.arange(len(self))[indices]
        ids = [self.ids[i] for i in np.atleast_1d(indices)]
        return Dataset(
            name=self.name,
            images=self.images[indices].reshape(-1, *self.images.shape[1:]),
            masks=None if self.masks is None else self.masks[indices].reshape(-1, *self.masks.shape[1:]),
            ids=ids,
            flags={i: note for i, note in self.flags.items() if i in ids},
            annotations=None if self.annotations is None else [self.annotations[i] for i in np.atleast_1d(indices)],
            frames={i: frame for i, frame in self.frames.items() if i in ids},
        )

    def display(self, index: int, boundaries: bool = True) -> np.ndarray:
        """Image ``index`` as RGB in [0, 1] for ``imshow``, with its mask's boundaries drawn in yellow."""
        from skimage.segmentation import mark_boundaries

        rgb = (self.images[index] + 1) / 2
        if rgb.shape[-1] == 1:
            rgb = np.repeat(rgb, 3, axis=-1)
        if boundaries and self.masks is not None:
            rgb = mark_boundaries(rgb, self.masks[index], color=(1, 1, 0), mode="thick")
        return np.clip(rgb, 0, 1)


def validate(ds: Dataset) -> None:
    """Raise ValueError naming the problem (and the image id) if ``ds`` breaks the Dataset contract."""
    images, n = ds.images, len(ds.images)
    if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"{ds.name}: images must be square (N, S, S, C), got {getattr(images, 'shape', None)}")
    if images.dtype != np.float32:
        raise ValueError(f"{ds.name}: images must be float32, got {images.dtype}")
    if len(ds.ids) != n or len(set(ds.ids)) != n:
        raise ValueError(f"{ds.name}: need {n} distinct ids, got {len(set(ds.ids))} distinct of {len(ds.ids)}")
    bad = ~np.isfinite(images).all(axis=(1, 2, 3))
    if bad.any():
        raise ValueError(f"{ds.name}: non-finite values (NaN/Inf) in image(s) {_names(ds.ids, bad)}")
    bad = (images < -1).any(axis=(1, 2, 3)) | (images > 1).any(axis=(1, 2, 3))
    if bad.any():
        raise ValueError(f"{ds.name}: values outside [-1, 1] in image(s) {_names(ds.ids, bad)}")
    if ds.masks is not None:
        if ds.masks.shape != images.shape[:3] or not np.issubdtype(ds.masks.dtype, np.integer):
            raise ValueError(f"{ds.name}: masks must be integer {images.shape[:3]}, "
                             f"got {ds.masks.dtype} {ds.masks.shape}")
    side = images.shape[1]
    if ds.annotations is not None and (len(ds.annotations) != n or
                                       any(a.ndim != 3 or a.shape[1:] != (side, side) for a in ds.annotations)):
        raise ValueError(f"{ds.name}: annotations must be {n} stacks of (A, {side}, {side}) label maps")
    unknown = set(ds.frames) - set(ds.ids)
    if unknown:
        raise ValueError(f"{ds.name}: frames for unknown ids {sorted(unknown)[:5]}")


def _names(ids, bad) -> str:
    names = [ids[i] for i in np.flatnonzero(bad)]
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


# --- the registry ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RemoteFile:
    """One row of the registry: a public file, its SHA-256 and size."""

    dataset: str
    url: str
    sha256: str
    bytes: int
    licence: str

    @property
    def relpath(self) -> Path:
        """``<host>/<path of the URL>``: where the file lives in a mirror and in the cache."""
        url = urlparse(self.url)
        return Path(url.netloc) / url.path.lstrip("/")


def registry() -> list[RemoteFile]:
    """Every file of ``registry.tsv``."""
    with resources.files("cutslib").joinpath("registry.tsv").open() as f:
        return [RemoteFile(r["dataset"], r["url"], r["sha256"].lower(), int(r["bytes"]), r["licence"])
                for r in csv.DictReader(f, delimiter="\t")]


def files(name: str) -> list[RemoteFile]:
    """The registry files of data set ``name`` (a load name such as ``berkeley``)."""
    check_name(name, downloadable=True)
    return [f for f in registry() if f.dataset == SOURCES[name]]


def check_name(name: str, downloadable: bool = False) -> None:
    known = tuple(SOURCES) if downloadable else NAMES
    if name not in known:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(known)}")


def data_dir() -> Path:
    """The cache folder: ``$CUTS_DATA_DIR``, else ``data/`` in the project."""
    return Path(os.environ.get("CUTS_DATA_DIR", PROJECT_ROOT / "data"))


def local_path(remote: RemoteFile) -> Path:
    return data_dir() / "raw" / remote.relpath


# --- downloads --------------------------------------------------------------------------------------------------

class ChecksumError(ValueError):
    """A downloaded file's SHA-256 differs from the registry's."""


def download(remote: RemoteFile, progressbar: bool = False) -> Path:
    """The local copy of ``remote``, fetched if missing or damaged, with its SHA-256 checked.

    A file whose hash does not match is removed and fetched once more; a second mismatch raises
    ``ChecksumError`` (a ValueError) naming the URL and both hashes. Nothing unchecked is ever left in place.
    """
    import pooch

    path = local_path(remote)
    if path.exists() and path.stat().st_size == remote.bytes and pooch.file_hash(str(path)) == remote.sha256:
        return path
    path.unlink(missing_ok=True)
    for attempt in (1, 2):
        try:
            with atomic_path(path) as tmp:
                _transfer(remote, tmp, progressbar)
                actual = pooch.file_hash(str(tmp))
                if actual != remote.sha256:
                    raise ChecksumError(f"checksum mismatch for {remote.url} (fetched {attempt}x): "
                                        f"expected sha256 {remote.sha256}, got {actual}")
            return path
        except ChecksumError:
            if attempt == 2:
                raise


def _transfer(remote: RemoteFile, target: Path, progressbar: bool) -> None:
    """Copy ``remote`` to ``target`` from the mirror folder, the mirror server or the network."""
    import pooch
    import requests

    mirror = os.environ.get("CUTS_DATA_MIRROR", "").strip()
    if mirror and not mirror.startswith(("http://", "https://")):
        source = Path(mirror).expanduser() / remote.relpath
        if not source.is_file():
            raise FileNotFoundError(f"{remote.relpath} is not in the mirror folder {mirror} "
                                    f"(CUTS_DATA_MIRROR); it should be at {source}")
        shutil.copyfile(source, target)
        return
    url = f"{mirror.rstrip('/')}/{remote.relpath.as_posix()}" if mirror else remote.url
    try:
        pooch.HTTPDownloader(progressbar=progressbar, timeout=60)(url, str(target), None)
    except requests.RequestException as exc:
        where = f"the mirror {mirror} (CUTS_DATA_MIRROR)" if mirror else "the network"
        raise OSError(f"cannot download {remote.relpath.name} from {where}: {url} ({exc}). "
                      + ("Check that the mirror serves this file." if mirror else f"Offline? {MIRROR_HINT}")) from exc


def fetch(name: str, progress: bool = True) -> list[Path]:
    """Download (or find) and check every file of data set ``name``; returns their local paths."""
    from tqdm.auto import tqdm

    remotes = files(name)
    if len(remotes) == 1:
        return [download(remotes[0], progressbar=progress)]
    return [download(r) for r in tqdm(remotes, desc=f"fetch {name}", unit="file", disable=not progress)]


def is_fetched(name: str) -> tuple[int, int]:
    """(files present with the right size, files in the registry) for ``name``; no hashing."""
    remotes = files(name)
    present = sum(local_path(r).is_file() and local_path(r).stat().st_size == r.bytes for r in remotes)
    return present, len(remotes)


# --- load -------------------------------------------------------------------------------------------------------

def prepared_path(name: str) -> Path:
    """Where the prepared arrays of ``name`` are cached (keyed by ``PREPARATION_VERSION``)."""
    return data_dir() / "prepared" / f"{name}-v{PREPARATION_VERSION}.npz"


def load(name: str, progress: bool = True) -> Dataset:
    """The prepared data set ``name``: fetched, checked, prepared and cached on first use.

    Names: ``retina``, ``brain_ventricles``, ``brain_tumor_cuts``, ``brain_tumor_lgg``, ``berkeley``, and
    ``demo`` (scikit-image's bundled retina.jpg, no mask, no download).
    """
    from cutslib import datasets

    check_name(name)
    if name == "demo":
        return load_demo()
    cached = prepared_path(name)
    if cached.exists():
        return _from_arrays(name, load_npz(cached))
    paths = fetch(name, progress=progress)
    arrays = datasets.PREPARE[name](paths, progress=progress)
    empty = [i for i, m in zip(arrays["ids"], arrays["masks"]) if not m.any()]
    ds = Dataset(name, arrays["images"], arrays["masks"], arrays["ids"],
                 flags={i: "empty mask" for i in empty}, annotations=arrays.get("annotations"))
    save_npz(cached, **_to_arrays(ds))
    return ds


def _to_arrays(ds: Dataset) -> dict:
    arrays = dict(images=ds.images, masks=ds.masks, ids=np.array(ds.ids),
                  flag_ids=np.array(list(ds.flags), dtype=str), flag_notes=np.array(list(ds.flags.values()), dtype=str))
    if ds.annotations is not None:
        arrays["annotations"] = np.concatenate(ds.annotations).astype(np.uint16)  # BSDS labels: 1..~1000
        arrays["annotators"] = np.array([len(a) for a in ds.annotations])
    return arrays


def _from_arrays(name: str, arrays: dict) -> Dataset:
    annotations = None
    if "annotations" in arrays:
        stacked = arrays["annotations"].astype(np.int32)
        annotations = np.split(stacked, np.cumsum(arrays["annotators"])[:-1])
    return Dataset(name, arrays["images"], arrays["masks"], arrays["ids"].tolist(),
                   flags=dict(zip(arrays["flag_ids"].tolist(), arrays["flag_notes"].tolist())),
                   annotations=annotations)


def load_demo() -> Dataset:
    """scikit-image's bundled fundus photograph (``skimage.data.retina()``) at 128 x 128 x 3; no mask."""
    import skimage.data

    from cutslib import datasets

    rgb = datasets.resize(skimage.data.retina(), (SIZE, SIZE))
    return Dataset("demo", datasets.to_signed(datasets.scale_uint8(rgb))[None], None, ["skimage_retina"])


# --- the user's own images ------------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".nii.gz", ".mgz")
#: Bounds of ``size`` for folders: the encoder's 17 x 17 receptive field (``cutslib.model.MIN_IMAGE_SIZE``) and the
#: side that Stage 2 still condenses in about a minute on a CPU.
MIN_SIZE, MAX_SIZE = 17, 512
#: A mask with more distinct values than this is an image, not a label map.
MAX_MASK_LABELS = 100
LOSSY_SUFFIXES = (".jpg", ".jpeg")


@dataclass(frozen=True)
class Frame:
    """Where one image of a folder sits in its S x S model-size square: the original ``height`` x ``width``, and
    the box (``top``, ``left``, ``rows``, ``cols``) of its resized copy (aspect kept); the rest is padding."""

    height: int
    width: int
    top: int
    left: int
    rows: int
    cols: int

    @classmethod
    def fit(cls, height: int, width: int, size: int) -> Frame:
        """The long side scaled to ``size``, the short side in proportion, centred in the square."""
        scale = size / max(height, width)
        rows, cols = max(1, round(height * scale)), max(1, round(width * scale))
        return cls(height, width, (size - rows) // 2, (size - cols) // 2, rows, cols)

    def crop(self, array: np.ndarray) -> np.ndarray:
        """The image's box of a square array (first two axes); drops the padding."""
        return array[self.top:self.top + self.rows, self.left:self.left + self.cols]

    def place(self, array: np.ndarray, side: int, value) -> np.ndarray:
        """A box-sized array (rows, cols, ...) put into a ``side`` x ``side`` square filled with ``value``."""
        out = np.full((side, side, *array.shape[2:]), value, dtype=array.dtype)
        out[self.top:self.top + self.rows, self.left:self.left + self.cols] = array
        return out

    def restore(self, labels: np.ndarray) -> np.ndarray:
        """A label map of the box (rows, cols) back at the original size (nearest neighbour)."""
        from cutslib import datasets

        if labels.shape[:2] != (self.rows, self.cols):
            raise ValueError(f"expected a {self.rows}x{self.cols} map, got shape {labels.shape}")
        return datasets.resize(labels, (self.height, self.width), is_mask=True)


def load_folder(path, mask_dir=None, name: str | None = None, size: int = SIZE) -> Dataset:
    """A Dataset from a folder of PNG/JPEG/TIFF/NIfTI images (sorted by file name; ids are the file stems).

    Each image's long side is scaled to ``size`` (up or down; 128 as the paper), the short side in proportion,
    and the result is centred in a ``size`` x ``size`` square padded with black (-1); ``frames`` records where
    it sits and its original size, so that outputs can be cropped and written back at that size. 8-bit images
    are scaled by 1/255, others (16-bit, float, NIfTI) by their 99th percentile, then mapped to [-1, 1].
    Grayscale gives C = 1, RGB C = 3 (alpha dropped); all images must share C. A 3-D volume gives its middle
    axial slice.

    ``mask_dir``: label maps with the same stems, each exactly the size of its image, lossless (PNG, TIFF,
    NIfTI; not JPEG), at most :data:`MAX_MASK_LABELS` values. Values are numbered 0, 1, ..., K in sorted order
    over the whole folder (so {0, 255} gives 0/1); an RGB colour mask has one label per colour (black first).
    Single-label masks are flagged ("empty mask") and kept; a folder where every mask holds one and the same
    value is refused. Choices are logged on the ``cutslib.data`` logger.
    """
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    if mask_dir is not None and Path(mask_dir).resolve() == folder.resolve():
        raise ValueError(f"the mask folder is the image folder {folder}; give the folder of label maps")
    paths = _image_files(folder)
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    raw = [_read_image(p) for p in paths]
    channels = {p.name: a.shape[-1] for p, a in zip(paths, raw)}
    if len(set(channels.values())) > 1:
        raise ValueError(f"images in {folder} mix channel counts {sorted(set(channels.values()))}: {channels}")
    ids = [_stem(p) for p in paths]
    frames = {i: Frame.fit(*a.shape[:2], size) for i, a in zip(ids, raw)}
    images = np.stack([_to_model_range(p, a, frames[i], size) for p, a, i in zip(paths, raw, ids)])
    masks, flags = (None, {}) if mask_dir is None else _read_masks(Path(mask_dir), ids, frames, size)
    return Dataset(name or folder.name, images, masks, ids, flags=flags, frames=frames)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))


def _stem(path: Path) -> str:
    name = path.name
    return name[:-7] if name.lower().endswith(".nii.gz") else path.stem


def _read_array(path: Path) -> np.ndarray:
    """One file as (H, W, C) in its own dtype, every channel kept; a 3-D volume gives its middle axial slice,
    oriented as the built-in MRI sets are (RAS, anterior at the top)."""
    import nibabel as nib
    import skimage.io
    import tifffile

    from cutslib.datasets import axial_view, load_canonical

    lower = path.name.lower()
    try:
        if lower.endswith((".nii", ".nii.gz", ".mgz")):
            shape = nib.load(str(path)).shape  # the header only
            if len(shape) == 3:
                volume = load_canonical(path)
                array = axial_view(volume[:, :, volume.shape[2] // 2])
            elif len(shape) == 2:
                array = np.asanyarray(nib.load(str(path)).dataobj)
            else:
                raise ValueError(f"expected a 2-D or 3-D volume, got shape {shape}")
        elif lower.endswith((".tif", ".tiff")):
            array = tifffile.imread(path)
        else:
            array = skimage.io.imread(path)
    except ValueError:
        raise
    except Exception as exc:
        raise OSError(f"cannot read image {path} ({exc}); is it corrupt?") from exc
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"{path}: expected a grayscale or RGB(A) image, got shape {array.shape}")
    return array


def _read_image(path: Path) -> np.ndarray:
    """One image as (H, W, 1) or (H, W, 3) (alpha dropped)."""
    array = _read_array(path)
    return array[..., :3] if array.shape[-1] >= 3 else array[..., :1]


def _to_model_range(path: Path, image: np.ndarray, frame: Frame, size: int) -> np.ndarray:
    """Resize into the frame's box and scale (8-bit by 1/255, anything else by its 99th percentile, min shifted
    to 0) to [-1, 1]; then pad to the square with -1."""
    from cutslib import datasets

    resized = datasets.resize(image.astype(np.float64), (frame.rows, frame.cols))
    if not np.isfinite(resized).all():
        raise ValueError(f"image {path} has non-finite values (NaN/Inf)")
    if image.dtype == np.uint8:
        signed = datasets.to_signed(datasets.scale_uint8(resized))
    else:
        try:
            signed = datasets.to_signed(datasets.scale_mri(resized - min(resized.min(), 0)))
        except ValueError as exc:
            raise ValueError(f"image {path}: {exc}") from exc
    return frame.place(signed, size, np.float32(-1))


def _read_mask(path: Path) -> np.ndarray:
    """One mask file as a 2-D array of label values; RGB colours become labels (logged)."""
    if path.name.lower().endswith(LOSSY_SUFFIXES):
        raise ValueError(f"mask {path} is a JPEG: lossy compression invents labels along every edge; "
                         "save masks as PNG or TIFF")
    array = _read_array(path)
    if array.shape[-1] in (2, 4):
        array = array[..., :-1]  # alpha
    if array.shape[-1] == 1 or (array == array[..., :1]).all():
        return array[..., 0]
    colours, labels = np.unique(array.reshape(-1, array.shape[-1]), axis=0, return_inverse=True)
    if len(colours) > MAX_MASK_LABELS:  # a photograph, not a colour map: _read_masks says so
        return labels.reshape(array.shape[:2])
    log.info("mask %s is an RGB colour map: its %d colours are read as labels 0-%d in colour order "
             "(black, if present, is 0)", path, len(colours), len(colours) - 1)
    return labels.reshape(array.shape[:2])


def _read_masks(mask_dir: Path, ids: list[str], frames: dict[str, Frame], size: int):
    """(masks (N, size, size) int32, flags) for the images ``ids``; see :func:`load_folder`."""
    from cutslib import datasets

    if not mask_dir.is_dir():
        raise FileNotFoundError(f"mask folder {mask_dir} does not exist")
    by_stem = {_stem(p): p for p in _image_files(mask_dir)}
    missing = [i for i in ids if i not in by_stem]
    if missing:
        raise ValueError(f"no mask in {mask_dir} for image(s) {', '.join(missing)}")
    raw = {}
    for i in ids:
        path, frame, mask = by_stem[i], frames[i], _read_mask(by_stem[i])
        if mask.shape != (frame.height, frame.width):
            raise ValueError(f"mask {path} is {mask.shape[0]}x{mask.shape[1]} but its image is "
                             f"{frame.height}x{frame.width}; a mask must have its image's size")
        if not np.issubdtype(mask.dtype, np.integer) and not np.array_equal(mask, np.round(mask)):
            raise ValueError(f"mask {path} is not an integer label map")
        n_values = len(np.unique(mask))
        if n_values > MAX_MASK_LABELS:
            raise ValueError(f"mask {path} has {n_values} distinct values, more than the {MAX_MASK_LABELS} a label "
                             f"map may have: is {mask_dir} a folder of images rather than masks?")
        raw[i] = mask.astype(np.int64)
    values = np.unique(np.concatenate([np.unique(m) for m in raw.values()]))
    if len(values) < 2:
        raise ValueError(f"every mask in {mask_dir} holds the one value {values[0]}: there is nothing to score "
                         "against; is it the right folder?")
    masks, flags = [], {}
    for i in ids:
        labels = np.searchsorted(values, raw[i])
        if len(np.unique(labels)) == 1:
            flags[i] = "empty mask" if labels.flat[0] == 0 else f"mask has one label ({values[labels.flat[0]]})"
            log.info("mask of %s: %s; kept and scored as it is, as the built-in sets keep theirs (Dice 0 unless "
                     "a method also finds nothing)", i, flags[i])
        box = datasets.resize(labels, (frames[i].rows, frames[i].cols), is_mask=True)
        masks.append(frames[i].place(box, size, 0))
    if len(values) > 2:
        log.info("masks in %s hold %d label values %s: scored as multi-class label maps (ARI, VI), not as "
                 "binary foreground", mask_dir, len(values), _preview(values))
    return np.stack(masks).astype(np.int32), flags


def _preview(values) -> str:
    shown = ", ".join(str(v) for v in values[:8])
    return "{" + shown + (", ...}" if len(values) > 8 else "}")
