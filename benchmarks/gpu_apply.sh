#!/usr/bin/env bash
# The GPU end-to-end measurement of issue 18 as ONE device call (about 6-9 minutes on an H100/H200).
#
# The GPU image has PyTorch, NumPy, SciPy, Matplotlib, attrs, certifi, click and pyparsing, but neither
# GDAL's bindings nor rasterio: carry rasterio's manylinux wheel (it holds its own libgdal) and the
# three small packages it needs. Once, here, in the repository root:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl rasterio==1.4.4 affine==3.0.1 cligj==0.7.2 click-plugins==1.1.1.2
#
# then the device call: run(command="bash benchmarks/gpu_apply.sh", carry=[".whl"], timeout_s=600)
# and commit $OUT/gpu_apply_<gpu>.json under benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name(0).split()[1].lower() if torch.cuda.is_available() else 'cpu')")
out=${OUT:-benchmarks/results}
mkdir -p "$out"
python3 benchmarks/gpu_apply.py --sizes "${SIZES:-1024,2048}" --out "$out/gpu_apply_${gpu}.json" 2>&1 | tee "$out/gpu_apply_${gpu}.log"
