/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the native provider's meshd client (src/provider/remote.c): what libmesh sends to
 * meshd and how each answer maps to results and errors, against a canned fake meshd on a loopback
 * thread. The real meshd is exercised by tests/e2e/test_meshctl_server.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh/mesh.h"

#define MAX_REQ (256 * 1024)

/* A fake meshd: answers every request with the canned answer the test set, and keeps the last
 * request for the test to look at. */
struct fake {
    int fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    int status;
    char headers[256]; /* extra response header lines, each ending in \r\n */
    char body[16384];
    int requests;
    char line[512]; /* "POST /v1/apply" */
    char head[4096];
    char *req_body; /* malloc'ed, NUL-terminated */
    char url[64];   /* http://127.0.0.1:PORT */
};

static ssize_t read_some(int fd, char *buf, size_t n)
{
    ssize_t r;
    do {
        r = read(fd, buf, n);
    } while (r < 0 && errno == EINTR);
    return r;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Reads one request on fd and answers it. 0 on success, -1 when the connection is done. */
static int serve_one(struct fake *f, int fd, char *buf)
{
    size_t len = 0;
    char *end;

    buf[0] = '\0';
    while (!(end = strstr(buf, "\r\n\r\n"))) {
        if (len + 1 >= MAX_REQ)
            return -1;
        ssize_t r = read_some(fd, buf + len, MAX_REQ - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
    }
    size_t head_len = (size_t)(end - buf) + 4, body_len = 0;
    for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2)
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            body_len = strtoul(p + 15, NULL, 10);
    while (len < head_len + body_len && len + 1 < MAX_REQ) {
        ssize_t r = read_some(fd, buf + len, MAX_REQ - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
    }
    pthread_mutex_lock(&f->lock);
    f->requests++;
    snprintf(f->head, sizeof(f->head), "%.*s", (int)head_len, buf);
    /* "METHOD PATH" of the request line */
    size_t sp2 = strcspn(buf, " ");
    sp2 += 1 + strcspn(buf + sp2 + 1, " ");
    snprintf(f->line, sizeof(f->line), "%.*s", (int)sp2, buf);
    free(f->req_body);
    f->req_body = strndup(buf + head_len, body_len);
    char answer[512];
    snprintf(answer, sizeof(answer),
             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
             f->status, f->headers, strlen(f->body));
    write_all(fd, answer, strlen(answer));
    write_all(fd, f->body, strlen(f->body));
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    char *buf = malloc(MAX_REQ);
    while (buf && !atomic_load(&f->stop)) {
        struct pollfd p = {.fd = f->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(f->fd, NULL, NULL);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        while (!atomic_load(&f->stop) && serve_one(f, fd, buf) == 0)
            ;
        close(fd);
    }
    free(buf);
    return NULL;
}

static int fake_setup(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);

    if (!f)
        return -1;
    pthread_mutex_init(&f->lock, NULL);
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(f->fd, 16) != 0 || getsockname(f->fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    f->port = ntohs(sa.sin_port);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
    if (pthread_create(&f->thread, NULL, fake_main, f) != 0)
        return -1;
    unsetenv("MESH_TOKEN_FILE");
    unsetenv("MESH_TOKEN");
    *state = f;
    return 0;
}

static int fake_teardown(void **state)
{
    struct fake *f = *state;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->fd);
    free(f->req_body);
    pthread_mutex_destroy(&f->lock);
    free(f);
    return 0;
}

/* The next answers: status, extra header lines and body. */
static void answer(struct fake *f, int status, const char *headers, const char *body)
{
    pthread_mutex_lock(&f->lock);
    f->status = status;
    snprintf(f->headers, sizeof(f->headers), "%s", headers);
    snprintf(f->body, sizeof(f->body), "%s", body);
    pthread_mutex_unlock(&f->lock);
}

static struct mesh *open_remote(const char *url, const char *token)
{
    struct mesh_config cfg = {.server = url, .token = token};
    struct mesh *mesh = NULL;
    char *why = NULL;
    if (mesh_new_verbose(&cfg, &mesh, &why) != MESH_OK)
        fail_msg("mesh_new %s: %s", url, why ? why : "?");
    return mesh;
}

/* Must be called with f->lock held by nobody; copies what the fake saw. */
static void last_request(struct fake *f, char *line, size_t line_size, char *head, size_t head_size,
                         char **body)
{
    pthread_mutex_lock(&f->lock);
    snprintf(line, line_size, "%s", f->line);
    if (head)
        snprintf(head, head_size, "%s", f->head);
    if (body)
        *body = strdup(f->req_body ? f->req_body : "");
    pthread_mutex_unlock(&f->lock);
}

static struct mesh_resource *service(const char *name, uint64_t version)
{
    struct mesh_resource **list = NULL;
    size_t n = 0;
    struct mesh_diags diags = {0};
    char text[256];
    snprintf(text, sizeof(text),
             "apiVersion: mesh.clusterdb.io/v1\nkind: Service\nmetadata:\n  name: %s\n"
             "spec:\n  protocol: http\n  endpoints: [\"127.0.0.1:18081\"]\n",
             name);
    assert_int_equal(mesh_parse_documents(text, strlen(text), "t.yaml", &list, &n, &diags),
                     MESH_OK);
    assert_int_equal(n, 1);
    struct mesh_resource *res = list[0];
    free(list);
    res->resource_version = version;
    return res;
}

static const char vs_json[] =
    "{\"apiVersion\": \"mesh.clusterdb.io/v1\", \"kind\": \"VirtualService\", "
    "\"metadata\": {\"name\": \"%s\", \"namespace\": \"%s\", \"resource_version\": %d, "
    "\"generation\": 2}, "
    "\"spec\": {\"hosts\": [\"payment.example.com\"], \"http_routes\": [{\"destinations\": "
    "[{\"host\": \"payment-v1\", \"weight\": 100}]}]}}";

static void test_remote_apply_posts_every_document_and_maps_outcomes(void **state)
{
    struct fake *f = *state;
    struct mesh *mesh = open_remote(f->url, "tok3n");
    struct mesh_resource *res[3] = {service("a", 0), service("b", 7), service("c", 0)};
    struct mesh_apply_result results[3];
    char line[512], head[4096], *body = NULL;

    answer(f, 200, "",
           "{\"items\": ["
           "{\"kind\": \"Service\", \"namespace\": \"default\", \"name\": \"a\", \"outcome\": "
           "\"created\", \"resource_version\": 11, \"generation\": 1},"
           "{\"kind\": \"Service\", \"namespace\": \"default\", \"name\": \"b\", \"outcome\": "
           "\"configured\", \"resource_version\": 12, \"generation\": 4},"
           "{\"kind\": \"Service\", \"namespace\": \"default\", \"name\": \"c\", \"outcome\": "
           "\"unchanged\", \"resource_version\": 3, \"generation\": 1}]}");
    assert_int_equal(mesh_apply(mesh, (const struct mesh_resource *const *)res, 3, results),
                     MESH_OK);
    assert_int_equal(results[0].outcome, MESH_APPLY_CREATED);
    assert_int_equal(results[0].resource_version, 11);
    assert_int_equal(results[1].outcome, MESH_APPLY_CONFIGURED);
    assert_int_equal(results[1].generation, 4);
    assert_int_equal(results[2].outcome, MESH_APPLY_UNCHANGED);
    assert_int_equal(results[2].resource_version, 3);

    last_request(f, line, sizeof(line), head, sizeof(head), &body);
    assert_string_equal(line, "POST /v1/apply");
    assert_non_null(strstr(head, "Authorization: Bearer tok3n\r\n"));
    assert_non_null(strstr(head, "Content-Type: application/json\r\n"));
    /* All three in one body, in order; b carries its resource_version so that meshd can refuse
     * a stale one. */
    struct mesh_resource **back = NULL;
    size_t n = 0;
    struct mesh_diags diags = {0};
    assert_non_null(strstr(body, "\"items\""));
    char *items = strchr(body, '['), *items_end = strrchr(body, ']');
    assert_int_equal(
        mesh_parse_documents(items, (size_t)(items_end - items) + 1, "body", &back, &n, &diags),
        MESH_OK);
    assert_int_equal(n, 3);
    assert_string_equal(back[0]->name, "a");
    assert_string_equal(back[1]->name, "b");
    assert_int_equal(back[1]->resource_version, 7);
    assert_int_equal(back[0]->resource_version, 0);
    assert_string_equal(back[2]->name, "c");
    mesh_resource_list_free(back, n);
    free(body);
    for (int i = 0; i < 3; i++)
        mesh_resource_free(res[i]);
    mesh_free(mesh);
}

static void test_remote_error_answers_map_to_errors_with_meshds_message(void **state)
{
    struct fake *f = *state;
    struct mesh *mesh = open_remote(f->url, "t");
    struct mesh_resource *res = service("a", 3);
    const struct mesh_resource *one[1] = {res};

    answer(f, 409, "",
           "{\"error\": {\"status\": 409, \"reason\": \"Conflict\", \"message\": \"conflict: "
           "Service default/a is at resource_version 5, the request names 3\"}}");
    assert_int_equal(mesh_apply(mesh, one, 1, NULL), MESH_E_CONFLICT);
    assert_string_equal(
        mesh_last_error(mesh),
        "conflict: Service default/a is at resource_version 5, the request names 3");

    answer(f, 400, "",
           "{\"error\": {\"status\": 400, \"reason\": \"Invalid\", \"message\": \"request "
           "body:3:9: spec.endpoints: bad\"}}");
    assert_int_equal(mesh_apply(mesh, one, 1, NULL), MESH_E_INVALID);
    assert_string_equal(mesh_last_error(mesh), "request body:3:9: spec.endpoints: bad");

    answer(f, 500, "",
           "{\"error\": {\"status\": 500, \"reason\": \"Internal\", \"message\": "
           "\"store: disk full\"}}");
    assert_int_equal(mesh_apply(mesh, one, 1, NULL), MESH_E_INTERNAL);
    char want[256];
    snprintf(want, sizeof(want), "meshd at %s could not apply (500): store: disk full", f->url);
    assert_string_equal(mesh_last_error(mesh), want);

    answer(f, 429, "Retry-After: 2\r\n",
           "{\"error\": {\"status\": 429, \"reason\": \"TooManyRequests\", \"message\": \"slow "
           "down\"}}");
    assert_int_equal(mesh_apply(mesh, one, 1, NULL), MESH_E_UNAVAILABLE);
    assert_non_null(strstr(mesh_last_error(mesh), "rate limiting this client (429)"));
    assert_non_null(strstr(mesh_last_error(mesh), "retry after 2 s"));

    /* Not meshd's JSON at all: the status and the first line. */
    answer(f, 502, "", "<html>bad gateway</html>");
    assert_int_equal(mesh_apply(mesh, one, 1, NULL), MESH_E_UNAVAILABLE);
    assert_non_null(strstr(mesh_last_error(mesh), "(502): HTTP 502: <html>bad gateway</html>"));

    /* A 200 that does not say what happened to every document is meshd misbehaving. */
    answer(f, 200, "", "{\"items\": []}");
    assert_int_equal(mesh_apply(mesh, one, 1, NULL), MESH_E_INTERNAL);
    assert_non_null(strstr(mesh_last_error(mesh), "answered 0 apply results for 1 documents"));
    answer(f, 200, "", "not json");
    assert_int_equal(mesh_apply(mesh, one, 1, NULL), MESH_E_INTERNAL);
    assert_non_null(strstr(mesh_last_error(mesh), "not JSON"));
    answer(f, 200, "",
           "{\"items\": [{\"outcome\": \"exploded\", \"resource_version\": 1, \"generation\": "
           "1}]}");
    assert_int_equal(mesh_apply(mesh, one, 1, NULL), MESH_E_INTERNAL);

    mesh_resource_free(res);
    mesh_free(mesh);
}

static void test_remote_restore_posts_to_restore_and_reads_the_mode(void **state)
{
    struct fake *f = *state;
    struct mesh *mesh = open_remote(f->url, "tok3n");
    struct mesh_resource *res[2] = {service("a", 9), service("b", 4)};
    struct mesh_apply_result results[2];
    enum mesh_restore_mode mode = MESH_RESTORE_APPLIED;
    char line[512], head[4096], *body = NULL;

    res[0]->generation = 3;
    res[1]->generation = 1;
    answer(f, 200, "",
           "{\"mode\": \"versions_kept\", \"items\": ["
           "{\"kind\": \"Service\", \"namespace\": \"default\", \"name\": \"a\", \"outcome\": "
           "\"created\", \"resource_version\": 9, \"generation\": 3},"
           "{\"kind\": \"Service\", \"namespace\": \"default\", \"name\": \"b\", \"outcome\": "
           "\"created\", \"resource_version\": 4, \"generation\": 1}]}");
    assert_int_equal(
        mesh_restore(mesh, (const struct mesh_resource *const *)res, 2, results, &mode), MESH_OK);
    assert_int_equal(mode, MESH_RESTORE_VERSIONS_KEPT);
    assert_int_equal(results[0].outcome, MESH_APPLY_CREATED);
    assert_int_equal(results[0].resource_version, 9);
    assert_int_equal(results[0].generation, 3);
    assert_int_equal(results[1].resource_version, 4);

    /* One body with both documents and their versions: meshd decides, in its transaction. */
    last_request(f, line, sizeof(line), head, sizeof(head), &body);
    assert_string_equal(line, "POST /v1/restore");
    assert_non_null(strstr(head, "Authorization: Bearer tok3n\r\n"));
    struct mesh_resource **back = NULL;
    size_t n = 0;
    struct mesh_diags diags = {0};
    char *items = strchr(body, '['), *items_end = strrchr(body, ']');
    assert_int_equal(
        mesh_parse_documents(items, (size_t)(items_end - items) + 1, "body", &back, &n, &diags),
        MESH_OK);
    assert_int_equal(n, 2);
    assert_int_equal(back[0]->resource_version, 9);
    assert_int_equal(back[0]->generation, 3);
    assert_int_equal(back[1]->resource_version, 4);
    mesh_resource_list_free(back, n);
    free(body);

    answer(f, 200, "",
           "{\"mode\": \"applied\", \"items\": ["
           "{\"outcome\": \"unchanged\", \"resource_version\": 20, \"generation\": 1},"
           "{\"outcome\": \"configured\", \"resource_version\": 21, \"generation\": 2}]}");
    assert_int_equal(
        mesh_restore(mesh, (const struct mesh_resource *const *)res, 2, results, &mode), MESH_OK);
    assert_int_equal(mode, MESH_RESTORE_APPLIED);
    assert_int_equal(results[0].outcome, MESH_APPLY_UNCHANGED);
    assert_int_equal(results[1].outcome, MESH_APPLY_CONFIGURED);
    assert_int_equal(results[1].resource_version, 21);

    /* An answer that does not say which way it went is meshd misbehaving. */
    answer(f, 200, "",
           "{\"items\": [{\"outcome\": \"created\", \"resource_version\": 1, \"generation\": 1},"
           "{\"outcome\": \"created\", \"resource_version\": 2, \"generation\": 1}]}");
    assert_int_equal(
        mesh_restore(mesh, (const struct mesh_resource *const *)res, 2, results, &mode),
        MESH_E_INTERNAL);
    assert_non_null(strstr(mesh_last_error(mesh), "the restore answer's mode is missing"));

    answer(f, 409, "",
           "{\"error\": {\"status\": 409, \"reason\": \"Conflict\", \"message\": \"import "
           "Service default/a: no\"}}");
    assert_int_equal(
        mesh_restore(mesh, (const struct mesh_resource *const *)res, 2, results, &mode),
        MESH_E_CONFLICT);
    assert_string_equal(mesh_last_error(mesh), "import Service default/a: no");

    for (int i = 0; i < 2; i++)
        mesh_resource_free(res[i]);
    mesh_free(mesh);
}

/* A meshd older than libmesh has no /v1/restore (404): libmesh restores by /v1/apply instead,
 * without the versions, which would otherwise be read as conditional writes. */
static void test_remote_restore_falls_back_to_apply_on_an_older_meshd(void **state)
{
    struct fake *f = *state;
    struct mesh *mesh = open_remote(f->url, "t");
    struct mesh_resource *res = service("a", 9);
    const struct mesh_resource *one[1] = {res};
    enum mesh_restore_mode mode = MESH_RESTORE_VERSIONS_KEPT;
    char line[512], *body = NULL;

    res->generation = 2;
    answer(f, 404, "",
           "{\"error\": {\"status\": 404, \"reason\": \"NotFound\", \"message\": \"unknown kind "
           "\\\"restore\\\"\"}}");
    pthread_mutex_lock(&f->lock);
    int before = f->requests;
    pthread_mutex_unlock(&f->lock);
    /* The fake answers the apply with the same 404: what matters is what was sent. */
    assert_int_equal(mesh_restore(mesh, one, 1, NULL, &mode), MESH_E_NOTFOUND);
    assert_int_equal(mode, MESH_RESTORE_APPLIED);
    last_request(f, line, sizeof(line), NULL, 0, &body);
    pthread_mutex_lock(&f->lock);
    assert_int_equal(f->requests, before + 2);
    pthread_mutex_unlock(&f->lock);
    assert_string_equal(line, "POST /v1/apply");
    assert_non_null(strstr(body, "\"Service\""));
    assert_null(strstr(body, "resource_version"));
    assert_null(strstr(body, "generation"));
    free(body);
    mesh_resource_free(res);
    mesh_free(mesh);
}

static void test_remote_401_says_how_to_pass_a_token(void **state)
{
    struct fake *f = *state;
    struct mesh_resource *res = service("a", 0);
    const struct mesh_resource *one[1] = {res};
    char head[4096], line[512];

    answer(f, 401, "WWW-Authenticate: Bearer\r\n",
           "{\"error\": {\"status\": 401, \"reason\": \"Unauthorized\", \"message\": \"bad "
           "token\"}}");
    struct mesh *mesh = open_remote(f->url, "wrong");
    assert_int_equal(mesh_apply(mesh, one, 1, NULL), MESH_E_INVALID);
    assert_string_equal(mesh_last_error(mesh),
                        "meshd refused the token (401): pass --token FILE or set MESH_TOKEN_FILE "
                        "to meshd's DATA_DIR/token");
    assert_null(strstr(mesh_last_error(mesh), "wrong"));
    mesh_free(mesh);

    mesh = open_remote(f->url, NULL);
    assert_int_equal(mesh_delete(mesh, MESH_KIND_SERVICE, "a", NULL), MESH_E_INVALID);
    assert_non_null(strstr(mesh_last_error(mesh), "meshd needs a token to delete (401)"));
    last_request(f, line, sizeof(line), head, sizeof(head), NULL);
    assert_null(strstr(head, "Authorization"));
    mesh_free(mesh);
    mesh_resource_free(res);
}

static void test_remote_get_decodes_the_document_with_its_versions(void **state)
{
    struct fake *f = *state;
    struct mesh *mesh = open_remote(f->url, NULL);
    struct mesh_virtual_service *vs = NULL;
    char body[1024], line[512];

    snprintf(body, sizeof(body), vs_json, "payment-service", "prod", 42);
    answer(f, 200, "", body);
    assert_int_equal(mesh_get_virtual_service(mesh, "payment-service", "prod", &vs), MESH_OK);
    assert_string_equal(vs->res.name, "payment-service");
    assert_string_equal(vs->res.ns, "prod");
    assert_int_equal(vs->res.resource_version, 42);
    assert_int_equal(vs->res.generation, 2);
    last_request(f, line, sizeof(line), NULL, 0, NULL);
    assert_string_equal(line, "GET /v1/namespaces/prod/VirtualService/payment-service");
    mesh_virtual_service_free(vs);

    /* meshd's 404 becomes libmesh's usual not-found message. */
    answer(f, 404, "",
           "{\"error\": {\"status\": 404, \"reason\": \"NotFound\", \"message\": "
           "\"VirtualService default/x not found\"}}");
    struct mesh_resource *res = NULL;
    assert_int_equal(mesh_get(mesh, MESH_KIND_VIRTUAL_SERVICE, "x", NULL, &res), MESH_E_NOTFOUND);
    assert_null(res);
    assert_string_equal(mesh_last_error(mesh), "Service not found: VirtualService default/x");

    /* Names are path segments: whatever a caller passes cannot change the route. */
    assert_int_equal(mesh_get(mesh, MESH_KIND_SERVICE, "a b/../c?d", "n s", &res), MESH_E_NOTFOUND);
    last_request(f, line, sizeof(line), NULL, 0, NULL);
    assert_string_equal(line, "GET /v1/namespaces/n%20s/Service/a%20b%2F..%2Fc%3Fd");

    /* A document libmesh cannot read is meshd's fault, said as such. */
    answer(f, 200, "", "{\"apiVersion\": \"mesh.clusterdb.io/v1\", \"kind\": \"Service\"}");
    assert_int_equal(mesh_get(mesh, MESH_KIND_SERVICE, "a", NULL, &res), MESH_E_INTERNAL);
    assert_non_null(strstr(mesh_last_error(mesh), "sent a document libmesh cannot read"));
    mesh_free(mesh);
}

static void test_remote_list_reads_items_in_every_namespace_or_one(void **state)
{
    struct fake *f = *state;
    struct mesh *mesh = open_remote(f->url, NULL);
    struct mesh_resource **list = NULL;
    size_t n = 0;
    char a[1024], b[1024], body[4096], line[512];

    snprintf(a, sizeof(a), vs_json, "web", "default", 5);
    snprintf(b, sizeof(b), vs_json, "api", "prod", 9);
    snprintf(body, sizeof(body), "{\"items\": [%s, %s]}", a, b);
    answer(f, 200, "", body);
    assert_int_equal(mesh_list(mesh, MESH_KIND_VIRTUAL_SERVICE, NULL, &list, &n), MESH_OK);
    last_request(f, line, sizeof(line), NULL, 0, NULL);
    assert_string_equal(line, "GET /v1/VirtualService");
    assert_int_equal(n, 2);
    assert_string_equal(list[0]->name, "web");
    assert_int_equal(list[0]->resource_version, 5);
    assert_string_equal(list[1]->name, "api");
    assert_string_equal(list[1]->ns, "prod");
    mesh_resource_list_free(list, n);

    answer(f, 200, "", "{\"items\": []}");
    assert_int_equal(mesh_list(mesh, MESH_KIND_CIRCUIT_BREAKER, "prod", &list, &n), MESH_OK);
    last_request(f, line, sizeof(line), NULL, 0, NULL);
    assert_string_equal(line, "GET /v1/namespaces/prod/CircuitBreaker");
    assert_int_equal(n, 0);
    mesh_resource_list_free(list, n);

    answer(f, 200, "", "{\"things\": []}");
    assert_int_equal(mesh_list(mesh, MESH_KIND_SERVICE, NULL, &list, &n), MESH_E_INTERNAL);
    assert_non_null(strstr(mesh_last_error(mesh), "has no items"));
    mesh_free(mesh);
}

static void test_remote_delete_sends_delete(void **state)
{
    struct fake *f = *state;
    struct mesh *mesh = open_remote(f->url, "t");
    char body[1024], line[512];

    snprintf(body, sizeof(body), vs_json, "web", "default", 5);
    answer(f, 200, "", body);
    assert_int_equal(mesh_delete_virtual_service(mesh, "web", NULL), MESH_OK);
    last_request(f, line, sizeof(line), NULL, 0, NULL);
    assert_string_equal(line, "DELETE /v1/namespaces/default/VirtualService/web");

    answer(f, 404, "", "{\"error\": {\"status\": 404, \"message\": \"gone\"}}");
    assert_int_equal(mesh_delete_virtual_service(mesh, "web", NULL), MESH_E_NOTFOUND);
    assert_string_equal(mesh_last_error(mesh), "Service not found: VirtualService default/web");
    mesh_free(mesh);
}

static void test_remote_token_comes_from_config_then_file_then_env(void **state)
{
    struct fake *f = *state;
    char path[] = "/tmp/mesh-token-XXXXXX", head[4096], line[512];
    struct mesh_resource **list = NULL;
    size_t n = 0;
    struct mesh *mesh = NULL;
    char *why = NULL;

    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "  filetoken \n# not part of it\n", 30), 30);
    close(fd);
    answer(f, 200, "", "{\"items\": []}");

    setenv("MESH_TOKEN", "envtoken", 1);
    mesh = open_remote(f->url, NULL);
    assert_int_equal(mesh_list(mesh, MESH_KIND_SERVICE, NULL, &list, &n), MESH_OK);
    mesh_resource_list_free(list, n);
    last_request(f, line, sizeof(line), head, sizeof(head), NULL);
    assert_non_null(strstr(head, "Authorization: Bearer envtoken\r\n"));
    mesh_free(mesh);

    setenv("MESH_TOKEN_FILE", path, 1); /* the file beats $MESH_TOKEN */
    mesh = open_remote(f->url, NULL);
    assert_int_equal(mesh_list(mesh, MESH_KIND_SERVICE, NULL, &list, &n), MESH_OK);
    mesh_resource_list_free(list, n);
    last_request(f, line, sizeof(line), head, sizeof(head), NULL);
    assert_non_null(strstr(head, "Authorization: Bearer filetoken\r\n"));
    mesh_free(mesh);

    mesh = open_remote(f->url, "cfgtoken"); /* the config beats both */
    assert_int_equal(mesh_list(mesh, MESH_KIND_SERVICE, NULL, &list, &n), MESH_OK);
    mesh_resource_list_free(list, n);
    last_request(f, line, sizeof(line), head, sizeof(head), NULL);
    assert_non_null(strstr(head, "Authorization: Bearer cfgtoken\r\n"));
    mesh_free(mesh);
    mesh = NULL;

    /* An empty or missing token file is an error at open, naming the file. */
    assert_int_equal(truncate(path, 0), 0);
    struct mesh_config cfg = {.server = f->url};
    assert_int_equal(mesh_new_verbose(&cfg, &mesh, &why), MESH_E_INVALID);
    assert_non_null(strstr(why, path));
    assert_non_null(strstr(why, "is empty"));
    free(why);
    unlink(path);
    assert_int_equal(mesh_new_verbose(&cfg, &mesh, &why), MESH_E_IO);
    assert_non_null(strstr(why, "cannot read the meshd token file"));
    assert_non_null(strstr(why, "$MESH_TOKEN_FILE"));
    free(why);
    assert_null(mesh);
    unsetenv("MESH_TOKEN_FILE");
    unsetenv("MESH_TOKEN");
}

static void test_remote_server_url_forms(void **state)
{
    struct fake *f = *state;
    struct mesh_resource **list = NULL;
    size_t n = 0;
    struct mesh *mesh = NULL;
    char url[96], line[512], *why = NULL;

    /* No scheme and a trailing slash are fine. */
    snprintf(url, sizeof(url), "127.0.0.1:%d/", f->port);
    answer(f, 200, "", "{\"items\": []}");
    mesh = open_remote(url, NULL);
    assert_int_equal(mesh_list(mesh, MESH_KIND_SERVICE, "default", &list, &n), MESH_OK);
    mesh_resource_list_free(list, n);
    last_request(f, line, sizeof(line), NULL, 0, NULL);
    assert_string_equal(line, "GET /v1/namespaces/default/Service");
    mesh_free(mesh);

    const char *bad[] = {"ftp://127.0.0.1:1", "http://", "http://a b", "http://h/?q"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mesh_config cfg = {.server = bad[i]};
        assert_int_equal(mesh_new_verbose(&cfg, &mesh, &why), MESH_E_INVALID);
        assert_non_null(strstr(why, bad[i]));
        free(why);
    }
}

static void test_remote_down_is_unavailable(void **state)
{
    (void)state;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char url[64], want[128];
    struct mesh_resource **list = NULL;
    size_t n = 0;

    /* A port that was free a moment ago. */
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    struct mesh *mesh = open_remote(url, NULL);
    assert_int_equal(mesh_list(mesh, MESH_KIND_SERVICE, NULL, &list, &n), MESH_E_UNAVAILABLE);
    snprintf(want, sizeof(want), "cannot reach meshd at %s: connection refused", url);
    assert_string_equal(mesh_last_error(mesh), want);
    mesh_free(mesh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remote_apply_posts_every_document_and_maps_outcomes),
        cmocka_unit_test(test_remote_error_answers_map_to_errors_with_meshds_message),
        cmocka_unit_test(test_remote_restore_posts_to_restore_and_reads_the_mode),
        cmocka_unit_test(test_remote_restore_falls_back_to_apply_on_an_older_meshd),
        cmocka_unit_test(test_remote_401_says_how_to_pass_a_token),
        cmocka_unit_test(test_remote_get_decodes_the_document_with_its_versions),
        cmocka_unit_test(test_remote_list_reads_items_in_every_namespace_or_one),
        cmocka_unit_test(test_remote_delete_sends_delete),
        cmocka_unit_test(test_remote_token_comes_from_config_then_file_then_env),
        cmocka_unit_test(test_remote_server_url_forms),
        cmocka_unit_test(test_remote_down_is_unavailable),
    };
    return cmocka_run_group_tests(tests, fake_setup, fake_teardown);
}
