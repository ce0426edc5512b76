#!/usr/bin/env bash
# `make test`: install what is missing, start a private Redis and a throwaway PostgreSQL
# cluster, run pytest once on SQLite and once on PostgreSQL, stop everything, and exit
# non-zero if either run failed. Extra pytest arguments come from $PYTEST_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh

install_debian_packages redis-server postgresql chromium
install_python_env
install_prism

eval "pytest_args=(${PYTEST_ARGS:-})"  # keeps quoted arguments together: -k "a and b"
work=$(mktemp -d /tmp/firmsync-test.XXXXXX)
pg_dir=
redis_pid=
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# PostgreSQL refuses to run as root: root runs it as the `postgres` system user (from /,
# which that user can always enter).
as_postgres() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

stop_services() {
    trap - EXIT INT TERM
    if [[ -n $pg_dir && -f $pg_dir/data/postmaster.pid ]]; then
        as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null || true
    fi
    if [[ -n $redis_pid ]]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    rm -rf "$work" ${pg_dir:+"$pg_dir"}
}
trap stop_services EXIT
trap 'exit 130' INT TERM

# Redis: loopback only, no persistence, data in the temp dir.
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work" --save '' --appendonly no \
    >"$work/redis.log" 2>&1 &
redis_pid=$!
export FIRMSYNC_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"

# PostgreSQL: a cluster in a temp dir owned by the user that runs it, loopback only,
# durability switched off (it is thrown away), trust auth on 127.0.0.1 for the test role.
pg_dir=$(mktemp -d /tmp/firmsync-pg.XXXXXX)
[[ $EUID -ne 0 ]] || chown postgres: "$pg_dir"
pg_port=$(free_port)
as_postgres "$pg_bin/initdb" -D "$pg_dir/data" -U firmsync -A trust -E UTF8 --locale=C --no-sync \
    >"$pg_dir/initdb.log" || { cat "$pg_dir/initdb.log"; exit 1; }
as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories='$pg_dir'" \
    -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$pg_dir/server.log"; exit 1; }
as_postgres "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U firmsync firmsync_test
postgres_url="postgresql://firmsync@127.0.0.1:$pg_port/firmsync_test"

for _ in {1..50}; do
    (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
    sleep 0.1
done

# run_pytest LABEL [VAR=value...]: run the suite, print one summary line, return its status.
declare -A summary=()
run_pytest() {
    local label=$1 status=0
    shift
    echo "firmsync: running the tests on $label"
    env -u FIRMSYNC_TEST_DATABASE_URL "$@" .venv/bin/python -m pytest "${pytest_args[@]}" || status=$?
    case $status in
        0) summary[$label]="passed" ;;
        5) summary[$label]="FAILED (no tests were collected)" ;;
        *) summary[$label]="FAILED (pytest exit status $status)" ;;
    esac
    return $((status == 0 ? 0 : 1))
}

failed=0
echo "firmsync: checking the layering contracts (import-linter, [tool.importlinter] in pyproject.toml)"
if .venv/bin/lint-imports --no-cache; then layering="kept"; else layering="BROKEN"; failed=1; fi
run_pytest SQLite || failed=1
run_pytest PostgreSQL "FIRMSYNC_TEST_DATABASE_URL=$postgres_url" || failed=1

echo
echo "firmsync: layering contracts: $layering"
for label in SQLite PostgreSQL; do
    echo "firmsync: tests on $label: ${summary[$label]}"
done
exit "$failed"
