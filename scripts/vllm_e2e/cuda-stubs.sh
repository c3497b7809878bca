#!/bin/bash
# A copy of the workplace's shared/tools/cuda-stubs.sh, so that a clone alone runs scripts/vllm-e2e.
# Stand-in CUDA libraries so that PyPI's CUDA builds of torchvision / torchaudio load against a CPU-only torch
# (for running vLLM's CPU build on a machine without a GPU). usage: cuda-stubs.sh SITE_PACKAGES OUT_DIR,
# then export LD_LIBRARY_PATH=OUT_DIR. Each stubbed function aborts if ever called; needs nm and gcc.
set -e
SP=$1; OUT=$2; mkdir -p $OUT
T=$SP/torch/lib
# symbols the CPU torch and the system already provide
{ for l in $T/libtorch_cpu.so $T/libc10.so $T/libtorch.so $T/libtorch_python.so \
          $(ldconfig -p | awk '/(libc|libm|libstdc\+\+|libgcc_s)\.so/{print $NF}' | sort -u); do
    nm -D --defined-only $l 2>/dev/null | awk '{print $3}'; done; } | sed 's/@.*//' | sort -u > $OUT/def.txt
for so in $SP/torchvision/_C.so $SP/torchaudio/lib/*.so; do
  [ -f "$so" ] && nm -D $so | awk '$1=="U"{print $2}' | sed 's/@.*//'
done | sort -u | comm -23 - $OUT/def.txt | grep -vE "^(_ITM_|__gmon_start__|__tls_get_addr|_dl_.*)$" > $OUT/syms.txt
{ echo '#include <stdio.h>'; echo '#include <stdlib.h>'
  while read s; do
    case "$s" in
      *CUDACachingAllocator9allocatorE) echo "void* $s[8] = {0};";;
      # called by CUDA objects' static constructors at load time: must be harmless no-ops
      __cudaRegisterFatBinary) echo "void* $s(void* f){ static void* h = 0; return &h; }";;
      __cudaRegisterFatBinaryEnd|__cudaRegisterFunction|__cudaRegisterVar|__cudaUnregisterFatBinary|__cudaRegisterManagedVar|__cudaInitModule) echo "void $s(void){}";;
      *) echo "void $s(void){ fprintf(stderr, \"cuda stub called: $s\\n\"); abort(); }";;
    esac
  done < $OUT/syms.txt; } > $OUT/stub.c
gcc -shared -fPIC -O1 -o $OUT/libc10_cuda.so -Wl,-soname,libc10_cuda.so $OUT/stub.c
echo 'void __torch_cuda_stub(void){}' > $OUT/empty.c
gcc -shared -fPIC -o $OUT/libtorch_cuda.so -Wl,-soname,libtorch_cuda.so $OUT/empty.c
gcc -shared -fPIC -o $OUT/libcudart.so.13 -Wl,-soname,libcudart.so.13 $OUT/empty.c
echo "stubbed $(wc -l < $OUT/syms.txt) symbols into $OUT"
