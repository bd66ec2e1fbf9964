#!/usr/bin/env bash
# On the lent GPU machine: `xtask grad-check` of the carried build's CUDA backend against the CPU
# (`Autodiff<NdArray>` on the same weights and batch), to name the first parameter, in backward
# order, whose gradient a build gets wrong (BENCHMARKS.md).
#   CUBECL_LOG=1 XTASK_XZ=.carry/xtask-tuned.xz bash xtask/device/grad-check.sh
# MODES (default "decoder-only full") picks the checks — `convolutions` checks the decoder's
# convolutions one by one (`--convolutions decoder`) —, BACKEND (cuda) the xtask backend, BATCH (8)
# the images, VQVAE (models/shapes/vqvae) the checked VQ-VAE, ARGS more flags (e.g. "--seed 3"),
# LIMIT (300) each check's seconds (a first run tunes every convolution shape). Logs and the
# grown kernel caches come back under $OUT.
source xtask/device/setup.sh
for mode in ${MODES:-decoder-only full}; do
  case $mode in
  decoder-only) flag=--decoder-only ;;
  convolutions) flag="--convolutions decoder" ;;
  *) flag= ;;
  esac
  start=$(date +%s)
  timeout -k 10 "${LIMIT:-300}" $XTASK grad-check --vqvae "${VQVAE:-models/shapes/vqvae}" --backend "${BACKEND:-cuda}" \
    --batch-size "${BATCH:-8}" $flag ${ARGS:-} 2>&1 | tee "$OUT/grad-check-$mode${TAG:-}.log"
  echo "$mode: rc ${PIPESTATUS[0]}, $(( $(date +%s) - start )) s" | tee -a "$OUT/grad-check-rc.txt"
done
save_kernel_cache
