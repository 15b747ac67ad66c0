#!/usr/bin/env bash
# One call on the device machine: info, check, the whole test suite on the GPU (property tests with
# a larger budget), the soak run and the benchmark. Results land in $OUT.
# Usage (device tool): bash benchmarks/device_run.sh [bench_elu.py arguments]
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD FASTELU_EXAMPLES=${FASTELU_EXAMPLES:-1000}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# The C++ extension, built in place (pip's editable install shells out to the network there).
python3 setup.py build_ext --inplace > "$OUT/build.txt" 2>&1 || { tail -30 "$OUT/build.txt"; exit 1; }
# Few files: the device tool brings back at most eight.
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -m elu_op info 2>&1
  python3 -m elu_op check 2>&1
  python3 tests/gpu_soak.py 100000 2>&1; } | tee "$OUT/summary.txt" | tail -3
python3 -m pytest -q -rs tests -p no:cacheprovider 2>&1 | tee "$OUT/tests.txt" | tail -8
python3 benchmarks/bench_elu.py --out "$OUT" "$@" 2>&1 | tail -90
python3 benchmarks/call_costs.py --out "$OUT" 2>&1 | tail -30
