/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of meshd's root rotation (src/control/ca_rotation.c) over a real DATA_DIR/ca in a
 * temporary directory and a real registry: a wave ends only when every live proxy has its
 * certificate, the grace has passed and meshd has been up long enough; lapsed proxies are not
 * waited for; the bundle and the issuing root of each wave; the end moving the old root aside;
 * a restart resuming the wave under a new generation; an interrupted end finished at start;
 * refusals of a damaged record; and the config version that follows the CA generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/ca.h"
#include "control/ca_rotation.h"
#include "control/compile.h"
#include "control/registry.h"

#define TD    "example.org"
#define NOW   1800000000 /* unix seconds: what the tests call now */
#define WALL  (NOW * 1000ULL)
#define GRACE 400

struct fixture {
    char dir[64]; /* DATA_DIR: a fresh temporary directory, removed after the test */
    char ca_dir[96];
    struct mesh_ca_set set;
    struct mesh_ca_rotation *rot;
    struct mesh_registry *reg;
};

static void remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char child[512];
                snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
                remove_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/mesh-test-rot-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->ca_dir, sizeof(fx->ca_dir), "%s/ca", fx->dir);
    fx->reg = mesh_registry_new(1000);
    *state = fx;
    return 0;
}

static void close_rotation(struct fixture *fx)
{
    mesh_ca_rotation_free(fx->rot);
    fx->rot = NULL;
    mesh_ca_set_clear(&fx->set);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    close_rotation(fx);
    mesh_registry_free(fx->reg);
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* Opens DATA_DIR/ca as meshd's start does; asserts it works. */
static void open_ok(struct fixture *fx)
{
    bool created = false;
    char *err = NULL;
    enum mesh_err rc =
        mesh_ca_rotation_open(fx->ca_dir, TD, NOW, WALL, &fx->set, &fx->rot, &created, &err);
    if (rc != MESH_OK)
        fail_msg("open: %s", err ? err : "?");
    assert_null(err);
}

/* Opens DATA_DIR/ca and expects a refusal; returns its message (caller frees). */
static char *open_refused(struct fixture *fx, enum mesh_err want)
{
    bool created = false;
    char *err = NULL;
    assert_int_equal(
        mesh_ca_rotation_open(fx->ca_dir, TD, NOW, WALL, &fx->set, &fx->rot, &created, &err), want);
    assert_null(fx->rot);
    assert_non_null(err);
    mesh_ca_set_clear(&fx->set);
    return err;
}

static void add_proxy(struct fixture *fx, const char *id, uint64_t now_ms)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", 20000u + (unsigned)strlen(id));
    struct mesh_proxy_registration r = {
        .id = id, .role = MESH_PROXY_SIDECAR, .service = id, .address = addr};
    bool created = false;
    char *why = NULL;
    assert_int_equal(mesh_registry_register(fx->reg, &r, now_ms, WALL, &created, &why), MESH_OK);
}

/* One tick at mono_ms with the grace and no hold; returns whether the configs must move. */
static bool tick(struct fixture *fx, uint64_t mono_ms)
{
    struct mesh_ca_rotation_timing t = {.grace_ms = GRACE, .hold_until_ms = 0};
    bool changed = false;
    char *err = NULL;
    enum mesh_err rc =
        mesh_ca_rotation_tick(fx->rot, fx->reg, &t, mono_ms, WALL + mono_ms, &changed, &err);
    if (rc != MESH_OK)
        fail_msg("tick: %s", err ? err : "?");
    return changed;
}

static void start_ok(struct fixture *fx, uint64_t mono_ms)
{
    char *err = NULL;
    enum mesh_err rc = mesh_ca_rotation_start(fx->rot, mono_ms, WALL + mono_ms, &err);
    if (rc != MESH_OK)
        fail_msg("start: %s", err ? err : "?");
}

static char *read_file(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 8192);
    size_t n = fread(buf, 1, 8191, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool file_exists(const char *dir, const char *name)
{
    char path[256];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

static unsigned file_mode(const char *dir, const char *name)
{
    char path[256];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(stat(path, &sb), 0);
    return (unsigned)(sb.st_mode & 0777);
}

static size_t n_trusted(const struct mesh_ca_set *set)
{
    size_t n = 0;
    free(mesh_ca_set_trusted(set, &n));
    return n;
}

/* How many certificates a PEM bundle holds. */
static size_t pem_count(const char *pem)
{
    size_t n = 0;
    for (const char *p = pem; (p = strstr(p, "-----BEGIN CERTIFICATE-----")); p++)
        n++;
    return n;
}

/* Ends the current wave: every live proxy gets its certificate, then a tick after the grace. */
static uint64_t end_wave(struct fixture *fx, uint64_t mono_ms)
{
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(fx->reg, &n);
    for (size_t i = 0; i < n; i++)
        mesh_ca_rotation_issued(fx->rot, list[i]->id, mono_ms);
    tick(fx, mono_ms + GRACE);
    return mono_ms + GRACE;
}

/* --- tests --- */

static void test_first_start_is_idle_with_one_root(void **state)
{
    struct fixture *fx = *state;
    open_ok(fx);
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_IDLE);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 0);
    assert_int_equal(fx->set.len, 1);
    assert_null(fx->set.next);
    assert_ptr_equal(mesh_ca_set_issuer(&fx->set), fx->set.items[0]);
    add_proxy(fx, "p1", 0);
    assert_false(mesh_ca_rotation_lags(fx->rot, "p1"));
    assert_false(tick(fx, 100000));
    assert_false(file_exists(fx->ca_dir, MESH_CA_ROTATION_FILE)); /* nothing to record */
}

static void test_a_wave_waits_for_every_live_proxy_and_the_grace(void **state)
{
    struct fixture *fx = *state;
    open_ok(fx);
    char old_fp[MESH_CA_FINGERPRINT_LEN + 1];
    snprintf(old_fp, sizeof(old_fp), "%s", mesh_ca_fingerprint(fx->set.items[0]));
    add_proxy(fx, "p1", 0);
    add_proxy(fx, "p2", 0);
    start_ok(fx, 1000);

    /* prepare: both roots trusted, the old one signs, a new generation. */
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_PREPARE);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 1);
    assert_non_null(fx->set.next);
    assert_string_equal(mesh_ca_name(fx->set.next), MESH_CA_NEXT_ROOT_NAME);
    assert_string_equal(mesh_ca_subject(fx->set.next),
                        "CN=ClusterDB Mesh root CA 2 (" TD "),O=ClusterDB Mesh");
    assert_ptr_equal(mesh_ca_set_issuer(&fx->set), fx->set.items[0]);
    assert_int_equal(n_trusted(&fx->set), 2);
    assert_int_equal(pem_count(fx->set.bundle_pem), 2);
    assert_int_equal(file_mode(fx->ca_dir, MESH_CA_NEXT_KEY_FILE), 0600);
    char *rec = read_file(fx->ca_dir, MESH_CA_ROTATION_FILE);
    assert_non_null(rec);
    assert_non_null(strstr(rec, "\"phase\": \"prepare\""));
    free(rec);

    /* Both lag; one served is not enough. */
    assert_true(mesh_ca_rotation_lags(fx->rot, "p1"));
    assert_false(tick(fx, 60000));
    mesh_ca_rotation_issued(fx->rot, "p1", 61000);
    assert_false(mesh_ca_rotation_lags(fx->rot, "p1"));
    assert_true(mesh_ca_rotation_lags(fx->rot, "p2"));
    assert_false(tick(fx, 70000));
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_PREPARE);

    /* The last one served: not before the grace after its certificate... */
    mesh_ca_rotation_issued(fx->rot, "p2", 80000);
    assert_false(tick(fx, 80000 + GRACE - 1));
    /* ... nor before the hold after meshd's start ... */
    struct mesh_ca_rotation_timing held = {.grace_ms = GRACE, .hold_until_ms = 90000};
    bool changed = true;
    char *err = NULL;
    assert_int_equal(mesh_ca_rotation_tick(fx->rot, fx->reg, &held, 85000, WALL, &changed, &err),
                     MESH_OK);
    assert_false(changed);
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_PREPARE);
    /* ... then switch: the new root signs, both still trusted, everyone lags again. */
    assert_true(tick(fx, 90000));
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_SWITCH);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 2);
    assert_ptr_equal(mesh_ca_set_issuer(&fx->set), fx->set.next);
    assert_int_equal(n_trusted(&fx->set), 2);
    assert_true(mesh_ca_rotation_lags(fx->rot, "p1"));
    assert_true(mesh_ca_rotation_lags(fx->rot, "p2"));
    /* A certificate of an earlier wave does not count; the status names who lags. */
    mesh_ca_rotation_issued(fx->rot, "p1", 91000);
    json_t *st = mesh_ca_rotation_json(fx->rot, fx->reg);
    json_t *waiting = json_object_get(st, "waiting_for");
    assert_int_equal(json_array_size(waiting), 1);
    assert_string_equal(json_string_value(json_array_get(waiting, 0)), "p2");
    assert_string_equal(json_string_value(json_object_get(st, "phase")), "switch");
    assert_string_equal(json_string_value(json_object_get(st, "issuing_root")),
                        MESH_CA_NEXT_ROOT_NAME);
    assert_int_equal(json_array_size(json_object_get(st, "phases")), 2);
    json_decref(st);
    assert_false(tick(fx, 100000));

    /* retire: the new root is the root, alone in the bundle. */
    uint64_t t = end_wave(fx, 100000);
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_RETIRE);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 3);
    assert_null(fx->set.next);
    assert_string_equal(mesh_ca_name(fx->set.items[0]), MESH_CA_ROOT_NAME);
    assert_string_not_equal(mesh_ca_fingerprint(fx->set.items[0]), old_fp);
    assert_int_equal(n_trusted(&fx->set), 1);
    assert_int_equal(pem_count(fx->set.bundle_pem), 1);
    char new_fp[MESH_CA_FINGERPRINT_LEN + 1];
    snprintf(new_fp, sizeof(new_fp), "%s", mesh_ca_fingerprint(fx->set.items[0]));

    /* The end: no new generation (nothing changes for the proxies); the files move. */
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(fx->reg, &n);
    for (size_t i = 0; i < n; i++)
        mesh_ca_rotation_issued(fx->rot, list[i]->id, t);
    assert_false(tick(fx, t + GRACE));
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_IDLE);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 3);
    assert_false(mesh_ca_rotation_lags(fx->rot, "p1"));
    assert_false(file_exists(fx->ca_dir, MESH_CA_NEXT_CERT_FILE));
    assert_false(file_exists(fx->ca_dir, MESH_CA_NEXT_KEY_FILE));
    assert_true(file_exists(fx->ca_dir, "retired/rotation-1-root-cert.pem"));
    assert_int_equal(file_mode(fx->ca_dir, "retired/rotation-1-root-key.pem"), 0600);
    assert_int_equal(file_mode(fx->ca_dir, MESH_CA_ROOT_KEY_FILE), 0600);

    /* The next start loads the new root as the root, idle. */
    close_rotation(fx);
    open_ok(fx);
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_IDLE);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 3);
    assert_string_equal(mesh_ca_fingerprint(fx->set.items[0]), new_fp);
    assert_int_equal(n_trusted(&fx->set), 1);

    /* A second rotation makes root 3. */
    start_ok(fx, 0);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 4);
    assert_string_equal(mesh_ca_subject(fx->set.next),
                        "CN=ClusterDB Mesh root CA 3 (" TD "),O=ClusterDB Mesh");
}

static void test_one_rotation_at_a_time(void **state)
{
    struct fixture *fx = *state;
    open_ok(fx);
    start_ok(fx, 0);
    char *err = NULL;
    assert_int_equal(mesh_ca_rotation_start(fx->rot, 0, WALL, &err), MESH_E_CONFLICT);
    assert_non_null(strstr(err, "a root rotation is running already (rotation 1, phase prepare)"));
    free(err);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 1);
}

static void test_lapsed_proxies_are_not_waited_for(void **state)
{
    struct fixture *fx = *state;
    open_ok(fx);
    add_proxy(fx, "alive", 0);
    add_proxy(fx, "gone", 0);
    start_ok(fx, 0);
    mesh_ca_rotation_issued(fx->rot, "alive", 10);
    assert_false(tick(fx, 1000)); /* "gone" lags */
    mesh_registry_heartbeat(fx->reg, "alive", 1500, WALL);
    assert_int_equal(mesh_registry_expire(fx->reg, 2000), 1); /* "gone" lapsed */
    assert_true(tick(fx, 2000));
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_SWITCH);
    /* A proxy that registers in the middle of a wave is waited for. */
    add_proxy(fx, "late", 2100);
    mesh_ca_rotation_issued(fx->rot, "alive", 2200);
    assert_false(tick(fx, 5000));
    mesh_ca_rotation_issued(fx->rot, "late", 5000);
    assert_true(tick(fx, 5000 + GRACE));
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_RETIRE);
}

static void test_restart_resumes_the_wave_under_a_new_generation(void **state)
{
    struct fixture *fx = *state;
    open_ok(fx);
    char old_fp[MESH_CA_FINGERPRINT_LEN + 1], next_fp[MESH_CA_FINGERPRINT_LEN + 1];
    snprintf(old_fp, sizeof(old_fp), "%s", mesh_ca_fingerprint(fx->set.items[0]));
    start_ok(fx, 0);
    snprintf(next_fp, sizeof(next_fp), "%s", mesh_ca_fingerprint(fx->set.next));
    assert_true(tick(fx, GRACE)); /* no proxy: switch */
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 2);

    close_rotation(fx);
    open_ok(fx);
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_SWITCH);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 3); /* every proxy renews again */
    assert_string_equal(mesh_ca_fingerprint(fx->set.items[0]), old_fp);
    assert_string_equal(mesh_ca_fingerprint(fx->set.next), next_fp);
    assert_ptr_equal(mesh_ca_set_issuer(&fx->set), fx->set.next);
    assert_int_equal(n_trusted(&fx->set), 2);
    /* Who got which bundle died with the previous meshd: everyone lags. */
    add_proxy(fx, "p1", 0);
    assert_true(mesh_ca_rotation_lags(fx->rot, "p1"));

    assert_true(end_wave(fx, 1000));
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_RETIRE);
    close_rotation(fx);
    open_ok(fx); /* in retire: the new root is the only one */
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_RETIRE);
    assert_int_equal(mesh_ca_rotation_generation(fx->rot), 5);
    assert_int_equal(n_trusted(&fx->set), 1);
    assert_string_equal(mesh_ca_fingerprint(fx->set.items[0]), next_fp);
    assert_string_equal(mesh_ca_name(fx->set.items[0]), MESH_CA_ROOT_NAME);
}

/* meshd stopped while it moved the roots at the end: the next start finishes the job. */
static void test_an_interrupted_end_is_finished_at_start(void **state)
{
    struct fixture *fx = *state;
    open_ok(fx);
    start_ok(fx, 0);
    char next_fp[MESH_CA_FINGERPRINT_LEN + 1];
    snprintf(next_fp, sizeof(next_fp), "%s", mesh_ca_fingerprint(fx->set.next));
    tick(fx, GRACE);
    tick(fx, 2 * GRACE);
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_RETIRE);
    close_rotation(fx);

    /* The old key is in retired/ already, its certificate not yet. */
    char from[256], to[256], retired[160];
    snprintf(retired, sizeof(retired), "%s/%s", fx->ca_dir, MESH_CA_RETIRED_DIR);
    assert_int_equal(mkdir(retired, 0700), 0);
    snprintf(from, sizeof(from), "%s/%s", fx->ca_dir, MESH_CA_ROOT_KEY_FILE);
    snprintf(to, sizeof(to), "%s/rotation-1-%s", retired, MESH_CA_ROOT_KEY_FILE);
    assert_int_equal(rename(from, to), 0);

    open_ok(fx);
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_IDLE);
    assert_string_equal(mesh_ca_fingerprint(fx->set.items[0]), next_fp);
    assert_int_equal(n_trusted(&fx->set), 1);
    assert_false(file_exists(fx->ca_dir, MESH_CA_NEXT_KEY_FILE));
    assert_true(file_exists(fx->ca_dir, "retired/rotation-1-root-cert.pem"));
    char *rec = read_file(fx->ca_dir, MESH_CA_ROTATION_FILE);
    assert_non_null(strstr(rec, "\"phase\": \"idle\""));
    free(rec);
}

static void test_stray_incoming_root_is_removed(void **state)
{
    struct fixture *fx = *state;
    open_ok(fx);
    start_ok(fx, 0);
    close_rotation(fx);
    /* As if the start had crashed before its record: idle, with an incoming root on disk. */
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", fx->ca_dir, MESH_CA_ROTATION_FILE);
    assert_int_equal(unlink(path), 0);
    open_ok(fx);
    assert_int_equal(mesh_ca_rotation_phase(fx->rot), MESH_CA_PHASE_IDLE);
    assert_null(fx->set.next);
    assert_false(file_exists(fx->ca_dir, MESH_CA_NEXT_CERT_FILE));
    assert_false(file_exists(fx->ca_dir, MESH_CA_NEXT_KEY_FILE));
}

static void test_damaged_records_are_refused(void **state)
{
    struct fixture *fx = *state;
    open_ok(fx);
    start_ok(fx, 0);
    close_rotation(fx);

    /* The incoming root of a running rotation is gone. */
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", fx->ca_dir, MESH_CA_NEXT_CERT_FILE);
    char *saved = read_file(fx->ca_dir, MESH_CA_NEXT_CERT_FILE);
    assert_int_equal(unlink(path), 0);
    char *err = open_refused(fx, MESH_E_INVALID);
    assert_non_null(strstr(err, "needs its incoming root"));
    assert_non_null(strstr(err, MESH_CA_NEXT_CERT_FILE));
    free(err);
    FILE *f = fopen(path, "w");
    fputs(saved, f);
    fclose(f);
    free(saved);

    /* The root itself is gone mid-rotation: never a fresh one. */
    char root[160], moved[170];
    snprintf(root, sizeof(root), "%s/%s", fx->ca_dir, MESH_CA_ROOT_CERT_FILE);
    snprintf(moved, sizeof(moved), "%s.away", root);
    assert_int_equal(rename(root, moved), 0);
    err = open_refused(fx, MESH_E_INVALID);
    assert_non_null(strstr(err, "a root rotation is in progress"));
    free(err);
    assert_false(file_exists(fx->ca_dir, MESH_CA_ROOT_CERT_FILE));
    assert_int_equal(rename(moved, root), 0);

    /* The record does not read. */
    snprintf(path, sizeof(path), "%s/%s", fx->ca_dir, MESH_CA_ROTATION_FILE);
    f = fopen(path, "w");
    fputs("{\"phase\": \"sideways\"}", f);
    fclose(f);
    err = open_refused(fx, MESH_E_INVALID);
    assert_non_null(strstr(err, MESH_CA_ROTATION_FILE));
    assert_non_null(strstr(err, "does not read as meshd's root rotation record"));
    free(err);
}

static void test_config_version_follows_the_ca_generation(void **state)
{
    (void)state;
    struct mesh_proxy_config cfg = {0};
    struct mesh_proxy_entry proxy = {.id = "p1", .role = MESH_PROXY_SIDECAR};
    assert_int_equal(mesh_compile_proxy_config(NULL, 0, NULL, &proxy, &cfg), MESH_OK);
    char v0[MESH_CONFIG_VERSION_LEN + 1], v1[MESH_CONFIG_VERSION_LEN + 1];
    snprintf(v0, sizeof(v0), "%s", cfg.version);
    mesh_proxy_config_set_ca_generation(&cfg, 0); /* never rotated: the version it had */
    assert_string_equal(cfg.version, v0);
    mesh_proxy_config_set_ca_generation(&cfg, 1);
    snprintf(v1, sizeof(v1), "%s", cfg.version);
    assert_string_not_equal(v1, v0);
    mesh_proxy_config_set_ca_generation(&cfg, 2);
    assert_string_not_equal(cfg.version, v1);
    mesh_proxy_config_set_ca_generation(&cfg, 1); /* the same content, the same version */
    assert_string_equal(cfg.version, v1);
    char *body = mesh_proxy_config_body(&cfg, "p1");
    json_t *root = json_loads(body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(root, "ca_generation")), 1);
    assert_string_equal(json_string_value(json_object_get(root, "version")), v1);
    json_decref(root);
    free(body);
    mesh_proxy_config_clear(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start_is_idle_with_one_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_wave_waits_for_every_live_proxy_and_the_grace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_one_rotation_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lapsed_proxies_are_not_waited_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes_the_wave_under_a_new_generation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_interrupted_end_is_finished_at_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stray_incoming_root_is_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_records_are_refused, setup, teardown),
        cmocka_unit_test(test_config_version_follows_the_ca_generation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
