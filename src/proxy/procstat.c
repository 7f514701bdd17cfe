/* SPDX-License-Identifier: Apache-2.0 */
/* The proxy process's resident memory, CPU time and open descriptors, for /metrics and /stats. */
#include "procstat.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The second field of /proc/self/statm is the resident set in pages. Read with open/read into a
 * stack buffer: stdio would allocate, and the proxy never aborts (nor fails) for memory here. */
static bool read_rss(uint64_t *out)
{
    char buf[256];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    unsigned long long size_pages = 0, rss_pages = 0;
    long page = sysconf(_SC_PAGESIZE);
    if (sscanf(buf, "%llu %llu", &size_pages, &rss_pages) != 2 || page <= 0)
        return false;
    *out = (uint64_t)rss_pages * (uint64_t)page;
    return true;
}

static bool read_cpu(uint64_t *out)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return false;
    *out = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
    return true;
}

static bool read_fds(uint64_t *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return false;
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    /* The directory's own descriptor was open while it was counted. */
    *out = n > 0 ? n - 1 : 0;
    return true;
}

void mesh_procstat_read(struct mesh_procstat *ps)
{
    memset(ps, 0, sizeof(*ps));
    ps->has_rss = read_rss(&ps->rss_bytes);
    ps->has_cpu = read_cpu(&ps->cpu_us);
    ps->has_fds = read_fds(&ps->open_fds);
}

enum mesh_err mesh_procstat_render_prometheus(const struct mesh_procstat *ps,
                                              struct mesh_strbuf *out)
{
    enum mesh_err err = mesh_strbuf_puts(
        out, "# HELP mesh_process_resident_memory_bytes Resident memory of the proxy process.\n"
             "# TYPE mesh_process_resident_memory_bytes gauge\n");
    if (err == MESH_OK && ps->has_rss)
        err = mesh_strbuf_printf(out, "mesh_process_resident_memory_bytes %" PRIu64 "\n",
                                 ps->rss_bytes);
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, "# HELP mesh_process_cpu_seconds_total User and system CPU "
                                    "time the proxy process used.\n"
                                    "# TYPE mesh_process_cpu_seconds_total counter\n");
    if (err == MESH_OK && ps->has_cpu)
        err = mesh_strbuf_printf(out, "mesh_process_cpu_seconds_total %" PRIu64 ".%06" PRIu64 "\n",
                                 ps->cpu_us / 1000000u, ps->cpu_us % 1000000u);
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, "# HELP mesh_process_open_fds File descriptors the proxy "
                                    "process has open.\n"
                                    "# TYPE mesh_process_open_fds gauge\n");
    if (err == MESH_OK && ps->has_fds)
        err = mesh_strbuf_printf(out, "mesh_process_open_fds %" PRIu64 "\n", ps->open_fds);
    return err;
}

enum mesh_err mesh_procstat_append_json(const struct mesh_procstat *ps, struct mesh_strbuf *obj)
{
    size_t end = obj->len;
    while (end > 0 && (obj->data[end - 1] == '\n' || obj->data[end - 1] == ' '))
        end--;
    if (end == 0 || obj->data[end - 1] != '}')
        return MESH_E_INVALID;
    /* An empty object takes no leading comma. */
    size_t before = end - 1;
    while (before > 0 && (obj->data[before - 1] == ' ' || obj->data[before - 1] == '\n'))
        before--;
    bool empty = before > 0 && obj->data[before - 1] == '{';
    obj->len = end - 1;
    obj->data[obj->len] = '\0';
    char rss[32] = "null", cpu[48] = "null", fds[32] = "null";
    if (ps->has_rss)
        snprintf(rss, sizeof(rss), "%" PRIu64, ps->rss_bytes);
    if (ps->has_cpu)
        snprintf(cpu, sizeof(cpu), "%" PRIu64 ".%06" PRIu64, ps->cpu_us / 1000000u,
                 ps->cpu_us % 1000000u);
    if (ps->has_fds)
        snprintf(fds, sizeof(fds), "%" PRIu64, ps->open_fds);
    return mesh_strbuf_printf(obj,
                              "%s\"process_resident_memory_bytes\":%s,\"process_cpu_seconds\":%s,"
                              "\"process_open_fds\":%s}\n",
                              empty ? "" : ",", rss, cpu, fds);
}
