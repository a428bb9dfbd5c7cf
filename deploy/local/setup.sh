#!/usr/bin/env bash
# make setup: make sure PostgreSQL, RabbitMQ and Garage run on loopback, that
# the buckets, access key, development database and keys exist, and write
# .run/arkiv.toml for the services and tests. Idempotent: run it any time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ensure_postgres() {
    if ! command -v psql >/dev/null || ! compgen -G "/etc/postgresql/*/main" >/dev/null; then
        apt_install postgresql
    fi
    if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
        say "starting PostgreSQL"
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        wait_for "PostgreSQL on 127.0.0.1:5432" 60 \
            psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1'
    fi
    say "PostgreSQL is up"
    if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
            "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]; then
        say "creating database $DATABASE"
        psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$DATABASE\"" >/dev/null
    fi
}

# amqp_answers: does the broker answer the AMQP 0-9-1 protocol header within
# five seconds? A wedged node still accepts TCP connections but says nothing,
# and every client then hangs, so an open port is not enough.
amqp_answers() {
    timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672
        printf "AMQP\x00\x00\x09\x01" >&3
        [ -n "$(head -c 1 <&3 | od -An -tx1)" ]' 2>/dev/null
}

# How many files the broker may open: 65536, or the machine's hard limit
# if that is lower.
rabbitmq_file_target() {
    local hard
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then echo 65536; else echo "$hard"; fi
}

# Quorum queues keep files open per queue: give the node room. The
# server script starts it through `su`, whose PAM session resets the
# limit to 1024 unless limits.d says otherwise.
ensure_rabbitmq_limits() {
    local target conf=/etc/security/limits.d/arkiv-rabbitmq.conf want
    target=$(rabbitmq_file_target)
    want=$(printf 'rabbitmq soft nofile %s\nrabbitmq hard nofile %s' "$target" "$target")
    if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
        printf '%s\n' "$want" | as_root tee "$conf" >/dev/null
    fi
}

# Quorum queues checksum every log entry they write and read. Arkiv's
# payloads are AES-GCM sealed, so the worker finds any corruption on its
# own when it opens them; without the checksums RabbitMQ spends about a
# quarter less CPU on small work items (measured with arkiv-bench pipeline).
# 3.10 and later read this directory after rabbitmq.conf.
RABBITMQ_ARKIV_CONF=/etc/rabbitmq/conf.d/50-arkiv.conf
ensure_rabbitmq_conf() {
    local want='# Written by Arkiv'"'"'s deploy/local/setup.sh.
quorum_queue.compute_checksums = false'
    if [ "$(cat "$RABBITMQ_ARKIV_CONF" 2>/dev/null)" != "$want" ]; then
        as_root mkdir -p "$(dirname "$RABBITMQ_ARKIV_CONF")"
        printf '%s\n' "$want" | as_root tee "$RABBITMQ_ARKIV_CONF" >/dev/null
    fi
}

# The running broker's checksum setting: {ok,false} once it has read that
# configuration; empty if it could not be asked.
rabbitmq_checksum_setting() {
    as_root timeout 30 rabbitmqctl -q eval 'application:get_env(rabbit, quorum_compute_checksums).' 2>/dev/null || true
}

start_rabbitmq() {
    say "starting RabbitMQ"
    as_root bash -c "ulimit -n $(rabbitmq_file_target); RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached"
    wait_for "RabbitMQ answering AMQP on 127.0.0.1:5672" 120 amqp_answers
}

# The open-file limit of the running broker (0 if unknown).
rabbitmq_file_limit() {
    local pid
    pid=$(pgrep -f 'rabbi[t] boot' | head -n 1) || { echo 0; return; }
    awk '/Max open files/ {print $4}' "/proc/$pid/limits" 2>/dev/null || echo 0
}

stop_rabbitmq() {
    as_root timeout 60 rabbitmqctl stop >/dev/null 2>&1 || as_root pkill -9 -f beam.smp || true
    wait_for "RabbitMQ to stop" 60 bash -c '! pgrep -f "rabbi[t] boot"'
}

ensure_rabbitmq() {
    if ! command -v rabbitmq-server >/dev/null; then
        apt_install rabbitmq-server
    fi
    ensure_rabbitmq_limits
    ensure_rabbitmq_conf
    # Started by the machine with the default limit of 1024 open files,
    # the node wedges (no CPU, no answer) once a test suite's quorum
    # queues hold them all: give it room while nothing uses it yet.
    if port_open 127.0.0.1 5672; then
        local limit target
        limit=$(rabbitmq_file_limit)
        target=$(rabbitmq_file_target)
        if [ "${limit:-0}" != unlimited ] && [ "${limit:-0}" -lt "$target" ]; then
            say "RabbitMQ may open only ${limit:-?} files: restarting it with $target"
            stop_rabbitmq
        fi
    fi
    # Restart only a broker that answered and has not read the file; one
    # that could not be asked is left alone.
    if port_open 127.0.0.1 5672 && amqp_answers; then
        local setting
        setting=$(rabbitmq_checksum_setting)
        if [ -n "$setting" ] && [ "$setting" != "{ok,false}" ]; then
            say "RabbitMQ runs without $RABBITMQ_ARKIV_CONF: restarting it"
            stop_rabbitmq
        fi
    fi
    if port_open 127.0.0.1 5672 && ! amqp_answers; then
        say "RabbitMQ accepts connections but does not answer AMQP: restarting it"
        stop_rabbitmq
    fi
    if ! port_open 127.0.0.1 5672; then
        start_rabbitmq
        [ "$(rabbitmq_checksum_setting)" = "{ok,false}" ] \
            || say "warning: RabbitMQ did not read $RABBITMQ_ARKIV_CONF; its quorum queues keep their checksums"
    fi
    # Test runs prefix their queues with "test." and never reuse them.
    # Delete those left by earlier runs now, while nothing else runs: left
    # to pile up they weigh on the node, and deleting hundreds of quorum
    # queues while a test suite runs stalls it. (rabbitmqctl has no bulk
    # delete; this is one call into RabbitMQ 3.x's own queue module.)
    local left
    left=$(as_root timeout 120 rabbitmqctl -q eval '
        Doomed = [Q || Q <- rabbit_amqqueue:list(),
                       case amqqueue:get_name(Q) of
                           {resource, _, queue, <<"test.", _/binary>>} -> true;
                           _ -> false
                       end],
        [rabbit_amqqueue:delete(Q, false, false, <<"arkiv-setup">>) || Q <- Doomed],
        length(Doomed).' 2>/dev/null) || left="?"
    [ "$left" = 0 ] || say "deleted $left queues left by earlier test runs"
    wait_for "RabbitMQ answering AMQP on 127.0.0.1:5672" 120 amqp_answers
    say "RabbitMQ is up"
}

ensure_garage_binary() {
    export PATH="$HOME/.cargo/bin:$PATH"
    if ! command -v garage >/dev/null; then
        say "installing Garage $GARAGE_VERSION (cargo install; about 10 minutes on 2 cores, once)"
        cargo install garage --version "$GARAGE_VERSION" --locked
    fi
    local have
    have=$(garage --version 2>/dev/null | head -n 1)
    case "$have" in
        *"$GARAGE_VERSION"*) ;;
        *) say "warning: using $(command -v garage) ($have), not the pinned $GARAGE_VERSION" ;;
    esac
}

write_garage_config() {
    mkdir -p "$GARAGE_DIR/meta" "$GARAGE_DIR/data"
    [ -s "$GARAGE_DIR/rpc_secret" ] || (umask 077; random_hex 32 > "$GARAGE_DIR/rpc_secret")
    [ -s "$GARAGE_DIR/admin_token" ] || (umask 077; random_hex 32 > "$GARAGE_DIR/admin_token")
    local previous
    previous=$(cat "$GARAGE_CONFIG" 2>/dev/null || true)
    (umask 077; cat > "$GARAGE_CONFIG" <<TOML
# Written by deploy/local/setup.sh: a single-node Garage on loopback.
metadata_dir = "$GARAGE_DIR/meta"
data_dir = "$GARAGE_DIR/data"
db_engine = "sqlite"
replication_factor = 1
# Arkiv stores only sealed (AES-256-GCM) bodies: they do not compress, and
# trying cost Garage more CPU than anything else it does for us.
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$GARAGE_RPC_PORT"
rpc_public_addr = "127.0.0.1:$GARAGE_RPC_PORT"
rpc_secret = "$(cat "$GARAGE_DIR/rpc_secret")"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$GARAGE_S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$GARAGE_ADMIN_PORT"
admin_token = "$(cat "$GARAGE_DIR/admin_token")"
TOML
    )
    if [ -n "$previous" ] && [ "$previous" != "$(cat "$GARAGE_CONFIG")" ] && garage_running; then
        say "Garage's configuration changed: restarting it"
        kill "$(cat "$GARAGE_DIR/garage.pid")"
        wait_for "Garage to stop" 30 bash -c "! kill -0 $(cat "$GARAGE_DIR/garage.pid")"
    fi
}

garage_running() {
    [ -s "$GARAGE_DIR/garage.pid" ] && kill -0 "$(cat "$GARAGE_DIR/garage.pid")" 2>/dev/null \
        && port_open 127.0.0.1 "$GARAGE_S3_PORT"
}

ensure_garage() {
    ensure_garage_binary
    write_garage_config
    if ! garage_running; then
        if port_open 127.0.0.1 "$GARAGE_S3_PORT"; then
            die "port $GARAGE_S3_PORT is taken by something that is not this Garage ($GARAGE_DIR)"
        fi
        say "starting Garage (data in $GARAGE_DIR)"
        nohup garage -c "$GARAGE_CONFIG" server >>"$GARAGE_DIR/garage.log" 2>&1 &
        echo $! > "$GARAGE_DIR/garage.pid"
        wait_for "Garage" 60 garage_cli status
    fi
    if garage_cli layout show | grep -q "No nodes currently have a role"; then
        say "applying Garage's single-node layout"
        local node
        node=$(garage_cli node id -q | cut -d@ -f1)
        garage_cli layout assign -z dc1 -c 10G "$node" >/dev/null
        local version
        version=$(garage_cli layout show | sed -n 's/^Current cluster layout version: //p')
        garage_cli layout apply --version $((version + 1)) >/dev/null
    fi
    # One access key for the local services, generated once.
    if [ ! -s "$GARAGE_DIR/key.env" ]; then
        (umask 077; printf 'KEY_ID=GK%s\nSECRET=%s\n' "$(random_hex 12)" "$(random_hex 32)" \
            > "$GARAGE_DIR/key.env")
    fi
    # shellcheck source=/dev/null
    source "$GARAGE_DIR/key.env"
    if ! garage_cli key info "$KEY_ID" >/dev/null 2>&1; then
        garage_cli key import --yes -n arkiv-dev "$KEY_ID" "$SECRET" >/dev/null
    fi
    for region in $REGIONS; do
        local bucket="arkiv-$region"
        garage_cli bucket info "$bucket" >/dev/null 2>&1 || garage_cli bucket create "$bucket" >/dev/null
        garage_cli bucket allow --read --write --owner "$bucket" --key "$KEY_ID" >/dev/null
    done
    say "Garage is up with buckets: $(for r in $REGIONS; do printf 'arkiv-%s ' "$r"; done)"
}

ensure_keys() {
    mkdir -p "$ARKIV_STATE/keys"
    for key in master transport; do
        local file="$ARKIV_STATE/keys/$key.key"
        [ -s "$file" ] || (umask 077; head -c 32 /dev/urandom | base64 > "$file")
    done
}

# The official Microsoft and Google client libraries the simulator's
# conformance test drives (tests/python/requirements.txt), in a venv.
ensure_python_clients() {
    local requirements="$REPO_ROOT/tests/python/requirements.txt"
    local venv="$ARKIV_STATE/venv"
    local stamp="$venv/.requirements.sha256"
    local want
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return
    fi
    say "installing the official client libraries into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
}

write_config() {
    mkdir -p "$RUN_DIR"
    # shellcheck source=/dev/null
    source "$GARAGE_DIR/key.env"
    (umask 077; {
        cat <<TOML
# Written by \`make setup\` for this machine's local servers; do not commit.
# Every setting is documented in README.md (Configuration).

[database]
url = "postgres://postgres@127.0.0.1:5432/$DATABASE"

[rabbitmq]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"

[s3]
endpoint = "http://127.0.0.1:$GARAGE_S3_PORT"
region = "garage"
access_key = "$KEY_ID"
secret_key = "$SECRET"

[s3.buckets]
TOML
        for region in $REGIONS; do echo "$region = \"arkiv-$region\""; done
        cat <<TOML

[keys]
master_key_file = "$ARKIV_STATE/keys/master.key"
transport_key_file = "$ARKIV_STATE/keys/transport.key"

[lifecycle]
# A lifecycle pass every 10 s on a development machine (60 s by default),
# so that an erasure asked for in the demo is done in seconds.
tick_secs = 10
TOML
    } > "$RUN_DIR/arkiv.toml")
    say "wrote $RUN_DIR/arkiv.toml"
}

ensure_tools() {
    local missing=()
    for tool in curl jq; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
}

ensure_tools
ensure_postgres
ensure_rabbitmq
ensure_garage
ensure_keys
ensure_python_clients
write_config
