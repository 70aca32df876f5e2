#!/usr/bin/env bash
# One-shot CUDA check: the whole test suite (CUDA cases included) and the
# benchmark harness on the GPU. Writes logs and benchmark files under $OUT
# (default: gpu-out). Usage: bash scripts/gpu_check.sh
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, jax; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0)); print('jax', jax.__version__)"
  nproc
} 2>&1 | tee "$OUT/env.txt"
# JAX stays on the CPU for the parity tests (they compare with JAX's CPU numbers).
# pytest runs in its own session so that its xdist workers die with it at the time
# limit (left running, they loaded the CPU during the benchmarks of the first H100 run).
JAX_PLATFORMS=cpu setsid timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -q -n "${WORKERS:-12}" \
  -p no:cacheprovider -r fEs ${PYTEST_ARGS:-} >"$OUT/tests.txt" 2>&1 &
pid=$!
wait "$pid"
kill -- -"$pid" 2>/dev/null
grep -E "^(FAILED|ERROR)" "$OUT/tests.txt" | head -n 40; tail -n 3 "$OUT/tests.txt"
# Benchmarks: JAX on the GPU too, without grabbing 75% of its memory up front.
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout "${BENCH_TIMEOUT:-270}" python3 -m benchmarks \
  --device cuda --no-progress --min-run-time "${MIN_RUN:-0.2}" --filter "${BENCH_FILTER:-^(?!picograd)}" \
  --out "$OUT/bench" 2>&1 | tee "$OUT/bench.txt"
ls -R "$OUT"
