/*
 * An fsync that fails: preloaded into a node (LD_PRELOAD), fsync and fdatasync return EIO
 * while the file named by SHUTONG_EIO_WHEN exists, as a disk whose write-back failed.
 * Built by `shutong_testnet::disk::eio_shim` for the failing-disk tests.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
    const char *when = getenv("SHUTONG_EIO_WHEN");
    return when != NULL && access(when, F_OK) == 0;
}

int fsync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (failing()) {
        errno = EIO;
        return -1;
    }
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    return real(fd);
}
