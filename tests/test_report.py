"""Stamped figures and tables (cutslib.report). Runtime: about 2 s."""

import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from cutslib import report


@pytest.fixture
def stamp():
    return report.make_stamp("quick", {"datasets": ["retina"], "seeds": [1]}, commit="abc1234")


def test_stamp_names_profile_settings_and_commit(stamp):
    other = report.make_stamp("quick", {"seeds": [1], "datasets": ["retina"]}, commit="abc1234")
    assert stamp.settings_hash == other.settings_hash  # key order does not matter
    assert report.make_stamp("quick", {"seeds": [2]}).settings_hash != stamp.settings_hash
    assert "profile=quick" in stamp.text and stamp.settings_hash in stamp.text and "abc1234" in stamp.text
    with pytest.raises(ValueError, match="profile"):
        report.make_stamp("", {})


def test_git_commit_in_and_outside_git(tmp_path):
    assert report.git_commit(tmp_path) == "unknown"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.txt").write_text("one")
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "-C", str(tmp_path), *env, "add", "a.txt"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), *env, "commit", "-qm", "x"], check=True)
    clean = report.git_commit(tmp_path)
    assert len(clean) >= 7 and "+dirty" not in clean
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "fig.png").write_text("old")
    subprocess.run(["git", "-C", str(tmp_path), *env, "add", "figures"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), *env, "commit", "-qm", "y"], check=True)
    clean = report.git_commit(tmp_path)
    (tmp_path / "figures" / "fig.png").write_text("rebuilt")  # an output rewritten: the code is still clean
    assert report.git_commit(tmp_path) == clean
    (tmp_path / "a.txt").write_text("two")
    assert report.git_commit(tmp_path) == clean + "+dirty"


def test_save_figure_writes_png_and_pdf_with_stamp_metadata(tmp_path, stamp):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    png, pdf = report.save_figure(fig, "demo", stamp, folder=tmp_path)
    plt.close(fig)
    assert png.name == "demo.png" and pdf.name == "demo.pdf"
    assert Image.open(png).info["Description"] == stamp.text
    assert b"/Subject (" + stamp.text.encode() in pdf.read_bytes()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    with pytest.raises(ValueError, match="plain file name"):
        report.save_figure(fig, "../escape", stamp, folder=tmp_path)


def test_save_table_csv_and_markdown_roundtrip(tmp_path, stamp):
    df = pd.DataFrame({"method": ["cuts_kmeans", "slic"], "dice": [0.6734, float("nan")], "ergas": [4687.4, 12.0]})
    csv, md = report.save_table(df, "t", stamp, folder=tmp_path, title="Table 1")
    assert csv.read_text().splitlines()[0] == f"# {stamp.text}"
    back = report.read_table(csv)
    assert list(back["method"]) == ["cuts_kmeans", "slic"] and back["dice"][0] == pytest.approx(0.6734)
    text = md.read_text()
    assert stamp.text in text and "| method | dice | ergas |" in text and "| cuts_kmeans | 0.6734 | 4687 |" in text
    assert "| slic |  | 12 |" in text
    with pytest.raises(ValueError, match="empty"):
        report.save_table(df.iloc[:0], "t", stamp, folder=tmp_path)


def test_first_images_takes_a_prefix_or_everything():
    from cutslib import data

    demo = data.load("demo")
    assert report.first_images(demo, None) is demo
    assert report.first_images(demo, 5).ids == demo.ids[:1]
    with pytest.raises(ValueError, match="n_images"):
        report.first_images(demo, 0)
