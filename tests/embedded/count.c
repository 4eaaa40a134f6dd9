/* Instructions per sample of an exported filter on an emulated Cortex-M,
 * for bench/bench_export_size.py. qemu's M-profile has no cycle counter
 * (no DWT), so run qemu with -icount shift=0: the virtual clock then
 * advances exactly 1 ns per executed instruction, and the SysTick timer
 * (processor clock, 25 MHz on the mps2 boards) counts one tick per 40
 * instructions. A loop of known length calibrates that factor in the same
 * run. Built like driver.c (-DHDR -DNAME -DUP -DT); prints one line. */
#include HDR
#include <stdint.h>
#include <stdio.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define F(x) CAT(NAME, x)
#define CH CAT(UP, _CHANNELS)
#define BLOCK 64   /* samples per call, a typical audio block */
#define BLOCKS 16  /* 1024 samples in all */
#define SPIN 100000u

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static T in[CH * BLOCK], out[CH * BLOCK];
static F(_state) st;

/* exactly 2 instructions per iteration */
static void spin(uint32_t n) { __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc"); }

static uint32_t ticks(uint32_t t0, uint32_t t1) { return (t0 - t1) & 0xFFFFFFu; }

int main(void)
{
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5; /* enabled, processor clock, no interrupt */
    uint32_t t0 = SYST_CVR;
    spin(SPIN);
    uint32_t cal = ticks(t0, SYST_CVR);
    uint32_t r = 12345u;
    for (int i = 0; i < CH * BLOCK; i++) { /* half-scale pseudo-random samples */
        r = r * 1664525u + 1013904223u;
        in[i] = (T)((double)(int32_t)r / 4294967296.0 * IN_SCALE);
    }
    F(_init)(&st);
    t0 = SYST_CVR;
    for (int b = 0; b < BLOCKS; b++) F(_process)(&st, in, out, BLOCK);
    uint32_t run = ticks(t0, SYST_CVR);
    printf("spin_insns=%lu spin_ticks=%lu run_ticks=%lu samples=%d channels=%d\n",
           (unsigned long)(2 * SPIN), (unsigned long)cal, (unsigned long)run, BLOCK * BLOCKS, CH);
    return 0;
}
