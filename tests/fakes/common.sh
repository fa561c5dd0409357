# Shared code of the fake AI CLIs `claude`, `codex` and `gemini` in this directory.
# Sourced by them; POSIX sh plus coreutils/sed only (tested under dash and bash).
#
# The fakes reproduce the headless output of the real CLIs as documented in
# shared/reference/backend-cli-formats.md (sections 1-4), keep fake "on-disk sessions", and
# record every call. tests/fakes_contract.rs runs each scenario through clinvk's own argv
# builder and parsers.
#
# ENVIRONMENT
#   FAKE_CLI_STATE     Directory of the fakes' sessions (default: $HOME/.fake-cli-state).
#                      A session is the file $FAKE_CLI_STATE/<cli>/<id> whose content is the
#                      `pwd -P` of the directory it was created in (no trailing newline).
#                      New ids are random UUIDs (v4 for claude and gemini, v7-shaped for codex).
#                      Resume: claude and gemini look sessions up per directory (the file must
#                      exist AND hold the current `pwd -P`); codex looks the id up anywhere.
#                      Codex's running usage total of a thread is the file
#                      $FAKE_CLI_STATE/codex.usage/<id>: one line
#                      "<input> <cached> <cache_write> <output> <reasoning>".
#                      Ephemeral runs (claude --no-session-persistence, codex exec --ephemeral)
#                      write nothing there (a resumed ephemeral codex run reports the new
#                      total but does not store it).
#   FAKE_CLI_LOG       Optional directory. Every call first creates its own new directory
#                      $FAKE_CLI_LOG/<cli>.XXXXXX (mktemp -d) holding:
#                        argv          each argument followed by a NUL byte
#                        stdin         exactly the bytes read from stdin (empty if not read:
#                                      gemini never reads it, codex only for the prompt `-` or
#                                      no prompt, and nobody does on an argument error)
#                        cwd           `pwd -P`, no trailing newline
#                        env_scenario  the scenario name, no trailing newline
#                      argv and cwd are written before anything else; stdin as soon as it
#                      has been read, before any output.
#   FAKE_CLI_SCENARIO  What the run does (default `success`); see each fake's header.
#                      An unknown scenario is an error (exit 99) naming the known ones.
#   FAKE_CLI_REPLY     The answer text (default `OK`). `"`, `\`, tab and newlines are
#                      JSON-escaped.
#   FAKE_CLI_SLEEP     Seconds the `slow` scenario sleeps (default 30; fractions as sleep(1)
#                      takes them). The sleep is interruptible: SIGINT and SIGTERM act at once.
#                      In `slow`, the signal traps are set before the session is saved and
#                      before anything is printed; the sleep is a child process named `sleep`
#                      with stdin/stdout/stderr on /dev/null (an orphan never holds a pipe).
#
# Argument errors are checked before stdin is read and before any session is looked up, and
# are reported the way the real CLI reports them (see each fake's header).
#
# COMMON SCENARIOS
#   success  the normal answer          noise    the same with stderr noise lines
#   garbage  non-JSON stdout, exit 0    slow     partial output, sleep, then the rest;
#                                                SIGINT/SIGTERM as the real CLI reacts
#   Each fake adds its own error scenarios.

set -u

fake_init() { # <cli> "$@"
    FAKE_CLI=$1
    shift
    FAKE_STATE=${FAKE_CLI_STATE:-${HOME:-/tmp}/.fake-cli-state}
    FAKE_SCENARIO=${FAKE_CLI_SCENARIO:-success}
    FAKE_REPLY=${FAKE_CLI_REPLY-OK}
    FAKE_HERE=$(pwd -P)
    FAKE_LOGDIR=
    if [ -n "${FAKE_CLI_LOG:-}" ]; then
        mkdir -p "$FAKE_CLI_LOG" || exit 98
        FAKE_LOGDIR=$(mktemp -d "$FAKE_CLI_LOG/$FAKE_CLI.XXXXXX") || exit 98
        if [ $# -gt 0 ]; then
            printf '%s\0' "$@" >"$FAKE_LOGDIR/argv"
        else
            : >"$FAKE_LOGDIR/argv"
        fi
        printf '%s' "$FAKE_HERE" >"$FAKE_LOGDIR/cwd"
        printf '%s' "$FAKE_SCENARIO" >"$FAKE_LOGDIR/env_scenario"
        : >"$FAKE_LOGDIR/stdin"
    fi
}

# Reads all of stdin into $FAKE_STDIN (and into the log's stdin file, byte for byte).
fake_read_stdin() {
    if [ -n "$FAKE_LOGDIR" ]; then
        cat >"$FAKE_LOGDIR/stdin"
        FAKE_STDIN=$(cat "$FAKE_LOGDIR/stdin"; printf x)
    else
        FAKE_STDIN=$(cat; printf x)
    fi
    FAKE_STDIN=${FAKE_STDIN%x}
}

# Fails with exit 99 when $FAKE_SCENARIO is not one of the arguments.
fake_known_scenarios() {
    for s in "$@"; do
        [ "$s" = "$FAKE_SCENARIO" ] && return 0
    done
    printf 'fake %s: unknown FAKE_CLI_SCENARIO "%s" (known: %s)\n' "$FAKE_CLI" "$FAKE_SCENARIO" "$*" >&2
    exit 99
}

# A random UUIDv4.
fake_uuid() {
    if [ -r /proc/sys/kernel/random/uuid ]; then
        cat /proc/sys/kernel/random/uuid
    else
        od -An -N16 -tx1 /dev/urandom | tr -d ' \n' |
            sed 's/^\(........\)\(....\).\(...\).\(...\)\(............\)$/\1-\2-4\3-a\4-\5/'
    fi
}

# A UUID shaped like v7 (48-bit millisecond time first), as Codex thread ids are.
fake_uuid7() {
    ms=$(printf '%012x' "$(($(date +%s) * 1000))")
    fake_uuid | sed "s/^........-....-.\(...\)/${ms%????}-${ms#????????}-7\1/"
}

# Prints $1 as the inside of a JSON string: \ " tab CR and newlines escaped.
fake_json_escape() {
    printf '%s\n' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' \
        -e "s/$(printf '\t')/\\\\t/g" -e "s/$(printf '\r')/\\\\r/g" |
        sed -e ':a' -e 'N' -e '$!ba' -e 's/\n/\\n/g'
}

fake_timestamp() {
    date -u +%Y-%m-%dT%H:%M:%S.000Z
}

# Session files: $FAKE_STATE/<cli>/<id>, holding the creation directory.
fake_session_file() { # <id>
    printf '%s/%s/%s' "$FAKE_STATE" "$FAKE_CLI" "$1"
}

fake_session_save() { # <id>
    mkdir -p "$FAKE_STATE/$FAKE_CLI" || exit 98
    f=$(fake_session_file "$1")
    printf '%s' "$FAKE_HERE" >"$f.tmp.$$" && mv -f "$f.tmp.$$" "$f"
}

# True when session <id> exists (and, with `here`, was created in this directory).
fake_session_exists() { # <id> [here]
    case $1 in '' | */* | .*) return 1 ;; esac
    f=$(fake_session_file "$1")
    [ -f "$f" ] || return 1
    [ "${2:-}" = here ] || return 0
    [ "$(cat "$f")" = "$FAKE_HERE" ]
}

fake_session_touch() { # <id>
    touch "$(fake_session_file "$1")"
}

# The most recently used session of this directory, or nothing.
fake_session_latest_here() {
    [ -d "$FAKE_STATE/$FAKE_CLI" ] || return 0
    # Names are UUIDs (no spaces or newlines), so ls output can be split safely.
    for id in $(ls -t "$FAKE_STATE/$FAKE_CLI"); do
        if fake_session_exists "$id" here; then
            printf '%s' "$id"
            return 0
        fi
    done
}

# `slow` scenarios: sleep $FAKE_CLI_SLEEP seconds so that a signal ends the wait at once.
# Call fake_slow_traps <exit-on-INT> first, before printing anything the caller waits for.
fake_slow_traps() { # <exit code on SIGINT>
    FAKE_SLEEP_PID=
    trap 'fake_slow_end '"$1" INT
    trap 'fake_slow_end 143' TERM
}
fake_slow_end() {
    [ -n "$FAKE_SLEEP_PID" ] && kill "$FAKE_SLEEP_PID" 2>/dev/null
    exit "$1"
}
fake_slow_sleep() {
    # The sleep gets no stdout/stderr, so that an orphaned sleep never holds the caller's pipes.
    sleep "${FAKE_CLI_SLEEP:-30}" </dev/null >/dev/null 2>&1 &
    FAKE_SLEEP_PID=$!
    wait "$FAKE_SLEEP_PID"
    FAKE_SLEEP_PID=
}
