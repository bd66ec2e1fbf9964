#!/usr/bin/env bash
# On the lent GPU machine: the step rate of both training stages at the planned sizes, one minute
# each, from scratch (needs .carry/vqvae.tar.xz: any stage-1 `runs/vqvae/vqvae` of that size).
#   bash xtask/device/speed-train.sh
#   PROFILE=1 bash xtask/device/speed-train.sh   (CubeCL's kernel profiler on: every kernel's time,
#                                                 into $OUT/profile-{vqvae,transformer}.log.xz)
source xtask/device/setup.sh
mkdir -p /tmp/vq/speed && tar -xJf .carry/vqvae.tar.xz -C /tmp/vq/speed
cp cubecl.toml /tmp/vq/cubecl.base.toml
for stage in vqvae transformer; do
  cp /tmp/vq/cubecl.base.toml cubecl.toml
  [ -n "${PROFILE:-}" ] && printf '[profiling.logger]\nlevel = "medium"\nfile = "%s/profile-%s.log"\n' "$OUT" "$stage" >> cubecl.toml
  case $stage in
  vqvae) timeout 100 $XTASK train-vqvae --backend cuda --out /tmp/vq/speed/vq --steps 3000 --batch-size 64 \
      --max-minutes 1 --workers 14 --log-every 50 2>&1 | tee $OUT/train-vqvae.log ;;
  transformer) timeout 100 $XTASK train-transformer --backend cuda --out /tmp/vq/speed/tr \
      --vqvae /tmp/vq/speed/runs/vqvae/vqvae --steps 4000 --batch-size 128 --max-minutes 1 --workers 14 \
      --log-every 50 2>&1 | tee $OUT/train-transformer.log ;;
  esac
done
cp /tmp/vq/cubecl.base.toml cubecl.toml
for f in $OUT/profile-*.log; do [ -f "$f" ] && xz -T8 "$f"; done
save_kernel_cache
