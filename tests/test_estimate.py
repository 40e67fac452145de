"""Time estimates before long work: cached work counts as done, and the printed line names the big parts."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cutslib import cache, data, estimate
from cutslib.embed import embed_settings
from cutslib.segment import file_name, segment_settings, stage2_exact
from cutslib.train import PROFILES, run_settings


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path))
    return tmp_path


def test_cached_work_counts_as_done(results):
    ds = data.load("demo", progress=False)
    cfg = PROFILES["paper"]
    full = estimate.stage1_seconds(ds, 1, "paper")
    assert full > 0
    folder = cache.run_dir("train", ds.name, 1, run_settings(ds, cfg))
    log = pd.DataFrame({"epoch": np.arange(1, 101), "best": True})
    log.to_csv(folder / "log.csv", index=False)
    assert abs(estimate.stage1_seconds(ds, 1, "paper") - full / 2) < 1e-6  # half the epochs are done
    pd.DataFrame({"epoch": np.arange(1, 201), "best": True}).to_csv(folder / "log.csv", index=False)
    assert estimate.stage1_seconds(ds, 1, "paper") == 0

    n, exact = len(ds), stage2_exact()  # the default path (or $CUTS_STAGE2's)
    before = estimate.stage2_seconds(ds, 1, "paper", n)
    assert before == n * estimate.STAGE2_SECONDS[exact] * ds.images.shape[1] * ds.images.shape[2] / 128**2
    embeddings = cache.run_path("embed", ds.name, 1, embed_settings(ds, cfg)).name
    seg = cache.run_dir("segment", ds.name, 1, segment_settings(embeddings, 1, exact))
    (seg / file_name(ds.ids[0])).write_bytes(b"")
    assert estimate.stage2_seconds(ds, 1, "paper", n) == before * (n - 1) / n


def test_extra_batchnorm_windows_count_in_the_windowed_estimate(results):
    ds = data.load("demo", progress=False)
    fast = estimate.stage1_seconds(ds, 1, "fast")  # 16 loss + 16 extra windows per image
    assert estimate.stage1_seconds(ds, 1, dataclasses.replace(PROFILES["fast"], bn_windows=0)) == pytest.approx(fast / 2)
    assert estimate.stage1_seconds(ds, 1, dataclasses.replace(PROFILES["fast"], bn_windows=128)) == pytest.approx(
        fast * 9 / 2)  # 16 + 128


def test_the_line_names_the_largest_parts(results):
    ds = data.load("demo", progress=False)
    seconds, parts = estimate.evaluate_seconds(ds, (1, 2), "paper", ["slic", "dfc", "cuts_kmeans"])
    line = estimate.describe(seconds, parts)
    assert line.startswith("estimate: ~") and "CUTS Stage 1, seed" in line and "resumes" in line
    assert seconds == sum(s for _, s in parts) and all(s > 0 for _, s in parts)
    assert estimate.describe(10, []).startswith("estimate: under a minute")


def test_a_folder_s_stage2_estimate_is_the_whole_segment_image_not_condense_alone(monkeypatch):
    """One 341 x 512 image took 21 min here with the exact path (k-means most of it); the estimate said 38 s when it
    counted condense alone. It is now the per-pixel cost that data-set runs use, and a 128 x 128 image costs the
    same either way."""
    from cutslib.folder import estimate_seconds

    monkeypatch.setenv("CUTS_STAGE2", "exact")
    _, large = estimate_seconds(0, 0, 1, 341 * 512, 512)
    _, small = estimate_seconds(0, 0, 1, 128 * 128, 128)
    assert large > 300 and small == estimate.STAGE2_SECONDS[True]
    monkeypatch.setenv("CUTS_STAGE2", "fast")
    assert estimate_seconds(0, 0, 1, 128 * 128, 128)[1] == estimate.STAGE2_SECONDS[False] < small
    assert estimate_seconds(0, 0, 0, 341 * 512, 512)[1] == 0  # nothing left to segment


def test_the_2023_stage2_is_counted_when_its_rows_are_asked_for(results):
    ds = data.load("demo", progress=False)
    _, parts = estimate.evaluate_seconds(ds, (1,), "paper", ["cuts_catch2023_persistent"])
    names = [what for what, _ in parts]
    assert "CUTS 2023 Stage 2, seed 1, 1 images" in names and "CUTS Stage 2, seed 1, 1 images" not in names
    assert dict(parts)["CUTS 2023 Stage 2, seed 1, 1 images"] == estimate.CATCH_SECONDS * ds.images[0].size / 3 / 128**2
    _, parts = estimate.evaluate_seconds(ds, (1,), "paper", ["cuts_kmeans"])
    assert not any("2023" in what for what, _ in parts)
