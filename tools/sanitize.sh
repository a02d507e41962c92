#!/usr/bin/env bash
# Build pyminidl's extension with AddressSanitizer + UndefinedBehaviorSanitizer in its own
# build folder and virtual environment, then run the test suite (or the pytest arguments
# given) under it. Any ASan/UBSan report aborts the run with a non-zero exit.
#
#   tools/sanitize.sh                 # the whole suite
#   tools/sanitize.sh -m sanitize     # the subset CI runs (kernels, fuzzing, properties)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work="${SANITIZE_DIR:-$root/build-sanitize}"
venv="$work/venv"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
pip install -q numpy pytest hypothesis scikit-build-core pybind11
pip install -q --no-build-isolation \
    -Cbuild-dir="$work/cmake" \
    -Ccmake.build-type=RelWithDebInfo \
    -Ccmake.define.PYMINIDL_SANITIZE=ON \
    .

# Python itself is not built with ASan, so the runtime must be loaded first.
libasan="$(g++ -print-file-name=libasan.so)"
libubsan="$(g++ -print-file-name=libubsan.so)"
export LD_PRELOAD="$libasan:$libubsan"
# CPython's allocator pools and interned objects look like leaks to LeakSanitizer.
# allocator_may_return_null: an impossible allocation (a copy of a 2**60-byte view) must become the
# MemoryError the tests expect, as it does without ASan, not an abort.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc  # let ASan see every allocation, not pymalloc's arenas
export PYMINIDL_SANITIZED=1

cd "$root"
(cd / && python -c "import pyminidl; pyminidl.show_config()")  # not the source tree
pytest -p no:cacheprovider "$@"
