#!/usr/bin/env bash
# On the lent GPU machine: training stages of the shapes model (issue 8), each with a budget in minutes.
#   bash xtask/device/train.sh vqvae 4 transformer 4
# Each stage is killed 60 s after its budget (a first step can outlast any budget while kernels
# compile), so the runs and the kernel caches still come back inside the call's 10 minutes.
# Earlier runs travel as .carry/runs.tar.xz.part-* (a stage with a checkpoint resumes, AdamW's
# moments from zero); the runs (optimizer states left out: twice the weights), the logs and the grown
# kernel caches come back under $OUT. TR_ARGS="--half-checkpoints" keeps a transformer checkpoint
# small enough (≈ 20 MB) to carry into the next call beside the fixtures. BACKEND (default cuda-unfused) picks the xtask backend, CONV (default backend:
# faster than the GEMM form on the untuned CUDA build, BENCHMARKS.md) the VQ-VAE's convolutions,
# VQ_BATCH / TR_BATCH (64 / 128) and VQ_STEPS / TR_STEPS (3000 / 4000) the stages' sizes; VQ_ARGS /
# TR_ARGS add flags (e.g. TR_ARGS="--lr 1e-3 --warmup 100 --keep-schedule"; "--devices 0,1,2,3" in either
# on a machine of four GPUs); RUNS_EXCLUDE leaves a path
# pattern out of the returned runs (e.g. runs/vqvae/checkpoint once stage 1 is done).
source xtask/device/setup.sh
backend=${BACKEND:-cuda-unfused}
conv=${CONV:-backend}
mkdir -p /tmp/vq/runs
[ ! -d /tmp/vq/runs/vqvae ] && ls .carry/runs.tar.xz.part-* >/dev/null 2>&1 && cat .carry/runs.tar.xz.part-* | xz -dc | tar -x -C /tmp/vq
while [ $# -ge 2 ]; do
  stage=$1 minutes=$2; shift 2
  case $stage in
  vqvae)
    timeout $((${minutes%.*} * 60 + 60)) $XTASK train-vqvae --backend "$backend" --out /tmp/vq/runs/vqvae --steps "${VQ_STEPS:-3000}" --batch-size "${VQ_BATCH:-64}" --convolution "$conv" \
      --max-minutes "$minutes" --workers 14 --log-every 100 ${VQ_ARGS:-} 2>&1 | tee -a $OUT/train-vqvae.log ;;
  transformer)
    timeout $((${minutes%.*} * 60 + 60)) $XTASK train-transformer --backend "$backend" --out /tmp/vq/runs/diffusion --vqvae /tmp/vq/runs/vqvae/vqvae \
      --steps "${TR_STEPS:-4000}" --batch-size "${TR_BATCH:-128}" --convolution "$conv" --max-minutes "$minutes" --workers 14 --log-every 100 \
      ${TR_ARGS:-} 2>&1 | tee -a $OUT/train-transformer.log ;;
  esac
done
tar -c -C /tmp/vq --exclude=optimizer.mpk ${RUNS_EXCLUDE:+--exclude=$RUNS_EXCLUDE} runs | xz -T8 | split -b 15M - $OUT/runs.tar.xz.part-
save_kernel_cache
ls -la $OUT; sort -n $OUT/gpu-memory.log | tail -1
