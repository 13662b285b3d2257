/*
 * Test support, not part of the library: a stand-in for Windows'
 * bcryptprimitives.dll, so that Rust test binaries start under Wine 8.0.
 *
 * Rust's standard library (1.78 and later) imports ProcessPrng from
 * bcryptprimitives.dll to seed its hash maps. Wine gained that export only
 * in 8.13; Debian 12 ships Wine 8.0, whose loader then refuses to start
 * the program ("import ProcessPrng from bcryptprimitives.dll not found").
 * This DLL exports ProcessPrng and nothing else, filling the buffer from
 * the system's generator (advapi32's RtlGenRandom, SystemFunction036),
 * which Wine has long had. .ci/windows builds it with mingw and puts it
 * next to the test executables, where the loader looks first.
 */
#include <windows.h>

/* RtlGenRandom: exported by advapi32 under this name. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length: feed it in pieces. */
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    /* Like the real one: documented to always return TRUE. */
    return TRUE;
}
