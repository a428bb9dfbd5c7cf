# Shared by the local development scripts (sourced, not run).
#
# State that outlives a checkout (Garage's data, generated keys, the shared
# cargo target directory) lives in ARKIV_STATE, outside the repository.
# Per-checkout runtime state (configuration, logs, pid files) lives in .run/.

ARKIV_STATE="${ARKIV_STATE:-$HOME/.arkiv-dev}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN_DIR="$REPO_ROOT/.run"
GARAGE_VERSION="${GARAGE_VERSION:-2.5.0}"
GARAGE_DIR="$ARKIV_STATE/garage"
GARAGE_CONFIG="$GARAGE_DIR/garage.toml"
GARAGE_S3_PORT=3900
GARAGE_RPC_PORT=3901
GARAGE_ADMIN_PORT=3903
REGIONS="${ARKIV_REGIONS:-eu uk us}"
DATABASE="${ARKIV_DATABASE:-arkiv}"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# port_open HOST PORT: is something accepting TCP connections there?
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for WHAT SECONDS COMMAND...: retry COMMAND until it succeeds.
wait_for() {
    local what=$1 seconds=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "$what did not come up within ${seconds}s"
        sleep 0.5
    done
}

# random_hex BYTES
random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    say "installing $* (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

garage_cli() { garage -c "$GARAGE_CONFIG" "$@"; }

# Cargo's target directory, shared by every checkout on this machine so that
# a fresh clone does not rebuild every dependency.
target_dir() { echo "${CARGO_TARGET_DIR:-$ARKIV_STATE/target}"; }
