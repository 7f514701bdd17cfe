/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl ca status` and `meshctl ca rotate`: meshd's roots, the one that issues, and the root
 * rotation (docs/security.md, "Rotating the root"), started and followed phase by phase. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/xalloc.h"
#include "model/schema.h"
#include "net/http_client.h"
#include "proxies.h"
#include "table.h"

#define POLL_MS            200  /* how often --wait asks meshd how far the rotation is */
#define WAITING_AFTER_MS   2000 /* a phase this old names the proxies it waits for... */
#define WAITING_REPEAT_MS  5000 /* ... when they change, or this often */
#define DEFAULT_TIMEOUT_MS 600000ull
#define REQUEST_TIMEOUT_MS 10000

static int run_ca(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_ca = {
    .name = "ca",
    .summary = "Show meshd's CA roots, or rotate its root with traffic flowing",
    .usage = "Show meshd's CA roots, or rotate its root with traffic flowing.\n"
             "\n"
             "Usage:\n"
             "  meshctl ca status [-o table|json]\n"
             "  meshctl ca rotate [--wait | --no-wait] [--timeout DUR]\n"
             "\n"
             "status  the roots of the trust bundle (name, subject, not after, SHA-256\n"
             "        fingerprint), the root that issues workload certificates, and the root\n"
             "        rotation: its phase, the proxies it waits for and each phase's times.\n"
             "rotate  starts a root rotation in meshd: a new root joins the bundle, every\n"
             "        proxy gets a certificate from it, then the old root is retired. Three\n"
             "        phases, each over once every live proxy has renewed:\n"
             "          prepare  every proxy trusts the old and the new root\n"
             "          switch   every proxy holds a certificate from the new root\n"
             "          retire   every proxy trusts the new root only\n"
             "        Traffic keeps flowing throughout. Named CAs (meshd --ca) are not rotated.\n"
             "\n"
             "Run 'meshctl ca status --help' or 'meshctl ca rotate --help' for their flags.\n"
             "Needs meshd: --server URL, else $MESH_SERVER, else " CLI_DEFAULT_SERVER ";\n"
             "rotate needs its token (--token FILE, $MESH_TOKEN_FILE or $MESH_TOKEN).\n",
    .run = run_ca,
};

static const char status_usage[] =
    "Show meshd's CA: the roots of the trust bundle, the root that issues workload\n"
    "certificates, and the state of the root rotation.\n"
    "\n"
    "Usage:\n"
    "  meshctl ca status [-o table|json]\n"
    "\n"
    "Flags:\n"
    "  -o, --output FORMAT   table (default) or json (meshd's GET /v1/ca, without the PEM\n"
    "                        bundle)\n"
    "      --server URL      meshd (default $MESH_SERVER, else " CLI_DEFAULT_SERVER ")\n"
    "      --token FILE      meshd's token, when reads need one\n"
    "  -h, --help            show this help\n";

static const char rotate_usage[] =
    "Rotate meshd's root CA with traffic flowing.\n"
    "\n"
    "meshd makes a new root and moves through three phases, each over once every live proxy\n"
    "has renewed its certificate (and two heartbeat intervals more): prepare (the bundle holds\n"
    "both roots, the old one signs), switch (the new one signs), retire (the bundle holds the\n"
    "new root only); then the old root's files go to DATA_DIR/ca/retired/. meshd moves the\n"
    "rotation on by itself, also after a restart; a proxy that does not renew holds it up (it\n"
    "is named while it does) rather than being cut off. Named CAs (meshd --ca) are not\n"
    "rotated.\n"
    "\n"
    "Usage:\n"
    "  meshctl ca rotate [--wait | --no-wait] [--timeout DUR]\n"
    "\n"
    "Flags:\n"
    "      --wait           follow the rotation, printing each phase as it ends, until it is\n"
    "                       complete (the default); exit 0 then\n"
    "      --no-wait        return once meshd has started it\n"
    "      --timeout DUR    stop following after DUR (default 10m): exit 1, naming the\n"
    "                       proxies it waits for; the rotation goes on in meshd\n"
    "      --server URL     meshd (default $MESH_SERVER, else " CLI_DEFAULT_SERVER ")\n"
    "      --token FILE     meshd's token (default $MESH_TOKEN_FILE, else $MESH_TOKEN)\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit status: 0 rotated (or started, with --no-wait); 1 meshd unreachable, a rotation\n"
    "already running (409), a refused token (401), or the timeout; 2 a wrong command line.\n";

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* One call to meshd: MESH_OK when it answered (any status; *status, and *doc its JSON body or
 * NULL). Otherwise *why (caller frees) says why in words naming meshd's URL; MESH_E_IO when the
 * token file cannot be read (cli_token printed why). Prints nothing else. */
static enum mesh_err call(const struct cli_ctx *ctx, const char *method, const char *path,
                          long *status, json_t **doc, char **why)
{
    char *token = NULL, *base = cli_meshd_url(ctx), *url = NULL, *msg = NULL;
    struct mesh_http_response resp = {0};
    enum mesh_err err = MESH_E_IO;
    *doc = NULL;
    *why = NULL;
    if (!cli_token(ctx, &token)) {
        *why = xstrdup("no usable token (see above)");
        goto out;
    }
    url = xasprintf("%s%s", base, path);
    struct mesh_http_request req = {
        .method = method,
        .url = url,
        .peer_name = "meshd",
        .token = token,
        .connect_timeout_ms = 3000,
        .timeout_ms = REQUEST_TIMEOUT_MS,
        .ca_file = cli_cacert(ctx),
    };
    err = mesh_http_do(&req, &resp, &msg);
    if (err != MESH_OK) {
        *why = msg ? msg : xasprintf("cannot reach meshd at %s: %s", base, mesh_strerror(err));
        msg = NULL;
        goto out;
    }
    *status = resp.status;
    *doc = json_loadb(resp.body, resp.body_len, 0, NULL);
    if (resp.status >= 300)
        *why = mesh_http_error_message(resp.status, resp.body, resp.body_len);
out:
    mesh_http_response_clear(&resp);
    free(msg);
    free(url);
    free(base);
    free(token);
    return err;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static const char *str_or_dash(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : "-";
}

static json_int_t num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* "1.2s", "350ms": how long a phase took. */
static void format_took(json_int_t ms, char *buf, size_t size)
{
    if (ms < 1000)
        snprintf(buf, size, "%lldms", (long long)ms);
    else
        snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
}

/* "a, b, c" of a JSON array of strings. Caller frees. */
static char *join(const json_t *list)
{
    char *out = xstrdup("");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const char *name = json_string_value(json_array_get(list, i));
        char *next = xasprintf("%s%s%s", out, i ? ", " : "", name ? name : "?");
        free(out);
        out = next;
    }
    return out;
}

/* meshd's words for a refused request, with what to do about the usual ones. */
static int refused(long status, const char *why, const char *what)
{
    if (status == 401 && why && strstr(why, "wrong"))
        return cli_error("meshd refused the token (401): pass --token FILE or set "
                         "MESH_TOKEN_FILE to meshd's DATA_DIR/token");
    if (status == 401)
        return cli_error("meshd needs a token to %s (401): pass --token FILE or set "
                         "MESH_TOKEN_FILE to meshd's DATA_DIR/token",
                         what);
    return cli_error("meshd answered %ld to %s: %s", status, what, why ? why : "");
}

static int unreachable(const char *why)
{
    cli_error("%s", why);
    fputs("meshctl ca needs meshd: start it (meshd --data-dir DIR) or point --server or "
          "$MESH_SERVER at it\n",
          stderr);
    return CLI_EXIT_ERROR;
}

/* --- status --- */

static const char *phase_words(const char *phase)
{
    if (strcmp(phase, "prepare") == 0)
        return "every proxy trusts the old and the new root";
    if (strcmp(phase, "switch") == 0)
        return "every proxy holds a certificate from the new root";
    if (strcmp(phase, "retire") == 0)
        return "every proxy trusts the new root only";
    return "";
}

static void print_status(const json_t *doc)
{
    const json_t *roots = json_object_get(doc, "roots");
    const json_t *rot = json_object_get(doc, "rotation");
    printf("Trust domain:  %s\n", str(doc, "trust_domain"));
    printf("Issuing root:  %s\n\n", str(doc, "issuing_root"));

    struct cli_table t;
    cli_table_init(&t, 5);
    const char *head[] = {"NAME", "SUBJECT", "NOT AFTER", "SHA-256 FINGERPRINT", "ISSUING"};
    for (size_t i = 0; i < 5; i++)
        cli_table_add(&t, head[i]);
    for (size_t i = 0; i < json_array_size(roots); i++) {
        const json_t *r = json_array_get(roots, i);
        cli_table_add(&t, str(r, "name"));
        cli_table_add(&t, str(r, "subject"));
        cli_table_add(&t, str(r, "not_after"));
        cli_table_add(&t, str(r, "sha256_fingerprint"));
        cli_table_add(&t, json_is_true(json_object_get(r, "issuing")) ? "yes" : "no");
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);

    if (!json_is_object(rot))
        return;
    const char *phase = str(rot, "phase");
    json_int_t id = num(rot, "id");
    printf("\n");
    if (id == 0) {
        printf("Rotation:      none yet (meshctl ca rotate starts one)\n");
        return;
    }
    if (strcmp(phase, "idle") == 0) {
        printf("Rotation:      rotation %lld complete (started %s, completed %s); generation "
               "%lld\n",
               (long long)id, str_or_dash(rot, "started"), str_or_dash(rot, "completed"),
               (long long)num(rot, "generation"));
    } else {
        const json_t *waiting = json_object_get(rot, "waiting_for");
        char *names = join(waiting);
        printf("Rotation:      rotation %lld in phase %s (generation %lld), started %s\n",
               (long long)id, phase, (long long)num(rot, "generation"),
               str_or_dash(rot, "started"));
        printf("               until %s\n", phase_words(phase));
        if (json_array_size(waiting))
            printf("Waiting for:   %zu of %lld live proxies: %s\n", json_array_size(waiting),
                   (long long)num(rot, "live_proxies"), names);
        else
            printf("Waiting for:   none of %lld live proxies (the phase ends shortly)\n",
                   (long long)num(rot, "live_proxies"));
        free(names);
    }
    const json_t *phases = json_object_get(rot, "phases");
    cli_table_init(&t, 6);
    const char *phead[] = {"PHASE", "GENERATION", "STARTED", "COMPLETED", "TOOK", "PROXIES"};
    for (size_t i = 0; i < 6; i++)
        cli_table_add(&t, phead[i]);
    for (size_t i = 0; i < json_array_size(phases); i++) {
        const json_t *p = json_array_get(phases, i);
        char took[32] = "-";
        bool done = json_is_string(json_object_get(p, "completed"));
        if (done)
            format_took(num(p, "duration_ms"), took, sizeof(took));
        cli_table_add(&t, str(p, "phase"));
        cli_table_addf(&t, "%lld", (long long)num(p, "generation"));
        cli_table_add(&t, str_or_dash(p, "started"));
        cli_table_add(&t, str_or_dash(p, "completed"));
        cli_table_add(&t, took);
        if (done)
            cli_table_addf(&t, "%lld", (long long)num(p, "proxies"));
        else
            cli_table_add(&t, "-");
    }
    printf("\n");
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static int run_status(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_ca;
    bool json = false;
    int c, rc = CLI_EXIT_OK;
    long status = 0;
    json_t *doc = NULL;
    char *why = NULL;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            rc = cli_output_json(cmd, optarg, &json);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        case 'h':
            fputs(status_usage, stdout);
            return CLI_EXIT_OK;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    rc = CLI_EXIT_OK; /* a global flag left CLI_CONTINUE in rc */
    if (optind < argc)
        return cli_usage_error(cmd, "ca status takes no arguments, not \"%s\"", argv[optind]);
    if (!cli_server(ctx) && ctx->store_dir)
        return cli_usage_error(cmd, "ca needs meshd (--server URL): an embedded store has no CA");
    enum mesh_err err = call(ctx, "GET", "/v1/ca", &status, &doc, &why);
    if (err != MESH_OK) {
        rc = err == MESH_E_IO ? CLI_EXIT_ERROR : unreachable(why);
        goto out;
    }
    if (status != 200 || !json_is_object(doc)) {
        rc = status != 200 ? refused(status, why, "read its CA")
                           : cli_error("meshd's answer to GET /v1/ca is not a JSON object");
        goto out;
    }
    if (json) {
        json_object_del(doc, "trust_bundle");
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!text) {
            rc = cli_error("out of memory");
            goto out;
        }
        puts(text);
        free(text);
    } else {
        print_status(doc);
    }
out:
    json_decref(doc);
    free(why);
    return rc;
}

/* --- rotate --- */

/* What --wait has printed and seen so far. */
struct follow {
    json_int_t id;  /* our rotation */
    size_t printed; /* phases printed */
    char *waiting;  /* the last lagging list printed ("" none) */
    uint64_t waiting_ms;
    char phase[16]; /* the phase last seen, and since when (our clock) */
    uint64_t phase_ms;
    bool outage; /* meshd unreachable, said once */
};

/* Prints the phases that ended since the last call. */
static void print_phases(struct follow *f, const json_t *rot)
{
    const json_t *phases = json_object_get(rot, "phases");
    for (; f->printed < json_array_size(phases); f->printed++) {
        const json_t *p = json_array_get(phases, f->printed);
        if (!json_is_string(json_object_get(p, "completed")))
            break;
        char took[32];
        format_took(num(p, "duration_ms"), took, sizeof(took));
        printf("%-8s done in %s: %s (%lld live prox%s)\n", str(p, "phase"), took,
               phase_words(str(p, "phase")), (long long)num(p, "proxies"),
               num(p, "proxies") == 1 ? "y" : "ies");
        fflush(stdout);
    }
}

/* Says which proxies hold the current phase up, when that changed or some time passed. */
static void print_waiting(struct follow *f, const json_t *rot)
{
    const json_t *waiting = json_object_get(rot, "waiting_for");
    char *names = join(waiting);
    uint64_t now = mono_ms();
    if (strcmp(f->phase, str(rot, "phase")) != 0) {
        snprintf(f->phase, sizeof(f->phase), "%s", str(rot, "phase"));
        f->phase_ms = now;
    }
    /* Proxies renew within moments of a phase's start: only a phase that lasts names them. */
    if (*names && now - f->phase_ms >= WAITING_AFTER_MS &&
        (strcmp(names, f->waiting) != 0 || now - f->waiting_ms >= WAITING_REPEAT_MS)) {
        printf("%-8s waiting for %zu prox%s: %s\n", str(rot, "phase"), json_array_size(waiting),
               json_array_size(waiting) == 1 ? "y" : "ies", names);
        fflush(stdout);
        f->waiting_ms = now;
    }
    free(f->waiting);
    f->waiting = names;
}

/* Follows rotation f->id until it is complete (0), or the deadline (1). */
static int follow_rotation(const struct cli_ctx *ctx, struct follow *f, uint64_t timeout_ms,
                           uint64_t started)
{
    uint64_t deadline = started + timeout_ms;
    json_t *last = NULL;
    int rc = CLI_EXIT_ERROR;
    for (;;) {
        long status = 0;
        json_t *doc = NULL;
        char *why = NULL;
        enum mesh_err err = call(ctx, "GET", "/v1/ca", &status, &doc, &why);
        const json_t *rot =
            err == MESH_OK && status == 200 ? json_object_get(doc, "rotation") : NULL;
        if (err == MESH_E_IO) {
            free(why);
            json_decref(doc);
            break;
        }
        if (!json_is_object(rot)) {
            if (!f->outage) {
                fprintf(stderr,
                        "meshd does not answer (%s): the rotation goes on when it is back; "
                        "still following\n",
                        why ? why : "no rotation status");
                f->outage = true;
            }
        } else {
            if (f->outage)
                fprintf(stderr, "meshd answers again\n");
            f->outage = false;
            json_int_t id = num(rot, "id");
            if (id == f->id)
                print_phases(f, rot);
            if (id != f->id || strcmp(str(rot, "phase"), "idle") == 0) {
                char took[32];
                format_took((json_int_t)(mono_ms() - started), took, sizeof(took));
                printf("Root rotation %lld complete in %s: every proxy trusts the new root and "
                       "no longer the old one, whose files are in DATA_DIR/ca/retired/.\n",
                       (long long)f->id, took);
                rc = CLI_EXIT_OK;
                free(why);
                json_decref(doc);
                break;
            }
            print_waiting(f, rot);
            json_decref(last);
            last = json_incref((json_t *)rot);
        }
        free(why);
        json_decref(doc);
        if (mono_ms() >= deadline) {
            char dur[32];
            cli_format_duration(timeout_ms, dur, sizeof(dur));
            char *names = last ? join(json_object_get(last, "waiting_for")) : xstrdup("");
            cli_error("root rotation %lld is not complete after %s (phase %s%s%s): it goes on in "
                      "meshd; follow it with 'meshctl ca status'",
                      (long long)f->id, dur, last ? str(last, "phase") : "unknown",
                      *names ? ", waiting for " : "", names);
            free(names);
            break;
        }
        sleep_ms(POLL_MS);
    }
    json_decref(last);
    return rc;
}

/* 409: says which rotation runs and how far it is, from GET /v1/ca (meshd's words without). */
static int already_running(const struct cli_ctx *ctx, const char *meshd_says)
{
    long status = 0;
    json_t *doc = NULL;
    char *why = NULL;
    int rc;
    const json_t *rot = call(ctx, "GET", "/v1/ca", &status, &doc, &why) == MESH_OK && status == 200
                            ? json_object_get(doc, "rotation")
                            : NULL;
    if (json_is_object(rot)) {
        char *names = join(json_object_get(rot, "waiting_for"));
        rc = cli_error("a root rotation is running already (rotation %lld, phase %s%s%s): "
                       "'meshctl ca status' shows how far it is",
                       (long long)num(rot, "id"), str(rot, "phase"), *names ? ", waiting for " : "",
                       names);
        free(names);
    } else {
        rc = cli_error("%s", meshd_says ? meshd_says : "a root rotation is running already");
    }
    json_decref(doc);
    free(why);
    return rc;
}

static int run_rotate(struct cli_ctx *ctx, int argc, char **argv)
{
    enum { OPT_WAIT = 1000, OPT_NO_WAIT, OPT_TIMEOUT };
    static const struct option opts[] = {
        {"wait", no_argument, NULL, OPT_WAIT},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_ca;
    bool wait = true;
    unsigned long long timeout_ms = DEFAULT_TIMEOUT_MS;
    int c, rc = CLI_EXIT_OK;
    long status = 0;
    json_t *doc = NULL;
    char *why = NULL;
    struct follow f = {.waiting = xstrdup("")};

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_WAIT:
        case OPT_NO_WAIT:
            wait = c == OPT_WAIT;
            break;
        case OPT_TIMEOUT: {
            char msg[256];
            if (!mesh_duration_parse(optarg, &timeout_ms, msg, sizeof(msg)) || timeout_ms == 0) {
                rc = cli_usage_error(cmd, "--timeout: %s",
                                     timeout_ms == 0 ? "must be more than 0" : msg);
                goto out;
            }
            break;
        }
        case 'h':
            fputs(rotate_usage, stdout);
            rc = CLI_EXIT_OK; /* a global flag may have left CLI_CONTINUE in rc */
            goto out;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                goto out;
            break;
        }
    }
    rc = CLI_EXIT_OK; /* a global flag left CLI_CONTINUE in rc */
    if (optind < argc) {
        rc = cli_usage_error(cmd, "ca rotate takes no arguments, not \"%s\"", argv[optind]);
        goto out;
    }
    if (!cli_server(ctx) && ctx->store_dir) {
        rc = cli_usage_error(cmd, "ca needs meshd (--server URL): an embedded store has no CA");
        goto out;
    }
    uint64_t started = mono_ms();
    enum mesh_err err = call(ctx, "POST", "/v1/ca/rotate", &status, &doc, &why);
    if (err != MESH_OK) {
        rc = err == MESH_E_IO ? CLI_EXIT_ERROR : unreachable(why);
        goto out;
    }
    if (status == 409) {
        rc = already_running(ctx, why);
        goto out;
    }
    if (status != 202 || !json_is_object(json_object_get(doc, "rotation"))) {
        rc = refused(status, why, "start a root rotation");
        goto out;
    }
    const json_t *rot = json_object_get(doc, "rotation");
    const json_t *roots = json_object_get(doc, "roots");
    f.id = num(rot, "id");
    printf("Root rotation %lld started", (long long)f.id);
    for (size_t i = 0; i < json_array_size(roots); i++) {
        const json_t *r = json_array_get(roots, i);
        if (strcmp(str(r, "name"), "mesh-root-next") == 0)
            printf(": the new root is %s (SHA-256 %s)", str(r, "subject"),
                   str(r, "sha256_fingerprint"));
    }
    printf(".\n");
    fflush(stdout);
    if (!wait) {
        printf("meshd moves it on by itself; 'meshctl ca status' shows how far it is.\n");
        goto out;
    }
    rc = follow_rotation(ctx, &f, timeout_ms, started);
out:
    free(f.waiting);
    json_decref(doc);
    free(why);
    return rc;
}

static int run_ca(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (!sub)
        return cli_usage_error(&cli_cmd_ca, "ca needs a subcommand: status or rotate");
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0)
        return cli_help(&cli_cmd_ca);
    if (strcmp(sub, "status") == 0)
        return run_status(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "rotate") == 0)
        return run_rotate(ctx, argc - 1, argv + 1);
    return cli_usage_error(&cli_cmd_ca,
                           "unknown subcommand \"%s\" for \"meshctl ca\" (status or "
                           "rotate)",
                           sub);
}
