# bash completion for duet (docs/install.md).
#
# Commands and their options are read from duet's own --help, so they are
# never out of date; workload names are asked of the daemon when needed
# (duet get -o name), through a --socket already on the line or
# $DUET_SOCKET, and nothing is offered when no daemon answers.

_duet_names()
{
    local -a sock=()
    local i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        case ${COMP_WORDS[i]} in
        --socket) sock=(--socket "${COMP_WORDS[i + 1]}") ;;
        --socket=*) sock=("${COMP_WORDS[i]}") ;;
        esac
    done
    "${COMP_WORDS[0]}" "${sock[@]}" ${1:-get -o name} 2>/dev/null
}

# The stored secrets' names: the first column of duet secret ls.
_duet_secrets()
{
    _duet_names "secret ls" | awk 'NR > 1 {print $1}'
}

_duet()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local duet=${COMP_WORDS[0]} cmd= sub= i npos=0
    # The command: the first word that is not --socket and its value.
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        --socket) ((i++)) ;;
        --socket=*) ;;
        -*) [[ -n $cmd ]] || continue ;;
        *)
            if [[ -z $cmd ]]; then
                cmd=${COMP_WORDS[i]}
            elif [[ ${COMP_WORDS[i - 1]} != -[fo] && ${COMP_WORDS[i - 1]} != --* ]]; then
                ((npos++))
                [[ -z $sub ]] && sub=${COMP_WORDS[i]}
            fi
            ;;
        esac
    done
    if [[ $prev == --socket ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [[ -z $cmd ]]; then
        local cmds
        cmds=$("$duet" --help 2>/dev/null | awk '/^  [a-z]/ {print $1}')
        COMPREPLY=($(compgen -W "$cmds --socket --help" -- "$cur"))
        return
    fi
    # After `--` of exec or run: the command inside, not duet's business.
    for ((i = 1; i < COMP_CWORD; i++)); do
        [[ ${COMP_WORDS[i]} == -- ]] && return
    done
    case $prev in
    -s|--sort)
        [[ $cmd == top ]] && COMPREPLY=($(compgen -W "cpu memory name" -- "$cur"))
        return
        ;;
    -f|--filename|-o|--output|--rootfs|--disk|--env-file|--config|--guest-kernel)
        if [[ $prev == -o || $prev == --output ]] && [[ $cmd != backup ]]; then
            COMPREPLY=($(compgen -W "table json yaml name" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return
        ;;
    esac
    if [[ $cur == -* ]]; then
        local opts
        opts=$("$duet" "$cmd" --help 2>/dev/null | grep -oE -- '(^|[[ ,(|])--?[a-zA-Z][a-zA-Z-]*' |
            sed 's/^[[ ,(|]//' | sort -u)
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    case $cmd in
    validate|restore) COMPREPLY=($(compgen -f -- "$cur")) ;;
    get|describe|logs|delete|compare|backup|stop|start|restart)
        COMPREPLY=($(compgen -W "$(_duet_names)" -- "$cur")) ;;
    exec) ((npos == 0)) && COMPREPLY=($(compgen -W "$(_duet_names)" -- "$cur")) ;;
    image) ((npos == 0)) && COMPREPLY=($(compgen -W "ls pull inspect rm prune" -- "$cur")) ;;
    volume) ((npos == 0)) && COMPREPLY=($(compgen -W "ls inspect rm" -- "$cur")) ;;
    secret)
        if ((npos == 0)); then
            COMPREPLY=($(compgen -W "set ls rm" -- "$cur"))
        elif ((npos == 1)) && [[ $sub == set || $sub == rm ]]; then
            COMPREPLY=($(compgen -W "$(_duet_secrets)" -- "$cur"))
        fi
        ;;
    snapshot)
        if ((npos == 0)); then
            COMPREPLY=($(compgen -W "create ls restore rm" -- "$cur"))
        elif ((npos == 1)); then
            COMPREPLY=($(compgen -W "$(_duet_names)" -- "$cur"))
        fi
        ;;
    esac
}
complete -F _duet duet
