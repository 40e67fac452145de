"""Stage 1 training: the CUTS encoder learns per-pixel embeddings with no labels.

``train(dataset, seed, config)`` trains (or resumes, or returns the cached result) and gives the path of the
best-validation checkpoint. Schedule, per METHOD.md: AdamW (lr 1e-3, weight decay 1e-4); a linear warm-up from
1e-6 to 1e-3 over the first epochs, then cosine decay to 0 at the last epoch (torch's ``LinearLR`` then
``CosineAnnealingLR`` in a ``SequentialLR``, stepped once per epoch); batch 16; a seeded 7:3 train/validation
split; each epoch draws max(#train, 80) images (concatenated seeded permutations of the training set).

Validation runs in eval mode (BatchNorm running statistics) with a sampling generator re-seeded identically
every epoch, so validation losses are comparable across epochs; the checkpoint with the lowest validation
loss is kept as ``best.pt``.

Everything random comes from ``torch.Generator`` objects seeded once from ``seed`` (model initialisation under
a forked global RNG, epoch order and pair sampling from the training generator), and the full state (model,
optimiser, scheduler, generator, epoch, best validation loss, log) is written atomically to ``last.pt`` after
every epoch: an interrupted run resumes from there and, on the CPU, ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from cutslib import cache
from cutslib.losses import CONTRASTIVE, patch_mse, total_loss
from cutslib.model import MIN_IMAGE_SIZE, CUTSNet
from cutslib.sampling import extract_patches, gather_pixels, sample_pairs

VAL_SEED_OFFSET = 1_000_003  # the validation sampler's seed is seed + this, re-seeded every epoch
LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_contrastive", "train_reconstruction",
               "val_loss", "val_contrastive", "val_reconstruction", "seconds", "best")


CHOICES = {"forward": ("dense", "windowed"), "contrastive": ("ntxent", "ratio2023"), "positive": ("first", "best"),
           "schedule": ("warmup_cosine", "constant")}


@dataclass(frozen=True)
class TrainConfig:
    """Stage-1 hyper-parameters; the defaults are the paper's."""

    epochs: int = 200
    warmup_epochs: int = 10
    lr: float = 1e-3
    warmup_start_lr: float = 1e-6
    weight_decay: float = 1e-4
    batch_size: int = 16
    min_samples_per_epoch: int = 80
    val_fraction: float = 0.3
    n_anchors: int = 8
    n_candidates: int = 20
    ssim_threshold: float = 0.5
    temperature: float = 0.1
    lam: float = 0.001
    # "dense": the encoder runs on whole images; "windowed": only on the receptive fields of the sampled pixels
    forward: str = "dense"
    # "ntxent": the 2024 loss (rows of the 2S x 2S matrix); "ratio2023": the 2023 single ratio over S x S
    contrastive: str = "ntxent"
    # which candidate becomes the positive: "first" to pass the SSIM threshold (2024) or the "best" SSIM (2023)
    positive: str = "first"
    # "warmup_cosine" (2024) or "constant" (2023)
    schedule: str = "warmup_cosine"
    # stop when the validation loss has not improved for this many epochs (None: never; the 2023 code: 10)
    patience: int | None = None
    # windowed forward only: this many extra pixels per image, drawn uniformly, whose windows join BatchNorm's
    # batch statistics in training (their latents are not used by the losses); 0: only the loss pixels' windows
    bn_windows: int = 0

    def __post_init__(self):
        for field in dataclasses.fields(self):  # lam=0 and lam=0.0 are one setting, with one cache folder
            value = getattr(self, field.name)
            if field.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, field.name, float(value))
        if self.epochs < 1 or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"need epochs >= 1 and 0 <= warmup_epochs < epochs, got {self.epochs}, "
                             f"{self.warmup_epochs}")
        if self.batch_size < 1 or self.n_anchors < 2 or self.n_candidates < 1:
            raise ValueError("batch_size, n_candidates must be >= 1 and n_anchors >= 2")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0 <= self.lam <= 1:
            raise ValueError(f"lam must be in [0, 1], got {self.lam}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be None or >= 1, got {self.patience}")
        if self.bn_windows < 0 or (self.bn_windows and self.forward != "windowed"):
            raise ValueError(f"bn_windows must be >= 0, and only with forward='windowed', got {self.bn_windows}")


# Fields added after runs were cached and published: at these values they are left out of the cache key, so the
# folders (and the records that name them) of runs made before the field existed stay valid.
KEY_NEUTRAL = {"bn_windows": 0}


def config_key(cfg: TrainConfig) -> dict:
    """The config's fields as they key its cache folder (see ``KEY_NEUTRAL``)."""
    key = {k: v for k, v in dataclasses.asdict(cfg).items() if KEY_NEUTRAL.get(k, object()) != v}
    if cfg.forward == "windowed":
        # Until 2026-12-05 the windowed forward's BatchNorm pixels were selectable ("window" or "field"); today's is
        # "field", and the key still says so, so the folders of the runs made with it stay valid.
        key["bn_pixels"] = "field"
    return key


# smoke: the notebooks' defaults under nbval (one short epoch). figures-quick: 2 epochs (1 warm-up), the training
# of `make figures PROFILE=quick` (params/quick.yaml). quick: 5 epochs (1 warm-up epoch, then cosine to 0), the
# CLI's default. paper: METHOD.md's 2024 settings, dense. fast (below): the same settings with the windowed
# forward. arxiv2023: METHOD.md's "2023 training", which made the
# numbers in paper_table1.csv (S = 16, lambda 0.01, tau 0.5, ratio loss, best-SSIM positive among 10, constant
# lr, early stopping with patience 10); arxiv2023-fast: the same with fast's windowed forward.
PROFILES = {
    "smoke": TrainConfig(epochs=1, warmup_epochs=0, min_samples_per_epoch=16),
    "figures-quick": TrainConfig(epochs=2, warmup_epochs=1),
    "quick": TrainConfig(epochs=5, warmup_epochs=1),
    "paper": TrainConfig(),
    "arxiv2023": TrainConfig(warmup_epochs=0, n_anchors=16, n_candidates=10, temperature=0.5, lam=0.01,
                             contrastive="ratio2023", positive="best", schedule="constant", patience=10),
}
# fast: the paper's settings with the windowed forward (BatchNorm's training statistics over the receptive fields of
# each window's own pixel, weighted so that every image pixel counts alike) and 16 extra uniform windows per image
# (README, "Stage-1 profiles": validated on retina against `paper`, 3 seeds). The earlier windowed profiles
# `fast-window` and `fast-bn` (statistics over every pixel of shifted crops) are gone from the code; their records
# in figures/published/retina/ name the commits that made them.
PROFILES["fast"] = dataclasses.replace(PROFILES["paper"], forward="windowed", bn_windows=16)
PROFILES["arxiv2023-fast"] = dataclasses.replace(PROFILES["arxiv2023"], forward="windowed", bn_windows=16)
# The seeds each profile reports (mean +- std over them); others use the paper's 1, 2, 3.
PROFILE_SEEDS = {"arxiv2023": (2021, 2022, 2023), "arxiv2023-fast": (2021, 2022, 2023)}


def profile_seeds(profile: str) -> tuple[int, ...]:
    """The seeds a profile's numbers are averaged over (the 2023 code used 2021-2023; the 2024 code 1-3)."""
    return PROFILE_SEEDS.get(profile, (1, 2, 3))


def resolve_config(config: str | TrainConfig | dict) -> TrainConfig:
    """A TrainConfig from a profile name, a TrainConfig, or a dict of fields."""
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        return TrainConfig(**config)
    if config not in PROFILES:
        raise ValueError(f"unknown profile {config!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[config]


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_images(images: np.ndarray, channels: int | None = None) -> np.ndarray:
    """Validate a stack of images (N, H, W, C): finite, at least 17x17, and ``channels`` channels if given."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be an array (N, H, W, C), got shape {images.shape}")
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError("no images given")
    if h < MIN_IMAGE_SIZE or w < MIN_IMAGE_SIZE:
        raise ValueError(f"images are {h}x{w}, smaller than the encoder's {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} "
                         "receptive field")
    if channels is not None and c != channels:
        raise ValueError(f"images have {c} channels but the model expects {channels}")
    bad = ~np.isfinite(images).reshape(n, -1).all(axis=1)
    if bad.any():
        raise ValueError(f"images contain NaN or Inf values (image indices {np.flatnonzero(bad)[:10].tolist()})")
    return images


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W, C) numpy images to a float32 (N, C, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2).contiguous().to(device)


def split_indices(n_images: int, seed: int, val_fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split: (train indices, validation indices), each sorted.

    Sizes as the reference makes them: the floor of each fraction, with the remainder handed out in order
    (train first), so 56 images split 40/16. At least one image goes to each side; a single image (e.g. the
    ``demo`` set) cannot be split and is used for both training and validation.
    """
    if n_images < 1:
        raise ValueError("no images to split")
    if n_images == 1:
        return np.array([0]), np.array([0])
    sizes = [int(np.floor(n_images * f)) for f in (1 - val_fraction, val_fraction)]
    for i in range(n_images - sum(sizes)):
        sizes[i % 2] += 1
    n_val = min(max(1, sizes[1]), n_images - 1)
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def epoch_order(n_train: int, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """``n_samples`` training indices: concatenated random permutations of range(n_train), truncated."""
    n_perms = -(-n_samples // n_train)
    return torch.cat([torch.randperm(n_train, generator=generator) for _ in range(n_perms)])[:n_samples]


def step_losses(model: CUTSNet, images: torch.Tensor, generator: torch.Generator, cfg: TrainConfig,
                windowed: bool | None = None):
    """(total, contrastive, reconstruction) losses of one batch of images (B, C, H, W).

    ``windowed`` (default: ``cfg.forward == "windowed"``) computes only the sampled pixels' latents, from their
    receptive fields (:meth:`cutslib.model.Encoder.windowed`); otherwise the encoder runs on whole images.
    """
    pairs = sample_pairs(images, generator, cfg.n_anchors, cfg.n_candidates, cfg.ssim_threshold, cfg.positive)
    coords = torch.cat([pairs.anchors, pairs.positives], 1)
    if windowed is None:
        windowed = cfg.forward == "windowed"
    if windowed:
        extra = cfg.bn_windows if model.training else 0  # eval mode normalises with running statistics
        if extra:
            b, _, h, w = images.shape
            rows = torch.randint(h, (b, extra), generator=generator)
            cols = torch.randint(w, (b, extra), generator=generator)
            coords = torch.cat([coords, torch.stack([rows, cols], -1).to(coords)], 1)
        latents = model.encoder.windowed(images, coords)[:, :coords.shape[1] - extra]
    else:
        # one gather for both sets, so the backward pass scatters into one dense gradient instead of two
        latents = gather_pixels(model(images), coords)
    z_anchor, z_positive = latents.chunk(2, dim=1)
    con = CONTRASTIVE[cfg.contrastive](z_anchor, z_positive, cfg.temperature)
    rec = patch_mse(model.head(z_anchor), extract_patches(images, pairs.anchors))
    return total_loss(con, rec, cfg.lam), con, rec


def finished(log: list[dict], cfg: TrainConfig) -> bool:
    """Whether a run with this log is done: all epochs, or (with ``cfg.patience``) early-stopped because the
    validation loss has not improved for ``patience`` epochs."""
    if len(log) >= cfg.epochs:
        return True
    if cfg.patience is None or not log:
        return False
    best_epoch = max((row["epoch"] for row in log if row["best"]), default=0)
    return log[-1]["epoch"] - best_epoch >= cfg.patience


class Trainer:
    """Model, optimiser, schedule and generator of one run; one call of ``run_epoch`` trains one epoch."""

    def __init__(self, train_images: np.ndarray, val_images: np.ndarray, seed: int, cfg: TrainConfig,
                 device: torch.device | str | None = None, channels_last: bool = True):
        self.cfg, self.seed = cfg, seed
        self.device = torch.device(device) if device is not None else default_device()
        # channels_last (NHWC) runs the 5x5 convolutions faster on the CPU; same maths, same checkpoints.
        self.layout = layout = torch.channels_last if channels_last else torch.contiguous_format
        self.train_images = to_tensor(train_images, self.device).contiguous(memory_format=layout)
        self.val_images = to_tensor(val_images, self.device).contiguous(memory_format=layout)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = CUTSNet(self.train_images.shape[1]).to(self.device, memory_format=layout)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = self.make_scheduler()
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.best_val = float("inf")
        self.log: list[dict] = []

    def make_scheduler(self):
        """The per-epoch learning-rate schedule: constant, or linear warm-up then cosine decay to 0."""
        cfg, optimizer = self.cfg, self.optimizer
        if cfg.schedule == "constant":
            return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs - cfg.warmup_epochs,
                                                            eta_min=0.0)
        if not cfg.warmup_epochs:  # built only when used: building LinearLR already lowers the lr
            return cosine
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=cfg.warmup_start_lr / cfg.lr,
                                                   end_factor=1.0, total_iters=cfg.warmup_epochs)
        return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[cfg.warmup_epochs])

    def train_epoch(self) -> dict:
        """One epoch of training steps; mean losses over the epoch's samples."""
        cfg = self.cfg
        self.model.train()
        n_samples = max(len(self.train_images), cfg.min_samples_per_epoch)
        order = epoch_order(len(self.train_images), n_samples, self.generator)
        sums = torch.zeros(3, dtype=torch.float64)
        for batch in order.split(cfg.batch_size):
            images = self.train_images[batch.to(self.device)].contiguous(memory_format=self.layout)
            losses = step_losses(self.model, images, self.generator, cfg)
            self.optimizer.zero_grad(set_to_none=True)
            losses[0].backward()
            self.optimizer.step()
            sums += torch.stack([x.detach().double().cpu() for x in losses]) * len(batch)
        return dict(zip(("loss", "contrastive", "reconstruction"), (sums / n_samples).tolist()))

    @torch.no_grad()
    def validate(self) -> dict:
        """Mean validation losses, eval mode, with the same sampled pairs every epoch."""
        self.model.eval()
        generator = torch.Generator().manual_seed(self.seed + VAL_SEED_OFFSET)
        sums = torch.zeros(3, dtype=torch.float64)
        for images in self.val_images.split(self.cfg.batch_size):
            # windowed in eval mode equals the dense encoder (to round-off), so validation is windowed always
            losses = step_losses(self.model, images, generator, self.cfg, windowed=True)
            sums += torch.stack([x.double().cpu() for x in losses]) * len(images)
        return dict(zip(("loss", "contrastive", "reconstruction"), (sums / len(self.val_images)).tolist()))

    def run_epoch(self) -> dict:
        """Train one epoch, validate, step the schedule; returns (and logs) the epoch's row."""
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        train = self.train_epoch()
        val = self.validate()
        self.scheduler.step()
        self.epoch += 1
        is_best = val["loss"] < self.best_val
        if is_best:
            self.best_val = val["loss"]
        row = {"epoch": self.epoch, "lr": lr, **{f"train_{k}": v for k, v in train.items()},
               **{f"val_{k}": v for k, v in val.items()}, "seconds": time.perf_counter() - start, "best": is_best}
        self.log.append(row)
        return row

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
                "epoch": self.epoch, "best_val": self.best_val, "log": self.log,
                "config": dataclasses.asdict(self.cfg), "in_channels": self.model.in_channels}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.epoch, self.best_val, self.log = state["epoch"], state["best_val"], list(state["log"])

    def best_checkpoint(self) -> dict:
        """What ``best.pt`` holds: enough to rebuild the model for embedding."""
        return {"model": self.model.state_dict(), "in_channels": self.model.in_channels, "epoch": self.epoch,
                "val_loss": self.best_val, "config": dataclasses.asdict(self.cfg)}


def run_settings(dataset, cfg: TrainConfig) -> dict:
    """The settings that key a training run's cache folder."""
    return {"config": config_key(cfg), "dataset": dataset.name, "n_images": len(dataset.images),
            "images_sha256": cache.images_digest(dataset)}


def save_torch(obj, path: Path) -> None:
    """Atomically write a torch checkpoint."""
    with cache.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: Path, map_location="cpu") -> dict:
    """Load a checkpoint, naming the file if it is corrupt."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise OSError(f"checkpoint {path} is corrupt or unreadable ({exc}); delete it and rerun") from exc


def write_log(log: list[dict], path: Path) -> None:
    """Atomically write the per-epoch log as CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(log)
    cache.write_text(path, buf.getvalue())


def train(dataset, seed: int, config: str | TrainConfig | dict = "quick", progress: bool = True,
          on_epoch_end: Callable[[dict], None] | None = None, device: torch.device | str | None = None) -> Path:
    """Train the CUTS encoder on ``dataset`` and return the path of the best-validation checkpoint.

    Results go to ``cache.run_dir("train", dataset.name, seed, settings)``: ``best.pt``, ``last.pt`` (full
    state, rewritten atomically after each epoch) and ``log.csv``. A finished run is returned from the cache;
    an interrupted one resumes from ``last.pt``. ``on_epoch_end(row)`` is called after each epoch's state is
    saved (raising from it interrupts the run cleanly).
    """
    cfg = resolve_config(config)
    images = check_images(dataset.images)
    folder = cache.run_dir("train", dataset.name, seed, run_settings(dataset, cfg))
    best_path, last_path = folder / "best.pt", folder / "last.pt"
    state = load_torch(last_path) if last_path.exists() else None
    if state is not None and finished(state["log"], cfg) and best_path.exists():
        return best_path

    train_idx, val_idx = split_indices(len(images), seed, cfg.val_fraction)
    trainer = Trainer(images[train_idx], images[val_idx], seed, cfg, device)
    if state is not None:
        trainer.load_state_dict(state)
    bar = tqdm(total=cfg.epochs, initial=trainer.epoch, desc=f"train {dataset.name} seed {seed}",
               unit="epoch", disable=not progress)
    with bar:
        while not finished(trainer.log, cfg):
            row = trainer.run_epoch()
            if row["best"]:
                save_torch(trainer.best_checkpoint(), best_path)
            save_torch(trainer.state_dict(), last_path)
            write_log(trainer.log, folder / "log.csv")
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{row['val_loss']:.4f}")
            if on_epoch_end is not None:
                on_epoch_end(row)
    if not best_path.exists():
        raise RuntimeError(f"no finite validation loss in {folder / 'log.csv'}; no best checkpoint was saved")
    return best_path


def load_model(checkpoint_path, device: torch.device | str | None = None) -> CUTSNet:
    """Rebuild a trained model (eval mode) from ``best.pt`` or ``last.pt``."""
    state = load_torch(Path(checkpoint_path))
    model = CUTSNet(state["in_channels"])
    model.load_state_dict(state["model"])
    return model.to(device if device is not None else default_device()).eval()
