#!/bin/sh
# Make the convrec.1 man page with help2man: the overview from
# `convrec --help`, then one subsection per command from `convrec CMD --help`,
# and the hand-written sections of convrec.h2m.
#   mkman.sh HELP2MAN CONVREC SRC/convrec.h2m OUT.1
set -eu
help2man=$1 bin=$2 extra=$3 out=$4
inc=$out.h2m.tmp
trap 'rm -f "$inc" "$out.tmp"' EXIT
{
    cat "$extra"
    echo '[COMMANDS]'
    for c in fit kernel filter conv hsv info export verify study report; do
        echo ".SS convrec $c"
        echo '.nf'
        # roff: backslashes, leading dots and quotes, and real minus signs
        "$bin" "$c" --help | sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\([.']\)/\\\\\&\1/"
        echo '.fi'
    done
} > "$inc"
"$help2man" --no-info --no-discard-stderr \
    --name='long convolution kernels to small stable recurrences' \
    --include="$inc" --output="$out.tmp" "$bin"
mv "$out.tmp" "$out"
