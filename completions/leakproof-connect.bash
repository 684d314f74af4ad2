# bash completion for leakproof-connect(1)                  -*- shell-script -*-
# Installed as share/bash-completion/completions/leakproof-connect.
#
#   leakproof-connect [-p URL]... [-t SECONDS] [-u [-w SECONDS] | -l] HOST PORT
#
# -u (UDP through the proxy's relay) and -l (BIND: HOST PORT is the peer that
# will connect) change what HOST PORT mean, not their place.

_leakproof_connect()
{
    local cur prev words cword
    _init_completion -n : || return

    case $prev in
        -p)
            COMPREPLY=($(compgen -W "socks5h://127.0.0.1:9050 socks5h:// socks5:// socks4a:// socks4://" \
                -- "$cur"))
            [[ ${COMPREPLY-} == *:// ]] && compopt -o nospace  # the host follows
            __ltrim_colon_completions "$cur"
            return
            ;;
        -t | -w) return ;;
    esac

    # Which positional argument the cursor is on: HOST, then PORT, then none.
    local i positional=0
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -p | -t | -w) ((i++)) ;;
            -?*) ;;
            *) ((positional++)) ;;
        esac
    done

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "-p -t -u -l -w -h --help" -- "$cur"))
    elif ((positional == 0)); then
        _known_hosts_real -- "$cur"
    elif ((positional == 1)); then
        COMPREPLY=($(compgen -W "22 80 443 1080 9050" -- "$cur"))
    fi
} &&
    complete -F _leakproof_connect leakproof-connect

# ex: filetype=sh
