"""Training, resume, embedding and bad inputs, on small crops of the retina images (runtime ~30 s).

The runs use 32x32 crops of 6 retina images, batch 4 and 8 samples per epoch, so an epoch takes well under
a second; the code path is the full one (split, schedule, sampler, checkpoints, cache).
"""

import csv
import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cutslib import data
from cutslib.cli import main as cuts_main
from cutslib.embed import embed_dataset, embed_images
from cutslib.train import (
    PROFILES,
    TrainConfig,
    Trainer,
    epoch_order,
    finished,
    load_torch,
    profile_seeds,
    split_indices,
    train,
)

TINY = TrainConfig(epochs=4, warmup_epochs=1, batch_size=4, min_samples_per_epoch=8)


@pytest.fixture(scope="module")
def crops():
    """A data-set-like object: 32x32 crops of 6 retina images."""
    ds = data.load("retina", progress=False)
    return SimpleNamespace(name="retina-crops", images=np.ascontiguousarray(ds.images[:6, 48:80, 48:80]),
                           ids=ds.ids[:6])


@pytest.fixture(scope="module")
def finished_run(crops, tmp_path_factory):
    """An uninterrupted TINY run: (results dir, best checkpoint path)."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("uninterrupted")
        mp.setenv("CUTS_RESULTS_DIR", str(root))
        best = train(crops, seed=1, config=TINY, progress=False)
    return root, best


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_split_and_epoch_sizes():
    train_idx, val_idx = split_indices(56, seed=1)
    assert (len(train_idx), len(val_idx)) == (40, 16)  # the reference's floors, remainder to train first
    assert [len(split_indices(n, seed=1)[1]) for n in (2, 3, 10, 17, 110)] == [1, 1, 3, 5, 33]
    assert sorted(np.concatenate([train_idx, val_idx]).tolist()) == list(range(56))
    assert not np.array_equal(train_idx, split_indices(56, seed=2)[0])
    assert [a.tolist() for a in split_indices(1, seed=1)] == [[0], [0]]  # the one-image demo set
    order = epoch_order(40, 80, torch.Generator().manual_seed(0))
    counts = np.bincount(order.numpy(), minlength=40)
    assert len(order) == 80 and counts.min() == 2 and counts.max() == 2


def lr_trace(cfg: TrainConfig, n_epochs: int) -> tuple[list[float], Trainer]:
    """The learning rate of each of ``n_epochs`` epochs under ``cfg``'s schedule, and the trainer after them."""
    tiny_images = np.zeros((2, 17, 17, 1), np.float32)
    trainer = Trainer(tiny_images, tiny_images, seed=0, cfg=cfg, device="cpu")
    lrs = []
    for _ in range(n_epochs):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()  # no gradients: changes nothing, but keeps the optimiser-then-schedule order
        trainer.scheduler.step()
    return lrs, trainer


def test_paper_schedule_warms_up_then_decays_to_zero():
    lrs, trainer = lr_trace(PROFILES["paper"], 200)
    assert lrs[0] == pytest.approx(1e-6) and lrs[10] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert all(a > b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[105] == pytest.approx(0.5e-3, rel=1e-6)  # cosine midpoint
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_no_warm_up_starts_at_the_full_learning_rate():
    cfg = TrainConfig(epochs=4, warmup_epochs=0)
    lrs, _ = lr_trace(cfg, 4)
    assert lrs[0] == pytest.approx(cfg.lr)
    assert lrs[2] == pytest.approx(0.5 * cfg.lr, rel=1e-6)  # cosine midpoint


def test_training_writes_log_and_lowers_reconstruction_loss(finished_run):
    import pandas as pd

    _, best = finished_run
    log = pd.read_csv(best.parent / "log.csv")
    assert list(log["epoch"]) == [1, 2, 3, 4]
    assert log["lr"].iloc[0] == pytest.approx(1e-6) and log["lr"].iloc[1] == pytest.approx(1e-3)
    assert log["train_reconstruction"].iloc[-1] < 0.8 * log["train_reconstruction"].iloc[0]
    assert log["val_reconstruction"].iloc[-1] < log["val_reconstruction"].iloc[0]
    assert np.isfinite(log[["train_contrastive", "val_contrastive"]].to_numpy()).all()
    checkpoint = load_torch(best)
    assert checkpoint["val_loss"] == pytest.approx(log["val_loss"].min())


def test_cached_run_is_returned(finished_run, crops, monkeypatch):
    root, best = finished_run
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(root))
    before = best.stat().st_mtime_ns
    assert train(crops, seed=1, config=TINY, progress=False) == best
    assert best.stat().st_mtime_ns == before


def test_same_seed_same_weights_and_other_seed_differs(finished_run, crops, tmp_path, monkeypatch):
    _, best = finished_run
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path))
    again = train(crops, seed=1, config=TINY, progress=False)
    assert_same_weights(load_torch(best)["model"], load_torch(again)["model"])
    other = load_torch(train(crops, seed=2, config=TrainConfig(epochs=1, warmup_epochs=0, batch_size=4,
                                                                min_samples_per_epoch=8), progress=False))
    assert not torch.equal(other["model"]["encoder.blocks.0.weight"], load_torch(best)["model"]["encoder.blocks.0.weight"])


def test_interrupted_run_resumes_bit_identical(finished_run, crops, tmp_path, monkeypatch):
    root, best = finished_run
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path))

    def interrupt_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(crops, seed=1, config=TINY, progress=False, on_epoch_end=interrupt_after_two)
    folder = next(tmp_path.glob("retina-crops/seed1/train-*"))
    assert load_torch(folder / "last.pt")["epoch"] == 2
    resumed = train(crops, seed=1, config=TINY, progress=False)
    reference, result = load_torch(best.parent / "last.pt"), load_torch(resumed.parent / "last.pt")
    assert result["epoch"] == 4
    assert_same_weights(reference["model"], result["model"])
    assert_same_weights(load_torch(best)["model"], load_torch(resumed)["model"])
    for ref_row, row in zip(reference["log"], result["log"]):
        assert {k: v for k, v in ref_row.items() if k != "seconds"} == {k: v for k, v in row.items() if k != "seconds"}


def test_channels_last_fast_path_matches_the_plain_layout(crops):
    losses = []
    for channels_last in (False, True):
        trainer = Trainer(crops.images[:4], crops.images[4:], seed=0, cfg=TINY, device="cpu",
                          channels_last=channels_last)
        row = trainer.run_epoch()
        losses.append([row["train_loss"], row["val_loss"], trainer.run_epoch()["train_loss"]])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_embedding_covers_every_image_and_is_cached(finished_run, crops, monkeypatch):
    root, best = finished_run
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(root))
    emb = embed_dataset(crops, seed=1, config=TINY, progress=False)
    assert emb.latents.shape == (6, 32, 32, 128) and emb.latents.dtype == np.float32
    assert emb.recon.shape == (6, 32, 32, 3) and emb.ids == crops.ids
    latents, recon = embed_images(best, crops.images[2])
    np.testing.assert_allclose(emb.latents[2], latents[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb.recon[2], recon[0], rtol=1e-5, atol=1e-6)
    assert np.isfinite(emb.recon).all() and np.isfinite(emb.latents).all()
    again = embed_dataset(crops, seed=1, config=TINY, progress=False)
    assert again.path == emb.path


def test_bad_inputs_are_named(finished_run, crops, tmp_path, monkeypatch):
    _, best = finished_run
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path))
    images = crops.images.copy()
    images[3, 5, 5, 1] = math.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        train(SimpleNamespace(name="bad", images=images, ids=crops.ids), seed=1, config=TINY, progress=False)
    images[3, 5, 5, 1] = math.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        embed_images(best, images)
    with pytest.raises(ValueError, match="1 channels but the model expects 3"):
        embed_images(best, crops.images[..., :1])
    with pytest.raises(ValueError, match="smaller than"):
        embed_images(best, crops.images[:, :16, :16])
    with pytest.raises(ValueError, match="smaller than"):
        train(SimpleNamespace(name="small", images=crops.images[:, :12], ids=crops.ids), seed=1, config=TINY)
    for seed in ("[2021]"[0], "1", 1.0, True):  # e.g. a papermill list parameter passed as text, then seeds[0]
        with pytest.raises(TypeError, match="seed must be a whole number"):
            train(crops, seed=seed, config=TINY, progress=False)
    assert not any(tmp_path.glob("*/seed[[]*")) and not any(tmp_path.glob("*/seed1.0")), "no folder for a bad seed"


@pytest.mark.parametrize("command", ["train", "embed"])
def test_cli_rejects_an_empty_folder(command, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cuts_main([command, "--images", str(empty), "--seed", "1"]) == 2
    assert "no images" in capsys.readouterr().err


TINY_WINDOWED = TrainConfig(epochs=3, warmup_epochs=1, batch_size=4, min_samples_per_epoch=8, forward="windowed")


@pytest.mark.parametrize("bn_windows", [0, 8])
def test_windowed_run_resumes_bit_identical_and_learns(bn_windows, crops, tmp_path, monkeypatch):
    config = dataclasses.replace(TINY_WINDOWED, bn_windows=bn_windows)
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "straight"))
    straight = train(crops, seed=1, config=config, progress=False)

    def interrupt_after_one(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "resumed"))
    with pytest.raises(KeyboardInterrupt):
        train(crops, seed=1, config=config, progress=False, on_epoch_end=interrupt_after_one)
    resumed = train(crops, seed=1, config=config, progress=False)
    assert_same_weights(load_torch(straight.parent / "last.pt")["model"], load_torch(resumed.parent / "last.pt")["model"])
    log = load_torch(resumed.parent / "last.pt")["log"]
    assert log[-1]["train_reconstruction"] < log[0]["train_reconstruction"]


def test_windowed_validation_equals_dense_validation(crops):
    """Validation runs windowed (eval mode, so exact): its losses equal a dense validation's."""
    from cutslib.train import step_losses

    trainer = Trainer(crops.images[:4], crops.images[4:], seed=0, cfg=TINY, device="cpu")
    trainer.train_epoch()
    trainer.model.eval()
    images = trainer.val_images
    with torch.no_grad():
        dense = step_losses(trainer.model, images, torch.Generator().manual_seed(5), TINY, windowed=False)
        windowed = step_losses(trainer.model, images, torch.Generator().manual_seed(5), TINY, windowed=True)
    torch.testing.assert_close(torch.stack(windowed), torch.stack(dense), rtol=1e-5, atol=1e-7)


def test_arxiv2023_profile_is_methods_2023_training():
    cfg = PROFILES["arxiv2023"]
    assert (cfg.n_anchors, cfg.lam, cfg.temperature, cfg.n_candidates) == (16, 0.01, 0.5, 10)
    assert (cfg.contrastive, cfg.positive, cfg.schedule, cfg.patience, cfg.forward) == (
        "ratio2023", "best", "constant", 10, "dense")
    assert profile_seeds("arxiv2023") == (2021, 2022, 2023) and profile_seeds("paper") == (1, 2, 3)
    assert PROFILES["fast"] == TrainConfig(forward="windowed", bn_windows=16) and PROFILES["paper"].forward == "dense"
    with pytest.raises(ValueError, match="contrastive must be one of"):
        TrainConfig(contrastive="infonce")
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)


def test_constant_schedule_keeps_the_learning_rate():
    lrs, _ = lr_trace(PROFILES["arxiv2023"], 50)
    assert lrs == [1e-3] * 50


def test_early_stopping_after_patience_epochs_without_improvement():
    cfg = TrainConfig(epochs=50, warmup_epochs=0, patience=3)
    rows = lambda bests: [{"epoch": i + 1, "best": b} for i, b in enumerate(bests)]  # noqa: E731
    assert not finished(rows([True, False, False]), cfg)
    assert finished(rows([True, False, False, False]), cfg)
    assert not finished(rows([True, False, False, True, False]), cfg)
    assert finished(rows([False] * 3), cfg)  # never a finite validation loss
    assert not finished(rows([True, False, False, False]), TrainConfig(epochs=50, warmup_epochs=0))
    assert finished(rows([True] * 50), cfg)


def test_early_stopped_run_ends_and_is_returned_from_the_cache(crops, tmp_path, monkeypatch):
    """A run whose validation loss stops improving ends early and is then treated as finished."""
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path))
    cfg = TrainConfig(epochs=40, warmup_epochs=0, batch_size=4, min_samples_per_epoch=4, lr=0.3, patience=2,
                      forward="windowed", schedule="constant")
    best = train(crops, seed=1, config=cfg, progress=False)
    log = load_torch(best.parent / "last.pt")["log"]
    assert len(log) < 40 and finished(log, cfg)
    best_epoch = max(r["epoch"] for r in log if r["best"])
    assert log[-1]["epoch"] - best_epoch == 2
    before = (best.parent / "last.pt").stat().st_mtime_ns
    assert train(crops, seed=1, config=cfg, progress=False) == best
    assert (best.parent / "last.pt").stat().st_mtime_ns == before


def first_norm_batch_stats(model, images, cfg, seed=5):
    """The first BatchNorm layer's batch mean and variance in one training-mode step (with momentum 1 the running
    statistics are the batch's): the first layer's, because deeper ones also carry the earlier layers' change."""
    from cutslib.train import step_losses

    norm = model.encoder.blocks[1]
    norm.reset_running_stats()
    norm.momentum = 1.0
    model.train()
    step_losses(model, images, torch.Generator().manual_seed(seed), cfg)
    return torch.cat([norm.running_mean, norm.running_var])


def test_bn_windows_bring_the_windowed_batch_statistics_towards_the_dense_ones():
    """Extra uniform windows join BatchNorm's statistics in training: on whole retina images the batch
    statistics move towards the dense encoder's (every pixel); eval mode ignores them."""
    from cutslib.train import step_losses

    images = data.load("retina", progress=False).images[:4]
    model = Trainer(images[:3], images[3:], seed=0, cfg=TINY_WINDOWED, device="cpu").model
    images = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    dense = first_norm_batch_stats(model, images, TINY)
    gaps = [(first_norm_batch_stats(model, images, dataclasses.replace(TINY_WINDOWED, bn_windows=n)) - dense).norm()
            for n in (0, 48, 128)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.6 * gaps[0]
    model.eval()
    with torch.no_grad():
        plain = step_losses(model, images, torch.Generator().manual_seed(5), TINY_WINDOWED)
        extra = step_losses(model, images, torch.Generator().manual_seed(5), dataclasses.replace(TINY_WINDOWED,
                                                                                                 bn_windows=48))
    torch.testing.assert_close(torch.stack(extra), torch.stack(plain))
    with pytest.raises(ValueError, match="bn_windows"):
        TrainConfig(bn_windows=8)  # dense: every pixel is already in the statistics
    with pytest.raises(ValueError, match="bn_windows"):
        TrainConfig(forward="windowed", bn_windows=-1)


def test_the_published_records_stage1_folders_are_todays_cache_keys():
    """Runs cached and published before a field existed (``bn_windows``), or while one more existed
    (``bn_pixels``), keep their folders: each record's ``stage1.csv`` names the folder that today's code computes for
    its profile (the retired windowed profiles' records name folders that no code today makes)."""
    from cutslib.cache import PROJECT_ROOT, run_dir
    from cutslib.train import config_key, run_settings

    retina = data.load("retina", progress=False)
    records = sorted((PROJECT_ROOT / "figures" / "published" / "retina").glob("*/stage1.csv"))
    assert records
    rows = [row for record in records for row in csv.DictReader(record.open())]
    assert {row["profile"] for row in rows} - set(PROFILES) == {"fast-window", "fast-bn"}
    for row in rows:
        if row["profile"] in PROFILES:
            assert run_dir("train", "retina", 1, run_settings(retina, PROFILES[row["profile"]])).name == row["folder"]
    assert {"fast", "paper", "arxiv2023"} <= {row["profile"] for row in rows}
    assert not {"bn_windows", "bn_pixels"} & set(config_key(PROFILES["paper"]))
    assert config_key(PROFILES["fast"])["bn_pixels"] == "field"
    assert config_key(dataclasses.replace(PROFILES["fast"], bn_windows=32))["bn_windows"] == 32


def test_integer_and_float_settings_share_one_cache_folder():
    """lambda = 0 and lambda = 0.0 are one setting: one config, one cache key (the ablation's grid holds 0 and 1)."""
    from cutslib.train import config_key

    for lam in (0, 1):
        assert TrainConfig(lam=lam) == TrainConfig(lam=float(lam))
        assert type(TrainConfig(lam=lam).lam) is float
        assert config_key(TrainConfig(lam=lam)) == config_key(TrainConfig(lam=float(lam)))
    assert TrainConfig(lr=1).lr == 1.0 and type(TrainConfig(epochs=30).epochs) is int  # ints stay ints
