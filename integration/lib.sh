# Shell helpers shared by setup.sh and providers.sh. The sourcing script defines log and die.

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Stops the process named in PIDFILE (TERM, up to 5 s, then KILL) and removes the file.
stop_pidfile() {
  local pidfile=$1 label=${2:-$1} pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping pid $pid ($label)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# The command dispatch of setup.sh and providers.sh: install | start WORKDIR | up WORKDIR |
# stop WORKDIR; anything else prints the script's header comment (lines 2..LAST) as usage.
dispatch() {
  local script=$1 last=$2 cmd=${3:-}
  shift 2
  case "$cmd" in
    install) do_install ;;
    start) [ $# -eq 2 ] || die "usage: $script start WORKDIR"; do_start "$2" ;;
    up) [ $# -eq 2 ] || die "usage: $script up WORKDIR"; do_install; do_start "$2" ;;
    stop) [ $# -eq 2 ] || die "usage: $script stop WORKDIR"; do_stop "$2" ;;
    *) sed -n "2,${last}p" "$script" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
}
