/* SPDX-License-Identifier: Apache-2.0 */
/* The epoll loop: a batch of events per wait, dispatched to mesh_io callbacks, then timers. */
#include "net/loop.h"

#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

enum mesh_err mesh_loop_init(struct mesh_loop *loop)
{
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        return MESH_E_IO;
    loop->stop = false;
    loop->now_ms = clock_ms();
    mesh_timer_wheel_init(&loop->timers, loop->now_ms);
    loop->batch = NULL;
    loop->batch_len = 0;
    loop->batch_pos = 0;
    return MESH_OK;
}

void mesh_loop_close(struct mesh_loop *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    loop->epfd = -1;
}

static enum mesh_err ctl_add(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return MESH_E_IO;
    return MESH_OK;
}

enum mesh_err mesh_loop_add(struct mesh_loop *loop, struct mesh_io *io)
{
    return ctl_add(loop, io, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

enum mesh_err mesh_loop_add_listener(struct mesh_loop *loop, struct mesh_io *io)
{
    return ctl_add(loop, io, EPOLLIN);
}

void mesh_loop_del(struct mesh_loop *loop, struct mesh_io *io)
{
    if (io->fd >= 0) {
        int saved = errno; /* unregistering a closed or unknown fd is not worth reporting */
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
        errno = saved;
    }
    /* An fd appears at most once per epoll_wait batch, but io may be torn down from the
     * callback of an earlier event of the same batch: forget what is still queued for it. */
    for (int i = loop->batch_pos + 1; i < loop->batch_len; i++) {
        if (loop->batch[i].data.ptr == io)
            loop->batch[i].data.ptr = NULL;
    }
}

uint64_t mesh_loop_now_ms(const struct mesh_loop *loop)
{
    return loop->now_ms;
}

void mesh_loop_update_time(struct mesh_loop *loop)
{
    loop->now_ms = clock_ms();
}

void mesh_timer_start(struct mesh_loop *loop, struct mesh_timer *t, uint64_t after_ms)
{
    /* now_ms is the clock truncated to the millisecond: one tick more keeps a timer from firing
     * up to 1 ms before after_ms have really passed. */
    uint64_t expires = loop->now_ms + after_ms + (after_ms > 0 ? 1 : 0);
    mesh_timer_wheel_add(&loop->timers, t, expires);
}

void mesh_timer_stop(struct mesh_loop *loop, struct mesh_timer *t)
{
    mesh_timer_wheel_cancel(&loop->timers, t);
}

static uint32_t io_events(uint32_t ep)
{
    uint32_t ev = 0;
    if (ep & EPOLLIN)
        ev |= MESH_IO_READ;
    if (ep & EPOLLOUT)
        ev |= MESH_IO_WRITE;
    if (ep & EPOLLRDHUP)
        ev |= MESH_IO_READ | MESH_IO_HUP;
    if (ep & EPOLLHUP)
        ev |= MESH_IO_READ | MESH_IO_WRITE | MESH_IO_HUP;
    if (ep & EPOLLERR)
        ev |= MESH_IO_READ | MESH_IO_WRITE | MESH_IO_ERROR;
    return ev;
}

/* The epoll_wait timeout: max_wait_ms bounded by the next timer, measured from the real clock
 * (the wheel's time may lag behind it by the length of the last dispatch). */
static int wait_timeout(struct mesh_loop *loop, int max_wait_ms)
{
    int64_t next = mesh_timer_wheel_next_ms(&loop->timers);
    if (next < 0)
        return max_wait_ms < 0 ? -1 : max_wait_ms;
    uint64_t due = loop->timers.now_ms + (uint64_t)next;
    uint64_t now = clock_ms();
    int64_t until = due > now ? (int64_t)(due - now) : 0;
    if (max_wait_ms >= 0 && until > max_wait_ms)
        until = max_wait_ms;
    if (until > INT32_MAX)
        until = INT32_MAX;
    return (int)until;
}

int mesh_loop_run_once(struct mesh_loop *loop, int max_wait_ms)
{
    struct epoll_event events[MESH_LOOP_BATCH];
    int n = epoll_wait(loop->epfd, events, MESH_LOOP_BATCH, wait_timeout(loop, max_wait_ms));
    int saved = errno;
    mesh_loop_update_time(loop);
    int dispatched = 0;
    if (n > 0) {
        loop->batch = events;
        loop->batch_len = n;
        for (loop->batch_pos = 0; loop->batch_pos < n; loop->batch_pos++) {
            struct mesh_io *io = events[loop->batch_pos].data.ptr;
            if (io == NULL)
                continue; /* torn down by an earlier callback of this batch */
            io->cb(loop, io, io_events(events[loop->batch_pos].events));
            dispatched++;
        }
        loop->batch = NULL;
        loop->batch_len = 0;
        loop->batch_pos = 0;
    }
    mesh_timer_wheel_advance(&loop->timers, loop->now_ms);
    if (n < 0 && saved != EINTR) {
        errno = saved;
        return -1;
    }
    return dispatched;
}
