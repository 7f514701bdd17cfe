/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the relay framer: how much of a buffer is body, for each framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/framer.h"

static void test_length_body_stops_at_its_end(void **state)
{
    (void)state;
    struct mesh_framer f;
    mesh_framer_init(&f, MESH_FRAME_LENGTH, 5);
    const char buf[] = "helloGET / HTTP/1.1\r\n";
    assert_true(mesh_framer_scan(&f, buf, 3));
    assert_int_equal(f.ready, 3);
    assert_false(f.complete);
    assert_true(mesh_framer_scan(&f, buf, sizeof(buf) - 1));
    assert_int_equal(f.ready, 5); /* the next request is not body */
    assert_true(f.complete);
    assert_false(mesh_framer_done(&f));
    mesh_framer_sent(&f, 5);
    assert_true(mesh_framer_done(&f));
}

static void test_length_body_sent_in_pieces(void **state)
{
    (void)state;
    struct mesh_framer f;
    mesh_framer_init(&f, MESH_FRAME_LENGTH, 6);
    assert_true(mesh_framer_scan(&f, "abcd", 4));
    mesh_framer_sent(&f, 4); /* consumed from the buffer front */
    assert_true(mesh_framer_scan(&f, "efXY", 4));
    assert_int_equal(f.ready, 2);
    mesh_framer_sent(&f, 2);
    assert_true(mesh_framer_done(&f));
}

static void test_chunked_body_ends_after_the_last_chunk(void **state)
{
    (void)state;
    struct mesh_framer f;
    mesh_framer_init(&f, MESH_FRAME_CHUNKED, 0);
    const char body[] = "5\r\nhello\r\n0\r\n\r\n";
    const char buf[] = "5\r\nhello\r\n0\r\n\r\nNEXT";
    for (size_t i = 1; i <= strlen(buf); i++) /* growing input, as reads arrive */
        assert_true(mesh_framer_scan(&f, buf, i));
    assert_int_equal(f.ready, strlen(body));
    assert_true(f.complete);
}

static void test_bad_chunk_size_fails(void **state)
{
    (void)state;
    struct mesh_framer f;
    mesh_framer_init(&f, MESH_FRAME_CHUNKED, 0);
    assert_false(mesh_framer_scan(&f, "zz\r\nhello\r\n", 11));
    assert_true(f.failed);
}

static void test_until_close_and_raw(void **state)
{
    (void)state;
    struct mesh_framer f;
    mesh_framer_init(&f, MESH_FRAME_UNTIL_CLOSE, 0);
    assert_true(mesh_framer_scan(&f, "abc", 3));
    assert_int_equal(f.ready, 3);
    mesh_framer_sent(&f, 3);
    assert_false(mesh_framer_done(&f));
    mesh_framer_eof(&f);
    assert_true(mesh_framer_done(&f));
    mesh_framer_init(&f, MESH_FRAME_RAW, 0);
    assert_true(mesh_framer_scan(&f, "xy", 2));
    assert_int_equal(f.ready, 2);
    mesh_framer_eof(&f);
    assert_true(f.failed); /* a tunnel has no end of body: EOF ends the tunnel itself */
}

static void test_length_eof_early_is_a_failure(void **state)
{
    (void)state;
    struct mesh_framer f;
    mesh_framer_init(&f, MESH_FRAME_LENGTH, 10);
    assert_true(mesh_framer_scan(&f, "abc", 3));
    mesh_framer_eof(&f);
    assert_true(f.failed);
    mesh_framer_init(&f, MESH_FRAME_NONE, 0);
    assert_true(mesh_framer_done(&f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_length_body_stops_at_its_end),
        cmocka_unit_test(test_length_body_sent_in_pieces),
        cmocka_unit_test(test_chunked_body_ends_after_the_last_chunk),
        cmocka_unit_test(test_bad_chunk_size_fails),
        cmocka_unit_test(test_until_close_and_raw),
        cmocka_unit_test(test_length_eof_early_is_a_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
