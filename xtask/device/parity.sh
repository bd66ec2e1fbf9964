#!/usr/bin/env bash
# On the lent GPU machine: GPU parity — `xtask parity` on the tiny fixture (diffusers 0.42.1's
# reference tensors) in each precision, one table per dtype in $OUT/parity-<dtype><TAG>.md.
#   XTASK_XZ=.carry/xtask-tuned.xz bash xtask/device/parity.sh
# XTASK_XZ picks the carried build (default .carry/xtask.xz), DTYPES its precisions (default "f32 f16 bf16"),
# BACKEND the xtask backend (default cuda), TAG a suffix for the tables (two builds in one call), GPU the
# CUDA device (CUDA_VISIBLE_DEVICES), AUTOTUNE_LEVEL the tuning level (as in setup.sh), ENGINE the
# transformer engine (`--engine`: auto, the default, runs the CUDA engine on cuda; off burn's kernels). Needs fixtures/tiny/hub and fixtures/reference (`carry.sh hide` moves
# the reference aside: copy tiny.safetensors and cases.json back before the call).
#
# It works in its own folder (PARITY_DIR, default /tmp/vq-parity<TAG>) with its own cubecl.toml and
# kernel caches, so that a training run (train.sh, whose cubecl.toml is the checkout's) can share the machine.
set -u
repo=$(pwd)
dir=${PARITY_DIR:-/tmp/vq-parity${TAG:-}}
mkdir -p "$dir" && xz -dc "${XTASK_XZ:-.carry/xtask.xz}" > "$dir/xtask" && chmod +x "$dir/xtask"
nvrtc=$(find / -name 'libnvrtc.so.13*' -not -path '*/proc/*' 2>/dev/null | head -1)
cublaslt=$(find / -name 'libcublasLt.so.13*' -not -path '*/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$(dirname "$nvrtc"):${cublaslt:+$(dirname "$cublaslt"):}${LD_LIBRARY_PATH:-}"
# AUTOTUNE_LEVEL as in setup.sh (default minimal).
level=${AUTOTUNE_LEVEL:-minimal}
printf '[compilation]\ncache = { file = "%s/cc" }\n[autotune]\nlevel = "%s"\ncache = { file = "%s/at" }\n' \
  "$dir" "$level" "$dir" > "$dir/cubecl.toml"
export CUBECL_AUTOTUNE_LEVEL=$level
cd "$dir"
for dtype in ${DTYPES:-f32 f16 bf16}; do
  table="$OUT/parity-$dtype${TAG:-}.md"
  env ${GPU:+CUDA_VISIBLE_DEVICES=$GPU} timeout -k 5 "${LIMIT:-240}" ./xtask parity --backend "${BACKEND:-cuda}" \
    --dtype "$dtype" --engine "${ENGINE:-auto}" --model "$repo/fixtures/tiny/hub" --reference "$repo/fixtures/reference/tiny.safetensors" \
    --cases "$repo/fixtures/reference/cases.json" > "$table" 2>&1
  echo "rc $?" >> "$table"
  cat "$table"
done
