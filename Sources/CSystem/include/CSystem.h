#ifndef VITALS_CSYSTEM_H
#define VITALS_CSYSTEM_H

/* Glibc as imported by Swift lacks <sys/epoll.h>, and declares accept4 and
 * pipe2 only under _GNU_SOURCE. This header brings in what the server, the
 * prober and the action runner need, declared the way glibc has them. */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <spawn.h>
#include <signal.h>
#include <fcntl.h>

int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
int pipe2(int pipefd[2], int flags);
int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);

/* Wrappers for macros and variadic calls that Swift cannot call directly. */
int vitals_fcntl_setfl(int fd, int flags);
int vitals_fcntl_getfl(int fd);
int vitals_fcntl_dupfd_cloexec(int fd);
int vitals_set_child_subreaper(void);

/* Exec probes (VitalsProbe): close inherited descriptors in the child, and a
 * pollable descriptor that turns readable when a child exits (Linux 5.3+). */
int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
int vitals_pidfd_open(pid_t pid);

/// Sets the calling thread's nice value to the process's (its main
/// thread's), which the operator chose (`nice`, systemd's `Nice=`). Threads
/// made from a thread pool's worker may have been given the pool's own.
/// Returns 0, or -1 with errno (raising a priority may need privilege).
int vitals_thread_adopt_process_nice(void);

/// The nice value of thread `tid` of this process (-1 with errno on failure
/// is ambiguous: check errno).
int vitals_thread_nice(pid_t tid);

/// This thread's id (gettid).
pid_t vitals_thread_id(void);

/// Names the calling thread (up to 15 bytes), as `ps -L` and /proc show it.
int vitals_thread_set_name(const char *name);

#endif
