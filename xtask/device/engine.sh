#!/usr/bin/env bash
# On the lent GPU machine, in one call: the transformer engine (vq-kernels' CUDA engine) against
# burn's kernels and diffusers 0.42.1 on the same card, and burn's wgpu backend on the card's own
# Vulkan driver. Builds nothing: it runs the carried release xtask (built here with
# `--features cuda,wgpu`, see pack.sh), the carried diffusers wheels and the carried Vulkan loaders.
#
#   here:   bash xtask/device/pack.sh && KEEP_REFERENCE=1 bash xtask/device/carry.sh hide
#   call:   carry [".carry", ".whl", ".gl"], command
#           for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; bash xtask/device/engine.sh
#   after:  bash xtask/device/carry.sh restore
#
# Parts, in this order (PARTS picks some, e.g. PARTS="diffusers wgpu"); a part is not started after
# DEADLINE seconds (default 520: one command may run 600, and the caches take a minute to pack), and
# each runs under its own LIMIT (default 150 s) cut to the time left:
#   startup    the engine's start-up in two processes, one block, batch 2, f16: first with an empty
#              kernel cache (NVRTC compiles), then with the cache (startup-*.log: wall time and the
#              engine's own report)
#   parity     `xtask parity --engine on` in f32 and f16 on the tiny fixture: the engine against the
#              tensor ops, and end to end the sampled tokens against diffusers' (= the CPU's f32 ones)
#   ours       `xtask bench` f16, the ITHQ architecture with random weights: the forward and every
#              step of the engine's forward alone (profile), then whole generations of 1 and 4 images
#              (100 steps, guidance 5), each with ENGINES (default "on,off")
#   diffusers  bench_diffusers.py fp16: the forward eager and replayed from one CUDA graph, whole
#              generations of 1 and 4 images (same protocol)
#   wgpu       burn's wgpu backend on Vulkan: `xtask parity --backend wgpu` (f32) and the ITHQ forward
#              (f16 and f32)
#   unfused    the engine under burn's CUDA backend without fusion: `xtask parity --backend
#              cuda-unfused --engine on` (f32)
# Peak GPU memory of each part (nvidia-smi every 100 ms) goes to peaks.txt. Everything comes back
# in $OUT/results.tar (logs, JSON, peaks.txt, parts.txt) beside the grown kernel caches.
source xtask/device/setup.sh
start=$SECONDS
deadline=${DEADLINE:-520}
parts=${PARTS:-startup parity ours diffusers wgpu unfused}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

# `run LABEL LIMIT COMMAND…`: COMMAND under the smaller of LIMIT and the time left, its output in
# $OUT/LABEL.log, its peak GPU memory and status in peaks.txt.
run() {
  local label=$1 limit=$2; shift 2
  local left=$(( deadline + 30 - (SECONDS - start) ))
  (( left < limit )) && limit=$left
  if (( limit < 20 )); then echo "$label: skipped, $(( SECONDS - start )) s spent" | tee -a "$OUT/peaks.txt"; return; fi
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > /tmp/vq/peak.log 2>/dev/null &
  local sampler=$! t0=$SECONDS
  timeout -k 5 "$limit" "$@" > "$OUT/$label.log" 2>&1
  local rc=$?
  kill $sampler 2>/dev/null
  echo "$label: rc $rc, $(( SECONDS - t0 )) s, peak $(sort -n /tmp/vq/peak.log | tail -1) MiB" | tee -a "$OUT/peaks.txt"
  tail -c 2500 "$OUT/$label.log"
}
wanted() { [[ " $parts " == *" $1 "* ]] && (( SECONDS - start < deadline )); }
limit=${LIMIT:-150}
parity_args=(--model "$PWD/fixtures/tiny/hub" --reference "$PWD/fixtures/reference/tiny.safetensors"
  --cases "$PWD/fixtures/reference/cases.json")

if wanted startup; then
  cached=$VQ_KERNEL_CACHE
  for round in cold warm; do
    export VQ_KERNEL_CACHE=/tmp/vq/kernels-startup
    [ $round = cold ] && rm -rf "$VQ_KERNEL_CACHE"
    t0=$(date +%s.%N)
    run "startup-$round" 90 $XTASK bench --backend cuda --dtype f16 --what forward --engine on --layers 1 --warmup 0 --reps 1
    echo "$round: process $(awk "BEGIN { print $(date +%s.%N) - $t0 }") s" >> "$OUT/startup.txt"
    grep -h -e "engine on:" -e "prepare (engine on)" "$OUT/startup-$round.log" >> "$OUT/startup.txt"
  done
  export VQ_KERNEL_CACHE=$cached
fi
if wanted parity; then
  for dtype in f32 f16; do
    run "parity-$dtype" "$limit" $XTASK parity --backend cuda --dtype $dtype --engine on "${parity_args[@]}"
  done
fi
if wanted ours; then
  run ours-forward "$limit" $XTASK bench --backend cuda --dtype f16 --what forward,profile --engine "${ENGINES:-on,off}" \
    --reps 5 --json "$OUT/ours-forward.json"
  run ours-generate 240 $XTASK bench --backend cuda --dtype f16 --what generate --images 1,4 --rng device --reps 1 \
    --engine "${ENGINES:-on,off}" --json "$OUT/ours-generate.json"
fi
if wanted diffusers; then
  run diffusers "$limit" python3 xtask/python/bench_diffusers.py --dtype fp16 --what forward,graph,generate --images 1,4 \
    --json "$OUT/diffusers-fp16.json"
fi
if wanted wgpu; then
  # The driver's Vulkan ICD where the loader does not find one (the device README).
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -f $icd ] && ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$icd
  fi
  run wgpu-parity "$limit" $XTASK parity --backend wgpu --dtype f32 --engine off "${parity_args[@]}"
  for dtype in f16 f32; do
    run "wgpu-forward-$dtype" "$limit" $XTASK bench --backend wgpu --dtype $dtype --what forward --engine off --reps 3 \
      --json "$OUT/wgpu-forward-$dtype.json"
  done
fi
if wanted unfused; then
  run parity-unfused-f32 "$limit" $XTASK parity --backend cuda-unfused --dtype f32 --engine on "${parity_args[@]}"
fi
echo "parts: $parts; $(( SECONDS - start )) s" > "$OUT/parts.txt"
save_kernel_cache
(cd "$OUT" && tar -cf results.tar --remove-files $(ls | grep -v -e cubecl-cache -e gpu-memory -e results.tar))
