#!/usr/bin/env bash
# Device-machine work in few calls; results land in $OUT. Each part fits one call's 10 minutes:
#   tests   info, check, the soak run and the whole test suite on the GPU (property tests with a
#           larger budget), then call_costs.py
#   bench   bench_elu.py (per-call costs, bandwidth tables, first call)
#   sweep   config_sweep.py (launch configurations and timing spread, 2**16-2**24)
#   models  bench_model.py
# Usage (device tool): bash benchmarks/device_run.sh PART...   (default: tests)
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD FASTELU_EXAMPLES=${FASTELU_EXAMPLES:-1000}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# The C++ extension, built in place (pip's editable install shells out to the network there).
python3 setup.py build_ext --inplace > "$OUT/build.txt" 2>&1 || { tail -30 "$OUT/build.txt"; exit 1; }
# Few files: the device tool brings back at most eight.
for part in "${@:-tests}"; do
  case $part in
    tests)
      { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
        python3 -m elu_op info 2>&1
        python3 -m elu_op check 2>&1
        python3 tests/gpu_soak.py 100000 2>&1; } | tee "$OUT/summary.txt" | tail -3
      python3 -m pytest -q -rs tests -p no:cacheprovider 2>&1 | tee "$OUT/tests.txt" | tail -8
      python3 benchmarks/call_costs.py --out "$OUT" 2>&1 | tail -30 ;;
    bench) python3 benchmarks/bench_elu.py --out "$OUT" 2>&1 | grep -v "^W1" | tail -90 ;;
    sweep) python3 benchmarks/config_sweep.py --out "$OUT" 2>&1 | grep -v "^W1" | tail -50 ;;
    models) python3 benchmarks/bench_model.py --out "$OUT" 2>&1 | tail -40 ;;
    *) echo "unknown part: $part"; exit 2 ;;
  esac
done
