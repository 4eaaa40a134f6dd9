#!/bin/sh
# The include graph of src/ flows one way (README "Architecture"; the design notes): each
# module folder may include the public header, its own headers, and the
# headers of the folders listed for it below. Any other #include "..." of a
# project header fails the check. System headers (<...>) are not checked.
set -u
src=${CONVREC_SRCDIR:-$(dirname "$0")/..}/src
allowed() { # folder -> folders it may use
    case $1 in
    core) echo "" ;;
    io) echo "core" ;;
    spectral) echo "core" ;;
    hankel) echo "core spectral" ;;
    model) echo "core io spectral" ;;
    fit) echo "core spectral hankel model" ;;
    stream) echo "core spectral model" ;;
    export) echo "core model" ;;
    cli) echo "" ;;          # the command uses the public API only
    *) echo "UNKNOWN" ;;
    esac
}
bad=0
for f in $(find "$src" -name '*.[ch]' | sort); do
    rel=${f#"$src"/}
    mod=${rel%%/*}
    ok=$(allowed "$mod")
    if [ "$ok" = UNKNOWN ]; then
        echo "check_includes: $rel: folder '$mod' is not in the module list" >&2
        bad=1
        continue
    fi
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        case $inc in
        convrec.h|config.h) continue ;;
        */*) dep=${inc%%/*} ;;
        *) dep=$mod ;;      # a header of the same folder
        esac
        [ "$dep" = "$mod" ] && [ -f "$src/$mod/${inc##*/}" ] && continue
        found=0
        for a in $ok; do [ "$a" = "$dep" ] && found=1; done
        if [ $found -eq 0 ] || [ ! -f "$src/$inc" ]; then
            echo "check_includes: $rel includes \"$inc\": $mod may not use $dep" >&2
            bad=1
        fi
    done
done
[ $bad -eq 0 ] && echo "include graph: one way, as allowed"
exit $bad
