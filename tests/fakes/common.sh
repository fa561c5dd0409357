# Shared code of the fake AI CLIs `claude`, `codex` and `gemini` in this directory.
# Sourced by them; POSIX sh plus coreutils, sed and awk only (tested under dash and bash).
#
# The fakes reproduce the headless output of today's real CLIs (Claude Code 2.1.328, Codex CLI
# 0.169.0, Gemini CLI 0.61.0) as captured in tests/data/real-cli-captures/ (and the transcripts
# of tests/data/native-samples/), keep fake "on-disk sessions", write the files the real CLIs
# leave on disk where clinvk reads them (Claude transcripts, Codex rollouts, Gemini chats), and
# record every call.
# tests/fakes_contract.rs runs each scenario through clinvk's own argv builder and parsers, and
# checks the fakes against the captures.
#
# ENVIRONMENT
#   FAKE_CLI_STATE     Directory of the fakes' own bookkeeping (default: $HOME/.fake-cli-state).
#                      A session is the file $FAKE_CLI_STATE/<cli>/<id> whose content is the
#                      `pwd -P` of the directory it was created in (no trailing newline).
#                      New ids are random UUIDs (v4 for claude and gemini, v7-shaped for codex).
#                      Resume: claude and gemini look sessions up per directory (the file must
#                      exist AND hold the current `pwd -P`); codex looks the id up anywhere.
#                      Run numbering (claude and codex): $FAKE_CLI_STATE/<cli>.runs/<id> holds
#                      k, the number of successful runs of that conversation (one line). Run k
#                      reports k times the fake's base figures; a fork continues its parent's
#                      count (a fork of a parent with p runs makes run p+1); a failed run does
#                      not count. So after K runs a conversation's running total is
#                      base x K(K+1)/2.
#                      Codex's running usage total of a thread is $FAKE_CLI_STATE/codex.usage/<id>:
#                      one line "<input> <cached> <cache_write> <output> <reasoning>", and the
#                      path of its rollout file is in $FAKE_CLI_STATE/codex.rollout/<id>.
#                      Ephemeral runs (claude --no-session-persistence, codex exec --ephemeral)
#                      store nothing anywhere (a resumed ephemeral run reports the new figures
#                      but does not store them).
#   HOME, CLAUDE_CONFIG_DIR, CODEX_HOME, GEMINI_CLI_HOME
#                      Where the real CLIs keep their files, and so the fakes too: Claude
#                      transcripts under ${CLAUDE_CONFIG_DIR:-$HOME/.claude}/projects/, Codex
#                      rollouts under ${CODEX_HOME:-$HOME/.codex}/sessions/, Gemini chats and
#                      projects.json under ${GEMINI_CLI_HOME:-$HOME}/.gemini/ (see each fake's
#                      header). Tests must point them at a temporary directory.
#   FAKE_CLI_NOW       Optional time (RFC 3339) the claude fake's transcript is stamped with,
#                      instead of $CLINVK_NOW when that is set, else the real clock (fake_clock).
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
#   FAKE_CLI_REPLY     The answer text (default `OK`). In JSON, `"`, `\`, newlines, tab and CR
#                      are escaped as \" \\ \n \t \r, other control characters as \u00XX.
#   FAKE_CLI_SLEEP     Seconds the `slow` scenario sleeps (default 30; fractions as sleep(1)
#                      takes them).
#   FAKE_CLI_RETRY_INTERVAL
#                      Seconds between two retry lines of the `hang` scenario (default 0.2).
#   FAKE_CLI_IGNORE_TERM
#                      1: `slow` and `hang` ignore SIGTERM (only SIGKILL ends them). Otherwise
#                      SIGTERM ends them at once with exit 143.
#   The waits of `slow` and `hang` are interruptible: the signal traps are set before the
#   session is saved and before anything is printed; each wait is a child process named `sleep`
#   with stdin/stdout/stderr on /dev/null (an orphan never holds a pipe), which the trap kills.
#   A write to a closed stdout/stderr ends the fake (exit 141), so `hang` never outlives its
#   reader.
#
# Argument errors are checked before stdin is read and before any session is looked up, and
# are reported the way the real CLI reports them (see each fake's header).
#
# COMMON SCENARIOS
#   success  the normal answer          noise    the same with stderr noise lines
#   garbage  non-JSON stdout, exit 0    slow     partial output, sleep, then the rest;
#                                                SIGINT/SIGTERM as the real CLI reacts
#   retries  retry lines, then success  hang     retry lines forever, until a signal
#   fail401, fail429, fail500, failclose
#            the API answered 401 / 429 / 500, or closed the connection (the real CLIs' final
#            error after their retries, from the captures)
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
    FAKE_SLEEP_PID=
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

# Prints $1 as the inside of a JSON string: \ and " escaped, newlines as \n, tab as \t, CR as
# \r, other control characters as \u00XX.
fake_json_escape() {
    printf '%s\n' "$1" | awk '
function rep(s, f, t,    out, i) {
    out = ""
    while ((i = index(s, f)) > 0) { out = out substr(s, 1, i - 1) t; s = substr(s, i + 1) }
    return out s
}
BEGIN {
    for (i = 1; i < 32; i++) if (i != 10) c[sprintf("%c", i)] = sprintf("\\u%04x", i)
    c["\t"] = "\\t"; c["\r"] = "\\r"
}
{
    s = rep(rep($0, "\\", "\\\\"), "\"", "\\\"")
    if (s ~ /[\001-\037]/) for (ch in c) if (index(s, ch)) s = rep(s, ch, c[ch])
    printf "%s%s", (NR > 1 ? "\\n" : ""), s
}'
}

fake_timestamp() {
    date -u +%Y-%m-%dT%H:%M:%S.000Z
}

# The clock of the files the fakes leave where clinvk reads them (transcripts, rollouts, chats),
# as "<YYYY-MM-DDThh:mm:ss.mmmZ> <YYYYMMDDhhmmssmmm> <Unix seconds>" in UTC: $FAKE_CLI_NOW,
# else $CLINVK_NOW (the frozen clock a test gives clinvk, which the fakes inherit from it, so
# that a run's requests fall within the run as clinvk timed it), else the real clock. A value
# date(1) cannot read counts as unset.
fake_clock() {
    set -- "${FAKE_CLI_NOW:-${CLINVK_NOW:-}}" '+%Y-%m-%dT%H:%M:%S.%3NZ %Y%m%d%H%M%S%3N %s'
    [ -n "$1" ] && date -u -d "$1" "$2" 2>/dev/null || date -u "$2"
}

# The time of a line written to one of those files (fake_clock's first field).
fake_file_time() {
    set -- $(fake_clock)
    printf '%s' "$1"
}

# Writes stdin to <file> atomically (a temporary file next to it, then mv).
fake_write_file() { # <file>
    mkdir -p "$(dirname "$1")" || exit 98
    cat >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}

# Session files: $FAKE_STATE/<cli>/<id>, holding the creation directory.
fake_session_file() { # <id>
    printf '%s/%s/%s' "$FAKE_STATE" "$FAKE_CLI" "$1"
}

fake_session_save() { # <id>
    printf '%s' "$FAKE_HERE" | fake_write_file "$(fake_session_file "$1")"
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

# Run numbering: the count of successful runs of conversation <id> (0 when none recorded).
fake_runs_get() { # <id>
    f="$FAKE_STATE/$FAKE_CLI.runs/$1"
    if [ -f "$f" ]; then cat "$f"; else printf '0'; fi
}
fake_runs_set() { # <id> <count>
    printf '%s\n' "$2" | fake_write_file "$FAKE_STATE/$FAKE_CLI.runs/$1"
}

# `slow` and `hang`: waits that a signal ends at once. Call fake_signal_traps first, before
# printing anything the caller waits for. SIGTERM: exit 143, or ignored when
# FAKE_CLI_IGNORE_TERM=1.
fake_signal_traps() { # <exit code on SIGINT>
    FAKE_SLEEP_PID=
    trap 'fake_signal_end '"$1" INT
    if [ "${FAKE_CLI_IGNORE_TERM:-}" = 1 ]; then
        trap '' TERM
    else
        trap 'fake_signal_end 143' TERM
    fi
}
fake_slow_traps() { fake_signal_traps "$@"; }
fake_signal_end() {
    [ -n "$FAKE_SLEEP_PID" ] && kill "$FAKE_SLEEP_PID" 2>/dev/null
    exit "$1"
}
fake_wait() { # <seconds>
    # The sleep gets no stdout/stderr, so that an orphaned sleep never holds the caller's pipes.
    sleep "$1" </dev/null >/dev/null 2>&1 &
    FAKE_SLEEP_PID=$!
    wait "$FAKE_SLEEP_PID"
    FAKE_SLEEP_PID=
}
fake_slow_sleep() {
    fake_wait "${FAKE_CLI_SLEEP:-30}"
}

# `hang`: calls `<function> N` for N = 1, 2, ... every FAKE_CLI_RETRY_INTERVAL seconds, forever.
# The function prints one retry line; a failed write (closed pipe) ends the fake.
fake_hang() { # <function>
    n=1
    while :; do
        "$1" "$n" || exit 141
        fake_wait "${FAKE_CLI_RETRY_INTERVAL:-0.2}"
        n=$((n + 1))
    done
}
