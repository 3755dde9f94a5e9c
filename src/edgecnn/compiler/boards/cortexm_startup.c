/* Reset, fault and SysTick handlers of the example Cortex-M image (no OS): copy .data from
 * flash, zero .bss, start the SysTick counter, call main, report its return code to the
 * emulator through semihosting (SYS_EXIT_EXTENDED). Compiled with the model for the emulated
 * boards; a product uses its own board support package instead. */
#include <stdint.h>

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start__[], __bss_end__[];
extern uint32_t __stack_top[];
int main(void);
void ec_reset(void);
void ec_fault(void);
void ec_systick(void);

/* ARM semihosting call (the "BKPT 0xAB" convention of M-profile). */
int ec_semihost(int op, void *arg) {
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void ec_exit(int code) {
    uint32_t block[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit, code */
    for (;;) ec_semihost(0x20, block);                /* SYS_EXIT_EXTENDED */
}

/* SysTick: a 24-bit down-counter at the core clock; ec_systick_wraps counts its reloads so that
 * ec_cycles() is a 64-bit count (under qemu -icount it counts emulated instructions). */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
volatile uint32_t ec_systick_wraps;

void ec_systick(void) { ec_systick_wraps++; }

uint64_t ec_cycles(void) {
    uint32_t hi, lo;
    do {
        hi = ec_systick_wraps;
        lo = SYST_CVR;
    } while (hi != ec_systick_wraps);
    return (uint64_t)hi * 0x1000000u + (0xFFFFFFu - lo);
}

void ec_fault(void) { ec_exit(70); }

void ec_reset(void) {
    uint32_t *s = __data_load, *d = __data_start;
    while (d < __data_end) *d++ = *s++;
    for (d = __bss_start__; d < __bss_end__; d++) *d = 0;
#if defined(__ARM_FP)
    /* enable CP10/CP11 (the FPU) before any float instruction */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb");
#endif
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* enable, interrupt, core clock */
    ec_exit(main());
}

/* The vector table: initial stack pointer, reset, NMI, HardFault, MemManage, BusFault,
 * UsageFault, 4 reserved, SVCall, DebugMonitor, reserved, PendSV, SysTick. A union, so that
 * the table is ISO C (no cast between object and function pointers). */
union ec_vector {
    uint32_t *sp;
    void (*fn)(void);
};
__attribute__((section(".vectors"), used)) const union ec_vector ec_vectors[16] = {
    {.sp = __stack_top}, {.fn = ec_reset}, {.fn = ec_fault}, {.fn = ec_fault},
    {.fn = ec_fault}, {.fn = ec_fault}, {.fn = ec_fault}, {0}, {0}, {0}, {0},
    {.fn = ec_fault}, {.fn = ec_fault}, {0}, {.fn = ec_fault}, {.fn = ec_systick}};
