#!/usr/bin/env bash
# GPU check for the event-level ops: builds anagrad with `--features cuda`,
# runs the CUDA-vs-CPU op tests (tests/ops_cuda.rs) and the CPU op tests in the
# same build, then the hist benchmarks (CPU and CUDA groups). Needs an NVIDIA
# GPU, its driver, and a CUDA toolkit for candle's own kernels (nvcc; pin PyPI
# toolkits to 13.0.x to match driver 580). Our kernels are compiled at run time
# with NVRTC, so libnvrtc must be loadable (LD_LIBRARY_PATH).
#
# Usage: scripts/gpu-check.sh [--no-bench]
set -euo pipefail
cd "$(dirname "$0")/.."

nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv
if [[ -z "${CUDA_COMPUTE_CAP:-}" ]]; then
    CUDA_COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d '.')
    export CUDA_COMPUTE_CAP
fi
echo "CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP}"
command -v nvcc >/dev/null && nvcc --version | tail -n2

cargo build --release --features cuda --all-targets
cargo test --release --features cuda --test ops_cuda -- --nocapture
cargo test --release --features cuda --test ops_hist --test ops_cut --test ops_edges

if [[ "${1:-}" != "--no-bench" ]]; then
    cargo bench --features cuda --bench hist -- --noplot 2>&1 | grep -E "^bkde|thrpt|time:" 
fi
