/*
 * Taking the GIL back after a blocking wait, from a C frame that no
 * forced unwind can get past.
 *
 * CPython before 3.14 ends a thread that asks for the GIL once the
 * interpreter is finalizing (a daemon thread coming back from a wait at
 * exit): take_gil() calls pthread_exit(), and glibc's pthread_exit unwinds
 * the thread's stack. Unwinding through the extension's Rust frames is
 * undefined: a wheel linked by zig (whose own unwinder resumes what
 * libgcc_s started) crashed with SIGSEGV in most such exits, others
 * aborted now and then. Checking Py_IsFinalizing() first cannot help:
 * finalization may begin while the thread waits inside take_gil().
 *
 * So the GIL is taken back here, with a cancellation cleanup handler
 * installed around the call. Built without -fexceptions, glibc's
 * pthread_cleanup_push registers a jump buffer in this frame: the unwind
 * started by pthread_exit stops when it reaches this frame (or the end of
 * the unwind tables, whichever comes first), jumps back here and runs the
 * handler, which parks the thread for good, as CPython 3.14 does with such
 * threads. The frames it left are CPython's own C frames, below this one;
 * the Rust frames above this one are never touched. musl, macOS and
 * FreeBSD call cleanup handlers from pthread_exit too, so the thread parks
 * there as well (only glibc is tried by CI).
 */
#include <pthread.h>
#include <unistd.h>

#ifdef __EXCEPTIONS
#error "reattach.c must be built without -fexceptions (see the comment at the top)"
#endif

/* From the stable ABI; the interpreter that loads the module has it. */
extern void PyEval_RestoreThread(void *tstate);

static void park_for_good(void *unused)
{
    (void)unused;
    for (;;) {
        pause();
    }
}

void selectors2_reattach(void *tstate)
{
    pthread_cleanup_push(park_for_good, 0);
    PyEval_RestoreThread(tstate);
    pthread_cleanup_pop(0);
}
