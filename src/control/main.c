/* SPDX-License-Identifier: Apache-2.0 */
/* meshd: flags, the data directory (store, admin token, lock, CA), signals and the event loop
 * that serves the REST API. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "ca.h"
#include "ca_rotation.h"
#include "core/xalloc.h"
#include "http/server.h"
#include "mesh/mesh.h"
#include "model/schema.h"
#include "net/loop.h"
#include "net/sock.h"
#include "net/tls.h"
#include "store/store.h"

#define TOKEN_BYTES     32
#define TOKEN_MAX       512
#define DEFAULT_LISTEN  "127.0.0.1:15010"
#define MAX_BODY_LIMIT  (1024ull * 1024 * 1024)
#define MAX_CONNECTIONS 1000000ull
#define CERT_TTL_MIN_MS (10ull * 1000)
#define CERT_TTL_MAX_MS (90ull * 24 * 3600 * 1000)

static const char usage[] =
    "Usage: meshd --data-dir DIR [options]\n"
    "\n"
    "The ClusterDB Mesh control plane: the REST API of docs/api.md over the store in DIR, the\n"
    "proxy registry, and the config watch every meshproxy holds.\n"
    "\n"
    "  --data-dir DIR              store (DIR/mesh.db) and admin token (DIR/token, created\n"
    "                              mode 0600 on first start); created when absent\n"
    "  --listen ADDR               API address (default " DEFAULT_LISTEN "; port 0 picks one)\n"
    "  --auth-reads                GET needs the token from loopback peers too\n"
    "  --max-body BYTES            largest request body, e.g. 4MiB (default 4MiB): 413\n"
    "  --rate N                    requests per second per peer address (default 1000; 0 = no\n"
    "                              limit): 429 with Retry-After\n"
    "  --burst N                   requests a peer may send at once (default 2000)\n"
    "  --max-connections N         open client connections (default 4096); more get 503\n"
    "  --heartbeat-ttl DUR         registrations without a heartbeat this long are removed\n"
    "                              (default 3s)\n"
    "  --heartbeat-interval DUR    how often proxies are told to heartbeat (default 1s)\n"
    "  --header-timeout DUR        a request must arrive within this (default 10s)\n"
    "  --idle-timeout DUR          idle keep-alive connections close after this (default 60s)\n"
    "  --trust-domain TD           trust domain of the workload identities,\n"
    "                              spiffe://TD/ns/NAMESPACE/sa/NAME (default cluster.local)\n"
    "  --cert-ttl DUR              lifetime of a workload certificate, 10s to 2160h (90 days;\n"
    "                              default 24h)\n"
    "  --ca NAME=CERT,KEY          a CA that SecurityPolicies may name in\n"
    "                              mtls.certificate_authority: its PEM certificate and key\n"
    "                              (repeatable); meshd's own root lives in DIR/ca\n"
    "  --tls-cert FILE             serve the API over HTTPS with this PEM certificate (the\n"
    "                              leaf first, then its intermediates); needs --tls-key\n"
    "  --tls-key FILE              the certificate's unencrypted PEM key (mode 0600)\n"
    "  --version                   print the version\n"
    "  -h, --help                  this help\n"
    "\n"
    "It prints \"meshd: listening on ADDR\" (https://ADDR with TLS) on stderr once it serves. "
    "SIGTERM or SIGINT stops\n"
    "it (exit 0); proxies keep serving their last config meanwhile.\n";

/* One --ca NAME=CERT,KEY. */
struct ca_flag {
    char *name, *cert, *key;
};

struct options {
    const char *data_dir;
    const char *listen;
    bool auth_reads;
    size_t max_body;
    double rate, burst;
    size_t max_connections;
    uint64_t ttl_ms, interval_ms, header_timeout_ms, idle_timeout_ms;
    const char *trust_domain;
    uint64_t cert_ttl_ms;
    struct ca_flag *cas;
    size_t n_cas;
    const char *tls_cert, *tls_key;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "meshd: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nRun 'meshd --help' for usage.\n");
    va_end(ap);
    return 2;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "meshd: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* "4194304", "4096KiB", "4MiB", "1GiB" (K/M/G and KB/MB/GB mean the same powers of 1024). */
static bool parse_bytes(const char *text, unsigned long long *out)
{
    static const struct {
        const char *suffix;
        unsigned long long mul;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"K", 1ull << 10},
                 {"KB", 1ull << 10},
                 {"KiB", 1ull << 10},
                 {"M", 1ull << 20},
                 {"MB", 1ull << 20},
                 {"MiB", 1ull << 20},
                 {"G", 1ull << 30},
                 {"GB", 1ull << 30},
                 {"GiB", 1ull << 30}};
    char *end = NULL;
    if (text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno)
        return false;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > MAX_BODY_LIMIT / units[i].mul)
                return false;
            *out = v * units[i].mul;
            return true;
        }
    }
    return false;
}

static bool parse_count(const char *text, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    if (text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_number(const char *text, double *out)
{
    char *end = NULL;
    if (!((text[0] >= '0' && text[0] <= '9') || text[0] == '.'))
        return false;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *end || v < 0 || v > 1e9)
        return false;
    *out = v;
    return true;
}

enum {
    OPT_DATA_DIR = 1000,
    OPT_LISTEN,
    OPT_AUTH_READS,
    OPT_MAX_BODY,
    OPT_RATE,
    OPT_BURST,
    OPT_MAX_CONNECTIONS,
    OPT_TTL,
    OPT_INTERVAL,
    OPT_HEADER_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_TRUST_DOMAIN,
    OPT_CERT_TTL,
    OPT_CA,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_VERSION,
};

static void free_ca_flags(struct options *o)
{
    for (size_t i = 0; i < o->n_cas; i++) {
        free(o->cas[i].name);
        free(o->cas[i].cert);
        free(o->cas[i].key);
    }
    free(o->cas);
    o->cas = NULL;
    o->n_cas = 0;
}

/* --ca NAME=CERT,KEY: the name a SecurityPolicy's mtls.certificate_authority uses, then the
 * files (split at the first comma). 0, or 2 after the usage message. */
static int parse_ca_flag(const char *arg, struct options *o)
{
    char why[256];
    const char *eq = strchr(arg, '=');
    const char *comma = eq ? strchr(eq + 1, ',') : NULL;
    if (!eq || !comma || comma == eq + 1 || !comma[1])
        return usage_error("--ca: \"%s\" is not NAME=CERT,KEY (a CA's name, its PEM certificate "
                           "file and its PEM key file)",
                           arg);
    char *name = xstrndup(arg, (size_t)(eq - arg));
    int rc = 0;
    if (!mesh_text_ok(MESH_CHECK_DNS_LABEL, name, why, sizeof(why))) {
        rc = usage_error("--ca: %s", why);
    } else if (strcmp(name, MESH_CA_ROOT_NAME) == 0 || strcmp(name, MESH_CA_NEXT_ROOT_NAME) == 0) {
        rc = usage_error("--ca: \"%s\" is the name of meshd's own root (DIR/ca); choose another",
                         name);
    } else {
        for (size_t i = 0; i < o->n_cas && rc == 0; i++)
            if (strcmp(o->cas[i].name, name) == 0)
                rc = usage_error("--ca: %s is given twice", name);
    }
    if (rc != 0) {
        free(name);
        return rc;
    }
    o->cas = xrealloc(o->cas, (o->n_cas + 1) * sizeof(*o->cas));
    o->cas[o->n_cas++] = (struct ca_flag){
        .name = name,
        .cert = xstrndup(eq + 1, (size_t)(comma - eq - 1)),
        .key = xstrdup(comma + 1),
    };
    return 0;
}

/* -1 to go on, else the exit code. */
static int parse_flags(int argc, char **argv, struct options *o)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"auth-reads", no_argument, NULL, OPT_AUTH_READS},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"rate", required_argument, NULL, OPT_RATE},
        {"burst", required_argument, NULL, OPT_BURST},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"heartbeat-ttl", required_argument, NULL, OPT_TTL},
        {"heartbeat-interval", required_argument, NULL, OPT_INTERVAL},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"trust-domain", required_argument, NULL, OPT_TRUST_DOMAIN},
        {"cert-ttl", required_argument, NULL, OPT_CERT_TTL},
        {"ca", required_argument, NULL, OPT_CA},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool interval_set = false;
    int opt, idx = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, &idx)) != -1) {
        unsigned long long v = 0;
        uint64_t *dur = NULL;
        switch (opt) {
        case OPT_DATA_DIR:
            o->data_dir = optarg;
            break;
        case OPT_LISTEN:
            o->listen = optarg;
            break;
        case OPT_AUTH_READS:
            o->auth_reads = true;
            break;
        case OPT_MAX_BODY:
            if (!parse_bytes(optarg, &v) || v == 0)
                return usage_error("--max-body: \"%s\" is not a size from 1 byte to 1GiB (like "
                                   "4194304, 512KiB or 4MiB)",
                                   optarg);
            o->max_body = (size_t)v;
            break;
        case OPT_RATE:
            if (!parse_number(optarg, &o->rate))
                return usage_error("--rate: \"%s\" is not a number of requests per second (0 "
                                   "turns the limit off)",
                                   optarg);
            break;
        case OPT_BURST:
            if (!parse_number(optarg, &o->burst) || o->burst < 1)
                return usage_error("--burst: \"%s\" is not a number of requests of at least 1",
                                   optarg);
            break;
        case OPT_MAX_CONNECTIONS:
            if (!parse_count(optarg, MAX_CONNECTIONS, &v) || v == 0)
                return usage_error("--max-connections: \"%s\" is not a number from 1 to %llu",
                                   optarg, MAX_CONNECTIONS);
            o->max_connections = (size_t)v;
            break;
        case OPT_TTL:
            dur = &o->ttl_ms;
            break;
        case OPT_INTERVAL:
            dur = &o->interval_ms;
            interval_set = true;
            break;
        case OPT_HEADER_TIMEOUT:
            dur = &o->header_timeout_ms;
            break;
        case OPT_IDLE_TIMEOUT:
            dur = &o->idle_timeout_ms;
            break;
        case OPT_TRUST_DOMAIN: {
            char why[512];
            if (!mesh_ca_trust_domain_valid(optarg, why, sizeof(why)))
                return usage_error("--trust-domain: %s", why);
            o->trust_domain = optarg;
            break;
        }
        case OPT_CERT_TTL: {
            char why[256];
            unsigned long long ms = 0;
            if (!mesh_duration_parse(optarg, &ms, why, sizeof(why)))
                return usage_error("--cert-ttl: %s", why);
            if (ms < CERT_TTL_MIN_MS || ms > CERT_TTL_MAX_MS)
                return usage_error("--cert-ttl: \"%s\" must be from 10s to 2160h (90 days)",
                                   optarg);
            o->cert_ttl_ms = ms;
            break;
        }
        case OPT_CA:
            if (parse_ca_flag(optarg, o) != 0)
                return 2;
            break;
        case OPT_TLS_CERT:
        case OPT_TLS_KEY:
            if (!optarg[0])
                return usage_error("--%s needs a file", opts[idx].name);
            *(opt == OPT_TLS_CERT ? &o->tls_cert : &o->tls_key) = optarg;
            break;
        case OPT_VERSION:
            printf("meshd %s\n", MESH_VERSION);
            return 0;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown flag %s", argv[optind - 1]);
        }
        if (dur) {
            char why[256];
            unsigned long long ms = 0;
            if (!mesh_duration_parse(optarg, &ms, why, sizeof(why)))
                return usage_error("--%s: %s", opts[idx].name, why);
            if (ms == 0 || ms > MESH_DURATION_MAX_MS)
                return usage_error("--%s: \"%s\" must be more than 0 and at most 24h",
                                   opts[idx].name, optarg);
            *dur = ms;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument \"%s\"", argv[optind]);
    if (!o->data_dir || !o->data_dir[0])
        return usage_error("--data-dir DIR is required (where the store and the token live)");
    if (!o->tls_cert != !o->tls_key)
        return usage_error("%s needs %s too: HTTPS takes a certificate and its key",
                           o->tls_cert ? "--tls-cert" : "--tls-key",
                           o->tls_cert ? "--tls-key KEY" : "--tls-cert CERT");
    /* Three heartbeats per TTL, so that one lost heartbeat does not expire a proxy. */
    if (!interval_set && o->interval_ms * 3 > o->ttl_ms)
        o->interval_ms = o->ttl_ms / 3 ? o->ttl_ms / 3 : 1;
    if (o->interval_ms >= o->ttl_ms)
        return usage_error("--heartbeat-interval (%" PRIu64 "ms) must be shorter than "
                           "--heartbeat-ttl (%" PRIu64 "ms), or every proxy would lapse",
                           o->interval_ms, o->ttl_ms);
    return -1;
}

/* --- the data directory --- */

/* Holds DIR/meshd.lock for the life of the process: one meshd per data directory, because the
 * registry lives in memory and two meshds would each know half of the proxies. */
static int lock_data_dir(const char *dir, int *out_fd)
{
    char *path = xasprintf("%s/meshd.lock", dir);
    int rc = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = fail("cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        rc = fail("%s is in use by another meshd%s%s%s: one meshd per data directory", dir,
                  pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        close(fd);
        goto out;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        fprintf(stderr, "lvl=warn msg=\"cannot write the pid to %s\" reason=\"%s\"\n", path,
                strerror(errno));
    *out_fd = fd;
out:
    free(path);
    return rc;
}

static bool token_text_ok(const char *t, size_t len)
{
    if (len < 16 || len > TOKEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (t[i] <= ' ' || t[i] > '~')
            return false;
    return true;
}

/* Reads DIR/token: 0 with *out set, -1 when absent, else 1 after a message. */
static int read_token(const char *path, char **out)
{
    char buf[TOKEN_MAX + 2];
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return -1;
        return fail("cannot read %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return fail("%s is not a regular file", path);
    }
    if (sb.st_mode & 077) {
        close(fd);
        return fail("%s is accessible to other users (mode %04o): the admin token must be "
                    "private; run chmod 600 %s",
                    path, (unsigned)(sb.st_mode & 07777), path);
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return fail("cannot read %s: %s", path, strerror(errno));
    size_t len = (size_t)n;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    buf[len] = '\0';
    if (!token_text_ok(buf, len))
        return fail("%s does not hold a token (16 to %d printable characters, no spaces; meshd "
                    "writes 64 hex digits): fix it, or delete it to have a new one made",
                    path, TOKEN_MAX);
    *out = xstrdup(buf);
    return 0;
}

/* Writes a new random token to path, atomically: a crash leaves no half-written token. 0 when
 * written, -1 when another meshd made one first, else an exit code. */
static int create_token(const char *dir, const char *path)
{
    unsigned char raw[TOKEN_BYTES];
    char hex[TOKEN_BYTES * 2 + 2];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail("cannot make a token: getrandom: %s", strerror(errno));
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[TOKEN_BYTES * 2] = '\n';
    hex[TOKEN_BYTES * 2 + 1] = '\0';

    char *tmp = xasprintf("%s/.token.%ld.tmp", dir, (long)getpid());
    int rc = 0;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = fail("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(hex);
    bool ok = fchmod(fd, 0600) == 0 && write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok) {
        rc = fail("cannot write %s: %s", tmp, strerror(saved));
        goto out;
    }
    if (link(tmp, path) != 0) {
        rc = errno == EEXIST ? -1 : fail("cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the new name survives a crash too */
        close(dfd);
    }
    fprintf(stderr, "lvl=info msg=\"created the admin token\" path=%s\n", path);
out:
    unlink(tmp);
    free(tmp);
    return rc;
}

static int load_token(const char *dir, char **out)
{
    char *path = xasprintf("%s/token", dir);
    int rc = read_token(path, out);
    if (rc == -1) {
        rc = create_token(dir, path);
        if (rc <= 0)
            rc = read_token(path, out);
        if (rc == -1)
            rc = fail("%s vanished while meshd was creating it", path);
    }
    free(path);
    return rc;
}

/* --- the CAs --- */

/* Opens meshd's root in DIR/ca (made on first start) with any root rotation in progress, and
 * the --ca CAs into set, and logs what each is: never a key. 0, or 1 after a message. */
static int open_cas(const struct options *o, struct mesh_ca_set *set,
                    struct mesh_ca_rotation **rotation)
{
    char *dir = xasprintf("%s/ca", o->data_dir), *errmsg = NULL;
    char when[MESH_CA_TIME_LEN];
    struct mesh_ca *ca = NULL;
    bool created = false;
    time_t now = time(NULL);
    int rc = 0;

    if (mesh_ca_rotation_open(dir, o->trust_domain, now, mesh_api_wall_ms(), set, rotation,
                              &created, &errmsg) != MESH_OK) {
        rc = fail("the mesh CA: %s", errmsg);
        goto out;
    }
    ca = set->items[0];
    mesh_ca_format_time(mesh_ca_not_after(ca), when, sizeof(when));
    /* In a rotation's last phase the root in use is the incoming one, still in its own files. */
    bool incoming = mesh_ca_rotation_phase(*rotation) == MESH_CA_PHASE_RETIRE;
    fprintf(stderr,
            "lvl=info msg=\"%s the mesh root CA\" path=%s/%s subject=\"%s\" "
            "sha256_fingerprint=%s not_after=%s\n",
            created ? "created" : "loaded", dir,
            incoming ? MESH_CA_NEXT_CERT_FILE : MESH_CA_ROOT_CERT_FILE, mesh_ca_subject(ca),
            mesh_ca_fingerprint(ca), when);
    for (size_t i = 0; i < o->n_cas; i++) {
        free(errmsg);
        errmsg = NULL;
        if (mesh_ca_load(o->cas[i].name, o->cas[i].cert, o->cas[i].key, now, &ca, &errmsg) !=
                MESH_OK ||
            mesh_ca_set_add(set, ca, &errmsg) != MESH_OK) {
            rc = fail("--ca %s: %s", o->cas[i].name, errmsg);
            goto out;
        }
        mesh_ca_format_time(mesh_ca_not_after(ca), when, sizeof(when));
        fprintf(stderr,
                "lvl=info msg=\"loaded a CA\" name=%s path=%s subject=\"%s\" "
                "sha256_fingerprint=%s not_after=%s\n",
                mesh_ca_name(ca), o->cas[i].cert, mesh_ca_subject(ca), mesh_ca_fingerprint(ca),
                when);
    }
out:
    free(errmsg);
    free(dir);
    return rc;
}

/* --- TLS --- */

/* The serving certificate of --tls-cert/--tls-key, checked now rather than at the first
 * client. 0, or 1 after a message naming the flag and the file. */
static int open_tls(const struct options *o, struct mesh_tls_ctx **out)
{
    struct mesh_tls_options topt = {
        .server = true,
        .cert_file = o->tls_cert,
        .key_file = o->tls_key,
        .alpn = "http/1.1",
    };
    char *errmsg = NULL, when[MESH_CA_TIME_LEN];
    int rc = 0;

    *out = NULL;
    if (mesh_tls_ctx_new(&topt, out, &errmsg) != MESH_OK) {
        const char *msg = errmsg ? errmsg : "out of memory";
        bool names_cert = strstr(msg, o->tls_cert) != NULL;
        bool names_key = strstr(msg, o->tls_key) != NULL;
        rc = fail("%s: %s",
                  names_key && !names_cert   ? "--tls-key"
                  : names_cert && !names_key ? "--tls-cert"
                                             : "--tls-cert/--tls-key",
                  msg);
        goto out;
    }
    time_t not_after = mesh_tls_ctx_not_after(*out);
    mesh_ca_format_time(not_after, when, sizeof(when));
    if (not_after && not_after <= time(NULL)) {
        rc = fail("--tls-cert %s: the certificate expired at %s: clients would refuse it; renew "
                  "it",
                  o->tls_cert, when);
        mesh_tls_ctx_free(*out);
        *out = NULL;
        goto out;
    }
    fprintf(stderr, "lvl=info msg=\"serving HTTPS\" cert=%s subject=\"%s\" not_after=%s\n",
            o->tls_cert, mesh_tls_ctx_subject(*out), when);
out:
    free(errmsg);
    return rc;
}

/* --- signals --- */

struct signals {
    struct mesh_io io;
    int signo;
};

static void on_signal(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    struct signals *s = io->data;
    struct signalfd_siginfo si;
    (void)events;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            s->signo = (int)si.ssi_signo;
            loop->stop = true;
        }
    }
}

/* --- main --- */

int main(int argc, char **argv)
{
    struct options o = {
        .listen = DEFAULT_LISTEN,
        .max_body = MESH_HTTPD_DEFAULT_MAX_BODY,
        .rate = 1000,
        .burst = 2000,
        .max_connections = MESH_HTTPD_DEFAULT_MAX_CONNECTIONS,
        .ttl_ms = 3000,
        .interval_ms = 1000,
        .header_timeout_ms = MESH_HTTPD_DEFAULT_HEADER_TIMEOUT,
        .idle_timeout_ms = MESH_HTTPD_DEFAULT_IDLE_TIMEOUT,
        .trust_domain = MESH_CA_DEFAULT_TRUST_DOMAIN,
        .cert_ttl_ms = 24ull * 3600 * 1000,
    };
    struct mesh_ca_set cas = {0};
    struct mesh_ca_rotation *rotation = NULL;
    struct mesh_store *store = NULL;
    struct mesh_api *api = NULL;
    struct mesh_httpd *httpd = NULL;
    struct mesh_tls_ctx *tls = NULL;
    struct mesh_loop loop = {.epfd = -1};
    struct signals sigs = {.io = {.fd = -1}};
    char *token = NULL, *errmsg = NULL;
    int lock_fd = -1;
    bool loop_ok = false;

    int rc = parse_flags(argc, argv, &o);
    if (rc >= 0) {
        free_ca_flags(&o);
        return rc;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);

    rc = 1;
    if (mesh_store_open_sqlite(o.data_dir, &store, &errmsg) != MESH_OK) {
        fail("%s", errmsg ? errmsg : "cannot open the store");
        goto out;
    }
    if (lock_data_dir(o.data_dir, &lock_fd) != 0 || load_token(o.data_dir, &token) != 0 ||
        open_cas(&o, &cas, &rotation) != 0 || (o.tls_cert && open_tls(&o, &tls) != 0))
        goto out;
    if (mesh_loop_init(&loop) != MESH_OK) {
        fail("epoll: %s", strerror(errno));
        goto out;
    }
    loop_ok = true;
    sigs.io.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    sigs.io.cb = on_signal;
    sigs.io.data = &sigs;
    if (sigs.io.fd < 0 || mesh_loop_add_listener(&loop, &sigs.io) != MESH_OK) {
        fail("signalfd: %s", strerror(errno));
        goto out;
    }

    struct mesh_api_options aopt = {
        .token = token,
        .auth_reads = o.auth_reads,
        .rate = o.rate,
        .burst = o.burst,
        .heartbeat_ttl_ms = o.ttl_ms,
        .heartbeat_interval_ms = o.interval_ms,
        .cas = &cas,
        .rotation = rotation,
        .trust_domain = o.trust_domain,
        .cert_ttl_s = o.cert_ttl_ms / 1000,
    };
    api = mesh_api_new(&loop, store, &aopt);
    struct mesh_httpd_options hopt = {
        .max_body = o.max_body,
        .max_connections = o.max_connections,
        .header_timeout_ms = o.header_timeout_ms,
        .idle_timeout_ms = o.idle_timeout_ms,
        .handler = mesh_api_handle,
        .error_body = mesh_api_error_body,
        .data = api,
        .tls = tls,
    };
    if (mesh_httpd_new(&loop, &hopt, &httpd) != MESH_OK) {
        fail("cannot start the HTTP server: out of memory");
        goto out;
    }
    char bound[MESH_SOCK_ADDR_STRLEN], msg[512];
    if (mesh_httpd_listen(httpd, o.listen, bound, sizeof(bound), msg, sizeof(msg)) != MESH_OK) {
        fail("--listen %s: %s", o.listen, msg);
        goto out;
    }
    uint64_t store_version = 0;
    store->ops->current_version(store, &store_version);
    fprintf(stderr,
            "lvl=info msg=\"meshd started\" version=%s data_dir=%s store_version=%" PRIu64
            " auth_reads=%s heartbeat_ttl_ms=%" PRIu64 " trust_domain=%s cert_ttl_s=%" PRIu64 "\n",
            MESH_VERSION, o.data_dir, store_version, o.auth_reads ? "true" : "false", o.ttl_ms,
            o.trust_domain, o.cert_ttl_ms / 1000);
    fprintf(stderr, "meshd: listening on %s%s\n", tls ? "https://" : "", bound);
    fflush(stderr);

    while (!loop.stop) {
        if (mesh_loop_run_once(&loop, -1) < 0) {
            fail("epoll_wait: %s", strerror(errno));
            goto out;
        }
    }
    fprintf(stderr, "lvl=info msg=\"meshd stopping\" signal=%s\n", strsignal(sigs.signo));
    rc = 0;
out:
    /* The server first: it hands its waiting watches back to the API before the API goes. */
    mesh_httpd_free(httpd);
    mesh_tls_ctx_free(tls); /* after the server: its connections use it */
    mesh_api_free(api);
    if (sigs.io.fd >= 0) {
        if (loop_ok)
            mesh_loop_del(&loop, &sigs.io);
        close(sigs.io.fd);
    }
    if (loop_ok)
        mesh_loop_close(&loop);
    mesh_store_close(store);
    mesh_ca_rotation_free(rotation);
    mesh_ca_set_clear(&cas);
    free_ca_flags(&o);
    if (lock_fd >= 0)
        close(lock_fd);
    free(token);
    free(errmsg);
    return rc;
}
