"""Each baseline on a real retina image from the mirror, the UNet's split and resume, SAM's skip path.

Runtime: about 25 s of CPU (1-2 minutes wall on a busy 2-core machine)."""

import os

import numpy as np
import pytest
import torch

from cutslib import baselines, data, unet
from cutslib.dfc import DFCConfig

FAST_DFC = DFCConfig(max_iter=15)


@pytest.fixture(scope="module")
def retina():
    return data.load("retina", progress=False)


@pytest.mark.parametrize("method", ["random", "watershed_otsu", "felzenszwalb", "slic", "dfc"])
def test_baseline_runs_on_a_real_image_and_is_deterministic(retina, method):
    image = retina.images[0]
    first = baselines.run_baseline(method, image, seed=3, dataset="retina", dfc_config=FAST_DFC)
    again = baselines.run_baseline(method, image, seed=3, dataset="retina", dfc_config=FAST_DFC)
    assert first.shape == (128, 128) and first.dtype == np.int32
    np.testing.assert_array_equal(first, again)
    assert len(np.unique(first)) >= 2
    gray = image.mean(axis=-1, keepdims=True)            # the 1-channel (MRI) path
    assert baselines.run_baseline(method, gray, seed=3, dfc_config=FAST_DFC).shape == (128, 128)


def test_seed_changes_random_and_dfc(retina):
    image = retina.images[1]
    assert not np.array_equal(baselines.random_labels(image, 1), baselines.random_labels(image, 2))
    assert not np.array_equal(baselines.run_baseline("dfc", image, seed=1, dfc_config=FAST_DFC),
                              baselines.run_baseline("dfc", image, seed=2, dfc_config=FAST_DFC))


def test_paper_settings():
    assert baselines.FELZENSZWALB["retina"] == (200, 1.0)
    assert baselines.FELZENSZWALB["brain_ventricles"] == (1000, 2.0)
    assert baselines.FELZENSZWALB_DEFAULT == (1, 0.8)
    cfg = DFCConfig()
    assert (cfg.n_channels, cfg.n_conv, cfg.lr, cfg.momentum, cfg.max_iter, cfg.min_labels, cfg.continuity) == \
        (10, 2, 0.1, 0.9, 1000, 3, 1.0)


def test_watershed_is_otsu_on_the_blurred_image():
    image = np.full((32, 32, 1), -0.8, np.float32)
    image[8:20, 8:20] = 0.6
    labels = baselines.watershed_otsu(image)
    assert labels[14, 14] == 1 and labels[0, 0] == 0 and labels.sum() == 144


def test_baseline_dataset_caches_one_file_per_image(retina, tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path))
    subset = retina.subset([0, 1])
    folder = baselines.baseline_dataset(subset, "slic", progress=False)
    assert sorted(p.stem for p in folder.glob("*.npz")) == sorted(subset.ids)
    np.testing.assert_array_equal(baselines.load_baseline(folder, subset.ids[0]),
                                  baselines.run_baseline("slic", subset.images[0]))
    assert baselines.baseline_dataset(subset, "slic", progress=False) == folder


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        baselines.run_baseline("slic", np.full((16, 16, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="shape"):
        baselines.run_baseline("slic", np.zeros((16, 16, 5), np.float32))
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.run_baseline("magic", np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="cited from the paper"):
        baselines.run_baseline("stego", np.zeros((16, 16, 3), np.float32))


def test_sam_without_checkpoint_says_so(retina):
    with pytest.raises(ValueError, match="SAM needs a checkpoint"):
        baselines.run_baseline("sam_point", retina.images[0], truth=retina.masks[0])
    with pytest.raises(FileNotFoundError, match="not found"):
        baselines.run_baseline("sam_box", retina.images[0], truth=retina.masks[0], sam_checkpoint="/no/such.pth")


def test_sam_with_a_real_checkpoint(retina):
    checkpoint = os.environ.get("CUTS_SAM_CHECKPOINT", "")
    if not os.path.isfile(checkpoint):
        pytest.skip("set CUTS_SAM_CHECKPOINT to a Segment Anything checkpoint (vit_b) to run SAM")
    for method in baselines.SAM_METHODS:
        mask = baselines.run_baseline(method, retina.images[0], truth=retina.masks[0], sam_checkpoint=checkpoint)
        assert mask.shape == (128, 128) and set(np.unique(mask)) <= {0, 1}


def test_unet_split_is_seeded_disjoint_and_7_1_2():
    train, val, test = unet.split(56, seed=1)
    assert (len(train), len(val), len(test)) == (39, 6, 11)
    assert len(np.unique(np.concatenate([train, val, test]))) == 56
    np.testing.assert_array_equal(test, unet.split(56, seed=1)[2])
    assert not np.array_equal(test, unet.split(56, seed=2)[2])


def test_unet_trains_and_records_its_held_out_test_ids(retina, tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path))
    subset = retina.subset(np.arange(10))
    tiny = unet.UNetConfig(base_channels=4, depth=2, epochs=1, batch_size=4)
    checkpoint = unet.train_unet(subset, seed=1, config=tiny, progress=False)
    train, val, test = unet.split(10, seed=1)
    assert unet.test_ids(checkpoint) == [subset.ids[i] for i in test]
    masks = unet.predict(checkpoint, subset.images[test])
    assert masks.shape == (len(test), 128, 128) and set(np.unique(masks)) <= {0, 1}
    assert unet.train_unet(subset, seed=1, config=tiny, progress=False) == checkpoint   # cached
    with pytest.raises(ValueError, match="binary"):
        unet.train_unet(data.Dataset("multi", subset.images, subset.masks * 2, subset.ids), 1, tiny)



def test_unet_resumes_an_interrupted_run(retina, tmp_path, monkeypatch):
    subset = retina.subset(np.arange(4))
    cfg = unet.UNetConfig(base_channels=4, depth=1, epochs=2, batch_size=2)
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "straight"))
    straight = torch.load(unet.train_unet(subset, seed=2, config=cfg, progress=False))

    def interrupted_after_one_epoch(epochs, **kwargs):
        for i, epoch in enumerate(epochs):
            if i == 1:
                raise KeyboardInterrupt
            yield epoch

    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "resumed"))
    monkeypatch.setattr(unet, "tqdm", interrupted_after_one_epoch)
    with pytest.raises(KeyboardInterrupt):
        unet.train_unet(subset, seed=2, config=cfg, progress=False)
    monkeypatch.undo()
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "resumed"))
    folder = next((tmp_path / "resumed").rglob("running.pt")).parent
    assert not (folder / "best.pt").exists()
    resumed = torch.load(unet.train_unet(subset, seed=2, config=cfg, progress=False))
    assert not (folder / "running.pt").exists()
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor)
