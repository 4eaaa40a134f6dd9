/* Bare-metal start for the MPS2 boards that qemu-system-arm emulates
 * (mps2-an385: Cortex-M3, mps2-an386: Cortex-M4F): a vector table, the
 * copy of .data and the clearing of .bss, the FPU switched on when the
 * build uses it, then newlib's semihosting stdio (librdimon) and main.
 * Any fault ends the run with exit status 99 instead of hanging. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
/* the linker script's stack top, declared as a function so that it fits
 * the table without an object-to-function pointer cast (ISO C has none) */
extern void __stack_top(void);
extern void initialise_monitor_handles(void);
extern int main(void);

void Reset_Handler(void);
static void Fault_Handler(void) { exit(99); }

/* initial stack pointer, reset, then NMI, HardFault, MemManage, BusFault,
 * UsageFault; nothing else is enabled */
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    __stack_top,   Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler,
};

void Reset_Handler(void)
{
    uint32_t *s = __data_load, *d = __data_start;
    while (d < __data_end) *d++ = *s++;
    for (d = __bss_start; d < __bss_end;) *d++ = 0;
#if defined(__ARM_FP)
    /* CPACR: full access to CP10 and CP11 (the FPU) */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    initialise_monitor_handles();
    exit(main());
}
