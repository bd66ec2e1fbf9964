#!/usr/bin/env bash
# On the lent GPU machine: the transformer forward (batch 2) with each attention kernel
# (`xtask bench --attention op|composed|padded-op`), then whole generations (1 and 4 images) with
# the fastest. Needs the carried release xtask built with `cuda` (XTASK_XZ picks it, e.g.
# .carry/xtask-tuned.xz) and its kernel caches:
#   XTASK_XZ=.carry/xtask-tuned.xz bash xtask/device/attention.sh
# DTYPE (default f16), KERNELS (default "op composed padded-op"), LIMIT each run's seconds (200).
# Results: $OUT/attention-<kernel>.json, $OUT/generate-<kernel>.json and the logs (tarred with the
# kernel cache left beside them, to stay under eight returned files).
source xtask/device/setup.sh
dtype=${DTYPE:-f16}
best= best_s=
for kernel in ${KERNELS:-op composed padded-op}; do
  timeout -k 5 "${LIMIT:-200}" $XTASK bench --backend cuda --dtype "$dtype" --what forward --reps 5 --attention "$kernel" \
    --json "$OUT/attention-$kernel.json" 2>&1 | tee "$OUT/attention-$kernel.log"
  s=$(awk '/^transformer forward/ { print $(NF-1) }' "$OUT/attention-$kernel.log")
  if [ -n "$s" ] && { [ -z "$best" ] || awk "BEGIN { exit !($s < $best_s) }"; }; then best=$kernel best_s=$s; fi
done
echo "fastest forward: ${best:-none} ($best_s s)"
[ -n "$best" ] && timeout -k 5 "${LIMIT:-200}" $XTASK bench --backend cuda --dtype "$dtype" --what generate,decode --images 1,4 --reps 1 \
  --attention "$best" --json "$OUT/generate-$best.json" 2>&1 | tee "$OUT/generate-$best.log"
save_kernel_cache
(cd "$OUT" && tar -cf results.tar --remove-files $(ls | grep -v -e cubecl-cache -e gpu-memory -e results.tar))
