#!/usr/bin/env bash
# The prepared GPU check (benchmarks/gpu_check.py has the details): fast tests, training
# throughput with every arm, and the gpu8 experiments that fit, packed into <= 6 files in --out.
#   bash benchmarks/gpu_check.sh --out "$OUT" [--minutes 10]
#   bash benchmarks/gpu_check.sh --out /tmp/gpu_check_dry --dry-run    # on a CPU: tiny sizes
set -euo pipefail
cd "$(dirname "$0")/.."
export XLA_PYTHON_CLIENT_PREALLOCATE=false
exec python benchmarks/gpu_check.py "$@"
