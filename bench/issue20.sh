#!/usr/bin/env bash
# The figures of issue 20 (BENCHMARKS.md), one after another, each script printing its own table.
# Usage: DATABASE_URL=... REDIS_URL=... bash bench/issue20.sh [FIGURE...]   (default: all, 1 to 6)
# Run it on a quiet machine: the figures are timings, and the baselines share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL}" "${REDIS_URL:?set REDIS_URL}"

figure() {
    psql "$DATABASE_URL" -qc CHECKPOINT
    echo "=== figure $1: ${*:2} ($(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
    "${@:2}"
}

figures=("$@")
[ $# -gt 0 ] || figures=(1 2 3 4 5 6)
for n in "${figures[@]}"; do
    case $n in
        1) figure 1 python bench/pipeline_throughput.py 200 3
           # Batches (ARCHITECTURE.md): 32 slots for the worker's 4 threads, one job a message against 8.
           for jobs in 1 8; do
               figure 1 env OCR_CONCURRENT_JOBS=32 JOBS_PER_MESSAGE=$jobs python bench/pipeline_throughput.py 200 3
           done ;;
        2) # Jobs per message (and so per claim): 1, 8 and 50, with 200 slots so that batches can fill.
           for jobs in 1 8 50; do
               figure 2 env OCR_CONCURRENT_JOBS=200 JOBS_PER_MESSAGE=$jobs python bench/noop_jobs.py 1000 3
           done ;;
        3) figure 3 python bench/cpu_per_document.py 300 ;;
        4) figure 4 python bench/ingest_to_completed.py 3000
           figure 4 env OCR_CONCURRENT_JOBS=32 python bench/ingest_to_completed.py 3000 ;;
        5) figure 5 python bench/upload_latency.py 40 60 8 10 ;;
        6) figure 6 python bench/big_document.py 200 3
           figure 6 python bench/crash_detection.py 5
           figure 6 python bench/ocr_throughput.py 16 3 ;;
        *) echo "no figure $n (1 to 6)" >&2; exit 2 ;;
    esac
done
