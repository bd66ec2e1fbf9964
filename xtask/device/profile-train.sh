#!/usr/bin/env bash
# On the lent GPU machine: one minute of each training stage with CubeCL's kernel profiler on,
# to see where a step's time goes (kernel time per kernel vs. the step's wall time).
#   bash xtask/device/profile-train.sh        (needs .carry/vqvae.tar.xz: a stage-1 `runs/vqvae/vqvae`)
source xtask/device/setup.sh
mkdir -p /tmp/vq/prof && tar -xJf .carry/vqvae.tar.xz -C /tmp/vq/prof
cp cubecl.toml /tmp/vq/cubecl.base.toml
for stage in vqvae transformer; do
  cp /tmp/vq/cubecl.base.toml cubecl.toml
  printf '[profiling.logger]\nlevel = "medium"\nfile = "%s/profile-%s.log"\n' "$OUT" "$stage" >> cubecl.toml
  case $stage in
  vqvae) timeout 120 $XTASK train-vqvae --backend cuda --out /tmp/vq/prof/vq --steps 3000 --batch-size 64 \
      --max-minutes 1 --workers 14 --log-every 20 2>&1 | tee $OUT/train-vqvae.log ;;
  transformer) timeout 120 $XTASK train-transformer --backend cuda --out /tmp/vq/prof/tr --vqvae /tmp/vq/prof/runs/vqvae/vqvae \
      --steps 4000 --batch-size 128 --max-minutes 1 --workers 14 --log-every 20 2>&1 | tee $OUT/train-transformer.log ;;
  esac
done
cp /tmp/vq/cubecl.base.toml cubecl.toml
for f in $OUT/profile-*.log; do xz -T8 "$f"; done
save_kernel_cache
ls -la $OUT
