#!/usr/bin/env bash
# Here (not on the GPU machine): what engine.sh's call carries, in three git-excluded folders.
#   bash xtask/device/pack.sh
#   .carry/xtask.xz  the release xtask with `cuda` and `wgpu`, stripped and xz-compressed (CUDA and
#                    Vulkan are loaded at run time: no toolkit, GPU or driver needed here)
#   .whl/            diffusers 0.42.1 and importlib_metadata for the GPU image's Python 3.12 (its
#                    torch, transformers and the rest are already there)
#   .gl/             the Vulkan and EGL loaders for wgpu on the card's own driver (the device README)
# Then hide what the call does not read (the call carries at most 64 MiB):
#   KEEP_REFERENCE=1 bash xtask/device/carry.sh hide   (and `carry.sh restore` after the call)
# PARTS picks some of: xtask wheels loaders (default all).
set -euo pipefail
cd "$(dirname "$0")/../.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for folder in .carry .whl .gl; do
  grep -qx "/$folder/" "$exclude" 2>/dev/null || echo "/$folder/" >> "$exclude"
done
parts=${PARTS:-xtask wheels loaders}
if [[ " $parts " == *" xtask "* ]]; then
  mkdir -p .carry
  target=${CARGO_TARGET_DIR:-target}
  CARGO_INCREMENTAL=0 cargo build --release -p xtask --no-default-features --features cuda,wgpu
  strip -o /tmp/xtask-stripped "$target/release/xtask"
  xz -T0 -9 -c /tmp/xtask-stripped > .carry/xtask.xz
fi
if [[ " $parts " == *" wheels "* ]]; then
  mkdir -p .whl
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl diffusers==0.42.1 importlib_metadata
fi
if [[ " $parts " == *" loaders "* ]]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .carry .whl .gl 2>/dev/null
echo "tracked files: $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) bytes (all that travels: at most 64 MiB)"
