/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for mesh_kube_fields_kept: what `meshctl diff` keeps of a live object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube/fields.h"
#include "model/node.h"

static struct mesh_node *json(const char *text)
{
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    assert_int_equal(mesh_json_read(text, strlen(text), "test", &docs, &diags), MESH_OK);
    assert_int_equal(docs.len, 1);
    struct mesh_node *root = docs.items[0].root;
    docs.items[0].root = NULL;
    mesh_node_docs_free(&docs);
    mesh_diags_clear(&diags);
    return root;
}

/* Keeps live against shape and compares the result with want, all as JSON. */
static void kept_is(const char *live, const char *shape, const char *want)
{
    struct mesh_node *l = json(live), *s = json(shape), *w = json(want);
    struct mesh_node *k = mesh_kube_fields_kept(l, s);
    if (!mesh_node_equal(k, w)) {
        char *got = NULL;
        mesh_json_write(k, &got);
        fail_msg("kept:\n%s\nwanted:\n%s", got, want);
    }
    mesh_node_free(k);
    mesh_node_free(w);
    mesh_node_free(s);
    mesh_node_free(l);
}

static void test_fields_drops_what_the_server_adds(void **state)
{
    (void)state;
    kept_is(
        "{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": \"VirtualService\","
        " \"metadata\": {\"name\": \"web\", \"namespace\": \"default\", \"uid\": \"u\","
        "  \"resourceVersion\": \"1001\", \"generation\": 2, \"managedFields\": [{}],"
        "  \"labels\": {\"app.kubernetes.io/managed-by\": \"clusterdb-mesh\", \"team\": \"x\"}},"
        " \"spec\": {\"hosts\": [\"web\"], \"exportTo\": [\".\"]}, \"status\": {\"ok\": 1}}",
        "{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": \"VirtualService\","
        " \"metadata\": {\"name\": \"web\", \"namespace\": \"default\","
        "  \"labels\": {\"app.kubernetes.io/managed-by\": \"clusterdb-mesh\"}},"
        " \"spec\": {\"hosts\": [\"web\"]}}",
        "{\"apiVersion\": \"networking.istio.io/v1\", \"kind\": \"VirtualService\","
        " \"metadata\": {\"name\": \"web\", \"namespace\": \"default\","
        "  \"labels\": {\"app.kubernetes.io/managed-by\": \"clusterdb-mesh\"}},"
        " \"spec\": {\"hosts\": [\"web\"]}}");
}

static void test_fields_keeps_the_shapes_order_and_live_values(void **state)
{
    (void)state;
    /* The rendered object's key order, so that an unchanged object prints the same lines. */
    kept_is("{\"b\": 2, \"a\": 9, \"c\": 3}", "{\"a\": 1, \"b\": 2}", "{\"a\": 9, \"b\": 2}");
    /* A key the rendered object sets and the live one lacks is simply absent. */
    kept_is("{\"a\": 1}", "{\"a\": 1, \"b\": {\"c\": 1}}", "{\"a\": 1}");
}

static void test_fields_recurses_into_list_items(void **state)
{
    (void)state;
    /* Defaults added inside an item go; the item's own fields stay. */
    kept_is("{\"route\": [{\"weight\": 70, \"destination\": {\"host\": \"h\", \"port\": 80}},"
            " {\"weight\": 30, \"headers\": {}}]}",
            "{\"route\": [{\"destination\": {\"host\": \"h\"}, \"weight\": 80},"
            " {\"weight\": 20}]}",
            "{\"route\": [{\"destination\": {\"host\": \"h\"}, \"weight\": 70},"
            " {\"weight\": 30}]}");
    /* An item the live list has beyond the rendered one's is a difference: kept whole. */
    kept_is("{\"l\": [{\"a\": 1}, {\"a\": 2, \"b\": 3}]}", "{\"l\": [{\"a\": 1}]}",
            "{\"l\": [{\"a\": 1}, {\"a\": 2, \"b\": 3}]}");
    /* Fewer live items than rendered: what is there. */
    kept_is("{\"l\": [1]}", "{\"l\": [1, 2]}", "{\"l\": [1]}");
}

static void test_fields_keeps_a_value_of_another_type_whole(void **state)
{
    (void)state;
    kept_is("{\"a\": {\"x\": 1, \"y\": 2}}", "{\"a\": \"text\"}", "{\"a\": {\"x\": 1, \"y\": 2}}");
    kept_is("{\"a\": [1, 2]}", "{\"a\": {\"k\": 1}}", "{\"a\": [1, 2]}");
    kept_is("{\"a\": \"5\"}", "{\"a\": 5}", "{\"a\": \"5\"}");
}

static void test_fields_of_nothing_is_nothing(void **state)
{
    (void)state;
    struct mesh_node *s = json("{\"a\": 1}");
    assert_null(mesh_kube_fields_kept(NULL, s));
    mesh_node_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_drops_what_the_server_adds),
        cmocka_unit_test(test_fields_keeps_the_shapes_order_and_live_values),
        cmocka_unit_test(test_fields_recurses_into_list_items),
        cmocka_unit_test(test_fields_keeps_a_value_of_another_type_whole),
        cmocka_unit_test(test_fields_of_nothing_is_nothing),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
