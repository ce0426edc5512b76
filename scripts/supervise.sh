# Sourced by scripts/run.sh (and by tests/faults/test_web_faults.py): `supervise NAME COMMAND...`
# keeps COMMAND running, the way systemd's Restart=always does in production (docs/deployment.md).
#
# * COMMAND runs in its own process group. When it exits, whatever is left of that group (an RQ
#   worker's scheduler process, which would otherwise stay orphaned holding the scheduler lock)
#   is stopped too, then COMMAND starts again after a pause: SUPERVISE_RESTART_DELAY seconds
#   (default 1), doubling after every quick exit up to SUPERVISE_MAX_DELAY (default 30), back to
#   the first pause once COMMAND ran longer than SUPERVISE_STABLE_SECONDS (default 60).
# * SIGTERM or SIGINT stop the supervisor: COMMAND's whole process group gets SIGTERM, then
#   SIGKILL after SUPERVISE_STOP_SECONDS (default 8, under run.sh's 10), and the supervisor exits 0.
# * Each start and exit is reported on stdout: `supervise: worker exited (status 1), restarting in 2 s`.

# stop_process_group PGID [SECONDS]: SIGTERM the group, SIGKILL it if still there after SECONDS.
stop_process_group() {
    local group=$1 seconds=${2:-${SUPERVISE_STOP_SECONDS:-8}} waited=0
    kill -TERM -- "-$group" 2>/dev/null || return 0
    while kill -0 -- "-$group" 2>/dev/null; do
        if ((waited >= seconds * 10)); then
            kill -KILL -- "-$group" 2>/dev/null || true
            return 0
        fi
        sleep 0.1
        ((waited += 1))
    done
}

supervise() {
    local name=$1
    shift
    local first=${SUPERVISE_RESTART_DELAY:-1} max=${SUPERVISE_MAX_DELAY:-30}
    local stable=${SUPERVISE_STABLE_SECONDS:-60}
    local delay=$first child="" status started
    trap '[[ -z $child ]] || stop_process_group "$child"; echo "supervise: $name stopped"; exit 0' TERM INT
    while :; do
        set -m  # the command gets its own process group (its pid), so the group can be stopped whole
        "$@" </dev/null &
        child=$!
        set +m
        started=$SECONDS
        echo "supervise: $name started (pid $child)"
        status=0
        wait "$child" || status=$?
        # the command is gone; stop what it left behind in its group (kill -9 of a worker leaves its scheduler)
        stop_process_group "$child" 2
        child=""
        if ((SECONDS - started >= stable)); then
            delay=$first
        fi
        echo "supervise: $name exited (status $status), restarting in $delay s"
        sleep "$delay" &
        wait $! || true
        delay=$(awk -v d="$delay" -v m="$max" 'BEGIN { d *= 2; print (d > m ? m : d) }')
    done
}
