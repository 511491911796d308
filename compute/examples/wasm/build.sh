#!/bin/sh
# Build mandelbrot.wasm from mandelbrot.c with Debian's clang and lld (apt: clang lld).
#   -nostdlib, --no-entry  a library module: no libc, no start function; exports are named
#                          in the source with export_name.
#   -fno-builtin           stops clang turning a loop into a call to memset, which no libc
#                          would provide.
#   -ffp-contract=off      every multiply and add rounds separately, as in the JavaScript
#                          and Python versions, so all three give the same counts.
set -eu
cd "$(dirname "$0")"
CLANG="${CLANG:-clang}"
"$CLANG" --target=wasm32 -O3 -ffp-contract=off -fno-builtin -nostdlib \
    -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=65536 \
    -o mandelbrot.wasm mandelbrot.c
echo "built $(pwd)/mandelbrot.wasm ($(wc -c < mandelbrot.wasm) bytes)"
