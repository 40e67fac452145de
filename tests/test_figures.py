"""The `make figures` runner (cutslib.figures) on tiny stand-in notebooks, and the real parameter files.

Runtime: about a minute on the shared 2-core machine (papermill and nbval kernel starts).
"""

import json
import os
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from cutslib import figures

PAPER_LAMBDAS = [0, 0.001, 0.01, 0.03, 0.1, 0.5, 0.9, 1]
FIVE_SETS = {"retina", "brain_ventricles", "brain_tumor_cuts", "brain_tumor_lgg", "berkeley"}


def _notebook(path, body, default="0"):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    params = new_code_cell(f"profile = 'x'\nvalue = {default}")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(body)]
    nbformat.write(nb, str(path))


#: Stand-in notebook b: records its parameters in out.json and writes a stamped table into the figures folder.
WRITES_A_TABLE = """import json
import pandas as pd
from cutslib import report
json.dump({'profile': profile, 'value': value}, open('out.json', 'w'))
report.save_table(pd.DataFrame({'value': [value]}), 'tab', report.make_stamp(profile, {'value': value}))"""


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """Two stand-in notebooks; the second writes the parameters it got to out.json."""
    nbdir, pdir = tmp_path / "notebooks", tmp_path / "params"
    nbdir.mkdir(), pdir.mkdir()
    _notebook(nbdir / "a.ipynb", "x = 1")
    _notebook(nbdir / "b.ipynb", WRITES_A_TABLE)
    for profile in ("quick", "paper"):
        (pdir / f"{profile}.yaml").write_text(yaml.safe_dump(
            {"profile": profile, "value": 7, "unused": 1, "estimate_minutes_cpu": 3, "estimate_minutes_gpu": 1}))
    monkeypatch.setattr(figures, "NOTEBOOK_DIR", nbdir)
    monkeypatch.setattr(figures, "PARAMS_DIR", pdir)
    monkeypatch.setattr(figures, "NOTEBOOKS", ("a", "b"))
    monkeypatch.setattr(figures, "library_fingerprint", lambda: "fixed")  # others may edit cutslib meanwhile
    monkeypatch.setenv("CUTS_FIGURES_DIR", str(tmp_path / "figures"))
    (tmp_path / "figures").mkdir()
    return nbdir


def test_runs_in_order_passes_parameters_and_skips_what_is_cached(chain, capsys):
    assert figures.main(["--profile", "quick"]) == 0
    out = capsys.readouterr().out
    assert "[1/2] a: done" in out and "[2/2] b: done" in out
    assert json.loads((chain / "out.json").read_text()) == {"profile": "quick", "value": 7}
    executed = chain / "executed" / "quick"
    assert (executed / "a.ipynb").exists() and (executed / "b.key").exists()
    assert "Made by `make figures PROFILE=quick`" in (chain.parent / "figures" / "README.md").read_text()

    assert figures.main(["--profile", "quick"]) == 0
    assert capsys.readouterr().out.count("cached, skipped") == 2

    _notebook(chain / "a.ipynb", "x = 2")  # an upstream change reruns everything after it
    steps = figures.plan("quick")
    assert [s["cached"] for s in steps] == [False, False]
    _notebook(chain / "a.ipynb", "x = 1")
    assert [s["cached"] for s in figures.plan("quick")] == [True, True]
    _notebook(chain / "b.ipynb", WRITES_A_TABLE)
    assert [s["cached"] for s in figures.plan("quick")] == [True, True]
    _notebook(chain / "b.ipynb", "raise RuntimeError('boom')")
    assert figures.main(["--profile", "quick", "--only", "b"]) == 1
    assert (executed / "b.failed.ipynb").exists()
    assert "boom" in capsys.readouterr().err


def test_dry_run_only_and_errors(chain, capsys):
    assert figures.main(["--profile", "paper", "--dry-run", "--only", "b"]) == 0
    out = capsys.readouterr().out
    assert "b: would run with {'profile': 'paper', 'value': 7}" in out and "a:" not in out
    assert not (chain / "executed" / "paper" / "b.ipynb").exists()
    assert figures.main(["--profile", "quick", "--only", "zzz"]) == 2
    assert "matches no notebook" in capsys.readouterr().err


def test_no_profile_on_cpu_prints_estimates_and_exits_nonzero(chain, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert figures.main([]) == 2
    err = capsys.readouterr().err
    assert "PROFILE=quick" in err and "PROFILE=paper" in err and "about 3 min" in err


def test_real_parameter_files():
    paper, quick = figures.load_params("paper"), figures.load_params("quick")
    assert paper["seeds"] == [1, 2, 3] and paper["lambdas"] == PAPER_LAMBDAS and paper["config"] == "paper"
    assert set(paper["datasets"]) == FIVE_SETS and paper["n_images"] is None
    assert set(quick["datasets"]) == FIVE_SETS and set(quick["lambdas"]) <= set(PAPER_LAMBDAS)
    # every config is a named Stage-1 profile, so every table's profile column says which training made it
    from cutslib.train import PROFILES

    assert quick["config"] == "figures-quick" and PROFILES["figures-quick"].epochs == 2
    assert paper["jobs"] == "auto" and quick["jobs"] == 1  # images in parallel where the cores are
    with pytest.raises(FileNotFoundError, match="no parameter file"):
        figures.load_params("nope")


def test_every_chain_notebook_exists_and_declares_what_the_params_give():
    for name in figures.NOTEBOOKS:
        path = figures.NOTEBOOK_DIR / f"{name}.ipynb"
        assert path.exists(), path
        declared = figures.notebook_parameters(path)
        assert "profile" in declared, name


def test_an_overwritten_or_missing_output_is_remade(chain, capsys):
    """A notebook's outputs must still carry the stamp it wrote: a run by hand or under nbval (profile=smoke)
    that overwrote them, or their deletion, reruns it even though its inputs are unchanged."""
    from cutslib import report

    assert figures.main(["--profile", "quick"]) == 0
    folder = chain.parent / "figures"
    recorded = json.loads((chain / "executed" / "quick" / "b.outputs.json").read_text())
    assert sorted(recorded) == ["tab.csv", "tab.md"] and all("profile=quick" in v for v in recorded.values())
    assert json.loads((chain / "executed" / "quick" / "a.outputs.json").read_text()) == {}
    assert [s["cached"] for s in figures.plan("quick")] == [True, True]

    import pandas as pd

    report.save_table(pd.DataFrame({"value": [0]}), "tab", report.make_stamp("smoke", {"value": 0}), folder=folder)
    assert [s["cached"] for s in figures.plan("quick")] == [True, False]
    assert figures.main(["--profile", "quick"]) == 0
    assert "profile=quick" in (folder / "tab.csv").read_text().splitlines()[0]
    assert [s["cached"] for s in figures.plan("quick")] == [True, True]
    (folder / "tab.md").unlink()
    assert [s["cached"] for s in figures.plan("quick")] == [True, False]


def test_stamps_are_read_back_from_every_kind_of_output(tmp_path):
    import matplotlib.pyplot as plt
    import pandas as pd

    from cutslib import report

    stamp = report.make_stamp("quick", {"a": 1}, commit="abc1234")
    fig = plt.figure(figsize=(1, 1))
    paths = report.save_figure(fig, "f", stamp, folder=tmp_path) + report.save_table(
        pd.DataFrame({"x": [1]}), "t", stamp, folder=tmp_path, title="T (a)")
    plt.close(fig)
    assert {p.suffix for p in paths} == {".png", ".pdf", ".csv", ".md"}
    assert all(figures._stamp_of(p) == stamp.text for p in paths), [figures._stamp_of(p) for p in paths]


def test_make_test_notebooks_leaves_figures_untouched(tmp_path):
    """`make test` runs the notebooks under nbval with CUTS_FIGURES_DIR pointing at a temporary folder: a notebook
    that saves a figure there leaves the project's figures/ as it was."""
    import subprocess

    root = figures.PROJECT_ROOT
    nb = tmp_path / "saves.ipynb"
    _notebook(nb, "import os, matplotlib.pyplot as plt\nfrom cutslib import report\n"
                  f"open({str(tmp_path / 'where.txt')!r}, 'w').write(str(report.figures_dir()))\n"
                  "report.save_figure(plt.figure(figsize=(1, 1)), 'fig_nbval_probe', report.make_stamp('smoke'))")
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in (root / "figures").rglob("*")}
    run = subprocess.run(["make", "-s", "-C", str(root), "-o", ".venv/.installed", "test-notebooks",
                          f"NBVAL_NOTEBOOKS={nb}", "PYTEST_ARGS=-q"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    where = Path((tmp_path / "where.txt").read_text())
    assert where.resolve() != (root / "figures").resolve() and not where.exists(), where  # a temporary folder, removed
    after = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in (root / "figures").rglob("*")}
    assert after == before


def test_gallery_downscales_and_writes_a_readable_stamp_under_each_figure(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    from PIL import Image

    from cutslib import report

    monkeypatch.setenv("CUTS_FIGURES_DIR", str(tmp_path))
    stamp = report.make_stamp("quick", {"a": 1}, commit="abc1234")
    fig = plt.figure(figsize=(20, 3))
    fig.add_subplot().plot([0, 1])
    report.save_figure(fig, "fig1_trajectory", stamp)
    plt.close(fig)
    report.save_table(pd.DataFrame({"x": [1]}), "table1", stamp)
    written = figures.make_gallery(width=960, font_px=14)
    assert [p.name for p in written] == ["fig1_trajectory.png", "table1.md"]
    with Image.open(tmp_path / "gallery" / "fig1_trajectory.png") as im:
        assert im.width == 960 and im.info["Description"] == stamp.text
        band = np.asarray(im.convert("L"))[-22:]
    assert (band < 128).sum() > 200, "the stamp must be written under the figure"
    assert (tmp_path / "gallery" / "table1.md").read_text() == (tmp_path / "table1.md").read_text()
    readme = figures.write_readme("quick", {}).read_text()
    assert "![fig1_trajectory](gallery/fig1_trajectory.png)" in readme and "(gallery/table1.md)" in readme


def test_the_parameter_file_sets_the_stage2_jobs_unless_the_user_did(chain, monkeypatch, capsys):
    monkeypatch.delenv("CUTS_JOBS", raising=False)
    paper = chain.parent / "params" / "paper.yaml"
    paper.write_text(paper.read_text() + "jobs: 3\n")
    assert figures.main(["--profile", "paper", "--dry-run"]) == 0
    assert os.environ["CUTS_JOBS"] == "3"
    monkeypatch.setenv("CUTS_JOBS", "1")  # the user's choice wins
    assert figures.main(["--profile", "paper", "--dry-run"]) == 0 and os.environ["CUTS_JOBS"] == "1"
    monkeypatch.delenv("CUTS_JOBS")
    assert figures.stage2_jobs({"jobs": "auto"}) == str(len(os.sched_getaffinity(0)))
    assert figures.stage2_jobs({}) == "1"
    paper.write_text(paper.read_text().replace("jobs: 3", "jobs: many"))
    assert figures.main(["--profile", "paper", "--dry-run"]) == 2
    assert "paper.yaml: jobs (or CUTS_JOBS) must be a whole number >= 1, got 'many'" in capsys.readouterr().err
