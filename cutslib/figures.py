"""``make figures``: run every pipeline and figure notebook with papermill, in dependency order.

    python -m cutslib.figures --profile quick|paper [--only NAME ...] [--dry-run] [--force]

Each notebook of :data:`NOTEBOOKS` runs with the values of ``params/<profile>.yaml`` that its ``parameters``
cell declares. The executed copies are kept in ``notebooks/executed/<profile>/``, beside each one's cache key
and the stamps of the figures and tables it wrote. A notebook is skipped when its executed copy exists, its inputs
are unchanged (the notebook's cells, the parameters, the cutslib version and source, and the inputs of every
notebook before it) and every output it wrote is still there with the stamp it wrote (so outputs overwritten by
another run, e.g. a notebook run by hand or under nbval with its ``smoke`` defaults, are remade). Under that, the
library's own caches (checkpoints, embeddings, segmentations, metrics) make a rerun after an interruption resume
where it stopped.

With no profile: ``paper`` when a GPU is found; otherwise an estimate for each profile is printed and the command
exits with status 2, asking for ``PROFILE=quick`` or ``PROFILE=paper``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import yaml

import cutslib
from cutslib.cache import PROJECT_ROOT, atomic_path, settings_hash, write_text
from cutslib.report import figures_dir

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
PARAMS_DIR = PROJECT_ROOT / "params"

#: The chain, in dependency order: pipeline stages first, then one notebook per figure or table.
NOTEBOOKS = (
    "01_train",
    "02_segment",
    "03_baselines",
    "04_evaluate",
    "10_fig1_trajectory",
    "11_fig2_qualitative",
    "12_table1",
    "13_fig4_lambda_ablation",
    "14_fig5_topological_activity",
    "15_fig6_diffusion_graph",
    "16_fig7_berkeley_boxplots",
)

#: Outputs copied (downscaled, with the stamp written under them at a readable size) into figures/gallery/ for the
#: README, if they were made; and tables copied as they are.
GALLERY = ("fig1_trajectory", "fig2_qualitative", "fig5_topological_activity", "fig7_berkeley_boxplots",
           "fig4_lambda_ablation", "fig6_diffusion_graph")
GALLERY_TABLES = ("table1",)

PROFILES = ("quick", "paper")
#: The kinds of file a notebook writes into the figures folder.
OUTPUT_SUFFIXES = (".png", ".pdf", ".csv", ".md")


def load_params(profile: str) -> dict:
    """The parameters of ``params/<profile>.yaml``."""
    path = PARAMS_DIR / f"{profile}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no parameter file {path} for profile {profile!r}; known profiles: {known}")
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict) or params.get("profile") != profile:
        raise ValueError(f"{path} must be a mapping with 'profile: {profile}'")
    return params


def stage2_jobs(params: dict) -> str:
    """The images Stage 2 runs at a time, from the parameter file's ``jobs`` (a whole number, or ``auto`` for
    every core; 1 if absent), as the value for ``CUTS_JOBS`` that the notebooks' kernels inherit."""
    from cutslib.segment import check_jobs

    jobs = params.get("jobs", 1)
    if jobs == "auto":
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return str(check_jobs(jobs))


def library_fingerprint() -> str:
    """cutslib's version plus a hash of its source and data files (the paper's tables, the data registry):
    a change to any of them reruns the notebooks."""
    root = Path(cutslib.__file__).parent
    sources = sorted(p for pattern in ("*.py", "*.csv", "*.tsv") for p in root.rglob(pattern))
    return settings_hash({"version": cutslib.__version__,
                          "sources": [(str(p.relative_to(root)), p.read_text()) for p in sources]})


def notebook_source(path: Path) -> list[str]:
    """The cell types and sources of a notebook (outputs and metadata do not count)."""
    nb = json.loads(path.read_text())
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def notebook_parameters(path: Path) -> list[str]:
    """The names declared in the notebook's ``parameters`` cell."""
    import papermill

    return list(papermill.inspect_notebook(str(path)))


def plan(profile: str, only: list[str] | None = None, force: bool = False) -> list[dict]:
    """For each notebook in order: its name, path, parameters, cache key and whether it is cached."""
    params = load_params(profile)
    overrides = params.get("notebooks", {}) or {}
    out_dir = executed_dir(profile)
    selected = _select(only)
    steps, key, lib = [], "", library_fingerprint()
    for name in NOTEBOOKS:
        path = NOTEBOOK_DIR / f"{name}.ipynb"
        if not path.exists():
            raise FileNotFoundError(f"notebook {path} is missing")
        names = notebook_parameters(path)
        values = {k: v for k, v in params.items() if k in names}
        values.update(overrides.get(name, {}))
        key = settings_hash({"previous": key, "notebook": notebook_source(path), "parameters": values, "library": lib})
        output = out_dir / f"{name}.ipynb"
        stamp_file = out_dir / f"{name}.key"
        outputs_file = out_dir / f"{name}.outputs.json"
        cached = (not force and output.exists() and stamp_file.exists() and stamp_file.read_text().strip() == key
                  and outputs_intact(outputs_file, profile))
        if name in selected:
            steps.append(dict(name=name, path=path, output=output, key_file=stamp_file, key=key,
                              outputs_file=outputs_file, parameters=values, cached=cached))
    return steps


def outputs_intact(outputs_file: Path, profile: str) -> bool:
    """True if every output listed in ``outputs_file`` (written by :func:`run_notebook`) still exists in the
    figures folder with the stamp it was written with, and that stamp names ``profile``."""
    if not outputs_file.exists():
        return False
    try:
        recorded = json.loads(outputs_file.read_text())
    except json.JSONDecodeError:
        return False
    folder = figures_dir()
    return all(f"profile={profile} " in f"{stamp} " and (folder / name).is_file()
               and _stamp_of(folder / name) == stamp for name, stamp in recorded.items())


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of each output file in ``folder`` (not the README or the gallery)."""
    if not folder.is_dir():
        return {}
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()
            if p.is_file() and p.suffix in OUTPUT_SUFFIXES and p.name != "README.md"}


def executed_dir(profile: str) -> Path:
    return NOTEBOOK_DIR / "executed" / profile


def _select(only: list[str] | None) -> list[str]:
    if not only:
        return list(NOTEBOOKS)
    chosen = []
    for pattern in only:
        hits = [n for n in NOTEBOOKS if pattern == n or pattern in n]
        if not hits:
            raise ValueError(f"--only {pattern!r} matches no notebook; choose from {', '.join(NOTEBOOKS)}")
        chosen += hits
    return [n for n in NOTEBOOKS if n in chosen]


def run_notebook(step: dict) -> None:
    """Execute one notebook with papermill into its executed copy (atomically), then record its key."""
    import papermill

    os.environ.setdefault("MPLBACKEND", "Agg")
    before = _snapshot(figures_dir())
    output = step["output"]
    failed = output.with_suffix(".failed.ipynb")
    partial = output.with_name(f".{output.stem}.partial.ipynb")  # renamed onto the output once complete
    try:
        papermill.execute_notebook(str(step["path"]), str(partial), parameters=step["parameters"],
                                   kernel_name="python3", cwd=str(NOTEBOOK_DIR), progress_bar=False,
                                   language="python")
    except BaseException:
        if partial.exists():
            os.replace(partial, failed)
        raise
    os.replace(partial, output)
    failed.unlink(missing_ok=True)
    after = _snapshot(figures_dir())
    written = sorted(name for name, state in after.items() if before.get(name) != state)
    write_text(step["outputs_file"], json.dumps({n: _stamp_of(figures_dir() / n) for n in written}, indent=1) + "\n")
    write_text(step["key_file"], step["key"] + "\n")


def estimate_text() -> str:
    lines = []
    for profile in PROFILES:
        p = load_params(profile)
        lines.append(f"  PROFILE={profile}: about {p.get('estimate_minutes_cpu', '?')} min on a 2-core CPU, "
                     f"about {p.get('estimate_minutes_gpu', '?')} min with a GPU")
    return "\n".join(lines)


def make_gallery(width: int = 960, font_px: int = 14) -> list[Path]:
    """Copy :data:`GALLERY` into ``figures/gallery/`` at most ``width`` pixels wide (small enough to commit), each
    with its stamp written in a band under it at ``font_px`` pixels (the one in the figure is too small once
    downscaled), and the Markdown of :data:`GALLERY_TABLES`."""
    from PIL import Image, ImageDraw, ImageFont
    from PIL.PngImagePlugin import PngInfo

    written = []
    for name in GALLERY:
        src = figures_dir() / f"{name}.png"
        if not src.exists():
            continue
        dst = figures_dir() / "gallery" / f"{name}.png"
        with Image.open(src) as im:
            description = im.info.get("Description", "")
            im = im.convert("RGB")
        if im.width > width:
            im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
        band = round(font_px * 1.6)
        out = Image.new("RGB", (im.width, im.height + band), "white")
        out.paste(im, (0, 0))
        ImageDraw.Draw(out).text((6, im.height + (band - font_px) // 2), description, fill=(60, 60, 60),
                                 font=ImageFont.load_default(font_px))
        info = PngInfo()
        info.add_text("Description", description)
        with atomic_path(dst) as tmp:
            out.save(tmp, format="PNG", optimize=True, pnginfo=info)
        written.append(dst)
    for name in GALLERY_TABLES:
        src = figures_dir() / f"{name}.md"
        if src.exists():
            dst = figures_dir() / "gallery" / src.name
            write_text(dst, src.read_text())
            written.append(dst)
    return written


def _stamp_of(path: Path) -> str:
    """The stamp an output carries (PNG Description, PDF Subject, first lines of a CSV or Markdown table)."""
    if path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as im:
            return im.info.get("Description", "")
    if path.suffix == ".pdf":  # matplotlib writes the Info dictionary uncompressed
        found = re.search(rb"/Subject \(((?:\\.|[^\\)])*)\)", path.read_bytes())
        return re.sub(r"\\(.)", r"\1", found.group(1).decode("latin-1")) if found else ""
    if path.suffix in (".csv", ".md"):
        for line in path.read_text().splitlines()[:3]:
            if "profile=" in line:
                return line.strip("#_ ")
    return ""


def write_readme(profile: str, timings: dict[str, float]) -> Path:
    """``figures/README.md``: what was made, by which profile, and the gallery snippet."""
    folder = figures_dir()
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".png", ".pdf", ".csv", ".md")
                   and p.name != "README.md")
    lines = ["# Figures and tables", "",
             f"Made by `make figures PROFILE={profile}` (`python -m cutslib.figures --profile {profile}`). "
             "Every file carries a stamp with the profile, the settings hash and the git commit "
             "(drawn in a corner of each figure, in its PNG/PDF metadata, and on the first line of each table).",
             "", "| File | Stamp |", "|---|---|"]
    lines += [f"| `{p.name}` | {_stamp_of(p).replace('|', '·')} |" for p in files if p.suffix != ".pdf"]
    lines += ["", "PDF versions sit beside every PNG.", "", "## Notebook run times (when each last ran)", "",
              "| Notebook | Seconds |", "|---|---|"]
    lines += [f"| {name} | {t:.0f} |" for name, t in timings.items()]
    gallery = [folder / "gallery" / f"{n}.png" for n in GALLERY if (folder / "gallery" / f"{n}.png").exists()]
    tables = [folder / "gallery" / f"{n}.md" for n in GALLERY_TABLES if (folder / "gallery" / f"{n}.md").exists()]
    if gallery or tables:
        lines += ["", "## Gallery", ""] + [f"![{p.stem}](gallery/{p.name})" for p in gallery]
        lines += [f"- [{p.stem}](gallery/{p.name})" for p in tables]
    path = folder / "README.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cutslib.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, help="quick (CPU, ~20 min) or paper (the paper's settings)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks (name or part of it)")
    parser.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    parser.add_argument("--force", action="store_true", help="rerun notebooks even if their inputs are unchanged")
    args = parser.parse_args(argv)

    profile = args.profile
    if profile is None:
        import torch

        if torch.cuda.is_available():
            profile = "paper"
            print("GPU found: using PROFILE=paper")
        else:
            print("No GPU found. Choose a profile explicitly:\n" + estimate_text()
                  + "\nRun `make figures PROFILE=quick` (a CPU check of the whole chain) "
                  "or `make figures PROFILE=paper` (the paper's settings).", file=sys.stderr)
            return 2
    try:
        steps = plan(profile, args.only, args.force)
    except (ValueError, FileNotFoundError) as exc:
        print(f"cutslib.figures: error: {exc}", file=sys.stderr)
        return 2

    try:  # images in parallel in every notebook's Stage 2; a CUTS_JOBS set by the user wins
        os.environ.setdefault("CUTS_JOBS", stage2_jobs(load_params(profile)))
    except ValueError as exc:
        print(f"cutslib.figures: error: params/{profile}.yaml: {exc}", file=sys.stderr)
        return 2
    executed_dir(profile).mkdir(parents=True, exist_ok=True)
    start, timings = time.monotonic(), {}
    for i, step in enumerate(steps, 1):
        head = f"[{i}/{len(steps)}] {step['name']}"
        seconds_file = step["key_file"].with_suffix(".seconds")  # the notebook's time when it last ran
        if step["cached"]:
            print(f"{head}: cached, skipped", flush=True)
            if seconds_file.exists():
                timings[step["name"]] = float(seconds_file.read_text())
            continue
        if args.dry_run:
            print(f"{head}: would run with {step['parameters']}", flush=True)
            continue
        print(f"{head}: running ...", flush=True)
        t0 = time.monotonic()
        try:
            run_notebook(step)
        except Exception as exc:
            print(f"{head}: FAILED after {time.monotonic() - t0:.0f} s; see "
                  f"{step['output'].with_suffix('.failed.ipynb')}\n{type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        timings[step["name"]] = time.monotonic() - t0
        write_text(seconds_file, f"{timings[step['name']]:.1f}\n")
        print(f"{head}: done in {timings[step['name']]:.0f} s (total {time.monotonic() - start:.0f} s)",
              flush=True)
    if args.dry_run:
        return 0
    gallery = make_gallery()
    readme = write_readme(profile, timings)
    print(f"figures: {len(gallery)} gallery images, {readme}; total {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
