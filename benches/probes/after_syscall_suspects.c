/* What each suspect on a hot path costs right after a system call, on the
 * machine this runs on: the things a selector's register, unregister,
 * modify or select may do after the kernel returned. Each row is one
 * inline system call (getppid) followed by the suspect, timed in a loop
 * and printed as nanoseconds above the bare inline call, measured in the
 * same run (compare rows of one run only; machines differ).
 *
 *   cc -O2 -o suspects benches/probes/after_syscall_suspects.c && ./suspects
 *
 * Rows:
 *   ret          the syscall inside an out-of-line function: one `ret`
 *                from a frame entered before the syscall (the cost the
 *                kernel's return-stack-buffer stuffing adds on some AMD
 *                machines; DESIGN.md "Cost")
 *   call         an out-of-line call made after the syscall (its frame is
 *                entered after: predicted normally)
 *   indirect     the same through a function pointer
 *   branches     20 well-predicted conditional branches after it
 *   lines-warm   4 loads from a 160 KiB table at fixed places (in cache)
 *   lines-cold   4 loads walking a 64 MiB table (cache misses)
 *   result-mem   a 24-byte result written to memory by a call after it
 *                and read back (a Rust `Result<_, Error>` that is not a
 *                register pair)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

static inline long sc0(long n) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n) : "rcx", "r11", "memory");
    return r;
}

__attribute__((noinline)) long in_frame(void) { return sc0(SYS_getppid); }
__attribute__((noinline)) long after(long x) { return x + 1; }
static long (*volatile indirect)(long) = after;

struct wide { long a, b, c; };
__attribute__((noinline)) struct wide wide_result(long x) {
    struct wide w = {x, x + 1, x + 2};
    return w;
}

static volatile uint64_t *warm, *cold;
#define WARM_WORDS (160 * 1024 / 8)
#define COLD_WORDS (64 * 1024 * 1024 / 8)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(void) {
    const int n = 1000000;
    volatile long s = 0;
    warm = calloc(WARM_WORDS, 8);
    cold = calloc(COLD_WORDS, 8);
    if (!warm || !cold) return 1;
    memset((void *)cold, 1, COLD_WORDS * 8);
    size_t walk = 0;
    for (int round = 0; round < 5; round++) {
        double t[9];
        t[0] = now();
        for (int i = 0; i < n; i++) s += sc0(SYS_getppid);
        t[1] = now();
        for (int i = 0; i < n; i++) s += in_frame();
        t[2] = now();
        for (int i = 0; i < n; i++) s += after(sc0(SYS_getppid));
        t[3] = now();
        for (int i = 0; i < n; i++) s += indirect(sc0(SYS_getppid));
        t[4] = now();
        for (int i = 0; i < n; i++) {
            long r = sc0(SYS_getppid);
            for (int b = 0; b < 20; b++)
                if (r == -b - 1000) s += b; /* never true */
            s += r;
        }
        t[5] = now();
        for (int i = 0; i < n; i++) {
            long r = sc0(SYS_getppid);
            s += r + warm[3] + warm[4099] + warm[8195] + warm[16000];
        }
        t[6] = now();
        for (int i = 0; i < n; i++) {
            long r = sc0(SYS_getppid);
            for (int k = 0; k < 4; k++) {
                walk = (walk + 4099 * 8 + 64) % COLD_WORDS;
                s += cold[walk];
            }
            s += r;
        }
        t[7] = now();
        for (int i = 0; i < n; i++) {
            struct wide w = wide_result(sc0(SYS_getppid));
            s += w.a + w.c;
        }
        t[8] = now();
        double base = (t[1] - t[0]) / n;
        const char *name[] = {"ret", "call", "indirect", "branches", "lines-warm",
                              "lines-cold", "result-mem"};
        printf("inline %.1f ns |", base);
        for (int k = 0; k < 7; k++)
            printf(" %s %+.1f", name[k], (t[k + 2] - t[k + 1]) / n - base);
        printf("\n");
    }
    return 0;
}
