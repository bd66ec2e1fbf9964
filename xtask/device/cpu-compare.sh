#!/usr/bin/env bash
# Two builds of the CPU pipeline on one quiet machine, runs alternated (A B A B …), medians of each:
# the README's first command (the shipped shapes model, ndarray) and the ITHQ-size transformer
# forward (4 blocks, batch 2, on FORWARD_BACKEND: default flex, which needs xtask built with `--features flex`). Used on the lent machine because its 16 cores are idle, where
# this one's two are shared with builds.
#
#   here:   release builds of vq-diffusion and xtask of each commit, stripped and
#           xz-compressed as .carry/cpu/{a,b}-{vq-diffusion,xtask}.xz
#   call:   carry [".carry"], command: bash xtask/device/cpu-compare.sh
#
# ROUNDS (default 5) pairs of runs per command; A and B name the builds in the tables (default
# "before" and "after": the .xz files' prefixes). THREADS limits the cores (taskset), default all.
set -uo pipefail
a=${A:-before} b=${B:-after} rounds=${ROUNDS:-5}
mkdir -p /tmp/cpu
for v in "$a" "$b"; do
  for bin in vq-diffusion xtask; do
    xz -dc ".carry/cpu/$v-$bin.xz" > "/tmp/cpu/$v-$bin" && chmod +x "/tmp/cpu/$v-$bin"
  done
done
pin=()
[ -n "${THREADS:-}" ] && pin=(taskset -c "0-$(( THREADS - 1 ))")
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)${THREADS:+, pinned to $THREADS}"

# `timed VERSION COMMAND…`: the command's wall time in seconds on stdout, its output in /tmp/cpu/log.
timed() {
  local t0 t1
  t0=$(date +%s.%N)
  "${pin[@]}" "$@" > /tmp/cpu/log 2>&1 || { echo "failed: $*" >&2; tail -5 /tmp/cpu/log >&2; }
  t1=$(date +%s.%N)
  awk "BEGIN { printf \"%.3f\", $t1 - $t0 }"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

generate() {
  "/tmp/cpu/$1-vq-diffusion" generate --model models/shapes --prompt "a large red circle in the center on a blue background" \
    --seed 0 --guidance-scale 3 --truncation-rate 0.7 --output "/tmp/cpu/$1.png"
}
forward() {
  "/tmp/cpu/$1-xtask" bench --backend "${FORWARD_BACKEND:-flex}" --what forward --layers 4 --warmup 1 --reps 3 \
    --tokenizer fixtures/tiny/hub/tokenizer --json "/tmp/cpu/$1-forward.json"
}
for what in generate forward; do
  : > "/tmp/cpu/$what-$a" && : > "/tmp/cpu/$what-$b"
  for _ in $(seq "$rounds"); do
    for v in "$a" "$b"; do timed "$what" "$v" >> "/tmp/cpu/$what-$v"; echo >> "/tmp/cpu/$what-$v"; done
  done
done
# The forward's own median (the bench's JSON) beside the whole process's time.
forward_ms() { grep -o '"transformer forward[^}]*' "/tmp/cpu/$1-forward.json" | grep -o '[0-9.]*' | tail -1; }
printf '| command | %s (median s) | %s (median s) | %s / %s |\n|---|---|---|---|\n' "$a" "$b" "$b" "$a"
for what in generate forward; do
  ma=$(median < "/tmp/cpu/$what-$a") mb=$(median < "/tmp/cpu/$what-$b")
  printf '| %s | %s | %s | %s |\n' "$what" "$ma" "$mb" "$(awk "BEGIN { printf \"%.3f\", $mb / $ma }")"
done
for v in "$a" "$b"; do echo "$v: every run (s): generate $(tr '\n' ' ' < "/tmp/cpu/generate-$v")| forward $(tr '\n' ' ' < "/tmp/cpu/forward-$v")"; done
for v in "$a" "$b"; do echo "$v forward JSON:"; cat "/tmp/cpu/$v-forward.json"; echo; done
cmp -s "/tmp/cpu/$a.png" "/tmp/cpu/$b.png" && echo "the two builds' images are identical" || echo "the two builds' images DIFFER"
