/* SPDX-License-Identifier: Apache-2.0 */
/* Service hosts read as name and namespace (model/service_host.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model/service_host.h"

static void expect_ref(const char *host, const char *default_ns, const char *name, const char *ns)
{
    struct mesh_service_ref ref;
    if (!mesh_service_host_split(host, default_ns, &ref))
        fail_msg("\"%s\" was not read as a Service", host);
    assert_int_equal(ref.name_len, strlen(name));
    assert_memory_equal(ref.name, name, ref.name_len);
    assert_int_equal(ref.ns_len, strlen(ns));
    assert_memory_equal(ref.ns, ns, ref.ns_len);
    assert_true(mesh_service_ref_is(&ref, name, ns));
}

static void test_every_spelling_names_the_service(void **state)
{
    (void)state;
    expect_ref("payment", "default", "payment", "default");
    expect_ref("payment.shop", "default", "payment", "shop");
    expect_ref("payment.shop.svc", "default", "payment", "shop");
    expect_ref("payment.shop.svc.cluster.local", NULL, "payment", "shop");
}

static void test_other_forms_name_nothing(void **state)
{
    (void)state;
    struct mesh_service_ref ref;
    const char *bad[] = {"",
                         ".shop",
                         "payment.",
                         "payment..svc",
                         "api.example.com",
                         "payment.shop.svc.other",
                         "payment.shop.cluster.local"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (mesh_service_host_split(bad[i], "default", &ref))
            fail_msg("\"%s\" was read as a Service", bad[i]);
    assert_false(mesh_service_host_split(NULL, "default", &ref));
    /* A bare name needs the namespace it is said in (identities carry theirs). */
    assert_false(mesh_service_host_split("payment", NULL, &ref));
    assert_false(mesh_service_host_split("payment", "", &ref));
}

static void test_ref_is_compares_whole_names(void **state)
{
    (void)state;
    struct mesh_service_ref ref;
    assert_true(mesh_service_host_split("pay.shop.svc", NULL, &ref));
    assert_true(mesh_service_ref_is(&ref, "pay", "shop"));
    assert_false(mesh_service_ref_is(&ref, "payment", "shop"));
    assert_false(mesh_service_ref_is(&ref, "pa", "shop"));
    assert_false(mesh_service_ref_is(&ref, "pay", "shops"));
    assert_false(mesh_service_ref_is(&ref, "pay", "sho"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_spelling_names_the_service),
        cmocka_unit_test(test_other_forms_name_nothing),
        cmocka_unit_test(test_ref_is_compares_whole_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
