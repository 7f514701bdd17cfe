/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the native provider: the C API over a real embedded store in a temp dir. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh/mesh.h"
#include "model/model.h"
#include "store/store.h"

struct fixture {
    char dir[64];         /* the temp dir, removed at teardown */
    char store[PATH_MAX]; /* dir/store: the store creates it */
    struct mesh *mesh;
};

static struct mesh *open_store(const char *dir)
{
    struct mesh_config cfg = {.store_dir = dir};
    struct mesh *mesh = NULL;
    char *why = NULL;
    enum mesh_err err = mesh_new_verbose(&cfg, &mesh, &why);
    if (err != MESH_OK)
        fail_msg("mesh_new %s: %s", dir, why ? why : "?");
    assert_string_equal(mesh_provider_name(mesh), "native");
    return mesh;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof f->dir, "/tmp/mesh-native-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->store, sizeof f->store, "%s/store", f->dir);
    f->mesh = open_store(f->store);
    *state = f;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mesh_free(f->mesh);
    int rc = nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

/* --- One valid resource of each kind, built with the constructors --- */

static struct mesh_virtual_service *payment_vs(const char *name, int w1, int w2)
{
    struct mesh_virtual_service *vs = mesh_virtual_service_new(name, NULL);
    assert_non_null(vs);
    assert_int_equal(mesh_string_list_add(&vs->hosts, "payment.example.com"), MESH_OK);
    assert_int_equal(mesh_string_list_add(&vs->gateways, "external-gateway"), MESH_OK);
    struct mesh_http_route *route = mesh_virtual_service_add_route(vs, "primary");
    assert_non_null(route);
    assert_non_null(mesh_http_route_add_match(route, "/api/v1/*"));
    assert_non_null(mesh_http_route_add_destination(route, "payment-v1", w1));
    assert_non_null(mesh_http_route_add_destination(route, "payment-v2", w2));
    return vs;
}

static struct mesh_security_policy *payment_sp(void)
{
    struct mesh_security_policy *sp = mesh_security_policy_new("payment-security", "default");
    assert_non_null(sp);
    sp->mtls.mode = MESH_MTLS_STRICT;
    sp->mtls.certificate_authority = strdup("internal-ca");
    struct mesh_authorization_rule *rule = mesh_security_policy_add_rule(sp);
    assert_non_null(rule);
    assert_int_equal(mesh_string_list_add(&rule->from, "orders.default.svc"), MESH_OK);
    assert_int_equal(mesh_string_list_add(&rule->to, "payment.default.svc"), MESH_OK);
    assert_int_equal(mesh_string_list_add(&rule->methods, "POST"), MESH_OK);
    assert_int_equal(mesh_string_list_add(&rule->paths, "/api/v1/process"), MESH_OK);
    return sp;
}

static const struct mesh_circuit_breaker_config seed_breaker = {
    .max_connections = 100,
    .max_pending_requests = 100,
    .max_requests = 1000,
    .max_retries = 3,
    .detection = {.consecutive_errors = 5,
                  .interval_ms = 10000,
                  .base_ejection_time_ms = 30000,
                  .max_ejection_percent = MESH_UNSET},
};

static const struct mesh_fault seed_fault = {
    .delay_ms = 100,
    .delay_percentage = MESH_UNSET,
    .abort = {.http_status = 503, .percentage = 10.0},
};

static struct mesh_resource *one_of_kind(enum mesh_kind kind)
{
    switch (kind) {
    case MESH_KIND_VIRTUAL_SERVICE:
        return &payment_vs("payment-service", 90, 10)->res;
    case MESH_KIND_SECURITY_POLICY:
        return &payment_sp()->res;
    case MESH_KIND_CIRCUIT_BREAKER: {
        struct mesh_circuit_breaker *cb = mesh_circuit_breaker_new("payment-service", NULL);
        cb->service = strdup("payment-service");
        cb->config = seed_breaker;
        return &cb->res;
    }
    case MESH_KIND_FAULT_INJECTION: {
        struct mesh_fault_injection *fi = mesh_fault_injection_new("web-service", NULL);
        fi->service = strdup("web-service");
        fi->fault = seed_fault;
        return &fi->res;
    }
    case MESH_KIND_SERVICE: {
        struct mesh_service *svc = mesh_service_new("payment-v1", NULL);
        svc->protocol = strdup("http");
        assert_non_null(mesh_service_add_endpoint(svc, "127.0.0.1:18081"));
        return &svc->res;
    }
    case MESH_KIND_MESH_CONFIG: {
        struct mesh_mesh_config *mc = mesh_mesh_config_new("native", NULL);
        mc->provider = strdup("native");
        mc->mtls.enabled = MESH_TRI_TRUE;
        mc->telemetry.sampling_rate = 100;
        mc->ha.replicas = MESH_UNSET;
        return &mc->res;
    }
    case MESH_KIND_OBSERVABILITY_CONFIG: {
        struct mesh_observability_config *oc = mesh_observability_config_new("metrics", NULL);
        oc->prometheus_endpoint = strdup("http://prometheus:9090");
        oc->grafana_endpoint = strdup("http://grafana:3000");
        oc->jaeger_endpoint = strdup("http://jaeger:16686");
        return &oc->res;
    }
    case MESH_KIND_KUBERNETES_CONFIG: {
        struct mesh_kubernetes_config *kc = mesh_kubernetes_config_new("production", NULL);
        kc->context = strdup("production");
        kc->target_namespace = strdup("default");
        return &kc->res;
    }
    case MESH_KIND_COUNT:
        break;
    }
    fail_msg("no sample for kind %d", (int)kind);
    return NULL;
}

static void apply_ok(struct mesh *mesh, const struct mesh_resource *res,
                     struct mesh_apply_result *result)
{
    if (mesh_apply(mesh, &res, 1, result) != MESH_OK)
        fail_msg("apply %s %s: %s", mesh_kind_name(res->kind), res->name, mesh_last_error(mesh));
}

/* --- Every kind through the generic calls --- */

static void test_each_kind_round_trips(void **state)
{
    struct fixture *f = *state;

    for (enum mesh_kind kind = 0; kind < MESH_KIND_COUNT; kind++) {
        struct mesh_resource *res = one_of_kind(kind), *got = NULL, **list = NULL;
        struct mesh_apply_result result;
        size_t n = 0;

        apply_ok(f->mesh, res, &result);
        assert_int_equal(result.outcome, MESH_APPLY_CREATED);
        assert_int_equal(result.generation, 1);
        assert_true(result.resource_version > 0);

        assert_int_equal(mesh_get(f->mesh, kind, res->name, NULL, &got), MESH_OK);
        assert_int_equal(got->kind, kind);
        assert_true(mesh_model_same_content(res, got));
        assert_int_equal(got->resource_version, result.resource_version);
        assert_int_equal(got->generation, 1);

        assert_int_equal(mesh_list(f->mesh, kind, NULL, &list, &n), MESH_OK);
        assert_int_equal(n, 1); /* only this kind, although other kinds are stored */
        assert_true(mesh_model_same_content(res, list[0]));
        mesh_resource_list_free(list, n);

        assert_int_equal(mesh_delete(f->mesh, kind, res->name, "default"), MESH_OK);
        mesh_resource_free(got);
        got = NULL;
        assert_int_equal(mesh_get(f->mesh, kind, res->name, NULL, &got), MESH_E_NOTFOUND);
        assert_null(got);
        assert_int_equal(mesh_list(f->mesh, kind, NULL, &list, &n), MESH_OK);
        assert_int_equal(n, 0);
        mesh_resource_list_free(list, n);

        /* Leave one stored, so that the next kind's list proves it filters by kind. */
        apply_ok(f->mesh, res, NULL);
        mesh_resource_free(res);
    }
}

/* --- The typed calls --- */

static void test_virtual_service_typed_calls(void **state)
{
    struct fixture *f = *state;
    struct mesh_virtual_service *vs = payment_vs("payment-service", 90, 10);
    struct mesh_virtual_service *got = NULL, **list = NULL;
    size_t n = 0;

    assert_int_equal(mesh_apply_virtual_service(f->mesh, vs), MESH_OK);
    assert_int_equal(mesh_get_virtual_service(f->mesh, "payment-service", "default", &got),
                     MESH_OK);
    assert_string_equal(got->hosts.items[0], "payment.example.com");
    assert_string_equal(got->gateways.items[0], "external-gateway");
    assert_int_equal(got->n_http_routes, 1);
    assert_string_equal(got->http_routes[0].name, "primary");
    assert_int_equal(got->http_routes[0].matches[0].path.kind, MESH_PATH_GLOB);
    assert_string_equal(got->http_routes[0].matches[0].path.value, "/api/v1/*");
    assert_string_equal(got->http_routes[0].destinations[1].host, "payment-v2");
    assert_int_equal(got->http_routes[0].destinations[1].weight, 10);

    assert_int_equal(mesh_list_virtual_services(f->mesh, NULL, &list, &n), MESH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->res.name, "payment-service");
    mesh_virtual_service_list_free(list, n);

    assert_int_equal(mesh_delete_virtual_service(f->mesh, "payment-service", NULL), MESH_OK);
    assert_int_equal(mesh_delete_virtual_service(f->mesh, "payment-service", NULL),
                     MESH_E_NOTFOUND);
    assert_string_equal(mesh_last_error(f->mesh),
                        "Service not found: VirtualService default/payment-service");
    mesh_virtual_service_free(got);
    mesh_virtual_service_free(vs);
}

static void test_security_policy_typed_calls(void **state)
{
    struct fixture *f = *state;
    struct mesh_security_policy *sp = payment_sp(), *got = NULL, **list = NULL;
    size_t n = 0;

    assert_int_equal(mesh_apply_security_policy(f->mesh, sp), MESH_OK);
    assert_int_equal(mesh_get_security_policy(f->mesh, "payment-security", NULL, &got), MESH_OK);
    assert_int_equal(got->mtls.mode, MESH_MTLS_STRICT);
    assert_string_equal(got->mtls.certificate_authority, "internal-ca");
    assert_int_equal(got->n_authorization, 1);
    assert_string_equal(got->authorization[0].from.items[0], "orders.default.svc");
    assert_string_equal(got->authorization[0].to.items[0], "payment.default.svc");
    assert_string_equal(got->authorization[0].methods.items[0], "POST");
    assert_string_equal(got->authorization[0].paths.items[0], "/api/v1/process");

    assert_int_equal(mesh_list_security_policies(f->mesh, "default", &list, &n), MESH_OK);
    assert_int_equal(n, 1);
    mesh_security_policy_list_free(list, n);
    assert_int_equal(mesh_list_security_policies(f->mesh, "prod", &list, &n), MESH_OK);
    assert_int_equal(n, 0);
    mesh_security_policy_list_free(list, n);

    assert_int_equal(mesh_delete_security_policy(f->mesh, "payment-security", "default"), MESH_OK);
    mesh_security_policy_free(got);
    got = NULL;
    assert_int_equal(mesh_get_security_policy(f->mesh, "payment-security", NULL, &got),
                     MESH_E_NOTFOUND);
    mesh_security_policy_free(sp);
}

static void test_configure_circuit_breaker_stores_what_get_returns(void **state)
{
    struct fixture *f = *state;
    struct mesh_resource *got = NULL;

    assert_int_equal(mesh_configure_circuit_breaker(f->mesh, "payment-service", &seed_breaker),
                     MESH_OK);
    assert_int_equal(mesh_get(f->mesh, MESH_KIND_CIRCUIT_BREAKER, "payment-service", NULL, &got),
                     MESH_OK);
    const struct mesh_circuit_breaker *cb = (const struct mesh_circuit_breaker *)got;
    assert_string_equal(cb->service, "payment-service");
    assert_memory_equal(&cb->config, &seed_breaker, sizeof(seed_breaker));
    mesh_resource_free(got);

    /* "name.namespace" puts it in that namespace, guarding the bare name. */
    assert_int_equal(mesh_configure_circuit_breaker(f->mesh, "orders.shop", &seed_breaker),
                     MESH_OK);
    assert_int_equal(mesh_get(f->mesh, MESH_KIND_CIRCUIT_BREAKER, "orders", "shop", &got), MESH_OK);
    assert_string_equal(((const struct mesh_circuit_breaker *)got)->service, "orders");
    mesh_resource_free(got);
}

static void test_inject_fault_stores_what_get_returns(void **state)
{
    struct fixture *f = *state;
    struct mesh_resource *got = NULL;

    assert_int_equal(mesh_inject_fault(f->mesh, "web-service", &seed_fault), MESH_OK);
    assert_int_equal(mesh_get(f->mesh, MESH_KIND_FAULT_INJECTION, "web-service", NULL, &got),
                     MESH_OK);
    const struct mesh_fault_injection *fi = (const struct mesh_fault_injection *)got;
    assert_string_equal(fi->service, "web-service");
    assert_int_equal(fi->fault.delay_ms, 100);
    assert_true(fi->fault.delay_percentage == MESH_UNSET);
    assert_int_equal(fi->fault.abort.http_status, 503);
    assert_true(fi->fault.abort.percentage == 10.0);
    mesh_resource_free(got);
}

/* --- Versions, conflicts, atomicity --- */

static void test_unchanged_reapply_keeps_version(void **state)
{
    struct fixture *f = *state;
    struct mesh_virtual_service *vs = payment_vs("payment-service", 90, 10);
    struct mesh_apply_result first, again, changed;

    apply_ok(f->mesh, &vs->res, &first);
    apply_ok(f->mesh, &vs->res, &again);
    assert_int_equal(again.outcome, MESH_APPLY_UNCHANGED);
    assert_int_equal(again.resource_version, first.resource_version);
    assert_int_equal(again.generation, 1);

    vs->http_routes[0].destinations[0].weight = 80;
    vs->http_routes[0].destinations[1].weight = 20;
    apply_ok(f->mesh, &vs->res, &changed);
    assert_int_equal(changed.outcome, MESH_APPLY_CONFIGURED);
    assert_true(changed.resource_version > first.resource_version);
    assert_int_equal(changed.generation, 2);
    mesh_virtual_service_free(vs);
}

static void test_stale_resource_version_conflicts(void **state)
{
    struct fixture *f = *state;
    struct mesh_virtual_service *vs = payment_vs("payment-service", 90, 10), *got = NULL;
    struct mesh_apply_result result;

    apply_ok(f->mesh, &vs->res, NULL);
    assert_int_equal(mesh_get_virtual_service(f->mesh, "payment-service", NULL, &got), MESH_OK);
    uint64_t read_at = got->res.resource_version;

    /* Writing back what was read, at the version read, succeeds once. */
    got->http_routes[0].destinations[0].weight = 50;
    got->http_routes[0].destinations[1].weight = 50;
    apply_ok(f->mesh, &got->res, &result);
    assert_int_equal(result.outcome, MESH_APPLY_CONFIGURED);

    /* The same version again is stale now. */
    got->http_routes[0].destinations[0].weight = 10;
    got->http_routes[0].destinations[1].weight = 90;
    assert_int_equal(got->res.resource_version, read_at);
    assert_int_equal(mesh_apply_virtual_service(f->mesh, got), MESH_E_CONFLICT);
    assert_non_null(
        strstr(mesh_last_error(f->mesh), "VirtualService default/payment-service: conflict"));

    mesh_virtual_service_free(got);
    got = NULL;
    assert_int_equal(mesh_get_virtual_service(f->mesh, "payment-service", NULL, &got), MESH_OK);
    assert_int_equal(got->http_routes[0].destinations[0].weight, 50);
    assert_int_equal(got->res.resource_version, result.resource_version);
    mesh_virtual_service_free(got);
    mesh_virtual_service_free(vs);
}

static void test_get_missing_is_service_not_found(void **state)
{
    struct fixture *f = *state;
    struct mesh_virtual_service *vs = NULL;
    struct mesh_resource *res = NULL;

    assert_int_equal(mesh_get_virtual_service(f->mesh, "foo", NULL, &vs), MESH_E_NOTFOUND);
    assert_null(vs);
    assert_string_equal(mesh_last_error(f->mesh), "Service not found: VirtualService default/foo");
    assert_int_equal(mesh_get(f->mesh, MESH_KIND_SERVICE, "bar", "prod", &res), MESH_E_NOTFOUND);
    assert_string_equal(mesh_last_error(f->mesh), "Service not found: Service prod/bar");
    assert_int_equal(mesh_delete(f->mesh, MESH_KIND_SERVICE, "bar", NULL), MESH_E_NOTFOUND);
}

static void test_invalid_resource_is_not_stored(void **state)
{
    struct fixture *f = *state;
    struct mesh_virtual_service *vs = payment_vs("payment-service", 90, 5), *got = NULL;
    struct mesh_resource **list = NULL;
    size_t n = 0;

    assert_int_equal(mesh_apply_virtual_service(f->mesh, vs), MESH_E_INVALID);
    assert_non_null(strstr(mesh_last_error(f->mesh), "VirtualService default/payment-service"));
    assert_non_null(strstr(mesh_last_error(f->mesh), "95"));
    assert_int_equal(mesh_get_virtual_service(f->mesh, "payment-service", NULL, &got),
                     MESH_E_NOTFOUND);
    assert_int_equal(mesh_list(f->mesh, MESH_KIND_VIRTUAL_SERVICE, NULL, &list, &n), MESH_OK);
    assert_int_equal(n, 0);
    mesh_resource_list_free(list, n);
    mesh_virtual_service_free(vs);
}

static void test_apply_is_all_or_none(void **state)
{
    struct fixture *f = *state;
    struct mesh_virtual_service *a = payment_vs("a", 50, 50), *b = payment_vs("b", 50, 50);
    struct mesh_virtual_service *got = NULL;
    struct mesh_apply_result stored, results[2];

    apply_ok(f->mesh, &b->res, &stored);
    /* a is new and fine; b names a version it never had: neither may be written. */
    b->http_routes[0].destinations[0].weight = 70;
    b->http_routes[0].destinations[1].weight = 30;
    b->res.resource_version = stored.resource_version + 100;
    const struct mesh_resource *batch[] = {&a->res, &b->res};
    assert_int_equal(mesh_apply(f->mesh, batch, 2, results), MESH_E_CONFLICT);
    assert_non_null(strstr(mesh_last_error(f->mesh), "VirtualService default/b: conflict"));

    assert_int_equal(mesh_get_virtual_service(f->mesh, "a", NULL, &got), MESH_E_NOTFOUND);
    assert_int_equal(mesh_get_virtual_service(f->mesh, "b", NULL, &got), MESH_OK);
    assert_int_equal(got->http_routes[0].destinations[0].weight, 50);
    assert_int_equal(got->res.resource_version, stored.resource_version);
    mesh_virtual_service_free(got);

    /* With the right version, both go in together. */
    b->res.resource_version = stored.resource_version;
    assert_int_equal(mesh_apply(f->mesh, batch, 2, results), MESH_OK);
    assert_int_equal(results[0].outcome, MESH_APPLY_CREATED);
    assert_int_equal(results[1].outcome, MESH_APPLY_CONFIGURED);
    mesh_virtual_service_free(a);
    mesh_virtual_service_free(b);
}

/* --- Restore --- */

/* Every resource of every kind in the mesh, in kind order, with its versions. */
static struct mesh_resource **list_everything(struct mesh *mesh, size_t *n)
{
    struct mesh_resource **all = NULL;
    *n = 0;
    for (enum mesh_kind kind = 0; kind < MESH_KIND_COUNT; kind++) {
        struct mesh_resource **list = NULL;
        size_t len = 0;
        assert_int_equal(mesh_list(mesh, kind, NULL, &list, &len), MESH_OK);
        all = realloc(all, (*n + len + 1) * sizeof(*all));
        assert_non_null(all);
        for (size_t i = 0; i < len; i++)
            all[(*n)++] = list[i];
        free(list);
    }
    return all;
}

/* The records of the store in dir, as the store itself holds them. */
static struct mesh_store_record *store_records(const char *dir, size_t *n, uint64_t *version)
{
    struct mesh_store *st = NULL;
    struct mesh_store_record *recs = NULL;
    char *msg = NULL;
    assert_int_equal(mesh_store_open_sqlite(dir, &st, &msg), MESH_OK);
    assert_int_equal(st->ops->list(st, NULL, NULL, &recs, n), MESH_OK);
    assert_int_equal(st->ops->current_version(st, version), MESH_OK);
    mesh_store_close(st);
    return recs;
}

/* Some history: every kind applied, the VirtualService changed twice (generation 3), the
 * FaultInjection deleted. */
static void make_history(struct mesh *mesh)
{
    for (enum mesh_kind kind = 0; kind < MESH_KIND_COUNT; kind++) {
        struct mesh_resource *res = one_of_kind(kind);
        apply_ok(mesh, res, NULL);
        mesh_resource_free(res);
    }
    struct mesh_virtual_service *vs = payment_vs("payment-service", 80, 20);
    apply_ok(mesh, &vs->res, NULL);
    vs->http_routes[0].destinations[0].weight = 70;
    vs->http_routes[0].destinations[1].weight = 30;
    apply_ok(mesh, &vs->res, NULL);
    mesh_virtual_service_free(vs);
    assert_int_equal(mesh_delete(mesh, MESH_KIND_FAULT_INJECTION, "web-service", NULL), MESH_OK);
}

static void test_restore_into_a_new_store_gives_identical_records(void **state)
{
    struct fixture *f = *state;
    char other[PATH_MAX];
    size_t n = 0, n_a = 0, n_b = 0;
    uint64_t version_a = 0, version_b = 0;
    enum mesh_restore_mode mode = MESH_RESTORE_APPLIED;

    make_history(f->mesh);
    struct mesh_resource **backup = list_everything(f->mesh, &n);
    assert_int_equal(n, MESH_KIND_COUNT - 1);
    struct mesh_apply_result *results = calloc(n, sizeof(*results));

    snprintf(other, sizeof other, "%s/other", f->dir);
    struct mesh *target = open_store(other);
    assert_int_equal(
        mesh_restore(target, (const struct mesh_resource *const *)backup, n, results, &mode),
        MESH_OK);
    assert_int_equal(mode, MESH_RESTORE_VERSIONS_KEPT);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(results[i].outcome, MESH_APPLY_CREATED);
        assert_int_equal(results[i].resource_version, backup[i]->resource_version);
        assert_int_equal(results[i].generation, backup[i]->generation);
    }

    /* The stores hold the same records: keys, bodies and both versions. */
    struct mesh_store_record *a = store_records(f->store, &n_a, &version_a);
    struct mesh_store_record *b = store_records(other, &n_b, &version_b);
    assert_int_equal(n_a, n);
    assert_int_equal(n_b, n_a);
    bool saw_generation_3 = false;
    for (size_t i = 0; i < n_a; i++) {
        assert_string_equal(b[i].kind, a[i].kind);
        assert_string_equal(b[i].ns, a[i].ns);
        assert_string_equal(b[i].name, a[i].name);
        assert_string_equal(b[i].body, a[i].body);
        assert_int_equal(b[i].resource_version, a[i].resource_version);
        assert_int_equal(b[i].generation, a[i].generation);
        saw_generation_3 = saw_generation_3 || a[i].generation == 3;
    }
    assert_true(saw_generation_3);
    /* The counter is the newest restored version (the source's last change was a delete). */
    assert_int_equal(version_b, version_a - 1);
    mesh_store_records_free(a, n_a);
    mesh_store_records_free(b, n_b);

    /* Restoring again: the store has history now, so it is an apply, and nothing changes. */
    assert_int_equal(
        mesh_restore(target, (const struct mesh_resource *const *)backup, n, results, &mode),
        MESH_OK);
    assert_int_equal(mode, MESH_RESTORE_APPLIED);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(results[i].outcome, MESH_APPLY_UNCHANGED);
        assert_int_equal(results[i].resource_version, backup[i]->resource_version);
        assert_int_equal(results[i].generation, backup[i]->generation);
    }

    /* And the next change goes on from the restored versions. */
    struct mesh_virtual_service *vs = payment_vs("payment-service", 60, 40);
    struct mesh_apply_result changed;
    apply_ok(target, &vs->res, &changed);
    assert_int_equal(changed.resource_version, version_b + 1);
    assert_int_equal(changed.generation, 4);
    mesh_virtual_service_free(vs);

    mesh_free(target);
    free(results);
    mesh_resource_list_free(backup, n);
}

static void test_restore_into_a_store_with_history_applies(void **state)
{
    struct fixture *f = *state;
    char other[PATH_MAX];
    size_t n = 0;
    enum mesh_restore_mode mode = MESH_RESTORE_VERSIONS_KEPT;
    struct mesh_apply_result before;

    make_history(f->mesh);
    struct mesh_resource **backup = list_everything(f->mesh, &n);
    struct mesh_apply_result *results = calloc(n, sizeof(*results));

    /* The target already holds the VirtualService (other content) and a Service of its own. */
    snprintf(other, sizeof other, "%s/other", f->dir);
    struct mesh *target = open_store(other);
    struct mesh_virtual_service *vs = payment_vs("payment-service", 50, 50);
    apply_ok(target, &vs->res, NULL);
    struct mesh_service *own = mesh_service_new("own", NULL);
    own->protocol = strdup("http");
    assert_non_null(mesh_service_add_endpoint(own, "127.0.0.1:18099"));
    apply_ok(target, &own->res, &before);

    assert_int_equal(
        mesh_restore(target, (const struct mesh_resource *const *)backup, n, results, &mode),
        MESH_OK);
    assert_int_equal(mode, MESH_RESTORE_APPLIED);
    uint64_t next = before.resource_version;
    for (size_t i = 0; i < n; i++) {
        bool is_vs = backup[i]->kind == MESH_KIND_VIRTUAL_SERVICE;
        assert_int_equal(results[i].outcome, is_vs ? MESH_APPLY_CONFIGURED : MESH_APPLY_CREATED);
        /* The target's own versions, moving on from its counter in the backup's order. */
        assert_int_equal(results[i].resource_version, ++next);
        assert_int_equal(results[i].generation, is_vs ? 2 : 1);
        struct mesh_resource *got = NULL;
        assert_int_equal(mesh_get(target, backup[i]->kind, backup[i]->name, NULL, &got), MESH_OK);
        assert_true(mesh_model_same_content(got, backup[i]));
        assert_int_equal(got->resource_version, results[i].resource_version);
        mesh_resource_free(got);
    }
    /* Resources absent from the backup are left alone. */
    struct mesh_resource *got = NULL;
    assert_int_equal(mesh_get(target, MESH_KIND_SERVICE, "own", NULL, &got), MESH_OK);
    assert_int_equal(got->resource_version, before.resource_version);
    mesh_resource_free(got);

    /* Again: all unchanged, versions unchanged. */
    assert_int_equal(
        mesh_restore(target, (const struct mesh_resource *const *)backup, n, results, &mode),
        MESH_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(results[i].outcome, MESH_APPLY_UNCHANGED);
        assert_int_equal(results[i].resource_version, before.resource_version + 1 + i);
    }

    mesh_service_free(own);
    mesh_virtual_service_free(vs);
    mesh_free(target);
    free(results);
    mesh_resource_list_free(backup, n);
}

static void test_restore_without_versions_applies_and_invalid_writes_nothing(void **state)
{
    struct fixture *f = *state;
    enum mesh_restore_mode mode = MESH_RESTORE_VERSIONS_KEPT;
    struct mesh_apply_result results[2];
    struct mesh_resource **list = NULL;
    size_t n = 0;

    /* An older meshctl's backup: no versions. Into a new store it is an apply all the same. */
    struct mesh_virtual_service *vs = payment_vs("payment-service", 90, 10);
    struct mesh_resource *svc = one_of_kind(MESH_KIND_SERVICE);
    const struct mesh_resource *old[] = {svc, &vs->res};
    assert_int_equal(mesh_restore(f->mesh, old, 2, results, &mode), MESH_OK);
    assert_int_equal(mode, MESH_RESTORE_APPLIED);
    assert_int_equal(results[0].outcome, MESH_APPLY_CREATED);
    assert_int_equal(results[0].resource_version, 1);
    assert_int_equal(results[1].resource_version, 2);

    /* Invalid input: nothing written, whatever way it would have gone. */
    char other[PATH_MAX];
    snprintf(other, sizeof other, "%s/other", f->dir);
    struct mesh *target = open_store(other);
    vs->http_routes[0].destinations[0].weight = 95;
    vs->res.resource_version = 4;
    vs->res.generation = 1;
    svc->resource_version = 3;
    svc->generation = 1;
    mode = MESH_RESTORE_VERSIONS_KEPT;
    assert_int_equal(mesh_restore(target, old, 2, NULL, &mode), MESH_E_INVALID);
    assert_int_equal(mode, MESH_RESTORE_APPLIED);
    assert_non_null(strstr(mesh_last_error(target), "weights sum to 105"));
    assert_int_equal(mesh_list(target, MESH_KIND_SERVICE, NULL, &list, &n), MESH_OK);
    assert_int_equal(n, 0);
    mesh_resource_list_free(list, n);

    /* Nothing to restore is fine, and mode may be NULL. */
    assert_int_equal(mesh_restore(target, NULL, 0, NULL, NULL), MESH_OK);
    assert_int_equal(mesh_restore(NULL, old, 2, NULL, &mode), MESH_E_INVALID);

    mesh_free(target);
    mesh_resource_free(svc);
    mesh_virtual_service_free(vs);
}

/* --- Where the store lives --- */

static void test_store_persists_across_meshes(void **state)
{
    struct fixture *f = *state;
    struct mesh_virtual_service *vs = payment_vs("payment-service", 90, 10), *got = NULL;

    assert_int_equal(mesh_apply_virtual_service(f->mesh, vs), MESH_OK);
    mesh_free(f->mesh);
    f->mesh = open_store(f->store);
    assert_int_equal(mesh_get_virtual_service(f->mesh, "payment-service", NULL, &got), MESH_OK);
    assert_int_equal(got->http_routes[0].destinations[0].weight, 90);
    mesh_virtual_service_free(got);
    mesh_virtual_service_free(vs);
}

static void assert_store_in(const char *dir)
{
    char db[PATH_MAX + 16];
    struct stat st;
    snprintf(db, sizeof db, "%s/mesh.db", dir);
    assert_int_equal(stat(db, &st), 0);
}

static void test_store_dir_defaults(void **state)
{
    struct fixture *f = *state;
    char env_dir[PATH_MAX], cwd[PATH_MAX], dot_mesh[PATH_MAX];
    struct mesh *mesh = NULL;

    snprintf(env_dir, sizeof env_dir, "%s/from-env", f->dir);
    assert_int_equal(setenv("MESH_STORE", env_dir, 1), 0);
    assert_int_equal(mesh_new(NULL, &mesh), MESH_OK);
    mesh_free(mesh);
    assert_store_in(env_dir);

    /* Without $MESH_STORE: ./.mesh in the working directory. */
    assert_int_equal(unsetenv("MESH_STORE"), 0);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    enum mesh_err err = mesh_new(&(struct mesh_config){.provider = "native"}, &mesh);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(err, MESH_OK);
    mesh_free(mesh);
    snprintf(dot_mesh, sizeof dot_mesh, "%s/.mesh", f->dir);
    assert_store_in(dot_mesh);
}

/* A server URL selects the meshd client (remote.c) instead of the store: opening contacts
 * nobody, the first call says meshd cannot be reached, and no store directory appears. */
static void test_server_selects_the_meshd_client(void **state)
{
    struct fixture *f = *state;
    char unused[PATH_MAX];
    struct mesh_config cfg = {.server = "http://127.0.0.1:1", .store_dir = unused};
    struct mesh *mesh = NULL;
    struct mesh_resource *res = NULL;
    char *why = NULL;
    struct stat st;

    snprintf(unused, sizeof unused, "%s/never-created", f->dir);
    assert_int_equal(mesh_new_verbose(&cfg, &mesh, &why), MESH_OK);
    assert_string_equal(mesh_provider_name(mesh), "native");
    assert_int_equal(mesh_get(mesh, MESH_KIND_VIRTUAL_SERVICE, "x", NULL, &res),
                     MESH_E_UNAVAILABLE);
    assert_null(res);
    assert_string_equal(mesh_last_error(mesh),
                        "cannot reach meshd at http://127.0.0.1:1: connection refused");
    assert_int_not_equal(stat(unused, &st), 0);
    mesh_free(mesh);
}

static void test_unusable_store_dir_fails_to_open(void **state)
{
    struct fixture *f = *state;
    char file[PATH_MAX];
    struct mesh_config cfg = {.store_dir = file};
    struct mesh *mesh = NULL;
    char *why = NULL;

    /* A regular file where the directory should be. */
    snprintf(file, sizeof file, "%s/store/mesh.db", f->dir);
    assert_int_not_equal(mesh_new_verbose(&cfg, &mesh, &why), MESH_OK);
    assert_null(mesh);
    assert_non_null(why);
    assert_non_null(strstr(why, file));
    free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_kind_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_virtual_service_typed_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_security_policy_typed_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configure_circuit_breaker_stores_what_get_returns,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_inject_fault_stores_what_get_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_reapply_keeps_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_resource_version_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_missing_is_service_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_resource_is_not_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_is_all_or_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_into_a_new_store_gives_identical_records,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_into_a_store_with_history_applies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_restore_without_versions_applies_and_invalid_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_persists_across_meshes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_dir_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_selects_the_meshd_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_store_dir_fails_to_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
