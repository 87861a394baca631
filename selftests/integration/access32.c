/* access32 CLASS PATH: one access of permission class CLASS (r, w, x or a) on PATH through the
 * 32-bit syscall ABI (int $0x80), which the kernel audits as arch=i386 (b32).
 * Build: gcc -static -no-pie: int $0x80 truncates pointers to 32 bits, so every buffer the
 * kernel reads is static (below 4 GiB in a non-PIE binary). */
#include <string.h>
#include <sys/stat.h>

static char path[4096];
static char big[32 * 4096 + 1]; /* longer than MAX_ARG_STRLEN: execve opens PATH, then E2BIG */
static unsigned int argv32[3], envp32[1];

static long sys32(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c)
                     : "memory", "r8", "r9", "r10", "r11");
    return ret;
}

int main(int argc, char **argv) {
    struct stat st;
    if (argc != 3 || strlen(argv[2]) >= sizeof path) return 2;
    strcpy(path, argv[2]);
    switch (argv[1][0]) {
    case 'r': return sys32(5 /* open */, (long)path, 0 /* O_RDONLY */, 0) < 0;
    case 'w': return sys32(5, (long)path, 01 | 02000 /* O_WRONLY|O_APPEND */, 0) < 0;
    case 'x':
        memset(big, 'x', sizeof big - 1);
        argv32[0] = (unsigned int)(long)path;
        argv32[1] = (unsigned int)(long)big;
        return sys32(11 /* execve */, (long)path, (long)argv32, (long)envp32) < 0;
    case 'a':
        if (stat(path, &st) != 0) return 1;
        return sys32(15 /* chmod */, (long)path, st.st_mode & 07777, 0) < 0;
    }
    return 2;
}
