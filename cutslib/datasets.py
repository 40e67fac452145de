"""How each data set is turned from its downloaded files into 128 x 128 arrays.

Every ``prepare_<name>(files)`` takes the local paths of the set's downloaded files (registry order) and returns
a dict with ``images`` float32 (N, 128, 128, C) in [-1, 1], ``masks`` int32 (N, 128, 128), ``ids`` (list of
str) and, for berkeley, ``annotations`` (one (A, 128, 128) array per image). ``cutslib.data`` wraps this in a
``Dataset``, validates it and caches it.

Shared rules:

- MRI intensities: divide by the image's 99th percentile, clip at 1, then map [0, 1] to [-1, 1].
- 8-bit images (retina, berkeley): divide by 255, then map to [-1, 1].
- Images are resized with anti-aliasing and linear interpolation, masks with nearest neighbour.
- Non-square images are made square either by *containing* them (long side to 128, centre pad with
  background) or by *covering* (short side to 128, centre crop).
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import scipy.io
import skimage.io
import skimage.transform
import tifffile
from tqdm.auto import tqdm

SIZE = 128
# FreeSurfer aseg labels of the ventricles: lateral (4, 43), inferior lateral (5, 44), 3rd (14), 4th (15).
VENTRICLE_LABELS = (4, 43, 5, 44, 14, 15)
# Axial slices whose ventricle area is at least this fraction of the subject's largest one are candidates...
VENTRICLE_AREA_FRACTION = 0.25
# ...and this many of them, evenly spaced from the lowest to the highest candidate, are kept per subject.
SLICES_PER_SUBJECT = 10


# --- shared image helpers -------------------------------------------------------------------------------------

def scale_mri(image: np.ndarray) -> np.ndarray:
    """Divide by the 99th percentile and clip at 1: intensities in [0, 1] (negative values clip to 0)."""
    image = np.asarray(image, dtype=np.float64)
    p99 = np.percentile(image, 99)
    if not np.isfinite(p99) or p99 <= 0:
        raise ValueError(f"cannot scale an image whose 99th percentile is {p99} (blank or non-finite image)")
    return np.clip(image / p99, 0.0, 1.0)


def scale_uint8(image: np.ndarray) -> np.ndarray:
    """8-bit intensities to [0, 1]."""
    return np.asarray(image, dtype=np.float64) / 255.0


def to_signed(unit: np.ndarray) -> np.ndarray:
    """Map [0, 1] to [-1, 1] as float32 (with a final clip against interpolation overshoot)."""
    return np.clip(2.0 * unit - 1.0, -1.0, 1.0).astype(np.float32)


def resize(array: np.ndarray, shape: tuple[int, int], is_mask: bool = False) -> np.ndarray:
    """Resize the first two axes: linear + anti-aliasing for images, nearest neighbour for label maps."""
    out_shape = tuple(shape) + array.shape[2:]
    if array.shape == out_shape:
        return array
    if is_mask:
        return skimage.transform.resize(array, out_shape, order=0, anti_aliasing=False,
                                        preserve_range=True).astype(array.dtype)
    return skimage.transform.resize(array, out_shape, order=1, anti_aliasing=True, preserve_range=True)


def pad_to_square(array: np.ndarray, value=0) -> np.ndarray:
    """Centre-pad the first two axes to a square with ``value``."""
    h, w = array.shape[:2]
    side = max(h, w)
    pad = [((side - h) // 2, side - h - (side - h) // 2), ((side - w) // 2, side - w - (side - w) // 2)]
    pad += [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, constant_values=value)


def crop_to_square(array: np.ndarray) -> np.ndarray:
    """Centre-crop the first two axes to a square."""
    h, w = array.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return array[top:top + side, left:left + side]


def contain(array: np.ndarray, is_mask: bool = False, size: int = SIZE) -> np.ndarray:
    """Long side to ``size``, then centre pad with 0 (background) to ``size`` x ``size``."""
    h, w = array.shape[:2]
    scale = size / max(h, w)
    shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    return pad_to_square(resize(array, shape, is_mask))


def cover(array: np.ndarray, is_mask: bool = False, size: int = SIZE) -> np.ndarray:
    """Short side to ``size``, then centre crop to ``size`` x ``size``."""
    h, w = array.shape[:2]
    scale = size / min(h, w)
    shape = (max(size, round(h * scale)), max(size, round(w * scale)))
    return crop_to_square(resize(array, shape, is_mask))


def axial_view(volume_slice: np.ndarray) -> np.ndarray:
    """An axial slice of a RAS-oriented volume as a picture: anterior at the top (rotate 90 degrees)."""
    return np.rot90(volume_slice)


def load_canonical(path: Path) -> np.ndarray:
    """A NIfTI/MGH volume reoriented to RAS."""
    try:
        return np.asanyarray(nib.as_closest_canonical(nib.load(str(path))).dataobj)
    except Exception as exc:
        raise OSError(f"cannot read the volume {path} ({exc}); it may be corrupt: delete it and fetch again") from exc


def _read(path: Path, reader):
    try:
        return reader(path)
    except Exception as exc:
        raise OSError(f"cannot read {path} ({exc}); it may be corrupt: delete it and fetch again") from exc


def _stack(images, masks, ids, **extra) -> dict:
    images = np.stack(images).astype(np.float32)
    if images.ndim == 3:  # grayscale: add the channel axis
        images = images[..., None]
    return dict(images=images, masks=np.stack(masks).astype(np.int32),
                ids=list(ids), **extra)


def _progress(items, name: str, show: bool):
    return tqdm(items, desc=f"prepare {name}", unit="image" if name != "brain_ventricles" else "subject",
                disable=not show)


def _number(name: str) -> int:
    """The first integer in a file name, for natural sort order."""
    return int(re.search(r"\d+", name).group())


# --- retina ---------------------------------------------------------------------------------------------------

def prepare_retina(files: list[Path], progress: bool = False) -> dict:
    """56 RGB 128 x 128 fundus images (PNG) with geographic-atrophy masks (NPY), paired by number.

    ids are the image file stems, e.g. ``image16``, sorted by number.
    """
    (zip_path,) = files
    with _read(zip_path, zipfile.ZipFile) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
        images = {_number(Path(n).name): n for n in names if "/image_with_GA/" in n and n.endswith(".png")}
        labels = {_number(Path(n).name): n for n in names if "/label_with_GA/" in n and n.endswith(".npy")}
        if set(images) != set(labels):
            raise ValueError(f"{zip_path}: images and labels do not pair up "
                             f"(unpaired: {sorted(set(images) ^ set(labels))})")
        out_images, out_masks, ids = [], [], []
        for k in _progress(sorted(images), "retina", progress):
            rgb = skimage.io.imread(io.BytesIO(z.read(images[k])))[..., :3]
            mask = np.load(io.BytesIO(z.read(labels[k])), allow_pickle=False)
            out_images.append(to_signed(scale_uint8(cover(rgb))))
            out_masks.append(cover((mask > 0).astype(np.int32), is_mask=True))
            ids.append(Path(images[k]).stem)
    return _stack(out_images, out_masks, ids)


# --- brain tumor (the authors' 6 NIfTI slices) ---------------------------------------------------------------

def prepare_brain_tumor_cuts(files: list[Path], progress: bool = False) -> dict:
    """6 single-slice MRI NIfTI files with tumour masks: axial view, contained in 128 x 128 (pad with 0).

    ids are the file stems, e.g. ``YG_0BEUR3GWE1NK``. One mask is empty in the source; it is kept.
    """
    (zip_path,) = files
    out_images, out_masks, ids = [], [], []
    with _read(zip_path, zipfile.ZipFile) as z:
        scans = sorted(n for n in z.namelist() if n.endswith(".nii.gz") and not n.endswith("_seg.nii.gz"))
        for name in _progress(scans, "brain_tumor_cuts", progress):
            image = _nifti_slice(z, name)
            mask = _nifti_slice(z, name.replace(".nii.gz", "_seg.nii.gz")) > 0
            out_images.append(to_signed(contain(scale_mri(image))))
            out_masks.append(contain(mask.astype(np.int32), is_mask=True))
            ids.append(Path(name).name.removesuffix(".nii.gz"))
    return _stack(out_images, out_masks, ids)


def _nifti_slice(z: zipfile.ZipFile, name: str) -> np.ndarray:
    img = nib.as_closest_canonical(nib.Nifti1Image.from_bytes(gzip.decompress(z.read(name))))
    data = np.asanyarray(img.dataobj)
    if data.ndim != 3 or data.shape[2] != 1:
        raise ValueError(f"{name}: expected a single axial slice, got shape {data.shape}")
    return axial_view(data[:, :, 0])


# --- brain tumor (TCGA-LGG FLAIR) ----------------------------------------------------------------------------

def prepare_brain_tumor_lgg(files: list[Path], progress: bool = False) -> dict:
    """110 TCGA-LGG slices (one per patient): FLAIR (channel 1), 256 -> 128, masks nearest.

    ids are the patient folder names, e.g. ``TCGA_CS_4941_19960909``.
    """
    scans = sorted(f for f in files if f.suffix == ".tif" and not f.stem.endswith("_mask"))
    out_images, out_masks, ids = [], [], []
    for scan in _progress(scans, "brain_tumor_lgg", progress):
        flair = _read(scan, tifffile.imread)[..., 1]
        mask = _read(scan.with_name(scan.stem + "_mask.tif"), tifffile.imread) > 0
        out_images.append(to_signed(contain(scale_mri(flair))))
        out_masks.append(contain(mask.astype(np.int32), is_mask=True))
        ids.append(scan.parent.name)
    return _stack(out_images, out_masks, ids)


# --- brain ventricles (FreeSurfer subjects) ------------------------------------------------------------------

def ventricle_slices(ventricles: np.ndarray) -> np.ndarray:
    """The fixed choice of axial slices (last axis of a RAS volume) for one subject.

    Candidates are the axial slices whose ventricle area is at least ``VENTRICLE_AREA_FRACTION`` of the
    largest; ``SLICES_PER_SUBJECT`` of them are kept, evenly spaced (by rank) from the lowest to the highest.
    """
    area = ventricles.sum(axis=(0, 1))
    if area.max() == 0:
        raise ValueError("the segmentation has no ventricle voxels")
    candidates = np.flatnonzero(area >= VENTRICLE_AREA_FRACTION * area.max())
    ranks = np.round(np.linspace(0, len(candidates) - 1, SLICES_PER_SUBJECT)).astype(int)
    return candidates[np.unique(ranks)]


def prepare_brain_ventricles(files: list[Path], progress: bool = False) -> dict:
    """About 10 axial T1 slices per FreeSurfer subject (see ``ventricle_slices``), cropped to the brain.

    Each slice is cropped to the bounding box of the brain (brainmask > 0), padded to a square, resized to
    128 x 128; its mask is the union of the ventricle labels. ids are ``<subject>_z<slice index>``.
    """
    brains = sorted(f for f in files if f.name == "brainmask.mgz")
    out_images, out_masks, ids = [], [], []
    for brain_path in _progress(brains, "brain_ventricles", progress):
        subject = brain_path.parent.parent.name
        brain = load_canonical(brain_path)
        aseg = load_canonical(brain_path.with_name("aseg.mgz"))
        if brain.shape != aseg.shape:
            raise ValueError(f"{subject}: brainmask {brain.shape} and aseg {aseg.shape} differ in shape")
        ventricles = np.isin(aseg, VENTRICLE_LABELS)
        for z in ventricle_slices(ventricles):
            image, mask = axial_view(brain[:, :, z]), axial_view(ventricles[:, :, z])
            rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
            box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
            out_images.append(to_signed(contain(scale_mri(image[box]))))
            out_masks.append(contain(mask[box].astype(np.int32), is_mask=True))
            ids.append(f"{subject}_z{z:03d}")
    return _stack(out_images, out_masks, ids)


# --- berkeley (BSDS500 test) ---------------------------------------------------------------------------------

def prepare_berkeley(files: list[Path], progress: bool = False) -> dict:
    """The 200 BSDS500 test images (481 x 321 or 321 x 481) with every annotator's segmentation.

    Short side resized to 128, then centre crop to 128 x 128 (images linear, segmentations nearest).
    ``masks`` is the first annotator's label map (labels as in the source, 1..K); ``annotations`` holds all.
    ids are the image numbers, e.g. ``100007``.
    """
    jpgs = sorted((f for f in files if f.suffix == ".jpg"), key=lambda f: f.stem)
    out_images, out_masks, annotations, ids = [], [], [], []
    for jpg in _progress(jpgs, "berkeley", progress):
        rgb = _read(jpg, skimage.io.imread)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        segs = _read_bsds_mat(jpg.parent.parent.parent / "groundTruth" / "test" / f"{jpg.stem}.mat")
        if segs.shape[1:] != rgb.shape[:2]:
            raise ValueError(f"{jpg.stem}: image {rgb.shape[:2]} and segmentations {segs.shape[1:]} differ")
        segs = np.stack([cover(s, is_mask=True) for s in segs])
        out_images.append(to_signed(scale_uint8(cover(rgb[..., :3]))))
        out_masks.append(segs[0])
        annotations.append(segs)
        ids.append(jpg.stem)
    return _stack(out_images, out_masks, ids, annotations=annotations)


def _read_bsds_mat(path: Path) -> np.ndarray:
    """All annotators' segmentations of one BSDS500 .mat file: int32 (A, H, W)."""
    mat = _read(path, scipy.io.loadmat)
    truth = mat["groundTruth"].ravel()
    return np.stack([t["Segmentation"][0, 0] for t in truth]).astype(np.int32)


PREPARE = {
    "retina": prepare_retina,
    "brain_ventricles": prepare_brain_ventricles,
    "brain_tumor_cuts": prepare_brain_tumor_cuts,
    "brain_tumor_lgg": prepare_brain_tumor_lgg,
    "berkeley": prepare_berkeley,
}
