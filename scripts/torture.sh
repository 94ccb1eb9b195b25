#!/bin/sh
# The torture suite (tests/torture.rs); see docs/reliability.md.
#   scripts/torture.sh          short form (CI): 300 complaints, about a minute
#   scripts/torture.sh long     long form: 2,000 complaints, chaos up to 10 minutes
# Every TORTURE_* variable set in the environment wins over these defaults.
# Needs PostgreSQL on TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
# and, for the PostgreSQL restart, root and pg_ctlcluster (TORTURE_PG_RESTART=0 skips it).
set -eu
cd "$(dirname "$0")/.."
case "${1:-short}" in
short) ;;
long)
    export TORTURE_COMPLAINTS="${TORTURE_COMPLAINTS:-2000}"
    export TORTURE_SECS="${TORTURE_SECS:-600}"
    export TORTURE_DRAIN_SECS="${TORTURE_DRAIN_SECS:-300}"
    ;;
*)
    echo "usage: $0 [short|long]" >&2
    exit 2
    ;;
esac
exec cargo test --test torture -- --nocapture
