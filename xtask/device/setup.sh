#!/usr/bin/env bash
# Source on the lent GPU machine: unpacks the carried release xtask (built here with
# `--features cuda`, stripped, xz-compressed into .carry/), puts CUDA's NVRTC on the library path
# and points CubeCL's kernel and autotune caches at /tmp/vq, seeded from the carried
# .carry/cubecl-cache.tar.xz. `save_kernel_cache` packs the grown caches into $OUT for the next call.
#
# Why: burn 0.21's CUDA backend JIT-compiles (NVRTC, ~0.4–3 s each) and autotunes every kernel on
# first use; without the caches the first ITHQ forward took minutes (BENCHMARKS.md).

# XTASK_XZ picks another carried build (e.g. .carry/xtask-tuned.xz, the autotuned one).
build=${XTASK_XZ:-.carry/xtask.xz}
# (.carry/ is git-ignored: a call that does not name it in its carry list arrives without it.)
[ -f "$build" ] || { echo "setup.sh: $build is missing — name .carry in the call's carry list" >&2; exit 2; }
mkdir -p /tmp/vq && xz -dc "$build" > /tmp/vq/xtask && chmod +x /tmp/vq/xtask
nvrtc=$(find / -name 'libnvrtc.so.13*' -not -path '*/proc/*' 2>/dev/null | head -1)
# cuBLASLt for the transformer engine (a CUDA build loads it at run time, like NVRTC).
cublaslt=$(find / -name 'libcublasLt.so.13*' -not -path '*/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$(dirname "$nvrtc"):${cublaslt:+$(dirname "$cublaslt"):}${LD_LIBRARY_PATH:-}"
export XTASK=/tmp/vq/xtask
# The transformer engine's NVRTC-compiled kernels (CUBIN), kept with CubeCL's caches.
export VQ_KERNEL_CACHE=/tmp/vq/kernels
# A warm machine keeps the caches of its last call: unpack the carried ones only on a fresh one.
# Without carried ones, the committed cubecl-cache-h200.tar.xz (the autotuned build's kernels and
# tuning results on an H200 for stage-2 training at batch 512: 392 s before the first
# step without it, none with it; and for stage 1 at batch 64 on cuda-unfused: 30 steps in
# 7 minutes without it, 3.1 steps/s with it; entries for changed kernels or other shapes are simply
# compiled anew).
cache=.carry/cubecl-cache.tar.xz
[ -f "$cache" ] || cache=xtask/device/cubecl-cache-h200.tar.xz
[ ! -d /tmp/vq/cc ] && tar -xJf "$cache" -C /tmp/vq
# AUTOTUNE_LEVEL (default minimal) only sets how finely matmul and kernel tuning keys round problem
# sizes (minimal: powers of 2.5, so K = 1,024 and 1,408 share one tuned kernel; full: exact sizes; the
# candidates are the same at every level). Another level means new tuning.
level=${AUTOTUNE_LEVEL:-minimal}
printf '[compilation]\ncache = { file = "/tmp/vq/cc" }\n[autotune]\nlevel = "%s"\ncache = { file = "/tmp/vq/at" }\n' "$level" > cubecl.toml
# CUBECL_LOG=1: each kernel compilation and autotune decision, with timings, and the memory
# pool's page allocations and cleanups, into $OUT.
if [ -n "${CUBECL_LOG:-}" ]; then
  printf '[compilation.logger]\nlevel = "basic"\nfile = "%s/compile.log"\n[autotune.logger]\nlevel = "full"\nfile = "%s/autotune.log"\n[memory.logger]\nlevel = "basic"\nfile = "%s/memory.log"\n' "$OUT" "$OUT" "$OUT" >> cubecl.toml
fi
export CUBECL_AUTOTUNE_LEVEL=$level
# (xz on all cores: the compile cache is ≈ 200 MB, a minute for one-threaded xz.)
save_kernel_cache() { tar -c -C /tmp/vq $(cd /tmp/vq && ls -d cc at kernels 2>/dev/null) | xz -T0 -6 > "$OUT/cubecl-cache.tar.xz"; }
# Peak GPU memory of everything that follows, sampled every 100 ms (burn 0.21 has no allocator high-water mark).
# (stderr off the caller's pipe, killed on exit: a sampler holding the pipe kept `| tail` waiting.)
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "${OUT:-/tmp}/gpu-memory.log" 2>/dev/null &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "nvrtc: $nvrtc; cublasLt: ${cublaslt:-not found}; kernel cache: $(du -sh /tmp/vq/cc /tmp/vq/at /tmp/vq/kernels 2>/dev/null | tr '\n' ' ')"
