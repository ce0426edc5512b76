#!/usr/bin/env bash
# `make test`: install what is missing, start a throwaway PostgreSQL cluster, run pytest on
# SQLite and on PostgreSQL at the same time (each run starts its own private Redis, see
# tests/conftest.py), stop everything, and exit non-zero if either run failed. Extra pytest
# arguments come from $PYTEST_ARGS; FIRMSYNC_TEST_SERIAL=1 runs the two one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install.sh

install_debian_packages redis-server postgresql chromium
install_python_env
install_prism

eval "pytest_args=(${PYTEST_ARGS:-})"  # keeps quoted arguments together: -k "a and b"
work=$(mktemp -d /tmp/firmsync-test.XXXXXX)
pg_dir=
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
    if [[ -n ${pg_run_pid:-} ]]; then
        pkill -TERM -P "$pg_run_pid" 2>/dev/null || true
        kill "$pg_run_pid" 2>/dev/null || true
        wait "$pg_run_pid" 2>/dev/null || true
    fi
    rm -rf "$work" ${pg_dir:+"$pg_dir"}
}
trap stop_services EXIT
trap 'exit 130' INT TERM

# Redis: each pytest run starts its own (loopback, no persistence), so the two runs never
# flush each other's queues.
unset FIRMSYNC_TEST_REDIS_URL

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

# run_pytest LABEL [VAR=value...]: run the suite, print one summary line, return its status.
declare -A summary=()
run_pytest() {
    local label=$1 status=0
    shift
    echo "firmsync: running the tests on $label"
    env -u FIRMSYNC_TEST_DATABASE_URL "$@" .venv/bin/python -m pytest --basetemp="$work/pytest-$label" --durations=15 \
        "${pytest_args[@]}" || status=$?
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
if [[ ${FIRMSYNC_TEST_SERIAL:-} == 1 ]]; then
    run_pytest SQLite || failed=1
    run_pytest PostgreSQL "FIRMSYNC_TEST_DATABASE_URL=$postgres_url" || failed=1
else
    # The suite waits on workers, browsers and servers much of the time: two runs side by side
    # use the machine's cores. PostgreSQL's output is kept in a file and shown once it is done.
    pg_log="$work/postgresql-run.log"
    (status=0
     run_pytest PostgreSQL "FIRMSYNC_TEST_DATABASE_URL=$postgres_url" >"$pg_log" 2>&1 || status=$?
     echo "${summary[PostgreSQL]}" >"$work/postgresql-summary"; exit $status) &
    pg_run_pid=$!
    run_pytest SQLite || failed=1
    pg_status=0
    wait "$pg_run_pid" || pg_status=$?
    pg_run_pid=
    echo
    cat "$pg_log"
    summary[PostgreSQL]=$(cat "$work/postgresql-summary" 2>/dev/null || echo "FAILED (the run stopped)")
    ((pg_status == 0)) || failed=1
fi

echo
echo "firmsync: layering contracts: $layering"
for label in SQLite PostgreSQL; do
    echo "firmsync: tests on $label: ${summary[$label]}"
done
exit "$failed"
