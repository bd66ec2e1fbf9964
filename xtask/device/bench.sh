#!/usr/bin/env bash
# On the lent GPU machine: the ITHQ benchmark in one call — diffusers 0.42.1 (torch fp16 and fp32)
# and this pipeline (`xtask bench`, device noise and truncation) on the same card, ITHQ architecture
# with random weights. Needs the carried release xtask (.carry/xtask.xz, built with a CUDA feature)
# and the diffusers wheels (.whl/, carry both: `carry: [".carry", ".whl"]`).
#   bash xtask/device/bench.sh
# DTYPES (default "f32 f16 bf16") picks our precisions, TORCH_DTYPES (default "fp16 fp32") diffusers' (either
# may be empty), BACKEND (default cuda) the xtask backend,
# WHAT / IMAGES / REPS the parts (default all, "1,4", 3; TORCH_WHAT diffusers' parts, default WHAT, which may
# add graph: the forward replayed from a CUDA graph), ENGINES the transformer engines of our runs
# (`xtask bench --engine`, default "off,on": burn's kernels and the CUDA engine), LIMIT each run's
# seconds (150), TAG a suffix for the result files (so several
# runs in one call keep theirs), PROFILE=1 CubeCL's kernel profiler on our runs (every kernel's time,
# $OUT/profile-<dtype><TAG>.log.xz; launches then block, so its timings are not the benchmark's). JSON results and
# logs come back in $OUT; a run that fails or outlasts its limit shows its rc in $OUT/peaks.txt, and the
# others still run.
source xtask/device/setup.sh
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site
what=${WHAT:-encode,forward,step,decode,generate}
# Peak GPU memory of one command (nvidia-smi, whole device, sampled every 100 ms: burn 0.21 has no
# allocator high-water mark), appended to $OUT/peaks.txt under its label.
with_peak() {
  local label=$1; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > /tmp/vq/peak.log 2>/dev/null &
  local sampler=$!
  "$@"
  local rc=$?
  kill $sampler 2>/dev/null
  echo "$label: peak $(sort -n /tmp/vq/peak.log | tail -1) MiB (rc $rc)" | tee -a "$OUT/peaks.txt"
}
for dtype in ${TORCH_DTYPES-fp16 fp32}; do
  with_peak "diffusers $dtype${TAG:-}" timeout -k 5 "${LIMIT:-150}" python3 xtask/python/bench_diffusers.py --dtype $dtype --what "${TORCH_WHAT:-$what}" --images "${IMAGES:-1,4}" \
    --json "$OUT/diffusers-$dtype${TAG:-}.json" > "$OUT/diffusers-$dtype${TAG:-}.log" 2>&1
  cat "$OUT/diffusers-$dtype${TAG:-}.log"
done
cp cubecl.toml /tmp/vq/cubecl.base.toml
for dtype in ${DTYPES-f32 f16 bf16}; do
  cp /tmp/vq/cubecl.base.toml cubecl.toml
  [ -n "${PROFILE:-}" ] && printf '[profiling.logger]\nlevel = "medium"\nfile = "%s/profile-%s%s.log"\n' "$OUT" "$dtype" "${TAG:-}" >> cubecl.toml
  with_peak "rust $dtype${TAG:-}" timeout -k 5 "${LIMIT:-150}" $XTASK bench --backend "${BACKEND:-cuda}" --dtype $dtype --what "$what" --images "${IMAGES:-1,4}" \
    --rng device --reps "${REPS:-3}" --engine "${ENGINES:-off,on}" --json "$OUT/rust-$dtype${TAG:-}.json" > "/tmp/vq/rust-$dtype.log" 2>&1
  # A failing run can print megabytes of repeated errors (over the 16 MB a returned file may have): the log comes back compressed, its ends on stdout.
  xz -T4 -c "/tmp/vq/rust-$dtype.log" > "$OUT/rust-$dtype${TAG:-}.log.xz"
  head -c 3000 "/tmp/vq/rust-$dtype.log"; echo " […]"; tail -c 3000 "/tmp/vq/rust-$dtype.log"
done
cp /tmp/vq/cubecl.base.toml cubecl.toml
for f in $OUT/profile-*.log; do [ -f "$f" ] && xz -T8 "$f"; done
save_kernel_cache
