/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the proxy's process figures for /metrics and /stats: read from the kernel,
 * rendered with HELP and TYPE whether known or not, and added to the /stats object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/procstat.h"

static void test_read_knows_this_process(void **state)
{
    (void)state;
    struct mesh_procstat ps;
    mesh_procstat_read(&ps);
    assert_true(ps.has_rss && ps.has_cpu && ps.has_fds);
    assert_true(ps.rss_bytes > 100 * 1024);
    assert_true(ps.open_fds >= 3); /* stdin, stdout, stderr */
    /* A new descriptor shows at the next read. */
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    struct mesh_procstat after;
    mesh_procstat_read(&after);
    assert_int_equal(after.open_fds, ps.open_fds + 1);
    fclose(f);
}

static void test_prometheus_text(void **state)
{
    (void)state;
    struct mesh_procstat ps = {.has_rss = true,
                               .has_cpu = true,
                               .has_fds = true,
                               .rss_bytes = 4096000,
                               .cpu_us = 2500001,
                               .open_fds = 12};
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    assert_int_equal(mesh_procstat_render_prometheus(&ps, &sb), MESH_OK);
    assert_non_null(strstr(sb.data, "# TYPE mesh_process_resident_memory_bytes gauge\n"
                                    "mesh_process_resident_memory_bytes 4096000\n"));
    assert_non_null(strstr(sb.data, "# TYPE mesh_process_cpu_seconds_total counter\n"
                                    "mesh_process_cpu_seconds_total 2.500001\n"));
    assert_non_null(
        strstr(sb.data, "# TYPE mesh_process_open_fds gauge\nmesh_process_open_fds 12\n"));
    mesh_strbuf_free(&sb);

    /* Unknown figures: the families are still declared, without a sample. */
    struct mesh_procstat none = {0};
    mesh_strbuf_init(&sb, 0);
    assert_int_equal(mesh_procstat_render_prometheus(&none, &sb), MESH_OK);
    assert_non_null(strstr(sb.data, "# HELP mesh_process_open_fds"));
    assert_null(strstr(sb.data, "\nmesh_process"));
    mesh_strbuf_free(&sb);
}

static void append(const char *obj, const struct mesh_procstat *ps, enum mesh_err want_err,
                   const char *want)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    assert_int_equal(mesh_strbuf_puts(&sb, obj), MESH_OK);
    assert_int_equal(mesh_procstat_append_json(ps, &sb), want_err);
    if (want)
        assert_string_equal(sb.data, want);
    mesh_strbuf_free(&sb);
}

static void test_json_members(void **state)
{
    (void)state;
    struct mesh_procstat ps = {.has_rss = true, .has_fds = true, .rss_bytes = 10, .open_fds = 3};
    append("{\"a\":1}\n", &ps, MESH_OK,
           "{\"a\":1,\"process_resident_memory_bytes\":10,\"process_cpu_seconds\":null,"
           "\"process_open_fds\":3}\n");
    append("{}", &ps, MESH_OK,
           "{\"process_resident_memory_bytes\":10,\"process_cpu_seconds\":null,"
           "\"process_open_fds\":3}\n");
    append("[1]", &ps, MESH_E_INVALID, "[1]");
    append("", &ps, MESH_E_INVALID, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_knows_this_process),
        cmocka_unit_test(test_prometheus_text),
        cmocka_unit_test(test_json_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
