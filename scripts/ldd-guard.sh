#!/bin/sh
# Fails when the dynamic loader cannot resolve a library that onnxruntime's CUDA provider needs.
#
#   scripts/ldd-guard.sh DIR [LIB...]
#
# DIR is onnxruntime-node's binding folder (node_modules/onnxruntime-node/bin/napi-v6/linux/x64);
# LIBs default to the CUDA provider and the shared provider bridge. Exit 0 when every LIB exists
# and `ldd` finds all of its dependencies; 1 otherwise, naming what is missing; 2 on bad usage.
# The Docker build runs it so that an image whose CUDA/cuDNN does not match the provider fails
# to build, instead of failing at the first `--device cuda`.
set -eu

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 DIR [LIB...]  (DIR: a folder holding the ONNX Runtime provider libraries)" >&2
  exit 2
fi
dir=$1
shift
[ $# -gt 0 ] || set -- libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so
command -v ldd >/dev/null 2>&1 || { echo "ldd-guard: ldd not found" >&2; exit 2; }

# The providers load each other from their own folder, as onnxruntime does.
LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH

status=0
for lib in "$@"; do
  path=$dir/$lib
  if [ ! -f "$path" ]; then
    echo "ldd-guard: $path is missing" >&2
    status=1
    continue
  fi
  if ! out=$(ldd "$path" 2>&1); then
    echo "ldd-guard: ldd failed on $path: $out" >&2
    status=1
    continue
  fi
  missing=$(printf '%s\n' "$out" | awk '/=> not found/ { print $1 }' | sort -u | tr '\n' ' ' | sed 's/ $//')
  if [ -n "$missing" ]; then
    echo "ldd-guard: $lib needs libraries the loader cannot find: $missing" >&2
    status=1
  else
    echo "ldd-guard: $lib: every dependency found"
  fi
done
exit $status
