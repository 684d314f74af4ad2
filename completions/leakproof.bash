# bash completion for leakproof(1)                          -*- shell-script -*-
# Installed as share/bash-completion/completions/leakproof.

# Index in COMP_WORDS of words[$1]: _init_completion joins the URLs that
# COMP_WORDBREAKS splits at ':' and '=', _command_offset counts raw words.
_leakproof_raw_index()
{
    local w=0 raw=0 joined
    while ((w < $1 && raw < ${#COMP_WORDS[@]})); do
        joined=${COMP_WORDS[raw]}
        ((raw++))
        while [[ $joined != "${words[w]}" && ${#joined} -lt ${#words[w]} ]] &&
            ((raw < ${#COMP_WORDS[@]})); do
            joined+=${COMP_WORDS[raw]}
            ((raw++))
        done
        ((w++))
    done
    echo $raw
}

# The first word that is neither an option nor an option's value, or the word
# after "--", is the command: 0 when the cursor is still among the options.
_leakproof_command_at()
{
    local i=1
    while ((i < cword)); do
        case ${words[i]} in
            --) echo $((i + 1)) && return ;;
            -p | --proxy | -u | --user | --pass | --password | --timeout | --exclude | --log-file | \
                --chain | --hop-timeout | --route | --config)
                ((i += 2)) ;;
            -?*) ((i++)) ;;
            *) echo $i && return ;;
        esac
    done
    ((i == cword)) && [[ ${words[cword]} != -* ]] && echo $i && return
    echo 0
}

_leakproof_proxy_urls()
{
    COMPREPLY=($(compgen -W "socks5h://127.0.0.1:9050 socks5h:// socks5:// socks4a:// socks4://" \
        -- "$cur"))
    [[ ${COMPREPLY-} == *:// ]] && compopt -o nospace  # the host follows
    __ltrim_colon_completions "$cur"
}

_leakproof_chain_modes()
{
    COMPREPLY=($(compgen -W "strict dynamic random random: round-robin round-robin:" -- "$cur"))
    [[ ${COMPREPLY-} == *: ]] && compopt -o nospace  # N follows
    __ltrim_colon_completions "$cur"
}

# --route PATTERN=TARGET: readline splits the word at '=', so the target is
# the word after a "=" that follows the pattern.
_leakproof_route_targets()
{
    COMPREPLY=($(compgen -W "direct refuse socks5h://127.0.0.1:9050 socks5h://
        tor:socks5h://127.0.0.1:9050" -- "$cur"))
    [[ ${COMPREPLY-} == *:// ]] && compopt -o nospace
    __ltrim_colon_completions "$cur"
}

_leakproof()
{
    local cur prev words cword split
    _init_completion -s -n : || return

    local at
    at=$(_leakproof_command_at)
    if ((at > 0)); then
        _command_offset "$(_leakproof_raw_index "$at")"
        return
    fi

    if ((cword >= 3)) && [[ $prev == = && ${words[cword - 3]} == --route ]]; then
        _leakproof_route_targets
        return
    fi
    case $prev in
        -p | --proxy) _leakproof_proxy_urls; return ;;
        --log-file | --config) _filedir; return ;;
        --chain) _leakproof_chain_modes; return ;;
        --route) return ;;  # a pattern: a name, *.suffix, CIDR[:PORT] or *
        -u | --user | --pass | --password | --timeout | --exclude | --hop-timeout) return ;;
        --isolate) [[ $split == true ]] &&
            COMPREPLY=($(compgen -W "invocation process" -- "$cur")) && return ;;
    esac
    [[ $split == true ]] && return

    COMPREPLY=($(compgen -W "-p --proxy --tor --pipeline --optimistic
        --no-optimistic -u --user --pass --password -i
        --isolate --isolate= -q --quiet -v --verbose --timeout --exclude --proxy-loopback --udp --inbound
        --log-file --supervise --require-supervisor --chain --hop-timeout --route --config
        --print-config --shell --env --check -h --help --version --" -- "$cur"))
    [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
} &&
    complete -F _leakproof leakproof

# ex: filetype=sh
