#!/usr/bin/env bash
# Make sure the services the tests (or the demo) need are up: start them where this machine
# knows how, or fail saying how. Usage: ensure-services.sh [redis] [postgres] (default: both).
set -u
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(redis postgres)
status=0

redis_up() { python3 - <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", 6379), timeout=2)
    s.sendall(b"PING\r\n"); ok = s.recv(16).startswith(b"+PONG")
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}
postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

for service in "${wanted[@]}"; do
  case "$service" in
    redis)
      if ! redis_up && command -v redis-server >/dev/null; then
        echo "Redis is down: starting it" >&2
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
          --appendonly no --dir /tmp >/dev/null
        for _ in $(seq 20); do redis_up && break; sleep 0.25; done
      fi
      redis_up || { echo "Redis is not reachable on 127.0.0.1:6379. Start it with:" \
        "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no" >&2; status=1; }
      ;;
    postgres)
      if ! postgres_up && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        echo "PostgreSQL is down: starting it" >&2
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
        for _ in $(seq 40); do postgres_up && break; sleep 0.25; done
      fi
      postgres_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432. Start it with:" \
        "pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2; status=1; }
      ;;
  esac
done
exit $status
