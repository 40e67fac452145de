"""Stage 2 per image and per data set: outputs, caching/resume, loading, CLI errors (about 20 s)."""

import numpy as np
import pytest
import torch

from cutslib import segment
from cutslib.condensation import persistent_map, persistent_map_2023
from cutslib.cli import main
from cutslib.data import load
from cutslib.model import CUTSNet


@pytest.fixture(scope="module")
def latents():
    """Latents (2, 24, 24, 128) of two 24x24 retina crops, encoder with seeded random weights."""
    images = load("retina", progress=False).images[:2, 52:76, 52:76]
    torch.manual_seed(1)
    with torch.no_grad():
        lat = CUTSNet(3).eval()(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2))
    return lat.permute(0, 2, 3, 1).numpy()


def test_segment_image_outputs(latents):
    out = segment.segment_image(latents[0], seed=0)
    assert set(out) == set(segment.KEYS)
    levels, steps = out["levels"], out["level_steps"]
    assert levels.dtype == np.int32 and levels.shape == (len(steps), 24, 24) and len(steps) >= 2
    assert np.all(np.diff(steps) > 0) and steps[0] > 0
    for fine, coarse in zip(levels, levels[1:]):  # nested: a fine cluster lies inside one coarse cluster
        pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()]), axis=1)
        assert len(np.unique(pairs[0])) == pairs.shape[1]
        assert len(np.unique(coarse)) <= len(np.unique(fine))
    assert np.array_equal(out["n_clusters"][steps], [len(np.unique(m)) for m in levels])
    assert len(out["gradient"]) == len(out["n_clusters"]) - 1
    for key, rule in (("persistent", persistent_map), ("persistent2023", persistent_map_2023)):
        assert out[key].dtype == np.int32 and np.array_equal(out[key], rule(levels))
        assert set(np.unique(out[key])) <= set(np.unique(levels)) | {0}
    assert out["kmeans"].shape == (24, 24) and len(np.unique(out["kmeans"])) == 10


def test_segment_latents_caches_and_resumes(latents, tmp_path, monkeypatch):
    folder = segment.segment_latents(latents, ["a/1", "b 2"], tmp_path / "seg", progress=False)
    assert sorted(p.name for p in folder.glob("*.npz")) == ["a_1.npz", "b_2.npz"]
    first = segment.load_segmentation(folder, "a/1")
    assert set(first) == set(segment.KEYS) and first["levels"].shape[1:] == (24, 24)

    (folder / "b_2.npz").unlink()  # as if interrupted: only the missing image is redone
    calls = []
    original = segment.segment_image
    monkeypatch.setattr(segment, "segment_image", lambda lat, seed=0, exact=False, progress=False:
                        calls.append(1) or original(lat, seed, exact))
    segment.segment_latents(latents, ["a/1", "b 2"], folder, progress=False)
    assert len(calls) == 1 and (folder / "b_2.npz").exists()

    with pytest.raises(FileNotFoundError, match="no segmentation for image 'zzz'"):
        segment.load_segmentation(folder, "zzz")
    with pytest.raises(ValueError, match="2 latent images but 1 ids"):
        segment.segment_latents(latents, ["x"], folder)
    with pytest.raises(ValueError, match=r"\(H, W, D\)"):
        segment.segment_image(latents[0, 0])


def test_cli_errors(tmp_path, capsys):
    assert main(["segment", "--images", str(tmp_path)]) == 2  # no --checkpoint: it would train, but no images
    assert "no images" in capsys.readouterr().err
    assert main(["segment", "--images", str(tmp_path), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["segment", "--dataset", "retina", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err


def test_jobs_give_the_files_of_a_serial_run(latents, tmp_path, monkeypatch):
    # the same BLAS threads per image in both runs: the exact path's LAPACK steps depend on the thread count
    monkeypatch.setattr(segment, "cpu_threads", lambda: 1)
    serial = segment.segment_latents(latents, ["a", "b"], tmp_path / "one", progress=False, jobs=1)
    monkeypatch.setenv("CUTS_JOBS", "2")  # the default comes from the environment
    parallel = segment.segment_latents(latents, ["a", "b"], tmp_path / "two", progress=False)
    for name in ("a", "b"):
        one, two = segment.load_segmentation(serial, name), segment.load_segmentation(parallel, name)
        labels = [k for k in segment.KEYS if k != "gradient"]
        assert [k for k in labels if not np.array_equal(one[k], two[k])] == [], name
        # the gradient (a sum of movements) may differ in the last bits: BLAS sums depend on its threads
        np.testing.assert_allclose(one["gradient"], two["gradient"], rtol=1e-9, atol=1e-12)
    monkeypatch.setenv("CUTS_JOBS", "two")
    with pytest.raises(ValueError, match="CUTS_JOBS"):
        segment.segment_latents(latents, ["a", "b"], tmp_path / "three", progress=False)
    with pytest.raises(ValueError, match="whole number >= 1"):
        segment.check_jobs(0)


def test_a_mostly_constant_image_stays_cheap():
    """70% of a 128x128 image is one constant value (an MRI slice's black background): the fast path keeps
    it under 2 GB of numpy memory and puts the copies in one cluster (its time is in bench_stage2)."""
    import tracemalloc

    image = load("retina", progress=False).images[0]
    torch.manual_seed(0)
    with torch.no_grad():
        lat = CUTSNet(3).eval()(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None])
    rgb = lat[0].permute(1, 2, 0).numpy()
    constant = rgb.copy().reshape(-1, 128)
    constant[np.random.default_rng(0).permutation(len(constant))[: int(0.7 * len(constant))]] = constant[0]
    constant = constant.reshape(rgb.shape)
    peaks = []
    for lat in (rgb, constant):
        tracemalloc.start()
        out = segment.segment_image(lat, seed=0, exact=False)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**30)
        tracemalloc.stop()
        assert out["levels"].shape[1:] == (128, 128) and len(out["level_steps"]) >= 2
    assert peaks[1] <= 2, f"peak {peaks[1]:.2f} GB"
    background = constant.reshape(-1, 128) == constant.reshape(-1, 128)[0]
    copies = background.all(axis=1)
    assert len(np.unique(out["levels"][0].ravel()[copies])) == 1  # the copies are one cluster


def test_a_single_image_shows_its_own_steps(latents, tmp_path, capsys):
    """One image to do: its bar moves through condensation, persistent maps and k-means (not 0/1 for minutes)."""
    segment.segment_latents(latents[:1], ["only"], tmp_path / "one", progress=True)
    err = capsys.readouterr().err
    for step in ("24x24 image: condensation: step 0/3", "24x24 image: persistent maps: step 1/3",
                 "24x24 image: k-means: step 2/3", "condensation (merges)"):
        assert step in err
    segment.segment_latents(latents, ["x", "y"], tmp_path / "two", progress=True)
    assert "image: k-means" not in capsys.readouterr().err  # small images, several to do: one bar only


def test_the_stage2_path_is_chosen_and_keys_the_folder(monkeypatch):
    monkeypatch.delenv("CUTS_STAGE2", raising=False)
    assert segment.stage2_exact() == (segment.DEFAULT_PATH == "exact")
    monkeypatch.setenv("CUTS_STAGE2", "fast")
    assert segment.stage2_exact() is False and segment.stage2_exact(True) is True
    monkeypatch.setenv("CUTS_STAGE2", "quick")
    with pytest.raises(ValueError, match="CUTS_STAGE2 must be 'fast' or 'exact', got 'quick'"):
        segment.stage2_exact()
    assert segment.segment_settings("embed-x", 1, True) != segment.segment_settings("embed-x", 1, False)


def test_a_long_step_keeps_its_clock_moving():
    """A step that runs for minutes (a large image's k-means) still redraws the bar with its elapsed time."""
    import io
    import time

    from tqdm import tqdm

    out = io.StringIO()
    bar = tqdm(total=3, desc="k-means", file=out, bar_format="{desc}: step {n_fmt}/{total_fmt} [{elapsed} elapsed]")
    with bar, segment.ticking(bar, every=0.05):
        time.sleep(0.5)  # one long step: no update() at all
    drawn = out.getvalue().split("\r")
    assert sum("k-means: step 0/3" in line for line in drawn) >= 5
    import threading

    before = threading.active_count()
    with segment.ticking(tqdm(total=1, disable=True)):  # a disabled bar starts no thread
        assert threading.active_count() == before
    with segment.ticking(tqdm(total=1, file=io.StringIO())):
        assert threading.active_count() == before + 1
    assert threading.active_count() == before  # and the thread ends with the step


def test_an_image_another_process_finished_meanwhile_is_not_redone(latents, tmp_path, monkeypatch):
    """Two commands sharing one cache folder: an image that appeared after the run started is skipped."""
    folder, done = tmp_path / "seg", []

    def one_image(path, latents, seed, threads, exact, progress=False, stage2="multiscale"):
        done.append(path.name)
        path.write_bytes(b"ours")
        (folder / "b.npz").write_bytes(b"the other process's")  # meanwhile, elsewhere

    monkeypatch.setattr(segment, "_segment_to", one_image)
    segment.segment_latents(latents, ["a", "b"], folder, progress=False, jobs=1)
    assert done == ["a.npz"] and (folder / "b.npz").read_bytes() == b"the other process's"
