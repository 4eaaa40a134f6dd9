/* Test harness for exported filters: signal files in the layout of
 * tests/embedded/driver.c, builds of the driver with a generated filter for
 * the host and for an emulated Cortex-M (qemu-system-arm, mps2 boards,
 * semihosting). Header-only, static; used by tests/test_export.c and
 * tests/embedded/test_emu.c. Every function returns 0 on success. */
#ifndef CONVREC_TEST_HARNESS_H
#define CONVREC_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* in.bin: uint32 T, uint32 B, then blocks of (C, min(B, rest)) from x,
 * which is (C, T) channel-major with elements of es bytes. */
static inline int hx_write_input(const char *dir, const void *x, size_t es, size_t C, size_t T,
                                 size_t B)
{
    char p[512];
    snprintf(p, sizeof p, "%s/in.bin", dir);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    uint32_t h[2] = {(uint32_t)T, (uint32_t)B};
    int ok = fwrite(h, sizeof h[0], 2, f) == 2;
    for (size_t t0 = 0; ok && t0 < T; t0 += B) {
        size_t n = T - t0 < B ? T - t0 : B;
        for (size_t c = 0; ok && c < C; c++)
            ok = fwrite((const char *)x + (c * T + t0) * es, es, n, f) == n;
    }
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* out.bin back into y (C, T). */
static inline int hx_read_output(const char *dir, void *y, size_t es, size_t C, size_t T,
                                 size_t B)
{
    char p[512];
    snprintf(p, sizeof p, "%s/out.bin", dir);
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    int ok = 1;
    for (size_t t0 = 0; ok && t0 < T; t0 += B) {
        size_t n = T - t0 < B ? T - t0 : B;
        for (size_t c = 0; ok && c < C; c++)
            ok = fread((char *)y + (c * T + t0) * es, es, n, f) == n;
    }
    ok = ok && fgetc(f) == EOF; /* nothing more */
    fclose(f);
    return ok ? 0 : -1;
}

static inline int hx_read_file(const char *dir, const char *name, void *buf, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    int ok = fread(buf, 1, n, f) == n;
    fclose(f);
    return ok ? 0 : -1;
}

/* Run a shell command; its exit status (-1 if it did not exit). */
static inline int hx_sh(const char *cmd)
{
    int r = system(cmd);
    return r != -1 && WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* The driver with the generated DIR/NAME.c for the host: DIR/PROG.
 * type is the sample type; extra: more compiler flags. Errors go to
 * DIR/PROG.log and are printed. */
static inline int hx_build_host(const char *src, const char *dir, const char *name, const char *up,
                                const char *type, const char *extra, const char *prog)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cc -std=c99 -Wall -Wextra -Werror -pedantic -O2 %s -DHDR='\"%s.h\"' "
             "-DNAME=%s -DUP=%s -DT=%s -I. -o %s %s.c '%s/tests/embedded/driver.c' > %s.log 2>&1 "
             "|| { cat %s.log; exit 1; }",
             dir, extra, name, name, up, type, prog, name, src, prog, prog);
    return hx_sh(cmd);
}

/* CPU flags and qemu machine of the two emulated cores. */
#define HX_M3 "-mcpu=cortex-m3 -mthumb"
#define HX_M4F "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
#define HX_M3_MACHINE "mps2-an385"
#define HX_M4F_MACHINE "mps2-an386"

/* The driver for an emulated core: DIR/PROG (an ELF), semihosting stdio. */
static inline int hx_build_target(const char *src, const char *dir, const char *name,
                                  const char *up, const char *type, const char *cpu,
                                  const char *prog)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && arm-none-eabi-gcc %s -std=c99 -Wall -Wextra -Werror -pedantic -O2 "
             "-DHDR='\"%s.h\"' -DNAME=%s -DUP=%s -DT=%s -I. --specs=nano.specs "
             "--specs=rdimon.specs -nostartfiles -T '%s/tests/embedded/mps2.ld' -o %s %s.c "
             "'%s/tests/embedded/driver.c' '%s/tests/embedded/startup.c' > %s.log 2>&1 "
             "|| { cat %s.log; exit 1; }",
             dir, cpu, name, name, up, type, src, prog, name, src, src, prog, prog);
    return hx_sh(cmd);
}

/* Run PROG on the emulated board (in DIR, so that semihosting finds the
 * files); its exit status. A hang is cut after 120 s. */
static inline int hx_run_qemu(const char *dir, const char *machine, const char *prog)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && timeout 120 qemu-system-arm -M %s -nographic -monitor none -serial none "
             "-semihosting-config enable=on,target=native -kernel %s",
             dir, machine, prog);
    return hx_sh(cmd);
}

static inline int hx_run_host(const char *dir, const char *prog)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && ./%s", dir, prog);
    return hx_sh(cmd);
}

#endif
