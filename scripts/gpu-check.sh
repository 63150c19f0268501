#!/usr/bin/env bash
# GPU check of issue 15: the bKDE, every `grad` loss and `anagrad train` on
# CUDA against the CPU path, plus bKDE throughput and the neos step time.
# The checks themselves are one Rust program, examples/gpu_check.rs; this
# script builds it with `--features cuda` and runs it. See scripts/README.md.
#
#   scripts/gpu-check.sh build   # where PyPI and crates.io are reachable; no GPU needed:
#                                # CUDA 13.0 wheels into .venv-cuda, release build with
#                                # --features cuda (CUDA_COMPUTE_CAP, default 90 = H100/H200),
#                                # stripped binaries into .gpu-check/bin (carried to the GPU)
#   scripts/gpu-check.sh run     # on the GPU machine (offline is fine): runs the carried
#                                # binaries, results as JSON in $OUT (default out/gpu-check)
#   scripts/gpu-check.sh all     # build + run on a GPU machine that reaches the registries
#   scripts/gpu-check.sh cpu     # the CPU half here (no feature, no GPU): the same checks
#                                # CPU against CPU, CPU numbers; results in out/gpu-check-cpu
#   scripts/gpu-check.sh tests   # old behaviour: cargo test ops_cuda + hist bench (needs cargo,
#                                # the toolkit and a GPU on one machine)
#
# Toolkit: PyPI wheels pinned to 13.0.x (DESIGN.md: driver 580). For CUDA 13
# NVIDIA dropped the -cu13 suffix (nvidia-cuda-nvcc-cu13 is a 0.0.1
# placeholder); nvcc 13 needs its crt headers and cicc (nvidia-cuda-crt,
# nvidia-nvvm) beside it. All wheels install into one prefix,
# .venv-cuda/.../nvidia/cu13/{bin,include,lib}.
# cudarc (through candle) links the CUDA libraries dynamically, so linking
# needs libcuda.so, which only a driver installs: `build` makes a stub with
# the driver API's symbols (as the toolkit's lib64/stubs does); at run time the
# real libcuda.so.1 of the driver is used.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# versions checked with `pip index versions` on 2026-12 (13.0 is the toolkit of driver 580)
WHEELS=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
)
VENV=$ROOT/.venv-cuda
# its own target dir: the cuda build neither holds the lock of target/release
# (others' release builds) nor overwrites target/release/anagrad
CUDA_TARGET=${CARGO_TARGET_DIR:-$ROOT/target/cuda}
STUBS=$CUDA_TARGET/stubs
BIN=$ROOT/.gpu-check/bin
RUNBIN=/tmp/gpu-check-bin

log() { echo "[gpu-check $(date -u +%H:%M:%S)] $*" >&2; }

cuda_prefix() {
    "$VENV/bin/python" - <<'EOF'
import os, nvidia
print(os.path.join(list(nvidia.__path__)[0], "cu13"))
EOF
}

install_toolkit() {
    if [[ ! -x $VENV/bin/python ]]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    log "installing ${WHEELS[*]}"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${WHEELS[@]}"
}

# environment for candle's build scripts (cudaforge: nvcc on PATH, CUDA_ROOT,
# CUDA_COMPUTE_CAP) and cudarc's link step (libraries by their dev names)
toolkit_env() {
    local c
    c=$(cuda_prefix)
    mkdir -p "$STUBS"
    for l in cudart cublas cublasLt curand nvrtc; do
        local so
        so=$(ls "$c"/lib/lib$l.so.* 2>/dev/null | head -n1)
        [[ -n $so ]] || { log "lib$l missing in $c/lib"; exit 1; }
        ln -sf "$so" "$STUBS/lib$l.so"
    done
    if [[ ! -e $STUBS/libcuda.so ]]; then
        # stub libcuda.so.1: every driver API entry point of cuda.h (versioned
        # and unversioned names), each an empty function; only for linking
        (gcc -E -P -I"$c/include" "$c/include/cuda.h"
         gcc -E -P -D__CUDA_API_VERSION_INTERNAL -I"$c/include" "$c/include/cuda.h") |
            tr '\n' ' ' | grep -oE '\bCUresult +cu[A-Za-z0-9_]+ *\(' |
            grep -oE 'cu[A-Za-z0-9_]+' | sort -u |
            sed 's/.*/void &(void) {}/' >"$STUBS/libcuda_stub.c"
        gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$STUBS/libcuda.so" "$STUBS/libcuda_stub.c"
    fi
    export PATH="$c/bin:$PATH"
    export CUDA_ROOT=$c CUDA_HOME=$c CUDA_PATH=$c
    export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
    export LIBRARY_PATH="$STUBS${LIBRARY_PATH:+:$LIBRARY_PATH}"
    # no RUSTFLAGS: they would change every crate's fingerprint (a full rebuild, twice)
    export CPATH="$c/include${CPATH:+:$CPATH}"
    log "nvcc: $(nvcc --version | tail -n2 | head -n1); CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"
}

build() {
    install_toolkit
    toolkit_env
    local jobs=${CARGO_BUILD_JOBS:-$(nproc)}
    log "cargo build --release --features cuda (jobs $jobs)"
    export CARGO_TARGET_DIR=$CUDA_TARGET
    cargo build --release --features cuda -j "$jobs" --bin anagrad --example gpu_check
    cargo test --release --features cuda -j "$jobs" --test ops_cuda --no-run 2>&1 |
        tee "$CUDA_TARGET/ops_cuda_build.log"
    # stripped they are 50-60 MB each (candle's PTX and sm_90a kernels), xz makes
    # them 6-8 MB: the device tool carries at most 64 MiB with the working tree
    rm -rf "$BIN"
    mkdir -p "$BIN"
    local t
    t=$(grep -oE '[^ (]*/release/deps/ops_cuda-[0-9a-f]+' "$CUDA_TARGET/ops_cuda_build.log" | tail -n1 || true)
    local f
    for f in "$CUDA_TARGET/release/anagrad" "$CUDA_TARGET/release/examples/gpu_check" ${t:+"$t"}; do
        local name
        name=$(basename "$f")
        name=${name%%-*}
        strip -o "$BIN/$name" "$f"
        xz -T0 -6 -f "$BIN/$name"
    done
    { git rev-parse HEAD; git status --short -- src examples tests; } >"$BIN/COMMIT" || true
    du -sh "$BIN"/*
    log "built; carry .gpu-check to the GPU machine"
}

# the CUDA runtime libraries on the GPU machine: ours if built here, else the
# nvidia-* wheels of the machine's python3 (the GPU image's PyTorch venv holds
# nvidia-cublas, -curand, -cuda-nvrtc, -cuda-runtime for CUDA 13), else the toolkit
runtime_env() {
    local dirs=()
    if [[ -d $VENV ]]; then
        dirs+=("$(cuda_prefix)/lib")
    fi
    local py
    for py in python3 /opt/torch/.venv/bin/python3; do
        command -v "$py" >/dev/null || continue
        while read -r d; do dirs+=("$d"); done < <("$py" - 2>/dev/null <<'EOF'
import glob, os
try:
    import nvidia
    for p in nvidia.__path__:
        for d in sorted(glob.glob(os.path.join(p, "*", "lib")) + glob.glob(os.path.join(p, "cu13", "lib"))):
            print(d)
except Exception:
    pass
EOF
        )
    done
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
        [[ -d $d ]] && dirs+=("$d")
    done
    local ld
    ld=$(IFS=:; echo "${dirs[*]}")
    export LD_LIBRARY_PATH="$ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    log "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
}

run() {
    local out=${OUT:-$ROOT/out/gpu-check}
    mkdir -p "$out"
    [[ -f $BIN/gpu_check.xz ]] || { log "$BIN/gpu_check.xz missing: run 'scripts/gpu-check.sh build' first (and carry .gpu-check)"; exit 1; }
    mkdir -p "$RUNBIN"
    local f
    for f in "$BIN"/*.xz; do
        local dst
        dst=$RUNBIN/$(basename "$f" .xz)
        if command -v xz >/dev/null; then
            xz -dc "$f" >"$dst"
        else
            python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$dst"
        fi
        chmod +x "$dst"
    done
    runtime_env
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv || true
    (cat "$BIN/COMMIT" 2>/dev/null; ldd "$RUNBIN/gpu_check") >&2 || true
    local rc=0
    # the main program writes summary.json, bkde.json, losses.json, train.json, step.json
    set -o pipefail
    timeout "${GPU_CHECK_TIMEOUT:-420}" "$RUNBIN/gpu_check" --device cuda --out "$out" \
        --anagrad "$RUNBIN/anagrad" --work /tmp/gpu-check-work 2>&1 | tee "$out/gpu_check_log.txt" || rc=$?
    log "gpu_check exit $rc"
    if [[ ! -f $out/summary.json ]]; then
        # the program did not get far enough to write its summary (e.g. a library failed to load)
        printf '{"issue": 15, "parity_pass": false, "error": "gpu_check exited %s before writing its summary; see gpu_check_log.txt", "nvidia_smi": "%s"}\n' \
            "$rc" "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n1)" >"$out/summary.json"
    fi
    if [[ -x $RUNBIN/ops_cuda && ${SKIP_OPS_TEST:-0} != 1 ]]; then
        # tests/ops_cuda.rs (several samples, Fold, unweighted, bad input), its own timeout
        (cd "$ROOT" && timeout 120 "$RUNBIN/ops_cuda" --test-threads 1 --nocapture) \
            >"$out/ops_cuda_test.txt" 2>&1 && log "ops_cuda tests passed" ||
            { log "ops_cuda tests FAILED (see ops_cuda_test.txt)"; [[ $rc != 0 ]] || rc=3; }
    fi
    return "$rc"
}

case "${1:-all}" in
build) build ;;
run) run ;;
all)
    if [[ -z ${CUDA_COMPUTE_CAP:-} ]] && command -v nvidia-smi >/dev/null; then
        CUDA_COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d '.')
        export CUDA_COMPUTE_CAP
    fi
    build
    run
    ;;
cpu)
    out=${OUT:-$ROOT/out/gpu-check-cpu}
    cargo build --release --bin anagrad --example gpu_check
    target/release/examples/gpu_check --device cpu --out "$out" --anagrad target/release/anagrad "${@:2}"
    ;;
tests)
    install_toolkit
    toolkit_env
    runtime_env
    cargo test --release --features cuda --test ops_cuda -- --nocapture
    cargo test --release --features cuda --test ops_hist --test ops_cut --test ops_edges
    cargo bench --features cuda --bench hist -- --noplot 2>&1 | grep -E "^bkde|thrpt|time:"
    ;;
*)
    echo "usage: $0 build|run|all|cpu|tests" >&2
    exit 2
    ;;
esac
