#!/usr/bin/env bash
# Cross-compile the C++ kernels for aarch64 (Debian's g++-aarch64-linux-gnu) and run the
# GEMM's C++ parity checks (tests/cpp/gemm_parity.cpp) under qemu-user: the portable
# micro-kernel (vector extensions -> NEON) builds and gives the reference's results.
# Correctness only; an emulator's timings say nothing about a real aarch64 CPU.
#
#   apt-get install g++-aarch64-linux-gnu qemu-user   # once
#   tools/cross_aarch64.sh            # aarch64 under qemu
#   tools/cross_aarch64.sh native     # the same checks built for this x86-64 machine
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-aarch64}"
out="${CROSS_DIR:-build-cross}/$target"
mkdir -p "$out"
flags=(-O3 -std=gnu++17 -fopenmp -DPYMINIDL_OPENMP=1 -Icsrc)
sources=(csrc/cpu_features.cpp csrc/team.cpp csrc/gemm.cpp csrc/dense_activation.cpp csrc/activations.cpp
         csrc/losses.cpp csrc/optim.cpp)
elementwise=(-fno-math-errno -fno-trapping-math -ffp-contract=off)  # as CMakeLists.txt
if [ "$target" = native ]; then
    cxx=g++
    flags+=(-DPYMINIDL_X86=1)
    extra=(csrc/gemm_avx2.cpp csrc/gemm_avx512.cpp csrc/dense_activation_avx2.cpp csrc/dense_activation_avx512.cpp
           csrc/activations_avx2.cpp csrc/activations_avx512.cpp csrc/losses_avx2.cpp csrc/losses_avx512.cpp
           csrc/optim_avx2.cpp csrc/optim_avx512.cpp)
    run=()
else
    cxx=aarch64-linux-gnu-g++
    extra=()
    run=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
fi
objs=()
for src in "${sources[@]}" "${extra[@]}"; do
    obj="$out/$(basename "$src" .cpp).o"
    isa=()
    case "$src" in
        *avx512*) isa=(-mavx512f -mavx512dq -mavx512vl -mavx512bw -mfma -mavx2) ;;
        *avx2*) isa=(-mavx2 -mfma) ;;
    esac
    case "$src" in
        *activation*|*losses*|*optim*) isa+=("${elementwise[@]}") ;;
    esac
    "$cxx" "${flags[@]}" "${isa[@]}" -c "$src" -o "$obj"
    objs+=("$obj")
done
"$cxx" "${flags[@]}" tests/cpp/gemm_parity.cpp "${objs[@]}" -o "$out/gemm_parity"
echo "built $out/gemm_parity with $("$cxx" --version | head -1)"
"${run[@]}" "$out/gemm_parity"
