#!/usr/bin/env bash
# Device-machine work in few calls; results land in $OUT. Each part fits one call's 10 minutes:
#   tests    info, check, a soak run and the test suite on the GPU (TESTS, default tests/; the whole
#            suite takes about 11 min on the H200 in one process, past one call: WORKERS=4 spreads it
#            over pytest-xdist's processes, or TESTS='tests/test_[a-k]*.py', then TESTS='tests/test_[l-z]*.py')
#   bench    bench_elu.py --quick (2**16-2**28, forward, backward, in place), then tune beside the rule
#   layouts  bench_layouts.py (views: slices, chunks, broadcasts; LAYOUTS_LOG2, default 27,24)
#   deep     bench_layouts.py --deep (views of 5 to 12 dimensions that do not merge)
#   memory   bench_model.py --memory (held and peak memory and step time of ELU models' training steps;
#            MEMORY_ONLY: a regex over 'model dtype variant', default every row)
#   compile  bench_compile.py (COMPILE_DTYPES, default bf16,fp16; COMPILE_MODELS=1 adds the model rows)
#   picks    studies/inductor_picks.py (Inductor's own launch choice for a compiled float32 graph)
#   calls    call_costs.py (per-call steps) and bench_elu.py's per-call table
#   sizes    bench_sizes.py, 2**10-2**30 (SIZES_LOG2, default 10-30; SIZES_DIRECTIONS, default forward,backward;
#            SIZES_DTYPES; SIZES_ROUNDS, default 5; SIZES_GRAPHS=1: every implementation replayed from a CUDA graph)
#   sweep    studies/config_sweep.py for 16-bit at 2**18-2**23 (SWEEP_LOG2, SWEEP_DTYPES; SWEEP_GRAPHS=1: from CUDA graphs)
#   transpose  studies/transpose_tile.py (the backward with a transposed gradient; TRANSPOSE_LOG2, default 24,27)
#   shapes   studies/shape_sweep.py and studies/register_sweep.py at 2**SHAPES_LOG2 elements (default 27)
#   grid     studies/grid_floor.py at 2**GRID_LOG2 elements (default 24; a list, '20 22', runs each): a copy-only Triton kernel in fastelu's shapes; GRID_MATH=1: the bf16 forward's two maths
#   kernelbench  studies/kernelbench_eval.py on the KernelBench checkout in .kb/ (carried; with its wheels in .whl/kb/)
#   kbphases  studies/kernelbench_phases.py (per-trial times of the eval's two phases; after freed memory)
#   two      multi_gpu/run_two_gpus.py (needs two GPUs)
# Usage (device tool): bash benchmarks/device_run.sh PART...   (default: tests)
set -uo pipefail
shopt -s nullglob  # .whl/kb/ is there only for the kernelbench parts
# PIP_NO_INDEX: no network there (the test that builds a wheel under pip's isolation skips).
export PYTHONUNBUFFERED=1 FASTELU_EXAMPLES=${FASTELU_EXAMPLES:-300} FASTELU_CACHE=/tmp/fastelu-build PIP_NO_INDEX=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
# No network there: what pip would install comes from the carried wheels (.whl/), behind the
# machine's own packages.
pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl .whl/kb/*.whl > /dev/null 2>&1
export PYTHONPATH=$PWD:/tmp/site
# The C++ part, compiled as a first import would, but with its output kept.
python3 -m elu_op build --verbose > "$OUT/build.txt" 2>&1 || { tail -30 "$OUT/build.txt"; exit 1; }
for part in "${@:-tests}"; do
  case $part in
    tests)
      { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
        python3 -m elu_op info 2>&1
        python3 -m elu_op check 2>&1
        python3 tests/gpu_soak.py "${SOAK_CALLS:-20000}" 2>&1; } | tee "$OUT/summary.txt" | tail -3
      python3 -m pytest -q -rs ${WORKERS:+-n $WORKERS} ${TESTS:-tests} -p no:cacheprovider -W ignore 2>&1 \
        | tee "$OUT/tests.txt" | tail -15 ;;
    bench)
      python3 benchmarks/bench_elu.py --quick --out "$OUT" 2>&1 | grep -v "^W1" | tail -60
      { python3 -m elu_op info; FASTELU_CACHE=$OUT/cache python3 -m elu_op tune --rounds 3; } 2>&1 \
        | grep -v "^tuning" | tee "$OUT/tune.txt" | tail -12 ;;
    layouts) python3 benchmarks/bench_layouts.py --log2 "${LAYOUTS_LOG2:-27,24}" --out "$OUT" 2>&1 | grep -v "^W1" ;;
    deep) python3 benchmarks/bench_layouts.py --deep --out "$OUT" 2>&1 | grep -v "^W1" | tail -30 ;;
    memory) python3 benchmarks/bench_model.py --memory --only "${MEMORY_ONLY:-}" --out "$OUT" 2>&1 | grep -v "^W1" | tail -45 ;;
    compile)
      python3 benchmarks/bench_compile.py --dtypes "${COMPILE_DTYPES:-bf16,fp16}" \
        ${COMPILE_MODELS:+--models} --out "$OUT" 2>&1 | grep -v "^W1" | tail -40 ;;
    picks) python3 benchmarks/studies/inductor_picks.py --out "$OUT" 2>&1 | grep -v "^W1" | tail -10 ;;
    calls) python3 benchmarks/call_costs.py --out "$OUT" 2>&1 | tail -30 ;;
    sizes)
      python3 benchmarks/bench_sizes.py --directions "${SIZES_DIRECTIONS:-forward,backward}" --dtypes "${SIZES_DTYPES:-fp32,bf16,fp16}" \
        --log2 "${SIZES_LOG2:-10-30}" --rounds "${SIZES_ROUNDS:-5}" ${SIZES_GRAPHS:+--graphs} --out "$OUT" 2>&1 | grep -v "^W1" | tail -5 ;;
    sweep)
      python3 benchmarks/studies/config_sweep.py --dtypes "${SWEEP_DTYPES:-bf16,fp16}" --log2 "${SWEEP_LOG2:-18-23}" \
        --rounds 7 --name configs_mid${SWEEP_GRAPHS:+_graphs} ${SWEEP_GRAPHS:+--graphs} --out "$OUT" 2>&1 | grep -v "^W1" | tail -30 ;;
    transpose)
      python3 benchmarks/studies/transpose_tile.py --log2 "${TRANSPOSE_LOG2:-24,27}" 2>&1 | grep -v "^W1" \
        | tee "$OUT/transpose_tile.txt" ;;
    shapes)
      for script in shape_sweep register_sweep; do
        python3 "benchmarks/studies/$script.py" "${SHAPES_LOG2:-27}" 2>&1 | grep -v "^W1" | tee "$OUT/$script.txt"
      done ;;
    grid)
      for log2 in ${GRID_LOG2:-24}; do
        python3 benchmarks/studies/grid_floor.py "$log2" ${GRID_MATH:+--math} 2>&1 | grep -v "^W1" | tee -a "$OUT/grid_floor.txt"
      done ;;
    kernelbench) python3 benchmarks/studies/kernelbench_eval.py .kb --out "$OUT" 2>&1 | grep -v "^W1" | tail -30 ;;
    kbphases) python3 benchmarks/studies/kernelbench_phases.py .kb 2>&1 | grep -v "^W1\|^\[Profiling\]" | tee "$OUT/kbphases.txt" ;;
    two) python3 benchmarks/multi_gpu/run_two_gpus.py "$OUT/two_gpus.md" 2>&1 | tail -30 ;;
    *) echo "unknown part: $part"; exit 2 ;;
  esac
done
