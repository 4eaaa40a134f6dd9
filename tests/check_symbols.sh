#!/bin/sh
# The link graph of libconvrec follows the include graph (check_includes.sh):
# an object of a module folder may only use symbols defined in its own
# folder, in a folder it may include, or outside libconvrec (libc, FFTW,
# BLAS, ...). Inside the fit folder, the methods (every file but fit.c)
# may not call anything defined in fit.c: fit.c dispatches to them, never
# the other way. Reads the objects of the build tree.
set -u
bld=${CONVREC_BUILDDIR:-.}
[ -d "$bld/src/fit" ] || { echo "check_symbols: no build tree at $bld" >&2; exit 77; }
command -v nm >/dev/null 2>&1 || exit 77
deps() {
    case $1 in
    core) echo "" ;; io) echo "core" ;; spectral) echo "core" ;;
    hankel) echo "core spectral" ;; model) echo "core io spectral" ;;
    fit) echo "core spectral hankel model" ;; stream) echo "core spectral model" ;;
    export) echo "core model" ;;
    esac
}
mods="core io spectral hankel model fit stream export"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for m in $mods; do
    : > "$tmp/def.$m"
    for o in "$bld"/src/"$m"/*.o; do
        [ -f "$o" ] || continue
        nm --defined-only -g "$o" | awk '{print $3}' >> "$tmp/def.$m"
    done
    sort -u -o "$tmp/def.$m" "$tmp/def.$m"
done
bad=0
for m in $mods; do
    for o in "$bld"/src/"$m"/*.o; do
        [ -f "$o" ] || continue
        for u in $(nm -u "$o" | awk '{print $2}'); do
            owner=
            for x in $mods; do
                grep -qx "$u" "$tmp/def.$x" && owner=$x && break
            done
            [ -z "$owner" ] && continue          # outside libconvrec
            [ "$owner" = "$m" ] && continue
            ok=0
            for d in $(deps "$m"); do [ "$d" = "$owner" ] && ok=1; done
            if [ $ok -eq 0 ]; then
                echo "check_symbols: ${o#"$bld"/} uses $u from $owner" >&2
                bad=1
            fi
        done
    done
done
# the fit methods never call into fit.c
if [ -f "$bld/src/fit/fit.o" ]; then
    nm --defined-only -g "$bld/src/fit/fit.o" | awk '{print $3}' | sort -u > "$tmp/fitc"
    for o in "$bld"/src/fit/*.o; do
        [ "${o##*/}" = fit.o ] && continue
        for u in $(nm -u "$o" | awk '{print $2}'); do
            if grep -qx "$u" "$tmp/fitc"; then
                echo "check_symbols: ${o#"$bld"/} calls $u, defined in fit.c" >&2
                bad=1
            fi
        done
    done
fi
# the shared library exports no internal (cr__) symbol (a target_clones
# resolver of an external function once did, despite -fvisibility=hidden)
so="$bld/.libs/libconvrec.so"
if [ -f "$so" ]; then
    leaked=$(nm -D --defined-only "$so" | awk '{print $3}' | grep '^cr__' | tr '\n' ' ')
    if [ -n "$leaked" ]; then
        echo "check_symbols: libconvrec.so exports internal symbols: $leaked" >&2
        bad=1
    fi
fi
[ $bad -eq 0 ] && echo "link graph: one way, as allowed; no method calls into fit.c; no internal symbol exported"
exit $bad
