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
int vitals_set_child_subreaper(void);

/* Exec probes (VitalsProbe): close inherited descriptors in the child, and a
 * pollable descriptor that turns readable when a child exits (Linux 5.3+). */
int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
int vitals_pidfd_open(pid_t pid);

#endif
