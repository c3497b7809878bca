#!/usr/bin/env bash
# Prepares the one device call of benchmarks/gpu_suite.py (benchmarks/README.md), here, at no device time:
#   1. .device-wheels/ (ignored by git, carried by the call): decord2's wheel for the device's Python, the
#      pure-Python wheels of the packages fastvid needs newer than the device image has, at uv.lock's versions
#      (the image holds transformers 5.17; fastvid calls the `cache` API of 5.24+, and qwen-vl-utils is not in
#      it): transformers and what it needs beyond the image (huggingface_hub 2.x with httpx2/httpcore2/truststore,
#      kernels with tomlkit), qwen-vl-utils; and COMMIT, the commit measured (no .git travels to the device);
#   2. what the call sends (tracked files, untracked files git does not ignore, shared/, the carried
#      folder) is added up and checked against the device tool's 64 MiB.
# Run it in the checkout the device tool sends, right before the call. Exit status 1 if over the limit.
#
#   PY_VERSION=3.12 DECORD=decord2==3.4.0 benchmarks/prepare_device.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY_VERSION=${PY_VERSION:-3.12}      # the device's python3: 3.12.3 (/work/.library/device/KINDS.md, nvidia-h200)
DECORD=${DECORD:-decord2==3.4.0}    # pyproject's decord2>=3.0; the version the project is tested with here
PYTHON=${PYTHON:-python3}           # any pip: `pip download` fetches for PY_VERSION, not for itself
WHEELS=.device-wheels
LIMIT_MIB=64
cp_tag=cp${PY_VERSION/./}
version=${DECORD#*==}

git check-ignore -q "$WHEELS/x.whl" || { echo "prepare_device: $WHEELS/ is not ignored by git (.gitignore)" >&2; exit 1; }
mkdir -p "$WHEELS"
# one version of each package only: two stop the whole install on the device
find "$WHEELS" -name 'decord2-*.whl' ! -name "decord2-${version}-${cp_tag}-*" -print -delete | sed 's/^/removed /'
if ! compgen -G "$WHEELS/decord2-${version}-${cp_tag}-*.whl" >/dev/null; then
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$WHEELS" "$DECORD"
fi
wheel=$(compgen -G "$WHEELS/decord2-${version}-${cp_tag}-*.whl" | head -1)
echo "wheel: $wheel"
# its needs besides itself: numpy, in the device image
unzip -p "$wheel" '*/METADATA' 2>/dev/null | grep '^Requires-Dist' | grep -v 'extra ==' | sed 's/^/  needs: /' || true

# packages newer than the device image's (all pure Python but kernels, an abi3 wheel), pinned as uv.lock pins them
NEWER=${NEWER:-"transformers huggingface-hub httpx2 httpcore2 truststore kernels tomlkit qwen-vl-utils"}
for name in $NEWER; do
  pinned=$("$PYTHON" -c "import sys, tomllib; lock = tomllib.load(open('uv.lock', 'rb'))
print(next(p['version'] for p in lock['package'] if p['name'] == sys.argv[1]))" "$name")
  file=$(echo "$name" | tr - _)
  if ! compgen -G "$WHEELS/${file}-${pinned}-*.whl" >/dev/null; then
    find "$WHEELS" -name "${file}-*.whl" -print -delete | sed 's/^/removed /'
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
      -d "$WHEELS" "$name==$pinned"
  fi
  echo "wheel: $(compgen -G "$WHEELS/${file}-${pinned}-*.whl" | head -1)"
done

dirty=false
[ -z "$(git status --porcelain --untracked-files=no)" ] || dirty=true
printf 'commit=%s\ndirty=%s\nprepared=%s\n' "$(git rev-parse HEAD)" "$dirty" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$WHEELS/COMMIT"
echo "commit: $(git rev-parse --short HEAD)$([ $dirty = true ] && echo ' (uncommitted changes to tracked files)')"

bytes() { xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
tracked=$(git ls-files -z | bytes)
untracked=$(git ls-files -z --others --exclude-standard | bytes)
carried=$(find "$WHEELS" -type f -print0 | bytes)
shared=0
if [ -d shared ] && git check-ignore -q shared; then shared=$(find shared -type f -print0 | bytes); fi
total=$((tracked + untracked + carried + shared))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "travels: tracked $(mib "$tracked"), untracked $(mib "$untracked"), shared/ (ignored) $(mib "$shared"), $WHEELS $(mib "$carried"): $(mib "$total") of $LIMIT_MIB MiB"
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
  echo "prepare_device: over the device tool's $LIMIT_MIB MiB: ignore or carry less" >&2
  exit 1
fi
echo "ready: run the device call of benchmarks/README.md with carry [\"$WHEELS\"]"
