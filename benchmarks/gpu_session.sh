#!/bin/bash
# The GPU session's one check, prepared here and run once on a lent device machine (about 8 min on an H100):
#
#   1. the Stage-1 benchmark on CUDA: a dense and a windowed (`fast`) paper-profile retina epoch, medians of 3
#      (issue 11 asks for one GPU epoch of each mode);
#   2. the `paper` profile, retina seed 1: 200 dense epochs on the GPU, then the exact Stage 2 on all 56 images,
#      one image per CPU core, scored under every protocol, written as a record with its times (issue 12).
#
# Everything it makes goes to $OUT (the device tool brings back up to 8 files): gpu_session.log, bench_stage1.txt
# and the record (scores.csv, table1.md, table1.csv, RUN.md, stage1.csv). Copy the record into
# figures/published/retina/ under a folder that names the device, and say which card made it.
#
# The machine has torch, numpy, scipy, scikit-learn, scikit-image, pandas and matplotlib, not nibabel or pooch, and
# no network. Prepare here, once, from the repository root:
#
#   CUTS_DATA_MIRROR=../shared/data .venv/bin/cuts data fetch retina    # makes data/prepared/retina-v1.npz
#   grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
#   .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl nibabel==5.3.2 pooch==1.8.2 platformdirs==4.3.6
#
# then call the device tool's run with command "bash benchmarks/gpu_session.sh", carry ["data/prepared", ".whl"],
# timeout_s 590. Dry run on a CPU (a few minutes; a smoke profile on the 6-slice data set):
#
#   OUT=/tmp/gpu-dry GPU_SESSION_DATASET=brain_tumor_cuts GPU_SESSION_PROFILE=smoke GPU_SESSION_LIMITS="600 900" \
#       bash benchmarks/gpu_session.sh
set -uo pipefail
OUT=${OUT:?set OUT to the folder that receives the results}
DATASET=${GPU_SESSION_DATASET:-retina}
PROFILE=${GPU_SESSION_PROFILE:-paper}
LIMITS=(${GPU_SESSION_LIMITS:-150 400})  # seconds for step 1 and step 2: the whole stays inside one 10-min call
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_session.log") 2>&1
if compgen -G ".whl/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 CUTS_DATA_DIR=${CUTS_DATA_DIR:-$PWD/data} CUTS_RESULTS_DIR=${CUTS_RESULTS_DIR:-/tmp/cuts-results}
export CUTS_JOBS=${CUTS_JOBS:-$(nproc)}
date -u; uname -a; nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
$PY -c "import torch, sklearn, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-', 'sklearn', sklearn.__version__,
'numpy', numpy.__version__)"
DEVICE=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")

echo "== 1. Stage-1 epoch, dense and windowed, on $DEVICE"
start=$SECONDS
timeout ${LIMITS[0]} $PY benchmarks/bench_stage1.py --reps 3 --no-plain --device "$DEVICE" 2>&1 | tee "$OUT/bench_stage1.txt"
echo "bench_stage1: rc=$? in $((SECONDS - start)) s"

echo "== 2. $PROFILE profile, $DATASET seed 1: Stage 1 on $DEVICE, exact Stage 2 over $CUTS_JOBS jobs, every protocol"
start=$SECONDS
timeout ${LIMITS[1]} $PY -m cutslib.published --dataset "$DATASET" --profile "$PROFILE" --seeds 1 --stage2 exact \
    --methods cuts_kmeans cuts_diffusion_persistent cuts_diffusion_persistent2023 cuts_diffusion_best_oracle \
    cuts_diffusion_fixed_level --out "$OUT/record" --no-progress
echo "published: rc=$? in $((SECONDS - start)) s"
ls -l "$OUT" "$OUT/record" 2>&1
[ -f "$OUT/record/table1.md" ] && cat "$OUT/record/table1.md"
date -u
