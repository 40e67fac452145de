"""`cuts data list | fetch [NAME...] | info NAME`: what is there, what it weighs, where it came from."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from cutslib import data


def register(sub):
    """Add ``cuts data`` and its sub-commands to the parser."""
    parser = sub.add_parser("data", help="list, fetch and describe the data sets")
    commands = parser.add_subparsers(dest="data_command", required=True)

    commands.add_parser("list", help="every data set: files, size, fetched or not, licence").set_defaults(func=list_)

    fetch = commands.add_parser("fetch", help="fetch, verify (SHA-256) and prepare data sets")
    fetch.add_argument("names", nargs="*", metavar="NAME", help=f"one of: {', '.join(data.SOURCES)}")
    fetch.add_argument("--all", action="store_true", help="every data set")
    fetch.set_defaults(func=fetch_)

    info = commands.add_parser("info", help="sources, licence, size and prepared shapes of one data set")
    info.add_argument("name", metavar="NAME", help=f"one of: {', '.join(data.NAMES)}")
    info.set_defaults(func=info_)


def list_(args) -> int:
    print(f"{'name':<18} {'files':>5} {'MB':>7}  {'fetched':<9} {'prepared':<8} licence")
    for name in data.SOURCES:
        remotes = data.files(name)
        present, total = data.is_fetched(name)
        prepared = "yes" if data.prepared_path(name).exists() else "no"
        print(f"{name:<18} {total:>5} {_mb(remotes):>7.1f}  {f'{present}/{total}':<9} {prepared:<8} "
              f"{_licence(remotes)}")
    print(f"{'demo':<18} {0:>5} {0:>7.1f}  {'built in':<9} {'-':<8} {DEMO_LICENCE}")
    print(f"cache: {data.data_dir()}")
    return 0


def fetch_(args) -> int:
    names = list(data.SOURCES) if args.all else args.names
    if not names:
        raise ValueError("name at least one data set, or pass --all; known: " + ", ".join(data.SOURCES))
    for name in names:
        data.check_name(name, downloadable=True)
    for name in names:
        start = time.perf_counter()
        ds = data.load(name)
        print(f"{name}: {len(ds)} images {ds.images.shape[1:]} ready in {time.perf_counter() - start:.1f} s "
              f"({data.prepared_path(name)})")
    return 0


def info_(args) -> int:
    if args.name == "demo":
        ds = data.load("demo")
        print("demo (built in: scikit-image's bundled fundus photograph, skimage.data.retina(); no download)")
        print(f"  licence:  {DEMO_LICENCE}")
        print(f"  prepared: {len(ds)} image; images {ds.images.shape} {ds.images.dtype}, no mask")
        return 0
    remotes = data.files(args.name)
    present, total = data.is_fetched(args.name)
    print(f"{args.name} (registry name {data.SOURCES[args.name]})")
    for source in sorted({_source(r.url) for r in remotes}):
        print(f"  source:   {source}")
    print(f"  licence:  {_licence(remotes)}")
    print(f"  files:    {total} ({_mb(remotes):.1f} MB), {present} fetched under {data.data_dir() / 'raw'}")
    cached = data.prepared_path(args.name)
    if cached.exists():
        ds = data.load(args.name, progress=False)
        shapes = f"images {ds.images.shape} {ds.images.dtype}, masks {ds.masks.shape} {ds.masks.dtype}"
        print(f"  prepared: {len(ds)} images; {shapes}")
        for image_id, note in ds.flags.items():
            print(f"  flag:     {image_id}: {note}")
    else:
        print(f"  prepared: not yet (run `cuts data fetch {args.name}`)")
    return 0


DEMO_LICENCE = "CC0 1.0 (public domain), scikit-image's retina.jpg from Wikimedia; no mask"


def _mb(remotes) -> float:
    return sum(r.bytes for r in remotes) / 1e6


def _licence(remotes) -> str:
    return "; ".join(sorted({r.licence for r in remotes}))


def _source(url: str) -> str:
    """``host owner/repo @ commit`` for raw.githubusercontent.com URLs, else the host."""
    parsed = urlparse(url)
    parts = parsed.path.strip("/").split("/")
    if parsed.netloc == "raw.githubusercontent.com" and len(parts) >= 3:
        return f"github.com/{parts[0]}/{parts[1]} @ {parts[2]}"
    return parsed.netloc
