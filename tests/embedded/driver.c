/* Runs an exported filter over a signal file, on the host or on an
 * emulated Cortex-M (semihosting carries the files). Built with
 *   -DHDR='"NAME.h"' -DNAME=NAME -DUP=UPPERCASE_NAME -DT=sample_type
 * Files (binary, native endianness, samples of type T):
 *   in.bin   uint32 T_total, uint32 block, then the signal in blocks: for
 *            each block of B = min(block, remaining) samples, the (C, B)
 *            channel-major buffer NAME_process takes
 *   out.bin  the outputs in the same layout (no header)
 *   state.bin the final NAME_state, bytes as in memory
 * Odd blocks are processed in place (in == out), even ones not. Exit
 * status 0, or 2..5 naming the file step that failed. */
#include HDR
#include <stdint.h>
#include <stdio.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define F(x) CAT(NAME, x)
#define CH CAT(UP, _CHANNELS)
#ifndef BMAX
#define BMAX 1024
#endif

static T a[CH * BMAX], b[CH * BMAX];
static F(_state) st;

int main(void)
{
    uint32_t hdr[2];
    FILE *in = fopen("in.bin", "rb"), *out = fopen("out.bin", "wb");
    if (!in || !out) return 2;
    if (fread(hdr, sizeof hdr[0], 2, in) != 2 || hdr[1] == 0 || hdr[1] > BMAX) return 3;
    F(_init)(&st);
    uint32_t done = 0, k = 0;
    while (done < hdr[0]) {
        size_t n = hdr[0] - done < hdr[1] ? hdr[0] - done : hdr[1];
        if (fread(a, sizeof(T), CH * n, in) != CH * n) return 4;
        T *y = (k++ & 1) ? a : b;
        F(_process)(&st, a, y, n);
        if (fwrite(y, sizeof(T), CH * n, out) != CH * n) return 5;
        done += (uint32_t)n;
    }
    fclose(in);
    if (fclose(out) != 0) return 5;
    FILE *s = fopen("state.bin", "wb");
    if (!s || fwrite(&st, sizeof st, 1, s) != 1 || fclose(s) != 0) return 5;
    return 0;
}
