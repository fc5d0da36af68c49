#define _GNU_SOURCE
#include "CSystem.h"
#include <fcntl.h>
#include <sys/prctl.h>

int vitals_fcntl_setfl(int fd, int flags) { return fcntl(fd, F_SETFL, flags); }
int vitals_fcntl_getfl(int fd) { return fcntl(fd, F_GETFL); }
int vitals_fcntl_dupfd_cloexec(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 0); }
int vitals_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

#include <sys/syscall.h>
#include <unistd.h>
int vitals_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

#include <errno.h>
#include <sys/resource.h>
pid_t vitals_thread_id(void) { return (pid_t)syscall(SYS_gettid); }
int vitals_thread_nice(pid_t tid) {
    errno = 0;
    return getpriority(PRIO_PROCESS, (id_t)tid);
}
int vitals_thread_adopt_process_nice(void) {
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)getpid());
    if (nice == -1 && errno != 0) return -1;
    pid_t self = vitals_thread_id();
    errno = 0;
    int current = getpriority(PRIO_PROCESS, (id_t)self);
    if (current == nice && errno == 0) return 0;
    return setpriority(PRIO_PROCESS, (id_t)self, nice);
}
int vitals_thread_set_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }
