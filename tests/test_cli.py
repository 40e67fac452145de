"""The ``cuts`` command line: fast start, help text, and ``cuts segment --images`` on a folder of one's own images
(outputs at each image's size, caches keyed by content, inputs that cannot silently lie).

The folder tests run on two small rectangular crops of retina images (from the mirror), with an encoder trained
once per module under the ``smoke`` profile at ``--size 32``; about 30 s in all.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import skimage.io
import torch
from PIL import Image

from cutslib import data
from cutslib.cli import common, main as cli

SIZE = "32"
SHAPE = (30, 45)  # (height, width) of the test images: not square, not the model's size


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of two 30x45 RGB PNGs cut from retina images."""
    folder = tmp_path_factory.mktemp("images")
    retina = data.load("retina", progress=False).images
    for k in (0, 1):
        crop = retina[k, 40:40 + SHAPE[0], 30:30 + SHAPE[1]]
        skimage.io.imsave(folder / f"img{k}.png", np.rint((crop + 1) * 127.5).astype(np.uint8), check_contrast=False)
    return folder


@pytest.fixture(scope="module")
def checkpoint(images, tmp_path_factory):
    """A smoke-profile encoder trained on the folder (in its own results folder)."""
    from cutslib.train import train

    mp = pytest.MonkeyPatch()
    mp.setenv("CUTS_RESULTS_DIR", str(tmp_path_factory.mktemp("train-results")))
    try:
        return train(data.load_folder(images, size=int(SIZE)), 1, "smoke", progress=False)
    finally:
        mp.undo()


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


def segment(*args) -> list[str]:
    return ["segment", "--size", SIZE, "--no-progress", *map(str, args)]


def run(capsys, argv) -> tuple[int, str, str]:
    code = cli(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- fast start, help --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["data", "list"], ["segment", "--help"]])
def test_light_commands_import_no_torch(argv):
    script = ("import sys\nfrom cutslib.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
              "heavy = [m for m in ('torch', 'pandas', 'sklearn', 'skimage') if m in sys.modules]\n"
              "print('HEAVY', heavy)" % argv)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_cli_names_match_the_library():
    from cutslib import baselines, evaluate, segment, train

    assert common.PROFILES == tuple(sorted(train.PROFILES))
    assert common.BASELINES == (*baselines.UNSUPERVISED, *baselines.SAM_METHODS, "watershed")
    assert common.METHODS == (*evaluate.METHODS, "watershed", "unet")
    assert common.DEFAULT_METHODS == evaluate.DEFAULT_METHODS
    assert common.DEFAULT_STAGE2 == segment.DEFAULT_PATH
    assert (data.MIN_SIZE, data.SIZE) == (__import__("cutslib.model").model.MIN_IMAGE_SIZE, 128)


def test_help_is_plain_and_lists_choices(capsys):
    with pytest.raises(SystemExit):
        cli(["--help"])
    assert "``" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "cuts_diffusion_fixed_level" in out and "sam_box" in out
    with pytest.raises(SystemExit):
        cli(["segment", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "aspect kept" in out and "original size" in out
    with pytest.raises(SystemExit) as exit_:
        cli(["--version"])
    assert exit_.value.code == 0 and "0.1.0" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["data", "train", "embed", "segment", "baseline", "evaluate"])
def test_sub_command_help_has_no_backticks(command, capsys):
    with pytest.raises(SystemExit):
        cli([command, "--help"])
    assert "`" not in capsys.readouterr().out


def test_data_info_demo(capsys):
    code, out, _ = run(capsys, ["data", "info", "demo"])
    assert code == 0 and "(1, 128, 128, 3)" in out and "CC0" in out


def test_clean_results_honours_cuts_results_dir(tmp_path):
    target = tmp_path / "my-results"
    (target / "retina").mkdir(parents=True)
    subprocess.run(["make", "-s", "clean-results"], cwd=data.PROJECT_ROOT, check=True, capture_output=True,
                   env={"PATH": "/usr/bin:/bin", "CUTS_RESULTS_DIR": str(target)})
    assert not target.exists()


# --- cuts segment --images: the results ---------------------------------------------------------------------

def test_folder_without_checkpoint_trains_and_writes_pictures_at_the_original_size(images, results, capsys):
    out_dir = results.parent / "out"
    code, out, err = run(capsys, segment("--images", images, "--profile", "smoke", "--out", out_dir))
    assert code == 0, err
    assert out.strip() == str(out_dir) and "training the encoder" in err
    for k in (0, 1):
        seg = dict(np.load(out_dir / f"img{k}.npz"))
        rows, cols = data.Frame.fit(*SHAPE, int(SIZE)).rows, data.Frame.fit(*SHAPE, int(SIZE)).cols
        assert seg["levels"].shape[1:] == seg["persistent"].shape == (rows, cols)  # padding cropped away
        pictures = sorted((out_dir / f"img{k}").glob("*.png"))
        assert len(pictures) == len(seg["levels"]) + 3
        for path in pictures:
            assert Image.open(path).size == SHAPE[::-1]
        fg = np.asarray(Image.open(out_dir / f"img{k}" / "foreground.png"))
        assert set(np.unique(fg)) <= {0, 255} and fg.any()
        persistent = np.asarray(Image.open(out_dir / f"img{k}" / "persistent.png"))
        assert persistent.shape == (*SHAPE, 3) and len(np.unique(persistent.reshape(-1, 3), axis=0)) > 1
        sheet = Image.open(out_dir / f"img{k}_sheet.png")
        assert sheet.size[0] >= 4 * SHAPE[1] and sheet.size[1] >= SHAPE[0]
    settings = json.loads((out_dir / "settings.json").read_text())
    assert settings["size"] == int(SIZE) and "train" in settings["encoder"]
    code, _, err = run(capsys, segment("--images", images, "--profile", "smoke", "--out", out_dir))
    assert code == 0 and "recomputing" not in err  # a rerun trusts its own finished results
    # and its estimate counts the cached work as done instead of announcing training and Stage 2 again
    assert "training the encoder" not in err and "using the encoder trained earlier" in err
    assert "segmenting" not in err and "nothing to run: the 2 images are already segmented" in err


def test_default_folder_is_keyed_by_image_content(images, checkpoint, results, tmp_path, capsys):
    edited = tmp_path / images.name
    edited.mkdir()
    for path in images.iterdir():
        (edited / path.name).write_bytes(path.read_bytes())
    code, first, _ = run(capsys, segment("--images", edited, "--checkpoint", checkpoint, "--limit", 1))
    assert code == 0
    pixels = skimage.io.imread(edited / "img0.png")
    skimage.io.imsave(edited / "img0.png", 255 - pixels, check_contrast=False)  # edited in place
    code, second, _ = run(capsys, segment("--images", edited, "--checkpoint", checkpoint, "--limit", 1))
    assert code == 0 and first != second
    a, b = (np.load(f"{folder.strip()}/img0.npz")["kmeans"] for folder in (first, second))
    assert a.shape == b.shape


def test_limit_is_honoured_and_checked(images, checkpoint, results, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, _, _ = run(capsys, segment("--images", images, "--checkpoint", checkpoint, "--out", out_dir, "--limit", 1))
    assert code == 0 and sorted(p.name for p in out_dir.glob("*.npz")) == ["img0.npz"]
    for bad in ("-1", "0"):
        code, _, err = run(capsys, segment("--images", images, "--checkpoint", checkpoint, "--limit", bad))
        assert code == 2 and f"--limit must be >= 1 or None, got {bad}" in err
    assert not results.exists()


# --- cuts segment --images: what must never pass silently ------------------------------------------------------

def test_out_with_a_foreign_file_is_refused(images, checkpoint, results, tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "img0.npz").write_bytes(b"junk")
    code, _, err = run(capsys, segment("--images", images, "--checkpoint", checkpoint, "--out", out_dir))
    assert code == 2 and "not written by `cuts segment`" in err and len(err.strip().splitlines()) == 1
    assert (out_dir / "img0.npz").read_bytes() == b"junk"


def test_out_made_with_another_checkpoint_is_refused(images, checkpoint, results, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUTS_STAGE2", "exact")  # restored after the test (--stage2 sets it)
    out_dir = tmp_path / "out"
    code, _, _ = run(capsys, segment("--images", images, "--checkpoint", checkpoint, "--out", out_dir, "--limit", 1))
    assert code == 0
    other = tmp_path / "other.pt"
    state = torch.load(checkpoint, weights_only=True)
    state["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    torch.save(state, other)
    code, _, err = run(capsys, segment("--images", images, "--checkpoint", other, "--out", out_dir))
    assert code == 2 and "other settings (differ: encoder)" in err
    code, _, err = run(capsys, segment("--images", images, "--checkpoint", checkpoint, "--out", out_dir,
                                       "--seed", 2))
    assert code == 2 and "differ: seed" in err
    code, _, err = run(capsys, segment("--images", images, "--checkpoint", checkpoint, "--out", out_dir,
                                       "--stage2", "fast"))
    assert code == 2 and "differ: stage2" in err


def test_a_damaged_result_in_out_is_recomputed_and_said(images, checkpoint, results, tmp_path, capsys):
    out_dir = tmp_path / "out"
    argv = segment("--images", images, "--checkpoint", checkpoint, "--out", out_dir, "--limit", 1)
    assert run(capsys, argv)[0] == 0
    good = dict(np.load(out_dir / "img0.npz"))
    (out_dir / "img0.npz").write_bytes(b"truncated")
    code, _, err = run(capsys, argv)
    assert code == 0 and "recomputing img0.npz" in err
    np.testing.assert_array_equal(np.load(out_dir / "img0.npz")["kmeans"], good["kmeans"])


@pytest.mark.parametrize("content, problem", [
    (b"not a torch file", "torch cannot read it"),
    ("tensor", "not a CUTS encoder checkpoint"),
    ("pickle", "Python objects besides tensors"),
    ("wrong", "weights do not fit the CUTS encoder"),
])
def test_bad_checkpoints_give_one_line_and_create_nothing(images, results, tmp_path, capsys, content, problem):
    path = tmp_path / "model.pt"
    if content == "tensor":
        torch.save({"weights": torch.zeros(3)}, path)
    elif content == "pickle":
        torch.save({"model": {}, "in_channels": 3, "extra": object()}, path)
    elif content == "wrong":
        torch.save({"model": {"w": torch.zeros(2)}, "in_channels": 3}, path)
    else:
        path.write_bytes(content)
    code, _, err = run(capsys, segment("--images", images, "--checkpoint", path, "--out", tmp_path / "out"))
    assert code == 2 and problem in err and str(path) in err
    assert len(err.strip().splitlines()) == 1 and "delete" not in err and "weights_only" not in err
    assert not (tmp_path / "out").exists() and not results.exists()


def test_checkpoint_for_other_channels_is_refused_before_anything(images, checkpoint, results, tmp_path, capsys):
    gray = tmp_path / "gray"
    gray.mkdir()
    skimage.io.imsave(gray / "g.png", np.zeros((40, 40), np.uint8), check_contrast=False)
    code, _, err = run(capsys, segment("--images", gray, "--checkpoint", checkpoint))
    assert code == 2 and "3-channel images, but these images have 1" in err and not results.exists()


def test_ctrl_c_prints_one_line(images, checkpoint, results, tmp_path, capsys, monkeypatch):
    import cutslib.folder

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cutslib.folder, "segment_image", interrupt)
    code, _, err = run(capsys, segment("--images", images, "--checkpoint", checkpoint, "--out", tmp_path / "o"))
    assert code == 130 and "Traceback" not in err and err.strip().splitlines()[-1] == (
        "cuts segment: interrupted; run the same command again to resume where it stopped")


def test_size_is_checked_and_only_for_folders(images, results, capsys):
    code, _, err = run(capsys, ["segment", "--images", str(images), "--size", "1024"])
    assert code == 2 and "between 17 and 512" in err
    code, _, err = run(capsys, ["segment", "--dataset", "demo", "--size", "64"])
    assert code == 2 and "--size go with --images" in err
    assert not results.exists()


# --- cuts evaluate --images: the combined CSV ----------------------------------------------------------------

def test_evaluation_csv_is_keyed_by_the_masks(images, results, tmp_path, capsys):
    paths = []
    for name, rows in (("top", slice(0, 10)), ("bottom", slice(15, 30))):
        masks = tmp_path / name
        masks.mkdir()
        for k in (0, 1):
            mask = np.zeros(SHAPE, np.uint8)
            mask[rows, 5:40] = 255
            skimage.io.imsave(masks / f"img{k}.png", mask, check_contrast=False)
        code, out, err = run(capsys, ["evaluate", "--images", str(images), "--masks", str(masks), "--methods",
                                      "random", "--no-progress"])
        assert code == 0, err
        assert out.startswith("estimate: under a minute")  # printed before the work starts
        paths.append(out.strip().splitlines()[-1])
    assert paths[0] != paths[1]
