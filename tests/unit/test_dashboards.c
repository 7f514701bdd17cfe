/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the mesh's Grafana dashboards (what `meshctl dashboards` writes and
 * mesh_configure_observability pushes) and of the Grafana client's URL handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "provider/dashboards.h"
#include "provider/grafana.h"

static void test_three_dashboards_with_stable_uids(void **state)
{
    (void)state;
    struct mesh_dashboard *list = NULL;
    size_t n = 0;
    assert_int_equal(mesh_dashboards_build(&list, &n), MESH_OK);
    assert_int_equal(n, 3);
    const char *uids[] = {"mesh-overview", "mesh-service", "mesh-proxy"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].uid, uids[i]);
        assert_string_equal(json_string_value(json_object_get(list[i].json, "uid")), uids[i]);
        assert_string_equal(json_string_value(json_object_get(list[i].json, "title")),
                            list[i].title);
        /* A new dashboard for Grafana: no database id of some other Grafana. */
        assert_true(json_is_null(json_object_get(list[i].json, "id")));
        char want_file[64];
        snprintf(want_file, sizeof(want_file), "%s.json", uids[i]);
        assert_string_equal(list[i].file, want_file);
    }
    mesh_dashboards_free(list, n);
}

/* Every panel queries the data source variable with at least one PromQL expression over mesh
 * metrics (or Prometheus' up), and ids are unique within a dashboard. */
static void test_every_panel_has_promql(void **state)
{
    (void)state;
    struct mesh_dashboard *list = NULL;
    size_t n = 0;
    assert_int_equal(mesh_dashboards_build(&list, &n), MESH_OK);
    for (size_t i = 0; i < n; i++) {
        json_t *panels = json_object_get(list[i].json, "panels");
        assert_true(json_array_size(panels) >= 6);
        for (size_t p = 0; p < json_array_size(panels); p++) {
            json_t *panel = json_array_get(panels, p);
            assert_int_equal(json_integer_value(json_object_get(panel, "id")), (json_int_t)p + 1);
            json_t *targets = json_object_get(panel, "targets");
            assert_true(json_array_size(targets) >= 1);
            for (size_t t = 0; t < json_array_size(targets); t++) {
                json_t *target = json_array_get(targets, t);
                const char *expr = json_string_value(json_object_get(target, "expr"));
                assert_non_null(expr);
                assert_true(strstr(expr, "mesh_") || strstr(expr, "up{"));
                json_t *ds = json_object_get(target, "datasource");
                assert_string_equal(json_string_value(json_object_get(ds, "uid")), "${datasource}");
            }
        }
    }
    mesh_dashboards_free(list, n);
}

/* The per-service and per-proxy dashboards have their variable; the overview none. */
static void test_variables(void **state)
{
    (void)state;
    struct mesh_dashboard *list = NULL;
    size_t n = 0;
    assert_int_equal(mesh_dashboards_build(&list, &n), MESH_OK);
    const char *want[] = {NULL, "service", "proxy"};
    for (size_t i = 0; i < n; i++) {
        json_t *vars = json_object_get(json_object_get(list[i].json, "templating"), "list");
        assert_string_equal(json_string_value(json_object_get(json_array_get(vars, 0), "name")),
                            "datasource");
        if (!want[i]) {
            assert_int_equal(json_array_size(vars), 1);
            continue;
        }
        assert_int_equal(json_array_size(vars), 2);
        json_t *v = json_array_get(vars, 1);
        assert_string_equal(json_string_value(json_object_get(v, "name")), want[i]);
        assert_non_null(
            strstr(json_string_value(json_object_get(v, "definition")), "label_values("));
    }
    mesh_dashboards_free(list, n);
}

static void redacts(const char *url, const char *want)
{
    char *got = mesh_grafana_redact(url);
    assert_string_equal(got, want);
    free(got);
}

static void test_redact_drops_only_the_userinfo(void **state)
{
    (void)state;
    redacts("http://admin:secret@127.0.0.1:3000", "http://127.0.0.1:3000");
    redacts("https://u:p@ss@grafana.example:443/sub/path", "https://grafana.example:443/sub/path");
    redacts("http://127.0.0.1:3000/grafana", "http://127.0.0.1:3000/grafana");
    redacts("http://127.0.0.1:3000/a@b", "http://127.0.0.1:3000/a@b");
    redacts("ftp://x@y", "ftp://x@y");
}

static void test_push_refuses_other_schemes_without_sending(void **state)
{
    (void)state;
    struct mesh_dashboard *list = NULL;
    size_t n = 0;
    char *url = NULL, *why = NULL;
    assert_int_equal(mesh_dashboards_build(&list, &n), MESH_OK);
    assert_int_equal(mesh_grafana_push("ftp://127.0.0.1/", NULL, list[0].json, &url, &why),
                     MESH_E_INVALID);
    assert_null(url);
    assert_non_null(strstr(why, "must be an http:// or https:// URL"));
    free(why);
    why = NULL;
    assert_int_equal(mesh_grafana_push("http://", NULL, list[0].json, &url, &why), MESH_E_INVALID);
    free(why);
    mesh_dashboards_free(list, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_dashboards_with_stable_uids),
        cmocka_unit_test(test_every_panel_has_promql),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_redact_drops_only_the_userinfo),
        cmocka_unit_test(test_push_refuses_other_schemes_without_sending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
