#!/usr/bin/env bash
# One call on the device machine: info, check, the whole test suite on the GPU, the benchmark.
# Usage (device tool): bash benchmarks/device_run.sh [--quick]; results land in $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -m elu_op info 2>&1 | tee "$OUT/info.txt"
python3 -m elu_op check 2>&1 | tee "$OUT/check.txt"
python3 -m pytest -q -rs tests -p no:cacheprovider 2>&1 | tee "$OUT/tests.txt" | tail -25
python3 benchmarks/bench_elu.py --out "$OUT" "$@" 2>&1 | tail -80
