# Shared by bench/http/run and bench/http/windows; sourced, not run. The sourcing script sets `prog` (its name,
# for messages), `repo` (the repository's root) and `build` (1: build the release binaries first), and gets
# `die`, a work directory `$work` removed on exit with every process listed in `pids`, `show_log`, `wait_for`,
# `free_port`, `cpu_ticks`, `check`, `bench_field`, the release binaries in `$bin`, and the engine helpers
# below. Files in `$work` are gone once the script exits, so errors show the end of a log instead of its path.

die() { echo "$prog: $*" >&2; exit 1; }
for tool in cargo curl; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed"
done
command -v wrk >/dev/null || die "wrk is not installed: on Debian or Ubuntu run 'sudo apt-get install -y wrk' (or build it from its source, github.com/wg/wrk), then run this again"

work="$(mktemp -d "${BENCH_DATA_ROOT:-${TMPDIR:-/tmp}}/trworker-bench.XXXXXX")"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        # Bounded: a server that ignores SIGTERM for 10 s is killed.
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# show_log FILE: the end of FILE on stderr, indented.
show_log() { tail -n 20 "$1" 2>/dev/null | sed 's/^/   /' >&2 || true; }

# wait_for WHAT LOG COMMAND...: waits up to 30 s for COMMAND to succeed; if it does not, shows the end of LOG
# (WHAT's output) and stops.
wait_for() {
    local what="$1" log="$2"; shift 2
    for _ in $(seq 300); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "== $what did not come up within 30 s; the end of its log:" >&2
    show_log "$log"
    die "$what did not come up within 30 s (its log is above)"
}

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    die "found no free TCP port"
}

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# check NAME STATUS METHOD URL [BODY]: one request by curl, which must answer STATUS, before wrk runs.
check() {
    local name="$1" want="$2" method="$3" url="$4" body="${5:-}" got
    local args=(-s -o "$work/check.out" -w '%{http_code}' -X "$method" -H "Authorization: $auth")
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/x-www-form-urlencoded' --data "$body")
    got="$(curl "${args[@]}" "$url")" || got="no answer"
    [[ "$got" == "$want" ]] || die "$name: expected $want, got $got: $(head -c 400 "$work/check.out")"
}

# bench_field LINE NAME: the number NAME=... in the `BENCH ...` summary line that bench/http/request.lua prints.
bench_field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<"$1"; }

if [[ $build == 1 ]]; then
    echo "== building release binaries (cargo build --release -p trworker --examples --bins)"
    cargo build --release -p trworker --examples --bins
fi
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="${target_dir:-$repo/target}/release"
[[ -x "$bin/trworker" && -x "$bin/examples/bare_form_post" ]] || die "release binaries missing in $bin: run without --no-build"

# --- trworker engine -------------------------------------------------------------------------------------------
# start_engine N: starts engine N on a fresh data directory ($work/data-N) and sets engine_n, engine_pid, auth,
# ws_url, workspace_sid, worker_sid and task_body for it.
engines_dead=()
start_engine() {
    local n="$1" data="$work/data-$1" account_sid auth_token base_url workflow_sid
    engine_n="$n"
    echo "== starting trworker engine $n (data in $data)"
    RUST_LOG=warn "$bin/trworker" engine --port 0 --data-dir "$data" --seed demo >"$work/engine-$n.log" 2>&1 &
    engine_pid=$!
    pids+=("$engine_pid")
    wait_for "trworker engine $n" "$work/engine-$n.log" test -s "$data/local.env"
    env_value() { sed -n "s/^$1=//p" "$data/local.env" | head -n1; }
    account_sid="$(env_value ACCOUNT_SID)"
    auth_token="$(env_value AUTH_TOKEN)"
    workspace_sid="$(env_value WORKSPACE_SID)"
    base_url="$(env_value TWILIO_TASKROUTER_URL)"
    base_url="${base_url%/}"
    [[ -n "$account_sid" && -n "$auth_token" && -n "$workspace_sid" && -n "$base_url" ]] ||
        die "local.env lacks ACCOUNT_SID, AUTH_TOKEN, WORKSPACE_SID or TWILIO_TASKROUTER_URL"
    [[ "$base_url" == http://127.0.0.1:* ]] || die "the engine is not on 127.0.0.1 ($base_url)"
    auth="Basic $(printf '%s:%s' "$account_sid" "$auth_token" | base64 -w0)"
    ws_url="$base_url/v1/Workspaces/$workspace_sid"
    wait_for "trworker engine $n's API" "$work/engine-$n.log" curl -sf -H "Authorization: $auth" "$ws_url"
    workflow_sid="$(curl -sf -H "Authorization: $auth" "$ws_url/Workflows?FriendlyName=support" | grep -o 'WW[0-9a-f]\{32\}' | head -n1)"
    worker_sid="$(curl -sf -H "Authorization: $auth" "$ws_url/Workers" | grep -o 'WK[0-9a-f]\{32\}' | head -n1)"
    [[ -n "$workflow_sid" ]] || die "the demo workspace has no 'support' workflow"
    [[ -n "$worker_sid" ]] || die "the demo workspace has no worker"
    # A call task as the app creates them; the default filter routes it to the support queue.
    task_body="WorkflowSid=$workflow_sid&Attributes=%7B%22selected_product%22%3A%22support%22%2C%22call_sid%22%3A%22CA00000000000000000000000000000001%22%2C%22from%22%3A%22%2B15005550006%22%7D&TaskChannel=voice"
}

# check_engine_alive: notes it if the current engine has stopped under its load, and shows the end of its log
# (the log goes with $work on exit).
check_engine_alive() {
    if ! kill -0 "$engine_pid" 2>/dev/null; then
        engines_dead+=("$engine_n")
        echo "== trworker engine $engine_n has stopped; the end of its log:" >&2
        show_log "$work/engine-$engine_n.log"
    fi
}

# stop_engine N: notes whether engine N survived its load, then stops it (SIGTERM: it finishes its last commit)
# and removes its data, so the next engine starts with the machine's memory and disk as they were.
stop_engine() {
    local n="$1"
    check_engine_alive
    kill "$engine_pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$engine_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$engine_pid" 2>/dev/null || true
    wait "$engine_pid" 2>/dev/null || true
    rm -rf "$work/data-$n"
}
