"""cutslib.data: checked downloads (mirror folder and http), failure paths, every prepared set, load_folder.

The per-set tests use the project's data cache (prepared once, ~45 s cold, ~3 s warm); failure paths use tmp
dirs. Runtime with a warm cache: about 10 s.
"""

import hashlib
import socket
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest
import skimage.data
import skimage.io
import skimage.transform
import tifffile

from cutslib import data, datasets
from cutslib.cli import main as cli

EXPECTED = {  # name: (images, channels)
    "retina": (56, 3),
    "brain_ventricles": (100, 1),
    "brain_tumor_cuts": (6, 1),
    "brain_tumor_lgg": (110, 1),
    "berkeley": (200, 3),
}
KNOWN_EMPTY = {"brain_tumor_cuts": {"YG_0V2BSBNLNGKS": "empty mask"}}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty CUTS_DATA_DIR."""
    monkeypatch.setenv("CUTS_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def http_mirror(mirror):
    """The mirror folder served by ``python -m http.server`` on 127.0.0.1."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(mirror)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


# --- registry and downloads ------------------------------------------------------------------------------------

def test_registry_covers_every_set():
    counts = {name: len(data.files(name)) for name in data.SOURCES}
    assert counts == {"retina": 1, "brain_ventricles": 20, "brain_tumor_cuts": 1, "brain_tumor_lgg": 221,
                      "berkeley": 400}
    for remote in data.registry():
        assert len(remote.sha256) == 64 and remote.bytes > 0 and remote.licence
        assert remote.relpath.parts[0] == "raw.githubusercontent.com"


def test_fetch_from_mirror_folder(tmp_cache, mirror, monkeypatch):
    monkeypatch.setenv("CUTS_DATA_MIRROR", str(mirror))
    paths = data.fetch("brain_ventricles", progress=False)
    assert len(paths) == 20
    for path, remote in zip(paths, data.files("brain_ventricles")):
        assert path.is_relative_to(tmp_cache) and sha256(path) == remote.sha256


def test_fetch_and_prepare_over_http(tmp_cache, http_mirror, monkeypatch):
    monkeypatch.setenv("CUTS_DATA_MIRROR", http_mirror)
    (path,) = data.fetch("retina", progress=False)
    assert sha256(path) == data.files("retina")[0].sha256
    ds = data.load("brain_tumor_cuts", progress=False)
    assert len(ds) == 6 and data.prepared_path("brain_tumor_cuts").is_relative_to(tmp_cache)


def test_damaged_local_file_is_fetched_again(tmp_cache):
    remote = data.files("brain_tumor_cuts")[0]
    data.local_path(remote).parent.mkdir(parents=True)
    data.local_path(remote).write_bytes(b"truncated")
    assert sha256(data.download(remote)) == remote.sha256


def test_checksum_mismatch_names_url_and_both_hashes(tmp_cache, tmp_path, mirror, monkeypatch):
    remote = data.files("brain_tumor_cuts")[0]
    bad = tmp_path / "bad_mirror" / remote.relpath
    bad.parent.mkdir(parents=True)
    content = bytearray((mirror / remote.relpath).read_bytes())
    content[1000] ^= 0xFF
    bad.write_bytes(bytes(content))
    monkeypatch.setenv("CUTS_DATA_MIRROR", str(tmp_path / "bad_mirror"))
    with pytest.raises(ValueError) as err:
        data.download(remote)
    message = str(err.value)
    assert remote.url in message and remote.sha256 in message and sha256(bad) in message
    assert "fetched 2x" in message
    assert not data.local_path(remote).exists()
    assert list(data.local_path(remote).parent.iterdir()) == []  # no temporary file left behind


def test_offline_without_mirror_says_how_to_set_one(tmp_cache, monkeypatch):
    monkeypatch.delenv("CUTS_DATA_MIRROR")
    # A closed port on the loopback: no test can reach the internet.
    remote = data.RemoteFile("retina", f"http://127.0.0.1:{free_port()}/x/retina.zip", "0" * 64, 10, "none")
    with pytest.raises(OSError, match=r"retina\.zip.*CUTS_DATA_MIRROR"):
        data.download(remote)
    assert not data.local_path(remote).exists()


def test_file_missing_from_mirror_folder(tmp_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_DATA_MIRROR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="retina.zip is not in the mirror folder"):
        data.fetch("retina", progress=False)


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown data set 'retna'.*retina.*berkeley"):
        data.load("retna")


def test_corrupt_prepared_cache_is_named(tmp_cache):
    cached = data.prepared_path("retina")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(OSError, match=str(cached)):
        data.load("retina")


# --- every prepared data set -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXPECTED)
def test_prepared_dataset(name):
    ds = data.load(name, progress=False)
    count, channels = EXPECTED[name]
    assert len(ds) == count and ds.channels == channels and len(set(ds.ids)) == count
    assert ds.images.shape == (count, 128, 128, channels) and ds.images.dtype == np.float32
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    assert ds.images.min() < -0.95 and ds.images.max() > 0.95  # the whole range is used
    assert ds.masks.shape == (count, 128, 128) and np.issubdtype(ds.masks.dtype, np.integer)
    empty = {i for i, m in zip(ds.ids, ds.masks) if not m.any()}
    assert ds.flags == KNOWN_EMPTY.get(name, {}) and empty == set(ds.flags)
    if name != "berkeley":
        assert set(np.unique(ds.masks)) == {0, 1}


def test_berkeley_keeps_every_annotator():
    ds = data.load("berkeley", progress=False)
    counts = [len(a) for a in ds.annotations]
    assert len(counts) == 200 and min(counts) >= 4 and max(counts) <= 9
    assert all(np.array_equal(m, a[0]) for m, a in zip(ds.masks, ds.annotations))
    assert all(a.min() >= 1 for a in ds.annotations)  # BSDS labels start at 1: no padding crept in


def test_second_load_comes_from_the_cache(monkeypatch):
    first = data.load("brain_tumor_cuts", progress=False)
    monkeypatch.setitem(datasets.PREPARE, "brain_tumor_cuts", lambda *a, **k: pytest.fail("prepared again"))
    second = data.load("brain_tumor_cuts", progress=False)
    assert np.array_equal(first.images, second.images) and first.ids == second.ids


def test_ventricle_slice_choice_is_the_same_across_preparations():
    cached = data.load("brain_ventricles", progress=False)
    two_subjects = data.fetch("brain_ventricles", progress=False)[:4]  # sub-01 and sub-02
    again = datasets.prepare_brain_ventricles(two_subjects)
    assert len(again["ids"]) == 20 and again["ids"] == cached.ids[:20]
    assert np.array_equal(again["images"], cached.images[:20]) and np.array_equal(again["masks"], cached.masks[:20])


def test_ventricle_slices_rule():
    ventricles = np.zeros((4, 4, 50), bool)
    ventricles[:3, :3, 10:40] = True          # area 9 on slices 10..39
    ventricles[0, 0, 5] = True                # area 1 < 25% of 9: not a candidate
    chosen = datasets.ventricle_slices(ventricles)
    assert chosen.tolist() == [10, 13, 16, 20, 23, 26, 29, 33, 36, 39]
    with pytest.raises(ValueError, match="no ventricle"):
        datasets.ventricle_slices(np.zeros((4, 4, 5), bool))


# --- demo, load_folder, validation, CLI ----------------------------------------------------------------------

def test_demo_needs_no_download(tmp_cache, monkeypatch):
    monkeypatch.delenv("CUTS_DATA_MIRROR")
    ds = data.load("demo")
    assert ds.images.shape == (1, 128, 128, 3) and ds.masks is None and ds.channels == 3
    assert -1 <= ds.images.min() < -0.9 and 0.9 < ds.images.max() <= 1
    assert not tmp_cache.exists()


def test_load_folder_with_masks(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    rng = np.random.default_rng(0)
    for k, shape in enumerate([(64, 64), (200, 100), (128, 128)]):
        skimage.io.imsave(images / f"im{k}.png", rng.integers(0, 256, (*shape, 4), dtype=np.uint8))
        mask = np.zeros(shape, np.uint8)
        mask[: shape[0] // 2] = 255
        skimage.io.imsave(masks / f"im{k}.png", mask, check_contrast=False)
    ds = data.load_folder(images, mask_dir=masks)
    assert ds.ids == ["im0", "im1", "im2"] and ds.images.shape == (3, 128, 128, 3)  # alpha dropped
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    assert set(np.unique(ds.masks)) == {0, 1} and ds.masks[:, :64, 32:96].all() and not ds.masks[:, 64:].any()
    assert ds.frames["im1"] == data.Frame(200, 100, 0, 32, 128, 64)
    assert (ds.images[1, :, :32] == -1).all() and not ds.masks[1, :, :32].any()  # padded, not stretched
    (masks / "im2.png").unlink()
    with pytest.raises(ValueError, match="no mask .* for image.*im2"):
        data.load_folder(images, mask_dir=masks)


def test_load_folder_keeps_the_aspect_and_restores_the_original_size(tmp_path):
    image = np.zeros((200, 300), np.uint8)
    image[50:150, 100:200] = 255
    skimage.io.imsave(tmp_path / "a.png", image, check_contrast=False)
    for size in (32, 128, 512):
        ds = data.load_folder(tmp_path, size=size)
        frame = ds.frames["a"]
        assert ds.images.shape == (1, size, size, 1) and (frame.rows, frame.cols) == (round(size * 2 / 3), size)
        box = frame.crop(ds.images[0, ..., 0])
        assert box.shape == (frame.rows, frame.cols) and box.max() == 1 and (ds.images[0, :frame.top] == -1).all()
        back = frame.restore((box > 0).astype(np.int32))
        assert back.shape == (200, 300) and np.mean(back == (image > 0)) > 0.98
    for bad in (16, 513):
        with pytest.raises(ValueError, match="size must be between 17 and 512"):
            data.load_folder(tmp_path, size=bad)


@pytest.fixture
def pair(tmp_path):
    """An images folder with one 40x60 image, and an empty masks folder."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    skimage.io.imsave(images / "a.png", np.full((40, 60, 3), 100, np.uint8), check_contrast=False)
    return images, masks


def test_rgb_colour_masks_are_read_by_colour_not_by_the_red_channel(pair, caplog):
    images, masks = pair
    mask = np.zeros((40, 60, 3), np.uint8)
    mask[:20, :30] = (0, 255, 0)        # green: no red at all
    mask[20:, 30:] = (255, 0, 0)        # red
    skimage.io.imsave(masks / "a.png", mask, check_contrast=False)
    with caplog.at_level("INFO", logger="cutslib"):
        ds = data.load_folder(images, mask_dir=masks)
    box = ds.frames["a"].crop(ds.masks[0])
    assert len(np.unique(box)) == 3 and box[0, 0] != box[-1, -1] and box[0, 0] != 0 and box[0, -1] == 0
    assert "RGB colour map" in caplog.text and "multi-class" in caplog.text


def test_jpeg_masks_are_refused(pair):
    images, masks = pair
    skimage.io.imsave(masks / "a.jpg", np.full((40, 60), 255, np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match="a.jpg is a JPEG: lossy"):
        data.load_folder(images, mask_dir=masks)


def test_an_images_folder_is_not_taken_for_masks(pair):
    images, masks = pair
    with pytest.raises(ValueError, match="mask folder is the image folder"):
        data.load_folder(images, mask_dir=images)
    photo = np.asarray(skimage.transform.resize(skimage.data.camera(), (40, 60)) * 255, np.uint8)
    skimage.io.imsave(masks / "a.png", photo, check_contrast=False)
    with pytest.raises(ValueError, match=r"distinct values.*folder of images rather than masks"):
        data.load_folder(images, mask_dir=masks)


def test_a_mask_of_another_size_is_refused(pair):
    images, masks = pair
    skimage.io.imsave(masks / "a.png", np.zeros((60, 40), np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match="mask .*a.png is 60x40 but its image is 40x60"):
        data.load_folder(images, mask_dir=masks)


def test_empty_masks_are_flagged_and_labels_numbered_over_the_folder(pair, caplog):
    images, masks = pair
    skimage.io.imsave(images / "b.png", np.full((40, 60, 3), 50, np.uint8), check_contrast=False)
    skimage.io.imsave(masks / "a.png", np.zeros((40, 60), np.uint8), check_contrast=False)
    full = np.full((40, 60), 7, np.uint8)
    full[:10] = 3
    skimage.io.imsave(masks / "b.png", full, check_contrast=False)
    with caplog.at_level("INFO", logger="cutslib"):
        ds = data.load_folder(images, mask_dir=masks)
    assert ds.flags == {"a": "empty mask"} and "mask of a: empty mask" in caplog.text
    assert set(np.unique(ds.frames["b"].crop(ds.masks[1]))) == {1, 2}  # values {0, 3, 7} -> 0, 1, 2
    skimage.io.imsave(masks / "a.png", full, check_contrast=False)
    ds = data.load_folder(images, mask_dir=masks)
    assert set(np.unique(ds.masks)) == {0, 1} and ds.flags == {}  # {3, 7} is binary, not three labels


def test_empty_masks_say_they_are_kept_and_a_folder_of_only_empty_masks_is_refused(pair, caplog):
    images, masks = pair
    skimage.io.imsave(images / "b.png", np.full((40, 60, 3), 50, np.uint8), check_contrast=False)
    full = np.zeros((40, 60), np.uint8)
    full[:10] = 255
    skimage.io.imsave(masks / "a.png", np.zeros((40, 60), np.uint8), check_contrast=False)
    skimage.io.imsave(masks / "b.png", full, check_contrast=False)
    with caplog.at_level("INFO", logger="cutslib"):
        data.load_folder(images, mask_dir=masks)
    assert "mask of a: empty mask; kept and scored" in caplog.text  # the choice is said, not only the flag
    skimage.io.imsave(masks / "b.png", np.zeros((40, 60), np.uint8), check_contrast=False)
    caplog.clear()
    with caplog.at_level("INFO", logger="cutslib"), pytest.raises(ValueError, match="every mask in .* holds the "
                                                                                     "one value 0: there is nothing"):
        data.load_folder(images, mask_dir=masks)
    assert "empty mask" not in caplog.text  # one error, not a flag per image first


def test_a_photograph_as_mask_gives_the_error_without_a_colour_map_line(pair, caplog):
    images, masks = pair
    photo = np.asarray(skimage.transform.resize(skimage.data.astronaut(), (40, 60)) * 255, np.uint8)
    skimage.io.imsave(masks / "a.png", photo, check_contrast=False)
    with caplog.at_level("INFO", logger="cutslib"), pytest.raises(ValueError, match="folder of images rather"):
        data.load_folder(images, mask_dir=masks)
    assert "RGB colour map" not in caplog.text


def test_load_folder_grayscale_tiff_and_nifti(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.arange(90 * 70, dtype=np.uint16).reshape(90, 70))
    volume = np.zeros((40, 30, 5), np.float32)
    volume[..., 2] = 7.0                       # only the middle slice is bright
    volume[0, 0, 2] = 0.0
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "b.nii.gz")
    ds = data.load_folder(tmp_path)
    assert ds.ids == ["a", "b"] and ds.images.shape == (2, 128, 128, 1) and ds.masks is None
    assert ds.images[1].max() == 1.0


def test_load_folder_reorients_volumes_like_the_built_in_mri_sets(tmp_path):
    """A volume stored left-to-right flipped (LAS) gives the same axial slice as its RAS copy."""
    ras = np.random.default_rng(0).uniform(0, 1, (40, 30, 5)).astype(np.float32)
    (tmp_path / "ras").mkdir()
    (tmp_path / "las").mkdir()
    nib.save(nib.Nifti1Image(ras, np.eye(4)), tmp_path / "ras" / "v.nii.gz")
    nib.save(nib.Nifti1Image(ras[::-1].copy(), np.diag([-1.0, 1, 1, 1])), tmp_path / "las" / "v.nii.gz")
    a, b = data.load_folder(tmp_path / "ras"), data.load_folder(tmp_path / "las")
    np.testing.assert_array_equal(a.images, b.images)


def test_load_folder_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.load_folder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=f"no images .* in folder {tmp_path}"):
        data.load_folder(tmp_path)
    skimage.io.imsave(tmp_path / "gray.png", np.full((32, 32), 9, np.uint8), check_contrast=False)
    skimage.io.imsave(tmp_path / "rgb.png", np.full((32, 32, 3), 9, np.uint8), check_contrast=False)
    with pytest.raises(ValueError, match="mix channel counts"):
        data.load_folder(tmp_path)
    (tmp_path / "rgb.png").unlink()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not an image")
    with pytest.raises(OSError, match="broken.png"):
        data.load_folder(tmp_path)


def test_dataset_rejects_non_finite_images_by_id():
    images = np.zeros((2, 128, 128, 1), np.float32)
    images[1, 5, 5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN.*second"):
        data.Dataset("x", images, None, ["first", "second"])
    with pytest.raises(ValueError, match=r"square \(N, S, S, C\)"):
        data.Dataset("x", np.zeros((2, 64, 48, 1), np.float32), None, ["a", "b"])


def test_subset_keeps_ids_flags_and_annotations():
    ds = data.load("brain_tumor_cuts", progress=False)
    sub = ds.subset([5, 0])
    assert sub.ids == [ds.ids[5], ds.ids[0]] and sub.flags == ds.flags and len(sub) == 2
    assert np.array_equal(sub.masks[1], ds.masks[0])
    assert ds.subset([0]).flags == {}


def test_cli_list_and_info(capsys):
    assert cli(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPECTED) and "non-commercial" in out
    assert cli(["data", "info", "brain_tumor_cuts"]) == 0
    out = capsys.readouterr().out
    assert "github.com/ChenLiu-1996/CUTS @ 488bd101" in out and "YG_0V2BSBNLNGKS: empty mask" in out
    assert cli(["data", "info", "nope"]) == 2
    assert "known: retina" in capsys.readouterr().err


def test_images_digest_keys_on_ids_images_and_masks_not_on_the_name():
    from cutslib.cache import images_digest

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (2, 128, 128, 1)).astype(np.float32)
    masks = np.zeros((2, 128, 128), np.int64)
    base = data.Dataset("folder", images, masks, ["a", "b"])
    same = data.Dataset("other_name", images.copy(), masks.copy(), ["a", "b"])
    assert images_digest(base) == images_digest(same)
    edited = data.Dataset("folder", np.where(images > 0.99, 0.0, images).astype(np.float32), masks, ["a", "b"])
    assert images_digest(edited) != images_digest(base)
    assert images_digest(data.Dataset("folder", images, masks, ["a", "c"])) != images_digest(base)
    relabelled = data.Dataset("folder", images, np.ones_like(masks), ["a", "b"])
    assert images_digest(relabelled) == images_digest(base)  # masks count only when asked
    assert images_digest(relabelled, masks=True) != images_digest(base, masks=True)
