#!/usr/bin/env bash
# On the lent GPU machine: one training stage of the shapes model (issue 8).
#   bash xtask/device/train.sh vqvae MINUTES
#   bash xtask/device/train.sh transformer MINUTES   (needs .carry/vqvae.tar.xz from the first stage)
# Brings back the stage's export, its loss curve and the grown CubeCL kernel cache under $OUT.
stage=$1 minutes=$2
source xtask/device/setup.sh
[ -f .carry/cubecl-cache.tar.xz ] && tar -xJf .carry/cubecl-cache.tar.xz -C /tmp/vq
printf '[compilation]\ncache = { file = "/tmp/vq/cc" }\n' > cubecl.toml
export CUBECL_AUTOTUNE_LEVEL=minimal
mkdir -p /tmp/vq/runs
case $stage in
vqvae)
  $XTASK train-vqvae --backend cuda --out /tmp/vq/runs/vqvae --steps 3000 --batch-size 64 \
    --max-minutes "$minutes" --workers 14 --log-every 100 2>&1 | tee $OUT/train-vqvae.log
  tar -cJf $OUT/vqvae.tar.xz -C /tmp/vq/runs --exclude=checkpoint vqvae ;;
transformer)
  tar -xJf .carry/vqvae.tar.xz -C /tmp/vq/runs
  $XTASK train-transformer --backend cuda --out /tmp/vq/runs/diffusion --vqvae /tmp/vq/runs/vqvae/vqvae \
    --steps 4000 --batch-size 128 --max-minutes "$minutes" --workers 14 --log-every 100 2>&1 | tee $OUT/train-transformer.log
  tar -cf - -C /tmp/vq/runs --exclude=checkpoint diffusion | xz -T8 > /tmp/vq/diffusion.tar.xz
  split -b 15M /tmp/vq/diffusion.tar.xz $OUT/diffusion.tar.xz.part- ;;
esac
tar -cJf $OUT/cubecl-cache.tar.xz -C /tmp/vq cc
ls -la $OUT; sort -n $OUT/gpu-memory.log | tail -1
