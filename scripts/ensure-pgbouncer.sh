#!/usr/bin/env bash
# Debian's pgbouncer, which tests/test_pgbouncer.py starts in transaction mode in front of the
# tests' PostgreSQL: installed with apt-get where it is missing and we are root, else fail
# saying how. Fast (one file check) when it is there. Only the binary is used (the tests run
# their own on a free port): the package's service is not started on install.
set -u
PGBOUNCER=/usr/sbin/pgbouncer
present() { [ -x "$PGBOUNCER" ]; }
present && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "pgbouncer is missing: installing Debian's package" >&2
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d exit 101: the package's service is not started on install (the tests run
  # their own pgbouncer; the packaged one would take port 6432 for nothing).
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  apt-get install -y -q pgbouncer >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q pgbouncer >/dev/null; }
  [ -n "$created" ] && rm -f "$policy"
fi
present || {
  echo "the PgBouncer tests need $PGBOUNCER (Debian package pgbouncer). Install it with:" \
    "sudo apt-get update && sudo apt-get install -y pgbouncer" >&2
  exit 1
}
