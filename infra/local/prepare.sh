#!/usr/bin/env bash
# Prepares this machine to run or test Conveyor: pnpm, the workspace's
# dependencies, and a local RabbitMQ and Redis. Runs before `pnpm start` and
# `pnpm test`, so it is idempotent and takes well under a second when
# everything is already in place.
#
#   SKIP_SERVICES=1        only pnpm and dependencies
#   AMQP_URL / REDIS_URL   a service whose URL names another host is left alone
#
# Servers it starts itself (when nothing answers on localhost):
#   rabbitmq-server -detached
#   redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
# When they are not installed and we are root on Debian/Ubuntu, it installs
# them with apt-get; otherwise it stops and says what to run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# RabbitMQ accepts AMQP 10-20 s after start (longer on a cold, busy machine);
# beyond this something is wrong and waiting longer will not fix it.
WAIT_SECONDS="${PREPARE_WAIT_SECONDS:-90}"

log() { printf 'prepare: %s\n' "$*" >&2; }
die() {
  printf 'prepare: error: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  exit 1
}

# ---------------------------------------------------------------- pnpm + deps

if ! command -v pnpm >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || die "neither pnpm nor npm is on PATH" "install Node.js 20 (it ships npm), then re-run"
  log "installing pnpm 10 (npm i -g pnpm@10)"
  npm i -g pnpm@10 >&2
fi

# pnpm rewrites node_modules/.modules.yaml on every install, so it is the
# marker of "installed from this lockfile"; touched below because a no-op
# install may leave it older than a lockfile that changed only cosmetically.
marker=node_modules/.modules.yaml
if [[ ! -f "$marker" || pnpm-lock.yaml -nt "$marker" ]]; then
  log "installing dependencies (pnpm install --frozen-lockfile)"
  pnpm install --frozen-lockfile >&2
  touch "$marker"
fi

# ------------------------------------------------------------------ services

if [[ "${SKIP_SERVICES:-0}" == 1 ]]; then
  exit 0
fi

# The host and port of URL ($1), or the defaults ($2 $3) when unset. Prints "host port".
url_host_port() {
  local url="$1" default_port="$2"
  local rest="${url#*://}"        # drop the scheme
  rest="${rest%%/*}"               # drop the path (vhost, db number)
  rest="${rest##*@}"               # drop user:password@
  local host port
  if [[ "$rest" == \[* ]]; then    # [ipv6]:port
    host="${rest%%]*}"; host="${host#[}"
    port="${rest#*]}"; port="${port#:}"
  else
    host="${rest%%:*}"
    port="${rest#"$host"}"; port="${port#:}"
  fi
  printf '%s %s\n' "${host:-localhost}" "${port:-$default_port}"
}

is_local_host() {
  case "$1" in
    localhost | 127.* | ::1 | 0.0.0.0) return 0 ;;
    *) return 1 ;;
  esac
}

# A real protocol exchange, not just an open port: RabbitMQ answers the AMQP
# 0-9-1 header with a connection.start frame (frame type 1); Redis answers
# PING (or NOAUTH when it has a password, which still means it is up).
amqp_answers() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "AMQP\x00\x00\x09\x01" >&3
    [[ "$(head -c 1 <&3 | od -An -tx1 | tr -d " ")" == 01 ]]
  ' _ "$1" 2>/dev/null
}
redis_answers() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "PING\r\n" >&3
    IFS= read -r reply <&3
    [[ "$reply" == +PONG* || "$reply" == -NOAUTH* ]]
  ' _ "$1" 2>/dev/null
}

read -r amqp_host amqp_port < <(url_host_port "${AMQP_URL:-}" 5672)
read -r redis_host redis_port < <(url_host_port "${REDIS_URL:-}" 6379)
need_rabbit=0
need_redis=0
if is_local_host "$amqp_host" && ! amqp_answers "$amqp_port"; then need_rabbit=1; fi
if is_local_host "$redis_host" && ! redis_answers "$redis_port"; then need_redis=1; fi
if (( need_rabbit == 0 && need_redis == 0 )); then
  exit 0
fi

# Install what is missing, only where that is safe to do unattended.
missing=()
if (( need_rabbit )) && ! command -v rabbitmq-server >/dev/null 2>&1; then missing+=(rabbitmq-server); fi
if (( need_redis )) && ! command -v redis-server >/dev/null 2>&1; then missing+=(redis-server); fi
if (( ${#missing[@]} > 0 )); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >&2
  else
    die "${missing[*]} not installed and nothing answers on localhost" \
      "install, then re-run this script (it starts them):  sudo apt-get install -y ${missing[*]} && bash infra/local/prepare.sh" \
      "(macOS: brew install rabbitmq redis && brew services start rabbitmq && brew services start redis)" \
      "or point Conveyor at running servers:  AMQP_URL=amqp://user:pass@host:5672 REDIS_URL=redis://host:6379/0" \
      "or skip this step:  SKIP_SERVICES=1"
  fi
fi

# Installing may have started them (Debian's postinst does, where it can).
if (( need_rabbit )) && amqp_answers "$amqp_port"; then need_rabbit=0; fi
if (( need_redis )) && redis_answers "$redis_port"; then need_redis=0; fi

if (( need_redis )); then
  log "starting redis-server on 127.0.0.1:$redis_port"
  # Local dev and tests only: no persistence, loopback only.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >&2 \
    || die "redis-server failed to start" "try by hand: redis-server --bind 127.0.0.1 --port $redis_port --save '' --appendonly no"
fi

if (( need_rabbit )); then
  log "starting rabbitmq-server (takes 10-20 s)"
  # Debian's wrapper switches to the rabbitmq user when run as root; other
  # users need to be root or rabbitmq, so try sudo when it will not prompt.
  start_rabbit=(rabbitmq-server -detached)
  if [[ "$(id -u)" != 0 ]] && [[ "$(id -un)" != rabbitmq ]] && sudo -n true 2>/dev/null; then
    start_rabbit=(sudo -n rabbitmq-server -detached)
  fi
  env RABBITMQ_NODE_PORT="$amqp_port" "${start_rabbit[@]}" >&2 \
    || die "rabbitmq-server -detached failed" "see /var/log/rabbitmq/ and try: sudo rabbitmq-server -detached"
fi

deadline=$(( SECONDS + WAIT_SECONDS ))
while :; do
  if (( need_rabbit )) && amqp_answers "$amqp_port"; then need_rabbit=0; log "RabbitMQ is up on port $amqp_port"; fi
  if (( need_redis )) && redis_answers "$redis_port"; then need_redis=0; log "Redis is up on port $redis_port"; fi
  (( need_rabbit == 0 && need_redis == 0 )) && break
  if (( SECONDS >= deadline )); then
    (( need_rabbit )) && log "RabbitMQ did not accept AMQP on localhost:$amqp_port within ${WAIT_SECONDS} s (logs: /var/log/rabbitmq/)"
    (( need_redis )) && log "Redis did not answer PING on localhost:$redis_port within ${WAIT_SECONDS} s"
    die "services not ready" "check the logs above, or start them yourself and re-run, or set AMQP_URL/REDIS_URL"
  fi
  sleep 1
done
