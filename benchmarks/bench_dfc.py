"""DFC time per image on retina at the paper's settings (1000-iteration cap, stop at 3 labels).

Prints the per-image wall time, iterations are not capped below the paper's 1000. Usage:
    CUTS_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_dfc.py [N_IMAGES]
"""

import sys
import time

import numpy as np

from cutslib import data
from cutslib.dfc import dfc_segment

n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ds = data.load("retina", progress=False)
times = []
for i in range(n):
    start = time.perf_counter()
    labels = dfc_segment(ds.images[i], seed=1)
    times.append(time.perf_counter() - start)
    print(f"{ds.ids[i]}: {times[-1]:.1f} s, {len(np.unique(labels))} labels", flush=True)
print(f"DFC on retina, {n} images: median {np.median(times):.1f} s per image "
      f"(min {min(times):.1f}, max {max(times):.1f})")
