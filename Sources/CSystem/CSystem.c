#define _GNU_SOURCE
#include "CSystem.h"
#include <fcntl.h>
#include <sys/prctl.h>

int vitals_fcntl_setfl(int fd, int flags) { return fcntl(fd, F_SETFL, flags); }
int vitals_fcntl_getfl(int fd) { return fcntl(fd, F_GETFL); }
int vitals_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

#include <sys/syscall.h>
#include <unistd.h>
int vitals_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
