/* SPDX-License-Identifier: Apache-2.0 */
/* One epoll event loop per worker: edge-triggered I/O callbacks, timers, a cached clock. */
#ifndef MESH_NET_LOOP_H
#define MESH_NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "mesh/err.h"
#include "timer_wheel.h"

struct mesh_loop;
struct mesh_io;
struct epoll_event;

/* events: MESH_IO_READ / MESH_IO_WRITE / MESH_IO_HUP / MESH_IO_ERROR bits. */
typedef void (*mesh_io_cb)(struct mesh_loop *loop, struct mesh_io *io, uint32_t events);

#define MESH_IO_READ  0x1u
#define MESH_IO_WRITE 0x2u
#define MESH_IO_HUP   0x4u /* peer closed (EPOLLRDHUP/EPOLLHUP); data may still be readable */
#define MESH_IO_ERROR 0x8u

/* Embedded in its owner. Registered edge-triggered for both directions at once: the owner reads
 * and writes until EAGAIN and remembers readiness itself, so no epoll_ctl on the hot path.
 *
 * Event bits: EPOLLIN gives READ, EPOLLOUT gives WRITE, EPOLLRDHUP (the peer shut its writing
 * side) gives READ|HUP. A full hang-up (EPOLLHUP) or a socket error (EPOLLERR) also sets READ
 * and WRITE, so an owner that only acts on READ/WRITE still makes the syscall that reports the
 * condition (a failed connect shows up as WRITE|ERROR: check SO_ERROR).
 *
 * Closing: call mesh_loop_del(io) before close(io->fd) and before freeing the owner. Besides
 * unregistering, it drops whatever events are still queued for io in the batch being
 * dispatched, so a callback may close and free any io (its own or another one) and the loop
 * never calls back into freed memory. */
struct mesh_io {
    int fd;
    mesh_io_cb cb;
    void *data;
};

#define MESH_LOOP_BATCH 256 /* events taken per epoll_wait */

struct mesh_loop {
    int epfd;
    bool stop;       /* for the owner's `while (!loop->stop)`; the loop never sets it */
    uint64_t now_ms; /* CLOCK_MONOTONIC, refreshed once per iteration */
    struct mesh_timer_wheel timers;
    struct epoll_event *batch; /* events being dispatched (NULL outside dispatch) */
    int batch_len;
    int batch_pos; /* index of the event being dispatched */
};

/* Everything below runs on the loop's own thread only. */

/* Creates the epoll instance and starts the clock. MESH_E_IO (errno kept) when epoll fails. */
enum mesh_err mesh_loop_init(struct mesh_loop *loop);
/* Closes the epoll fd; the owner closes its own fds. Timers still armed are simply forgotten. */
void mesh_loop_close(struct mesh_loop *loop);
/* Registers io->fd (edge-triggered, read + write + hup). MESH_E_IO (errno kept) on failure. */
enum mesh_err mesh_loop_add(struct mesh_loop *loop, struct mesh_io *io);
/* Registers for read only, level-triggered (listeners). MESH_E_IO (errno kept) on failure. */
enum mesh_err mesh_loop_add_listener(struct mesh_loop *loop, struct mesh_io *io);
/* Unregisters and cancels io's queued events in the current batch; call before close(io->fd)
 * and before freeing io. A no-op for an io that is not registered. */
void mesh_loop_del(struct mesh_loop *loop, struct mesh_io *io);
/* Waits at most max_wait_ms (negative: no limit but the next timer; 0: just polls), or until the
 * next timer, dispatches I/O, refreshes the clock, then fires due timers. Returns the number of
 * I/O events dispatched (0 when interrupted by a signal), or -1 (errno kept) when epoll_wait
 * failed. */
int mesh_loop_run_once(struct mesh_loop *loop, int max_wait_ms);
uint64_t mesh_loop_now_ms(const struct mesh_loop *loop);
/* Refreshes loop->now_ms from the clock (the loop does it each iteration). */
void mesh_loop_update_time(struct mesh_loop *loop);
/* Arms t to fire after_ms after the loop's cached time (re-arms it if armed): never before
 * after_ms have really passed since the clock was read (it is armed one tick later than asked,
 * so it fires from after_ms to after_ms + 1 ms late, plus dispatch time). 0 fires on the next
 * iteration. */
void mesh_timer_start(struct mesh_loop *loop, struct mesh_timer *t, uint64_t after_ms);
void mesh_timer_stop(struct mesh_loop *loop, struct mesh_timer *t);

#endif
