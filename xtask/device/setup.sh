#!/usr/bin/env bash
# Source on the lent GPU machine: unpacks the carried release xtask (built here with
# `--features cuda`, stripped, xz-compressed into .carry/) and puts CUDA's NVRTC on the library path.

mkdir -p /tmp/vq && xz -dc .carry/xtask.xz > /tmp/vq/xtask && chmod +x /tmp/vq/xtask
nvrtc=$(find / -name 'libnvrtc.so.13*' -not -path '*/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$(dirname "$nvrtc"):${LD_LIBRARY_PATH:-}"
export XTASK=/tmp/vq/xtask
# Peak GPU memory of everything that follows, sampled every 100 ms (burn 0.21 has no allocator high-water mark).
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "${OUT:-/tmp}/gpu-memory.log" &
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "nvrtc: $nvrtc"
