#!/usr/bin/env bash
# `make run`: install what is missing, start redis and the sandbox, migrate, seed the demo firm
# (connected to the sandbox and synced, see docs/demo.md), then run web, worker and cron; every
# process's output is prefixed by its name. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh
source scripts/supervise.sh  # supervise NAME COMMAND...: restart a process that exits

install_debian_packages redis-server
install_python_env

export FIRMSYNC_ENV=development
export FIRMSYNC_SANDBOX_URL=${FIRMSYNC_SANDBOX_URL:-http://127.0.0.1:5050}
flask=(.venv/bin/flask --app wsgi)

declare -A names=()  # pid (= process group id) -> process name

prefix_lines() {
    sed -u "s/^/$(printf '%-8s|' "$1") /"
}

# start NAME COMMAND...: run COMMAND in its own process group, output prefixed with NAME.
start() {
    local name=$1
    shift
    "$@" </dev/null > >(prefix_lines "$name") 2>&1 &
    names[$!]=$name
}

stop_all() {
    trap - EXIT INT TERM
    set +m  # no job-status lines while shutting down
    local pid
    ((${#names[@]})) || return 0
    echo "firmsync: stopping ${names[*]}"
    for pid in "${!names[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for _ in {1..50}; do
        for pid in "${!names[@]}"; do
            kill -0 -- "-$pid" 2>/dev/null || unset "names[$pid]"
        done
        ((${#names[@]})) || return 0
        sleep 0.2
    done
    for pid in "${!names[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

redis_answers() {
    if command -v redis-cli >/dev/null; then
        redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1
    else
        (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null
    fi
}

set -m  # every process gets its own process group, so stopping one stops its children too

if redis_answers; then
    echo "firmsync: using the Redis server already answering on 127.0.0.1:6379"
else
    mkdir -p instance/redis
    start redis redis-server --bind 127.0.0.1 --port 6379 --dir "$PWD/instance/redis" \
        --save 300 1 --appendonly no
    for _ in {1..50}; do
        redis_answers && break
        sleep 0.1
    done
fi

# The sandbox first: the demo seed connects to it and syncs the demo files in-process.
start sandbox .venv/bin/python -m sandbox --port 5050
for _ in {1..100}; do
    (exec 3<>/dev/tcp/127.0.0.1/5050) 2>/dev/null && break
    sleep 0.1
done

"${flask[@]}" db upgrade
"${flask[@]}" seed demo

start web "${flask[@]}" run -h 127.0.0.1 -p 5000
# worker and cron are restarted when they exit (a Redis outage, a crash, kill -9), each in its own
# process group so a killed worker's scheduler process goes with it; with no queue names the
# worker serves every queue, highest priority first: people, sync, default, backfill
start worker supervise worker "${flask[@]}" worker
start cron supervise cron "${flask[@]}" sync cron

echo "firmsync: open http://127.0.0.1:5000 and log in with a demo login above (Ctrl-C stops everything)"

# Keep running while the web server runs; report any other process that stops.
while ((${#names[@]})); do
    status=0
    wait -n -p finished "${!names[@]}" || status=$?
    [[ -n ${finished:-} ]] || continue
    name=${names[$finished]}
    unset "names[$finished]"
    echo "firmsync: $name stopped (exit status $status)"
    [[ $name != web ]] || exit "$status"
    finished=
done
