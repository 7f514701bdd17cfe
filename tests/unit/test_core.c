/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/core: the bounded buffer and the error names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strbuf.h"
#include "mesh/err.h"

static void test_strbuf_appends_and_takes(void **state)
{
    (void)state;
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    assert_int_equal(mesh_strbuf_puts(&sb, "weights "), MESH_OK);
    assert_int_equal(mesh_strbuf_printf(&sb, "sum to %d", 95), MESH_OK);
    assert_int_equal(sb.len, strlen("weights sum to 95"));
    char *s = mesh_strbuf_take(&sb);
    assert_string_equal(s, "weights sum to 95");
    assert_null(sb.data);
    assert_int_equal(sb.len, 0);
    free(s);
}

static void test_strbuf_refuses_growth_past_its_limit(void **state)
{
    (void)state;
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 8);
    assert_int_equal(mesh_strbuf_puts(&sb, "12345678"), MESH_OK);
    assert_int_equal(mesh_strbuf_puts(&sb, "9"), MESH_E_NOMEM);
    assert_int_equal(mesh_strbuf_printf(&sb, "%d", 1), MESH_E_NOMEM);
    assert_string_equal(sb.data, "12345678"); /* what was there is kept */
    mesh_strbuf_free(&sb);
}

static void test_strbuf_take_of_empty_is_empty_string(void **state)
{
    (void)state;
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    char *s = mesh_strbuf_take(&sb);
    assert_string_equal(s, "");
    free(s);
}

static void test_err_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(mesh_strerror(MESH_E_NOTFOUND), "Service not found");
    assert_string_equal(mesh_strerror(MESH_E_TLS), "TLS handshake failed");
    assert_string_equal(mesh_err_name(MESH_E_CONFLICT), "MESH_E_CONFLICT");
    assert_string_equal(mesh_err_name((enum mesh_err)999), "MESH_E_UNKNOWN");
    for (int e = MESH_OK; e <= MESH_E_INTERNAL; e++)
        assert_string_not_equal(mesh_strerror((enum mesh_err)e), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_appends_and_takes),
        cmocka_unit_test(test_strbuf_refuses_growth_past_its_limit),
        cmocka_unit_test(test_strbuf_take_of_empty_is_empty_string),
        cmocka_unit_test(test_err_names_and_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
