"""The published record: built from real (tiny) runs, with the paper's numbers beside ours (runtime ~1 min)."""

import numpy as np
import pandas as pd

from cutslib import data, published


def test_record_holds_table_scores_and_run_notes(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTS_RESULTS_DIR", str(tmp_path / "results"))
    retina = data.load("retina", progress=False)
    crops = data.Dataset(name="retina", images=np.ascontiguousarray(retina.images[:4, 40:64, 40:64]),
                         masks=np.ascontiguousarray(retina.masks[:4, 40:64, 40:64]), ids=retina.ids[:4])
    out = published.build(crops, "smoke", seeds=[1, 2], methods=["cuts_kmeans", "random"], out=tmp_path / "rec",
                          progress=False)
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores["seed"]) == {1, 2} and set(scores["method"]) == {"cuts_kmeans", "random"}
    assert set(scores["image_id"].astype(str)) == set(crops.ids) and scores["value"].notna().all()
    assert set(scores["profile"]) == {"smoke"}
    table = pd.read_csv(out / "table1.csv")
    hint = table[(table.method == "cuts_kmeans") & (table.protocol == "label_hint")].iloc[0]
    assert hint["profile"] == "smoke" and hint["dice paper"] == 0.673 and " ± " in hint["dice"]
    assert "the 2023 arXiv Table 1" in (out / "table1.md").read_text()
    run = (out / "RUN.md").read_text()
    assert "commit:" in run and "| 1 | `train-" in run and "| 2 | `train-" in run and "| cuts_kmeans |" in run
