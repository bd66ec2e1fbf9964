#!/usr/bin/env bash
# On the lent GPU machine: training stages of the shapes model, each with a budget in minutes.
#   bash xtask/device/train.sh vqvae 4 transformer 4
# Each stage is killed 60 s after its budget (a first step can outlast any budget while kernels
# compile), so the runs and the kernel caches still come back inside the call's 10 minutes.
# `.carry/` is git-ignored: name it in the call's `carry` list, or neither the build nor the runs travel.
# Earlier runs travel as .carry/runs.tar.xz.part-* (a stage with a checkpoint resumes, AdamW's
# moments from zero); the runs (optimizer states left out: twice the weights), the logs and the grown
# kernel caches come back under $OUT. TR_ARGS="--half-checkpoints" keeps a transformer checkpoint
# small enough (≈ 20 MB) to carry into the next call beside the fixtures. BACKEND (default cuda-unfused) picks the xtask backend,
# VQ_BATCH / TR_BATCH (64 / 128) and VQ_STEPS / TR_STEPS (3000 / 4000) the stages' sizes; VQ_ARGS /
# TR_ARGS add flags (e.g. TR_ARGS="--lr 1e-3 --warmup 100 --keep-schedule"); RUNS_EXCLUDE leaves a path
# pattern out of the returned runs (e.g. runs/vqvae/checkpoint once stage 1 is done).
# On a machine of several GPUs the stages can share it: TOGETHER=1 runs them at the same time,
# VQ_GPUS / TR_GPUS give each its GPUs (CUDA_VISIBLE_DEVICES), VQ_BACKEND / TR_BACKEND its backend, VQ_OUT (default runs/vqvae) is stage 1's
# folder and TR_VQ (default runs/vqvae/vqvae) the VQ-VAE stage 2 reads, e.g. a new VQ-VAE on three GPUs
# while the transformer of the carried one continues on the fourth:
#   TOGETHER=1 VQ_GPUS=0,1,2 VQ_OUT=runs/vq1024 VQ_DEVICES=0,1,2 VQ_ARGS="--codes 1024" TR_GPUS=3 \
#     bash xtask/device/train.sh vqvae 8 transformer 7
# VQ_DEVICES / TR_DEVICES split each batch across devices (`--devices`); a stage whose data-parallel
# run fails spends the rest of its budget on one device.
# Without carried kernel caches (a fresh machine, no .carry/cubecl-cache.tar.xz) the fused, autotuned
# BACKEND=cuda compiles and tunes every training kernel first: stage 1 did not finish its first step in
# 6.5 minutes, stage 2's first steps took most of an 8-minute call; the unfused backend
# tuned ≈ 100 convolution shapes over stage 1's first 30 steps (7 minutes). The committed
# cubecl-cache-h200.tar.xz holds both: stage 1 at batch 64 on VQ_BACKEND=cuda-unfused (3.1 steps/s from
# the first step) and stage 2 at batch 512 on BACKEND=cuda. Carry the caches a call returns
# (`carry.sh runs`) to keep what a call adds.
# A `retarget` stage (its minutes only a time limit) moves RT_PIPELINE's transformer (default
# models/shapes: hide the fixtures with KEEP_MODEL=1) onto stage 1's VQ-VAE (`export --retarget`) into
# RT_OUT (default runs/retargeted); TR_OUT (default runs/diffusion) is stage 2's folder. New codes for
# the shipped model in one call (it needs no carried runs: move .carry/runs.tar.xz.part-* aside, the call
# would exceed 64 MiB with them and models/shapes):
#   VQ_ARGS="--init-from models/shapes/vqvae --keep-codes --outline-weight 30 --lr 2e-4 --warmup 100 --free-colors 0.5" \
#   TR_VQ=runs/retargeted/vqvae TR_OUT=runs/moved TR_ARGS="--init-from /tmp/vq/runs/retargeted --half-checkpoints" \
#     bash xtask/device/train.sh vqvae 3 retarget 1 transformer 4
# Fine-tuning the shipped text encoder and transformer with more two-object scenes whose caption names no
# position (`--unpositioned-pairs`; a build of this checkout in .carry/xtask.xz, `KEEP_MODEL=1 carry.sh hide`;
# stage 2 reads the shipped VQ-VAE, copied under /tmp/vq first because TR_VQ is relative to it):
#   mkdir -p /tmp/vq/runs/shipped && cp -r models/shapes/vqvae /tmp/vq/runs/shipped/ && BACKEND=cuda \
#   TR_VQ=runs/shipped/vqvae TR_OUT=runs/scenes TR_BATCH=512 TR_STEPS=1000 \
#   TR_ARGS="--init-from models/shapes --lr 1e-4 --warmup 100 --unpositioned-pairs 0.3 --half-checkpoints" \
#     bash xtask/device/train.sh transformer 7
source xtask/device/setup.sh
backend=${BACKEND:-cuda-unfused}
mkdir -p /tmp/vq/runs
[ ! -d /tmp/vq/runs/vqvae ] && ls .carry/runs.tar.xz.part-* >/dev/null 2>&1 && cat .carry/runs.tar.xz.part-* | xz -dc | tar -x -C /tmp/vq
vq_out=/tmp/vq/${VQ_OUT:-runs/vqvae}
tr_vq=/tmp/vq/${TR_VQ:-runs/vqvae/vqvae}
# One stage's run: `train_stage NAME MINUTES [FLAGS…]`; killed 60 s after its budget (10 s more if TERM
# is not enough).
train_stage() {
  local stage=$1 minutes=$2; shift 2
  local limit=$(awk "BEGIN { print int($minutes * 60 + 60) }")
  case $stage in
  vqvae)
    env ${VQ_GPUS:+CUDA_VISIBLE_DEVICES=$VQ_GPUS} timeout -k 10 $limit $XTASK train-vqvae --backend "${VQ_BACKEND:-$backend}" \
      --out "$vq_out" --steps "${VQ_STEPS:-3000}" --batch-size "${VQ_BATCH:-64}" \
      --max-minutes "$minutes" --workers 14 --log-every 100 ${VQ_ARGS:-} "$@" 2>&1 | tee -a $OUT/train-vqvae.log ;;
  transformer)
    env ${TR_GPUS:+CUDA_VISIBLE_DEVICES=$TR_GPUS} timeout -k 10 $limit $XTASK train-transformer --backend "${TR_BACKEND:-$backend}" \
      --out "/tmp/vq/${TR_OUT:-runs/diffusion}" --vqvae "$tr_vq" --steps "${TR_STEPS:-4000}" --batch-size "${TR_BATCH:-128}" \
      --max-minutes "$minutes" --workers 14 --log-every 100 ${TR_ARGS:-} "$@" 2>&1 |
      tee -a $OUT/train-transformer.log ;;
  retarget)
    timeout -k 10 $limit $XTASK export --backend "$backend" --pipeline "${RT_PIPELINE:-models/shapes}" \
      --vqvae "$vq_out/vqvae" --retarget --out "/tmp/vq/${RT_OUT:-runs/retargeted}" 2>&1 | tee -a $OUT/retarget.log ;;
  esac
  return ${PIPESTATUS[0]}
}
# `run_stage NAME MINUTES`: with VQ_DEVICES / TR_DEVICES (`--devices`), a run that fails before its
# budget is over gives the rest of the budget to a run on one device.
run_stage() {
  local stage=$1 minutes=$2 start=$SECONDS devices
  case $stage in vqvae) devices=${VQ_DEVICES:-} ;; transformer) devices=${TR_DEVICES:-} ;; *) devices= ;; esac
  train_stage "$stage" "$minutes" ${devices:+--devices "$devices"}
  local rc=$?
  local left=$(awk "BEGIN { print $minutes - ($SECONDS - $start) / 60 - 0.5 }")
  if [ $rc -ne 0 ] && [ -n "$devices" ] && awk "BEGIN { exit !($left > 1) }"; then
    echo "$stage failed (rc $rc) on --devices $devices: $left more minutes on one device" | tee -a $OUT/train-$stage.log
    train_stage "$stage" "$left"
  fi
}
stages=()
while [ $# -ge 2 ]; do
  if [ -n "${TOGETHER:-}" ]; then run_stage "$1" "$2" & stages+=($!); else run_stage "$1" "$2"; fi
  shift 2
done
# The stages' own PIDs: a bare `wait` would also wait for setup.sh's memory sampler, which never ends.
[ ${#stages[@]} -gt 0 ] && wait "${stages[@]}"
tar -c -C /tmp/vq --exclude=optimizer.mpk ${RUNS_EXCLUDE:+--exclude=$RUNS_EXCLUDE} runs | xz -T8 | split -b 15M - $OUT/runs.tar.xz.part-
save_kernel_cache
ls -la $OUT; sort -n $OUT/gpu-memory.log | tail -1
