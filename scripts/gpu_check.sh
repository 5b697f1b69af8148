#!/usr/bin/env bash
# One-shot check for a lent GPU machine (H100/H200, its own python3 with torch, no internet):
# build the kernels in place for sm_90, run the CUDA tests with the kernels required
# (GENIMG_FAST_IMPL=cuda: kernels, models, trainers), run the quick GPU benchmark (JSON, markdown,
# chart), profile the norm step and a step's host time, and time torch.compile at the DCGAN norm
# shapes and on the objectives. The run's record goes to $OUT (or
# benchmarks/results/gpu-check-<time>/); its build, step and test logs to $OUT/logs/, which git
# ignores: commit the record, not the logs (benchmarks/results/README.md).
# On an H100 the whole check has taken 5.7 minutes with GPU_CHECK_SECONDS=390 (the full networks
# benchmark had 108 s and finished) and 6.9 minutes with more steps (the networks benchmark got
# no time): give the run a 440-second limit, leaving room for a short
# rerun in a 15-minute lease. Last come the compile comparison and, with time to spare, the
# networks benchmark outside --quick.
# Every step writes its files as it finishes, so a run cut short still returns what it did.
# Every kernel path runs, those waiting for a GPU check too (GENIMG_FAST_UNVERIFIED_KERNELS=1); the
# CUDA tests note which paths each test ran, and verified_paths.json says which paths passed at
# this commit: `python -m buildtools.kernel_record add <results folder>` records them
# (docs/kernel-verification.md).
# Pass the commit for the results record, typed literally from your own checkout: the device's
# copy of the tree may carry a stale .git, so `git rev-parse` there can name an older commit.
#   GENIMG_FAST_COMMIT=<sha of your HEAD> GPU_CHECK_SECONDS=390 GPU_CHECK_BUNDLE=1 OUT=$OUT bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-benchmarks/results/gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}"
# The logs and the tests' raw path outcomes: what a failure is read from, not the record.
LOGS="$OUT/logs"
mkdir -p "$LOGS"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
export GENIMG_FAST_UNVERIFIED_KERNELS=1
COMMIT="${GENIMG_FAST_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
LOG="$LOGS/gpu_check.log"
failures=()

step() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$LOG"; }

# GPU_CHECK_BUNDLE=1: at exit, the logs, markdown summaries and profiles go into one
# gpu_check_logs.tar.gz (a lent machine may hand back only a few files).
bundle() {
  local files
  files=$(cd "$OUT" && ls -d -- logs *.md *.txt 2>/dev/null)
  [[ -n "$files" ]] && (cd "$OUT" && tar czf gpu_check_logs.tar.gz --remove-files $files)
}
[[ -n "${GPU_CHECK_BUNDLE:-}" ]] && trap bundle EXIT

[[ -z "${GENIMG_FAST_COMMIT:-}" ]] && echo "GENIMG_FAST_COMMIT is unset: the report names $COMMIT (git rev-parse here)" | tee -a "$LOG"
step "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
  "$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
  nvcc --version | tail -n 2; } 2>&1 | tee -a "$LOG"

step "build (TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0})"
start=$SECONDS
TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" GENIMG_FAST_BUILD_CUDA=1 MAX_JOBS="$(nproc)" \
  timeout 180 "$PY" setup.py build_ext --inplace > "$LOGS/build.log" 2>&1 || failures+=("build")
grep -E "genimg_fast: |error" "$LOGS/build.log" | head -n 40 | tee -a "$LOG"
echo "build took $((SECONDS - start)) s" | tee -a "$LOG"

step "backend_info"
GENIMG_FAST_IMPL=cuda "$PY" -m genimg_fast.cli info > "$OUT/backend_info.json" 2>> "$LOG" || failures+=("backend_info")
cat "$OUT/backend_info.json" | tee -a "$LOG"

# The cluster-path norm kernels (new in 35a6920) first, under a short limit: if they hang or
# answer wrong, the rest of the check runs without them (GENIMG_FAST_NORM_CLUSTER_MAX=0: a
# block a group up to 2048 values, the tile path above), so it still tests everything else.
step "smoke: the cluster-path norm kernels"
if ! GENIMG_FAST_IMPL=cuda PYTHONPATH=. timeout 60 "$PY" scripts/cluster_smoke.py 2>&1 | tee -a "$LOG"; then
  failures+=("cluster_smoke")
  export GENIMG_FAST_NORM_CLUSTER_MAX=0
  echo "the cluster path failed: the rest of the check runs with GENIMG_FAST_NORM_CLUSTER_MAX=0" | tee -a "$LOG"
fi

# One pytest per kernel family: a sticky CUDA error in one cannot hide the other's results.
# Four worker processes share the GPU where pytest-xdist is installed: the tests are small and
# bound by the host, so they finish in a fraction of the time.
PARALLEL=()
"$PY" -c "import xdist" 2>/dev/null && PARALLEL=(-n 4)
# A test stuck past 100 s fails alone (pytest-timeout, where installed) and the run goes on to its
# summary; without it, pytest's faulthandler prints where each worker is stuck (a hung CUDA test
# otherwise ends the run with no word of where).
STUCK=(-o faulthandler_timeout=100)
"$PY" -c "import pytest_timeout" 2>/dev/null && STUCK=(--timeout 100)
run_tests() {  # name, timeout, files...
  local name=$1 limit=$2; shift 2
  step "tests: $name (kernels required)"
  GENIMG_FAST_IMPL=cuda GENIMG_FAST_PATH_OUTCOMES="$LOGS/paths_$name.json" \
    timeout "$limit" "$PY" -m pytest "$@" ${PARALLEL[@]+"${PARALLEL[@]}"} "${STUCK[@]}" \
    -p no:cacheprovider -q -rfEs \
    > "$LOGS/tests_$name.log" 2>&1 || failures+=("tests_$name")
  tail -n 25 "$LOGS/tests_$name.log" | tee -a "$LOG"
}
run_tests losses 200 tests/test_backend.py tests/test_l1_loss_cuda.py tests/test_stored_grad_cuda.py \
  tests/test_loss_terms_cuda.py
run_tests norm_act 240 tests/test_norm_act_cuda_tiles.py tests/test_norm_act_cuda_block.py \
  tests/test_norm_act_cuda_cluster.py tests/test_norm_act_cuda_running_stats.py tests/test_models_cuda.py
run_tests training 240 tests/test_train_cuda.py tests/test_inference.py tests/test_bench_cuda.py tests/test_kernel_paths.py \
  tests/test_double_backward.py tests/test_device_image_pool.py tests/test_cuda_graphs_docs.py tests/test_train_data_wait.py

# A path passes when a test ran it and every test that ran it passed (a failed test whose paths are
# unknown fails them all); a test run cut short writes no outcomes, and then no path passes. The
# report also names the GPU's compute capability and a digest of the sources built here.
step "kernel paths verified at $COMMIT"
"$PY" -m buildtools.kernel_record gpu-report --out "$OUT/verified_paths.json" --commit "$COMMIT" \
  --gpu "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)" \
  "$LOGS"/paths_losses.json "$LOGS"/paths_norm_act.json "$LOGS"/paths_training.json 2>&1 \
  | tee -a "$LOG" || failures+=("verified_paths")

step "quick GPU benchmark"
GENIMG_FAST_IMPL=cuda timeout 240 "$PY" -m genimg_fast.cli bench --quick --device cuda \
  --json "$OUT/bench_quick_gpu.json" --markdown "$OUT/bench_quick_gpu.md" --plot "$OUT/bench_quick_gpu.png" 2>&1 \
  | tee -a "$LOG" || failures+=("bench")

# The same norm cases with the block and cluster kernels off (a block a group up to 2048 values,
# a cluster a group up to 32768 on Hopper), beside the quick benchmark's, so each shape shows
# whether its block or cluster kernel beats the tile path: a block a group lost to it at 4096 and
# 8192 values on an H100, which is why those groups take a cluster.
step "norm cases on the tile path alone (GENIMG_FAST_NORM_BLOCK_MAX=0 GENIMG_FAST_NORM_CLUSTER_MAX=0), beside the quick benchmark's"
GENIMG_FAST_IMPL=cuda GENIMG_FAST_NORM_BLOCK_MAX=0 GENIMG_FAST_NORM_CLUSTER_MAX=0 timeout 90 "$PY" -m genimg_fast.cli bench --quick --device cuda \
  --only "dcgan G b128,dcgan D b128,cyclegan b1" --markdown "$OUT/bench_norm_tile_path.md" 2>&1 | grep -v "USDT" \
  | tee -a "$LOG" || failures+=("bench_tile_path")

step "profile: host time, launches and kernel time per norm training step"
GENIMG_FAST_IMPL=cuda PYTHONPATH=. timeout 60 "$PY" benchmarks/profiling/profile_norm_act.py 2>&1 | grep -v "USDT" > "$OUT/profile_norm_act.txt" \
  || failures+=("profile")
cat "$OUT/profile_norm_act.txt" | tee -a "$LOG"

step "profile: where the host time of a small training step goes"
GENIMG_FAST_IMPL=cuda PYTHONPATH=. timeout 90 "$PY" benchmarks/profiling/profile_host.py 2>&1 | grep -v "USDT" > "$OUT/profile_host.txt" \
  || failures+=("profile_host")
head -n 8 "$OUT/profile_host.txt" | tee -a "$LOG"

step "does the suite's per-step event timing add host time to an eager step? (host loop, per step, per block)"
GENIMG_FAST_IMPL=cuda PYTHONPATH=. timeout 90 "$PY" benchmarks/profiling/eager_timing_methods.py 2>&1 | grep -v "USDT" \
  | tee "$OUT/eager_timing_methods.txt" | tee -a "$LOG" || failures+=("eager_timing_methods")

if [[ -z "${GENIMG_FAST_NORM_CLUSTER_MAX:-}" ]]; then  # not after a failed cluster smoke test
  step "the norm training paths side by side: the block and cluster paths against the tile path"
  GENIMG_FAST_IMPL=cuda PYTHONPATH=. timeout 120 "$PY" benchmarks/profiling/norm_path_sweep.py \
    --markdown "$OUT/norm_path_sweep.md" 2>&1 | grep -v "USDT" | tee -a "$LOG" || failures+=("norm_path_sweep")
fi

step "torch.compile comparison: DCGAN batch-128 norm layers and the recipes' objectives"
GENIMG_FAST_IMPL=cuda timeout 150 "$PY" -m genimg_fast.cli bench --quick --device cuda --compile \
  --only "dcgan G b128,cyclegan G b1,cyclegan D b1,pix2pix G b1,dcgan D b128,vae b128" \
  --json "$OUT/bench_compile.json" 2>&1 | grep -v "USDT" | tee -a "$LOG" || failures+=("bench_compile")

# Last, only with time to spare (GPU_CHECK_SECONDS, default 500, is the whole run's share): the
# networks and training iterations outside --quick (bf16 and channels_last variants too).
left=$(( ${GPU_CHECK_SECONDS:-500} - SECONDS ))
if (( left > 60 )); then
  step "networks and training iterations, all variants (${left} s left)"
  GENIMG_FAST_IMPL=cuda timeout "$left" "$PY" -m genimg_fast.cli bench --models --device cuda --repeats 500 \
    --json "$OUT/bench_models_full.json" --markdown "$OUT/bench_models_full.md" 2>&1 | grep -v "USDT" \
    | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  if ((rc == 124)); then
    echo "cut short at its time limit: not a failure; the record holds the cases it finished" | tee -a "$LOG"
  elif ((rc != 0)); then
    failures+=("bench_models_full")
  fi
else
  step "skipped the full networks benchmark: ${left} s left"
fi

if ((${#failures[@]})); then
  step "FAILED: ${failures[*]}"
  exit 1
fi
step "all passed"
