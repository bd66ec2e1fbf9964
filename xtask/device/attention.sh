#!/usr/bin/env bash
# On the lent GPU machine: where the transformer forward's time goes, burn's kernels against the
# CUDA engine. The forward (batch 2) with each engine of ENGINES (default "off,on"), then every
# step of the engine's forward timed alone (`xtask bench --what profile`: the attention's
# strided-batched products, its softmax and every other product and kernel, added up by kind with
# their TFLOP/s), then whole generations (1 and 4 images). Needs the carried release xtask built with
# `cuda` (XTASK_XZ picks it, e.g. .carry/xtask.xz) and its kernel caches:
#   bash xtask/device/attention.sh
# DTYPE (default f16), LIMIT each run's seconds (200). Results: $OUT/forward-<dtype>.json,
# $OUT/generate-<dtype>.json and the logs (tarred with the kernel cache left beside them, to stay
# under eight returned files).
source xtask/device/setup.sh
dtype=${DTYPE:-f16}
timeout -k 5 "${LIMIT:-200}" $XTASK bench --backend cuda --dtype "$dtype" --what forward,profile --reps 5 \
  --engine "${ENGINES:-off,on}" --json "$OUT/forward-$dtype.json" 2>&1 | tee "$OUT/forward-$dtype.log"
timeout -k 5 "${LIMIT:-200}" $XTASK bench --backend cuda --dtype "$dtype" --what generate,decode --images 1,4 --reps 1 \
  --engine "${ENGINES:-off,on}" --json "$OUT/generate-$dtype.json" 2>&1 | tee "$OUT/generate-$dtype.log"
save_kernel_cache
(cd "$OUT" && tar -cf results.tar --remove-files $(ls | grep -v -e cubecl-cache -e gpu-memory -e results.tar))
