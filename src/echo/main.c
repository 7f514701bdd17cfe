/* SPDX-License-Identifier: Apache-2.0 */
/* mesh-echo: the test upstream. Flags, listeners, worker threads and signal handling. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echo/echo.h"
#include "net/sock.h"

#define MAX_WORKERS 256

static const char usage[] =
    "usage: mesh-echo --listen ADDR --name NAME [--workers N]\n"
    "\n"
    "An HTTP/1.1 server for tests and demos. It answers every request with 200 and the body\n"
    "\"NAME\\n\", plus x-echo-name, x-echo-method, x-echo-path, x-echo-query, x-echo-host,\n"
    "x-echo-body-bytes and x-echo-header-<name> for each request header named x-*.\n"
    "Query parameters: status=N (200-599), delay=DURATION (250ms, 1s, 1.5s, 2m),\n"
    "size=BYTES (a body of that many bytes, \"abc...z\" repeated), close=1 (close after).\n"
    "Upgrade: websocket gets 101 and then echoes every byte back.\n"
    "\n"
    "  --listen ADDR   host:port, [v6]:port or :port (port 0 picks a free port)\n"
    "  --name NAME     printable ASCII, at most 128 characters\n"
    "  --workers N     threads, each with its own SO_REUSEPORT listener (default 1)\n";

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MESH_ECHO_NAME_MAX || s[0] == ' ' || s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    }
    return true;
}

static bool parse_workers(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > MAX_WORKERS)
        return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    static struct mesh_echo_config cfg;
    struct mesh_echo_worker *workers[MAX_WORKERS] = {0};
    pthread_t threads[MAX_WORKERS];
    int started = 0;
    const char *listen_text = NULL, *name = NULL;
    int n_workers = 1;
    int rc = 1;
    char msg[512];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mesh-echo: %s: missing value (or unknown flag)\n%s", a, usage);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--listen") == 0) {
            listen_text = v;
        } else if (strcmp(a, "--name") == 0) {
            name = v;
        } else if (strcmp(a, "--workers") == 0) {
            if (!parse_workers(v, &n_workers)) {
                fprintf(stderr, "mesh-echo: --workers \"%s\": expected 1 to %d\n", v, MAX_WORKERS);
                return 2;
            }
        } else {
            fprintf(stderr, "mesh-echo: unknown flag %s\n%s", a, usage);
            return 2;
        }
    }
    if (listen_text == NULL || name == NULL) {
        fprintf(stderr, "mesh-echo: --listen and --name are required\n%s", usage);
        return 2;
    }
    if (!valid_name(name)) {
        fprintf(stderr,
                "mesh-echo: --name \"%s\": use 1 to %d printable ASCII characters, no leading "
                "or trailing space\n",
                name, MESH_ECHO_NAME_MAX);
        return 2;
    }
    memcpy(cfg.name, name, strlen(name) + 1);
    cfg.name_len = strlen(name);

    struct sockaddr_storage addr;
    socklen_t addr_len;
    if (mesh_sock_parse_addr(listen_text, MESH_SOCK_F_RESOLVE, &addr, &addr_len, msg,
                             sizeof(msg)) != MESH_OK) {
        fprintf(stderr, "mesh-echo: --listen: %s\n", msg);
        return 2;
    }

    /* Signals are taken by sigwait in this thread only: block them before threads start. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (int i = 0; i < n_workers; i++) {
        int fd;
        if (mesh_sock_listen((struct sockaddr *)&addr, addr_len, MESH_SOCK_F_REUSEPORT, &fd, msg,
                             sizeof(msg)) != MESH_OK) {
            fprintf(stderr, "mesh-echo: %s\n", msg);
            goto out;
        }
        if (i == 0) {
            /* Port 0: the other workers must join the port the first one got. */
            if (mesh_sock_local_addr(fd, &addr, &addr_len) != MESH_OK) {
                fprintf(stderr, "mesh-echo: getsockname: %s\n", strerror(errno));
                close(fd);
                goto out;
            }
        }
        if (mesh_echo_worker_create(&cfg, fd, &workers[i], msg, sizeof(msg)) != MESH_OK) {
            fprintf(stderr, "mesh-echo: %s\n", msg);
            goto out;
        }
    }
    for (; started < n_workers; started++) {
        int err = pthread_create(&threads[started], NULL, mesh_echo_worker_run, workers[started]);
        if (err != 0) {
            fprintf(stderr, "mesh-echo: pthread_create: %s\n", strerror(err));
            goto out;
        }
    }

    char at[MESH_SOCK_ADDR_STRLEN];
    mesh_sock_format_addr((struct sockaddr *)&addr, addr_len, at, sizeof(at));
    fprintf(stderr, "mesh-echo %s listening on %s\n", cfg.name, at);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    rc = 0;
out:
    for (int i = 0; i < started; i++)
        mesh_echo_worker_stop(workers[i]);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < n_workers; i++)
        mesh_echo_worker_free(workers[i]);
    return rc;
}
