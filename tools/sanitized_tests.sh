#!/usr/bin/env bash
# The C modules built with AddressSanitizer and UndefinedBehaviorSanitizer
# (NSDEBUG_SANITIZE=1, see setup.py), then the tests that drive them run under it:
# the unit tier (the C readers on hand-made ELF files, object memory, symbol tables)
# and the tests of the heap kernels, the graph, the DWARF reader and bad input on real
# cores. The sanitizer runtime is preloaded (the interpreter is not built with it),
# so every process the tests start runs with it too; leaks are not checked (CPython
# keeps memory to exit). Then the fuzz harnesses (fuzz/, built by clang): their kept
# inputs replayed and each run for ten seconds (about a minute and a half in all).
#
# usage: tools/sanitized_tests.sh [VENV] [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(realpath -m "${1:-.venv-sanitize}")
shift || true
python3 -m venv "$venv"
NSDEBUG_SANITIZE=1 "$venv/bin/pip" install -q '.[test]'
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
# The tests give it to the processes that load nsdebug (tests/targets.py nsdebug_env),
# not to the targets, gdb or gcore.
export NSDEBUG_SANITIZER_PRELOAD="$asan:$ubsan"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Each module is the sanitized build (it imports, and carries the runtime's hooks);
# checked from outside the checkout, whose own nsdebug `python -` would import.
(cd / && LD_PRELOAD="$NSDEBUG_SANITIZER_PRELOAD" "$venv/bin/python" - <<'PY'
import importlib
for name in ("nsdebug.corefile._vector", "nsdebug.heap._kernels", "nsdebug.corefile._symtab",
             "nsdebug.heap._graphc", "nsdebug.native._dwarfc"):
    path = importlib.import_module(name).__file__
    if b"__asan_report" not in open(path, "rb").read():
        raise SystemExit(f"{path} is not built with AddressSanitizer")
print("sanitized modules: ok")
PY
)
if [ $# -eq 0 ]; then
    set -- tests/unit tests/heap/test_kernels.py tests/heap/test_corrupt_heap.py \
        tests/heap/test_graph_algorithms.py tests/native/test_dwarf.py \
        tests/native/test_cfi_rows.py tests/corefile/test_bad_input.py \
        tests/corefile/test_fuzz.py tests/heap/test_buffers_bad.py
fi
LD_PRELOAD="$NSDEBUG_SANITIZER_PRELOAD" "$venv/bin/pytest" -q "$@"

# The coverage-guided harnesses of fuzz/ (tools/fuzz.py): built by clang with the
# sanitizers and libFuzzer's counters, every kept input replayed (the reproducers of
# past findings, the seed corpora), then each harness run for a short seeded time.
if ! command -v clang >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang >/dev/null
    else
        echo "sanitized: clang is needed for the fuzz harnesses (apt-get install clang)" >&2
        exit 2
    fi
fi
fuzz_venv=$(realpath -m "${venv}-fuzz")
python3 tools/fuzz.py build "$fuzz_venv"
python3 tools/fuzz.py replay "$fuzz_venv"
python3 tools/fuzz.py run "$fuzz_venv" --time 10 --jobs 2 --seed 1 \
    --out "$(mktemp -d -t nsdebug-fuzz-ci-XXXXXX)"
