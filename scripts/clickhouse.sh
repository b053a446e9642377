#!/usr/bin/env bash
# Installs (Debian's clickhouse-server 18.16) and runs a throwaway ClickHouse for the Analytics Engine
# SQL backend's tests: 127.0.0.1 only, non-default ports, config and data under one temp folder.
#
#   bash scripts/clickhouse.sh          start (idempotent), print the HTTP URL
#   bash scripts/clickhouse.sh stop     stop the server this script started
#   bash scripts/clickhouse.sh status   print the URL if it answers, exit 1 if not
#
# Test runs may overlap (several engineers, one machine), so they hold leases:
#   KEYWARDEN_CH_LEASE=<pid> bash scripts/clickhouse.sh start     start or reuse, and record the lease
#   KEYWARDEN_CH_LEASE=<pid> bash scripts/clickhouse.sh release   drop it; the last live lease stops
#                                                                 the server, if a leased start launched it
# A server started without a lease (by hand, by CI) is never stopped by a release.
#
# KEYWARDEN_CH_PORT (HTTP, default 18123), KEYWARDEN_CH_TCP_PORT (native, default 19000),
# KEYWARDEN_CH_DIR (default $TMPDIR/keywarden-clickhouse), KEYWARDEN_CH_WAIT_SEC (default 30).
set -euo pipefail

port="${KEYWARDEN_CH_PORT:-18123}"
tcp_port="${KEYWARDEN_CH_TCP_PORT:-19000}"
dir="${KEYWARDEN_CH_DIR:-${TMPDIR:-/tmp}/keywarden-clickhouse}"
wait_sec="${KEYWARDEN_CH_WAIT_SEC:-30}"
lease="${KEYWARDEN_CH_LEASE:-}"
url="http://127.0.0.1:${port}/"
pidfile="${dir}/server.pid"
leases="${dir}/leases"
owned="${dir}/started-for-tests"

for n in "$port" "$tcp_port" "$wait_sec" ${lease:+"$lease"}; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "clickhouse.sh: not a number: $n" >&2; exit 2; }
done

# One start/stop/release at a time: two runs starting at once would race for the port.
lock() {
  mkdir -p "$dir"
  exec 9>"${dir}/lock"
  flock -w 120 9 || { echo "clickhouse.sh: ${dir}/lock is held too long" >&2; exit 1; }
}

live_leases() {
  local n=0 f
  for f in "$leases"/*; do
    [[ -e "$f" ]] || continue
    if kill -0 "$(basename "$f")" 2>/dev/null; then n=$((n + 1)); else rm -f "$f"; fi
  done
  echo "$n"
}

take_lease() {
  [[ -n "$lease" ]] || return 0
  mkdir -p "$leases"
  : >"${leases}/${lease}"
}

answers() {
  [[ "$(curl -fsS --max-time 2 --data-binary 'SELECT 1' "$url" 2>/dev/null)" == "1" ]]
}

running_pid() {
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid="$(cat "$pidfile")"
  # A stale pidfile may name a pid the system has since given to another process.
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    [[ "$(cat "/proc/${pid}/comm" 2>/dev/null)" == clickhouse* ]] && echo "$pid"
}

install() {
  command -v clickhouse-server >/dev/null 2>&1 && command -v curl >/dev/null 2>&1 && return 0
  echo "clickhouse.sh: installing clickhouse-server (Debian) ..." >&2
  local log="${dir}/apt.log"
  # The package's postinst tries to start the system service; policy-rc.d denies it in containers,
  # and we never want the system instance anyway.
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    clickhouse-server clickhouse-client curl; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "clickhouse.sh: apt-get install failed (log: $log)" >&2
    exit 1
  fi
}

write_config() {
  mkdir -p "${dir}/data/tmp" "${dir}/data/user_files" "${dir}/data/format_schemas"
  cat >"${dir}/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/server.log</log>
    <errorlog>${dir}/server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${port}</http_port>
  <tcp_port>${tcp_port}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/data/tmp/</tmp_path>
  <user_files_path>${dir}/data/user_files/</user_files_path>
  <format_schema_path>${dir}/data/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <max_concurrent_queries>32</max_concurrent_queries>
  <!-- Idle keep-alive connections (a test runner's fetch pool) would hold shutdown for ~10 s. -->
  <keep_alive_timeout>1</keep_alive_timeout>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
</yandex>
EOF
  cat >"${dir}/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>2000000000</max_memory_usage>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks>
        <ip>127.0.0.1</ip>
        <ip>::1</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
EOF
}

start() {
  local pid deadline
  mkdir -p "$dir"
  if answers; then
    take_lease
    echo "$url"
    return 0
  fi
  if pid="$(running_pid)"; then
    echo "clickhouse.sh: pid $pid is running but does not answer on $url; stopping it" >&2
    stop
  fi
  install
  write_config
  # 18.16 runs as root (checked); newer releases refuse unless run as the clickhouse user.
  # setsid + redirections: the server must not hold the caller's pipes open (a test that spawns this
  # script waits for them to close) nor die with the caller's process group.
  # 9>&-: the server must not inherit the lock.
  setsid clickhouse-server --config-file="${dir}/config.xml" \
    </dev/null >"${dir}/stdout.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$pidfile"
  if [[ -n "$lease" ]]; then : >"$owned"; else rm -f "$owned"; fi
  deadline=$((SECONDS + wait_sec))
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "${dir}/server.err.log" "${dir}/stdout.log" >&2 2>/dev/null || true
      echo "clickhouse.sh: clickhouse-server exited during startup" >&2
      rm -f "$pidfile"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "${dir}/server.err.log" >&2 2>/dev/null || true
      echo "clickhouse.sh: no answer on $url after ${wait_sec}s" >&2
      stop
      exit 1
    fi
    sleep 0.2
  done
  take_lease
  echo "$url"
}

stop() {
  local pid
  rm -f "$owned"
  if ! pid="$(running_pid)"; then
    rm -f "$pidfile"
    return 0
  fi
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

release() {
  [[ -n "$lease" ]] || { echo "clickhouse.sh: release needs KEYWARDEN_CH_LEASE" >&2; exit 2; }
  rm -f "${leases}/${lease}"
  if [[ "$(live_leases)" == 0 && -f "$owned" ]]; then stop; fi
}

case "${1:-start}" in
  start) lock && start ;;
  stop) lock && stop ;;
  release) lock && release ;;
  status)
    if answers; then echo "$url"; else exit 1; fi
    ;;
  *)
    echo "usage: $0 [start|stop|status|release]" >&2
    exit 2
    ;;
esac
