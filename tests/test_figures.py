"""The `make figures` runner (cutslib.figures) on tiny stand-in notebooks, and the real parameter files.

Runtime: about 20 s (three papermill kernel starts).
"""

import json

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


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """Two stand-in notebooks; the second writes the parameters it got to out.json."""
    nbdir, pdir = tmp_path / "notebooks", tmp_path / "params"
    nbdir.mkdir(), pdir.mkdir()
    _notebook(nbdir / "a.ipynb", "x = 1")
    _notebook(nbdir / "b.ipynb", "import json; json.dump({'profile': profile, 'value': value}, open('out.json', 'w'))")
    for profile in ("quick", "paper"):
        (pdir / f"{profile}.yaml").write_text(yaml.safe_dump(
            {"profile": profile, "value": 7, "unused": 1, "estimate_minutes_cpu": 3, "estimate_minutes_gpu": 1}))
    monkeypatch.setattr(figures, "NOTEBOOK_DIR", nbdir)
    monkeypatch.setattr(figures, "PARAMS_DIR", pdir)
    monkeypatch.setattr(figures, "NOTEBOOKS", ("a", "b"))
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
    with pytest.raises(FileNotFoundError, match="no parameter file"):
        figures.load_params("nope")


def test_every_chain_notebook_exists_and_declares_what_the_params_give():
    for name in figures.NOTEBOOKS:
        path = figures.NOTEBOOK_DIR / f"{name}.ipynb"
        assert path.exists(), path
        declared = figures.notebook_parameters(path)
        assert "profile" in declared, name
