#!/usr/bin/env bash
# make up / make status / make down: the Arkiv services and the simulator as
# background processes of this checkout, with logs and pid files in .run/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BIN_DIR="$(target_dir)/debug"
CONFIG="$RUN_DIR/arkiv.toml"
SIM_PORT="${ARKIV_SIM_PORT:-8090}"
SIM_DATASET="${ARKIV_SIM_DATASET:-demo}"
API_PORT="${ARKIV_API_PORT:-8080}"

# name | binary | health port | arguments
SERVICES="
sim|arkiv-sim|$SIM_PORT|--listen 127.0.0.1:$SIM_PORT --dataset $SIM_DATASET
api|arkiv-api|$API_PORT|--config $CONFIG
worker|arkiv-worker|9101|--config $CONFIG
scheduler|arkiv-scheduler|9102|--config $CONFIG
connector-m365|arkiv-connector-m365|9103|--config $CONFIG
connector-google|arkiv-connector-google|9104|--config $CONFIG
"

# The services reach Microsoft and Google through the simulator.
export ARKIV_API_LISTEN="127.0.0.1:$API_PORT"
export ARKIV_API_PUBLIC_URL="http://127.0.0.1:$API_PORT/"
export ARKIV_M365_AUTHORITY_URL="http://127.0.0.1:$SIM_PORT/"
export ARKIV_M365_GRAPH_URL="http://127.0.0.1:$SIM_PORT/v1.0"
export ARKIV_GOOGLE_API_ROOT_URL="http://127.0.0.1:$SIM_PORT/"
export ARKIV_LOG_FORMAT="${ARKIV_LOG_FORMAT:-json}"

# Arkiv's Microsoft app registration and Google service account are the
# simulator's: read them from its manifest (first tenant, first domain).
sim_credentials() {
    local manifest
    manifest=$(curl -fsS --max-time 10 "http://127.0.0.1:$SIM_PORT/_sim/manifest") \
        || die "the simulator's manifest is unavailable"
    export ARKIV_M365_CLIENT_ID ARKIV_M365_CLIENT_SECRET ARKIV_GOOGLE_SERVICE_ACCOUNT_FILE
    ARKIV_M365_CLIENT_ID=$(jq -r '.m365[0].client_id' <<< "$manifest")
    ARKIV_M365_CLIENT_SECRET=$(jq -r '.m365[0].client_secret' <<< "$manifest")
    ARKIV_GOOGLE_SERVICE_ACCOUNT_FILE="$RUN_DIR/google-service-account.json"
    (umask 077; jq '.google[0].service_account' <<< "$manifest" > "$ARKIV_GOOGLE_SERVICE_ACCOUNT_FILE")
}

pid_of() { cat "$RUN_DIR/pids/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
healthy() { curl -fsS --max-time 5 "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; }

each_service() {
    local fn=$1
    while IFS='|' read -r name bin port args; do
        [ -n "$name" ] || continue
        "$fn" "$name" "$bin" "$port" "$args"
    done <<< "$SERVICES"
}

start_one() {
    local name=$1 bin=$2 port=$3 args=$4
    if alive "$name"; then
        return
    fi
    [ -x "$BIN_DIR/$bin" ] || die "$BIN_DIR/$bin is not built (make build)"
    if port_open 127.0.0.1 "$port"; then
        die "port $port is taken by another process; $name cannot start"
    fi
    # shellcheck disable=SC2086 # args are words by design
    nohup "$BIN_DIR/$bin" $args >>"$RUN_DIR/logs/$name.log" 2>&1 &
    echo $! > "$RUN_DIR/pids/$name.pid"
}

await_one() {
    local name=$1 port=$3
    local deadline=$((SECONDS + 60))
    until healthy "$port"; do
        if ! alive "$name"; then
            tail -n 20 "$RUN_DIR/logs/$name.log" >&2 || true
            die "$name exited; its log is $RUN_DIR/logs/$name.log"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "$name is not healthy after 60s ($RUN_DIR/logs/$name.log)"
        sleep 0.3
    done
}

up() {
    [ -s "$CONFIG" ] || die "$CONFIG is missing: run make setup"
    mkdir -p "$RUN_DIR/logs" "$RUN_DIR/pids"
    "$BIN_DIR/arkiv" --config "$CONFIG" migrate up >/dev/null
    # The simulator first: the others are configured with its credentials.
    start_one sim arkiv-sim "$SIM_PORT" "--listen 127.0.0.1:$SIM_PORT --dataset $SIM_DATASET"
    await_one sim arkiv-sim "$SIM_PORT"
    sim_credentials
    each_service start_one
    each_service await_one
    local token
    token=$("$BIN_DIR/arkiv" --config "$CONFIG" bootstrap --reissue --json | jq -r .token)
    [ -n "$token" ] && [ "$token" != null ] || die "bootstrap did not return a token"
    local database_url s3_endpoint s3_access s3_secret
    database_url=$(sed -n 's/^url = "\(postgres[^"]*\)"/\1/p' "$CONFIG")
    s3_endpoint=$(sed -n 's/^endpoint = "\([^"]*\)"/\1/p' "$CONFIG")
    s3_access=$(sed -n 's/^access_key = "\([^"]*\)"/\1/p' "$CONFIG")
    s3_secret=$(sed -n 's/^secret_key = "\([^"]*\)"/\1/p' "$CONFIG")
    (umask 077; cat > "$RUN_DIR/env" <<ENV
# Written by \`make up\`: source it to use the running system from a shell.
export ARKIV_API=http://127.0.0.1:$API_PORT
export ARKIV_TOKEN=$token
export ARKIV_SIM_URL=http://127.0.0.1:$SIM_PORT
export ARKIV_DATABASE_URL=$database_url
export ARKIV_S3_ENDPOINT=$s3_endpoint
export ARKIV_S3_ACCESS_KEY=$s3_access
export ARKIV_S3_SECRET_KEY=$s3_secret
export ARKIV_CONFIG=$CONFIG
ENV
    )
    say "every service is up; source .run/env to use them"
}

status_one() {
    local name=$1 port=$3 state
    if ! alive "$name"; then
        state=down
        STATUS_FAILED=1
    elif healthy "$port"; then
        state=healthy
    else
        state=unhealthy
        STATUS_FAILED=1
    fi
    printf '%-18s %-10s pid %-8s http://127.0.0.1:%s/healthz\n' "$name" "$state" "$(pid_of "$name")" "$port"
}

status() {
    STATUS_FAILED=0
    each_service status_one
    return "$STATUS_FAILED"
}

stop_one() {
    local name=$1 pid
    pid=$(pid_of "$name")
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        local deadline=$((SECONDS + 15))
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                say "$name did not stop on SIGTERM; killing it"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    fi
    rm -f "$RUN_DIR/pids/$name.pid"
}

down() {
    each_service stop_one
    say "stopped"
}

case "${1:-}" in
    up) up ;;
    status) status ;;
    down) down ;;
    *) die "usage: $0 up|status|down" ;;
esac
