#!/usr/bin/env bash
# On the lent GPU machine: the step rate of both training stages, one minute each, from scratch,
# for each backend of BACKENDS (default "cuda"; with a `cuda-fused` build, "cuda cuda-unfused"
# times fused against plain kernels in one call). Stage 2 needs a stage-1 `runs/vqvae/vqvae`:
# from the carried .carry/runs.tar.xz.part-* (train.sh's) or .carry/vqvae.tar.xz.
#   bash xtask/device/speed-train.sh
#   PROFILE=1 bash xtask/device/speed-train.sh   (CubeCL's kernel profiler on: every kernel's time,
#                                                 into $OUT/profile-<backend>-<stage>.log.xz)
# VQ_BATCH / TR_BATCH (64 / 128), VQ_ARGS / TR_ARGS as in train.sh; STAGES
# (default "vqvae transformer") picks the stages, e.g. the data-parallel transformer on four GPUs:
#   STAGES=transformer TR_BATCH=512 TR_ARGS="--devices 0,1,2,3" bash xtask/device/speed-train.sh
source xtask/device/setup.sh
mkdir -p /tmp/vq/speed
if ls .carry/runs.tar.xz.part-* >/dev/null 2>&1; then
  cat .carry/runs.tar.xz.part-* | xz -dc | tar -x -C /tmp/vq/speed
else
  tar -xJf .carry/vqvae.tar.xz -C /tmp/vq/speed
fi
cp cubecl.toml /tmp/vq/cubecl.base.toml
for backend in ${BACKENDS:-cuda}; do
  for stage in ${STAGES:-vqvae transformer}; do
    cp /tmp/vq/cubecl.base.toml cubecl.toml
    [ -n "${PROFILE:-}" ] && printf '[profiling.logger]\nlevel = "medium"\nfile = "%s/profile-%s-%s.log"\n' "$OUT" "$backend" "$stage" >> cubecl.toml
    case $stage in
    vqvae) timeout 100 $XTASK train-vqvae --backend "$backend" --out "/tmp/vq/speed/vq-$backend" --steps 3000 \
        --batch-size "${VQ_BATCH:-64}" --max-minutes 1 --workers 14 --log-every 50 --fresh \
        ${VQ_ARGS:-} 2>&1 | tee "$OUT/speed-$backend-vqvae.log" ;;
    transformer) timeout 100 $XTASK train-transformer --backend "$backend" --out "/tmp/vq/speed/tr-$backend" \
        --vqvae /tmp/vq/speed/runs/vqvae/vqvae --steps 4000 --batch-size "${TR_BATCH:-128}" \
        --max-minutes 1 --workers 14 --log-every 50 --fresh ${TR_ARGS:-} 2>&1 | tee "$OUT/speed-$backend-transformer.log" ;;
    esac
  done
done
cp /tmp/vq/cubecl.base.toml cubecl.toml
for f in $OUT/profile-*.log; do [ -f "$f" ] && xz -T8 "$f"; done
save_kernel_cache
