#!/usr/bin/env bash
# Every figure of issue 9 (BENCHMARKS.md), one after another, each script printing its own table.
# Usage: DATABASE_URL=... REDIS_URL=... bash bench/issue9.sh [FIGURE...]   (default: all, 1 to 9)
# Run it on a quiet machine: the figures are timings, and the baselines share the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL}" "${REDIS_URL:?set REDIS_URL}"

figure() {
    # The previous figure's writes (gigabytes for figure 5) are flushed now, not during this one's timing.
    psql "$DATABASE_URL" -qc CHECKPOINT
    echo "=== figure $1: ${*:2} ($(date -u +%FT%TZ))"
    "${@:2}"
}

figures=("$@")
[ $# -gt 0 ] || figures=(1 2 3 4 5 6 7 8 9)
for n in "${figures[@]}"; do
    case $n in
        1) figure 1 python bench/noop_jobs.py 1000 3 ;;
        2) figure 2 python bench/pipeline_throughput.py 200 3 ;;
        3) figure 3 python bench/ocr_throughput.py 16 3 ;;
        4) figure 4 python bench/big_document.py 200 3 ;;
        5) figure 5 python bench/upload_latency.py 40 60 8 10 ;;
        6) figure 6 python bench/crash_detection.py 5 ;;
        7) figure 7 python bench/ingest.py 100000 1 5 ;;
        8) figure 8 python bench/admin_at_scale.py 1000000 20 ;;
        9) for processes in 1 2 4; do
           WORKER_PROCESSES=$processes OCR_CONCURRENT_JOBS=$((4 * processes)) \
               figure 9 python bench/pipeline_throughput.py 200 3
           done ;;
        *) echo "no figure $n (1 to 9)" >&2; exit 2 ;;
    esac
done
