#!/usr/bin/env bash
# Install what the tests need (system packages and the brokers of the matrix when root, a venv
# with docproc[test]), start the brokers that are not running, and run the tests.
# Quiet when everything is there already. Under CI=true (.ci/run) a test missing a component
# fails instead of skipping, and so does this script when it cannot start a broker.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "tests/run.sh: $*" >&2; }
in_ci() { case "${CI:-}" in [Tt][Rr][Uu][Ee] | 1 | yes) return 0 ;; *) return 1 ;; esac; }

# Whether 127.0.0.1:$1 answers $2 (printf escapes) with bytes starting $3 (hex), within 5 s.
answers() {
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "$2" >&3 &&
    [ "$(head -c $((${#3} / 2)) <&3 | od -An -tx1 | tr -d " \n")" = "$3" ]' _ "$@" 2>/dev/null
}
redis_answers() { answers 6379 'PING\r\n' 2b504f4e47; }             # +PONG
rabbitmq_answers() { answers 5672 'AMQP\0\0\011\001' 010000; }    # a Connection.Start frame

as_root=false
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && as_root=true

need_apt=()
# (grep without -q: its early exit would fail ldconfig with SIGPIPE, and so, under pipefail, the test)
ldconfig -p 2>/dev/null | grep 'libmagic\.so\.1' >/dev/null || need_apt+=(libmagic1)
# The status page's test drives Debian's headless Chromium through its chromedriver.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
# The broker matrix: a system Redis on 127.0.0.1:6379 and RabbitMQ on 127.0.0.1:5672.
start_redis=false start_rabbitmq=false
if ! redis_answers; then
  start_redis=true
  command -v redis-server >/dev/null || need_apt+=(redis-server)
fi
if ! rabbitmq_answers; then
  start_rabbitmq=true
  command -v rabbitmq-server >/dev/null || need_apt+=(rabbitmq-server)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if $as_root; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    say "please install: ${need_apt[*]}"
  fi
fi

# Wait up to $2 seconds for $1_answers; say what is wrong when it does not.
await() {
  local name=$1 deadline=$((SECONDS + $2))
  until "${name}_answers"; do
    if [ $SECONDS -ge "$deadline" ]; then
      say "$name does not answer on 127.0.0.1 after $2 s: $3"
      in_ci && exit 1
      return 0
    fi
    sleep 1
  done
}
if $start_redis && ! redis_answers; then  # the package's own start may have brought it up
  if $as_root && command -v redis-server >/dev/null; then
    say "starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --port 6379 --bind 127.0.0.1 --save '' --appendonly no \
      --dir /tmp --logfile /tmp/docproc-test-redis.log --pidfile /tmp/docproc-test-redis.pid \
      || say "redis-server did not start"
    await redis 30 "see /tmp/docproc-test-redis.log"
  else
    say "no Redis on 127.0.0.1:6379: as root, apt-get install redis-server;" \
      "redis-server --daemonize yes --port 6379 --bind 127.0.0.1"
  fi
fi
if $start_rabbitmq && ! rabbitmq_answers; then
  if $as_root && command -v rabbitmq-server >/dev/null; then
    say "starting rabbitmq-server (127.0.0.1:5672)"
    rabbitmq-server -detached || say "rabbitmq-server -detached failed (starting already?)"
    await rabbitmq 120 "see /var/log/rabbitmq/"
  else
    say "no RabbitMQ on 127.0.0.1:5672: as root, apt-get install rabbitmq-server;" \
      "rabbitmq-server -detached"
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
