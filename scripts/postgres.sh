#!/usr/bin/env bash
# A throwaway PostgreSQL server for nasplat on 127.0.0.1 (tests, demos, a one-machine study).
#
#   scripts/postgres.sh [start]   install PostgreSQL from Debian if absent, create the server in
#                                 $NASPLAT_PG_DIR if absent, start it if stopped, and print its
#                                 SQLAlchemy URL on the last line of stdout (idempotent)
#   scripts/postgres.sh url       print the URL of the server in $NASPLAT_PG_DIR
#   scripts/postgres.sh status    exit 0 when it runs
#   scripts/postgres.sh stop      stop it (data kept)
#   scripts/postgres.sh purge     stop it and delete $NASPLAT_PG_DIR
#
# Settings: NASPLAT_PG_DIR (default /tmp/nasplat-postgres), NASPLAT_PG_PORT (default 55432; a
# server keeps the port it was first started with), NASPLAT_PG_DB (default nasplat).
# Authentication is "trust" for user nasplat on 127.0.0.1 only: for tests, never for shared data.
set -euo pipefail

DIR="${NASPLAT_PG_DIR:-/tmp/nasplat-postgres}"
PORT="${NASPLAT_PG_PORT:-55432}"
DB="${NASPLAT_PG_DB:-nasplat}"
USER_NAME=nasplat
MODE="${1:-start}"

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit "${2:-1}"; }

find_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -z "$dir" ]] && command -v pg_config >/dev/null; then dir="$(pg_config --bindir)"; fi
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && echo "$dir"
}

install_postgres() {
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        sudo -n true 2>/dev/null || die "PostgreSQL is not installed and this user cannot install it (not root, no sudo)" 3
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is not available" 3
    log "installing PostgreSQL from Debian (apt-get install postgresql)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed" 3
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 \
        || die "apt-get install postgresql failed" 3
}

# PostgreSQL refuses to run as root: as root, run its programs as the "postgres" user.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

BIN="$(find_bindir || true)"
if [[ -z "$BIN" ]]; then
    [[ "$MODE" == start ]] || die "PostgreSQL is not installed" 3
    install_postgres
    BIN="$(find_bindir || true)"
    [[ -n "$BIN" ]] || die "PostgreSQL was installed but initdb/pg_ctl were not found" 3
fi

DATA="$DIR/data"
running() { [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }
url() { echo "postgresql+psycopg://$USER_NAME@127.0.0.1:$(cat "$DIR/port")/$DB"; }

case "$MODE" in
    url) [[ -f "$DIR/port" ]] || die "no server in $DIR"; url; exit 0 ;;
    status) running; exit $? ;;
    stop | purge)
        if running; then as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null; fi
        if [[ "$MODE" == purge ]]; then rm -rf "$DIR"; fi
        exit 0 ;;
    start) ;;
    *) die "unknown mode $MODE (start, url, status, stop, purge)" 2 ;;
esac

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9  # one starter at a time per server folder (the server must not inherit fd 9)
if [[ "$(id -u)" == 0 ]]; then
    chown postgres: "$DIR" "$DIR/.lock"
    as_owner test -w "$DIR" || die "user postgres cannot write $DIR (a parent folder is private?)"
fi
if [[ ! -f "$DATA/PG_VERSION" ]]; then
    log "creating a server in $DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U "$USER_NAME" --auth=trust -E UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
        || die "initdb failed: $(tail -n 5 "$DIR/initdb.log")"
    echo "$PORT" >"$DIR/port"
fi
if ! running; then
    as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $(cat "$DIR/port") -k $DIR -c max_connections=200 -c fsync=off -c full_page_writes=off" \
        >/dev/null 9>&- || die "the server did not start: $(tail -n 5 "$DIR/server.log")"
fi
PSQL=("$BIN/psql" -h 127.0.0.1 -p "$(cat "$DIR/port")" -U "$USER_NAME" -d postgres -v ON_ERROR_STOP=1 -qtA)
if [[ -z "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]]; then
    "${PSQL[@]}" -c "CREATE DATABASE \"$DB\"" >/dev/null
fi
url
