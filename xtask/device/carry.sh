#!/usr/bin/env bash
# Here (not on the GPU machine): what a multi-call training run carries into its next call.
#   bash xtask/device/carry.sh runs RESULT_DIR         the runs a call returned become .carry/runs.tar.xz.part-*
#                                                      (without the exported pipeline and stage 1's checkpoint,
#                                                      which the next call rebuilds or does not need), and its
#                                                      kernel caches .carry/cubecl-cache.tar.xz
#   bash xtask/device/carry.sh hide                    moves the fixtures the device scripts do not read out of the
#   bash xtask/device/carry.sh restore                 checkout (to $STASH, default /tmp/vq-fixtures) and back
#                                                      (KEEP_MODEL=1 hide leaves models/shapes, which a
#                                                      `train.sh … retarget …` call reads; KEEP_REFERENCE=1 leaves
#                                                      fixtures/reference, which parity.sh and engine.sh read)
#
# Why: a call carries at most 64 MiB — tracked files included. The fixtures are 29 MB and the shipped
# shapes model 16 MB; the xtask build, the kernel caches and a half-precision transformer checkpoint
# with its VQ-VAE are ≈ 45 MB. On the device only fixtures/tiny/hub/tokenizer is read (the CLIP
# tokenizer stage 2 trims); a call that evaluates the shipped model restores it first.
set -euo pipefail
cd "$(dirname "$0")/../.."
stash=${STASH:-/tmp/vq-fixtures}
hidden=(fixtures/tiny/nolearn fixtures/tiny/bin fixtures/tiny/raw)
[ -n "${KEEP_REFERENCE:-}" ] && [ "${1:-}" = hide ] || hidden+=(fixtures/reference)
[ -n "${KEEP_MODEL:-}" ] && [ "${1:-}" = hide ] || hidden+=(models/shapes)
case ${1:-} in
runs)
  from=${2:?usage: carry.sh runs DIR (the folder a call returned)}
  work=$(mktemp -d)
  cat "$from"/runs.tar.xz.part-* | xz -dc | tar -x -C "$work"
  rm -f .carry/runs.tar.xz.part-*
  mkdir -p .carry
  tar -c -C "$work" --exclude=runs/diffusion/pipeline --exclude=runs/vqvae/checkpoint runs | xz -T0 -6 |
    split -b 15M - .carry/runs.tar.xz.part-
  [ -f "$from/cubecl-cache.tar.xz" ] && cp "$from/cubecl-cache.tar.xz" .carry/
  rm -rf "$work"
  du -sh .carry/* ;;
hide)
  [ -e "$stash" ] && { echo "$stash exists: restore first" >&2; exit 1; }
  for path in "${hidden[@]}"; do mkdir -p "$stash/$(dirname "$path")" && mv "$path" "$stash/$path"; done
  echo "moved to $stash: ${hidden[*]} — run 'carry.sh restore' after the call" ;;
restore)
  for path in "${hidden[@]}"; do [ -e "$stash/$path" ] && mv "$stash/$path" "$path"; done
  rm -rf "$stash"
  git status --short fixtures ;;
*)
  sed -n 2,12p "$0" >&2
  exit 2 ;;
esac
