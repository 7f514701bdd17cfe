/* SPDX-License-Identifier: Apache-2.0 */
/* kubeconfig reading, merging and resolution (kubeconfig.h): kubectl's rules, our messages. */
#include "kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "model/node.h"

extern char **environ;

/* A kubeconfig, a credential file or a plugin's answer is small; anything bigger is a mistake. */
#define KC_MAX_FILE          (16u << 20)
#define KC_MAX_PLUGIN_OUTPUT (1u << 20)
/* kubectl waits for a plugin as long as it takes (it may prompt); we never prompt, so a plugin
 * that has not answered in this long is stuck. */
#define KC_PLUGIN_TIMEOUT_MS 60000

struct kc_file {
    char *path;
    char *dir; /* what relative paths in it are relative to */
    struct mesh_node_docs docs;
};

/* One named cluster, user or context: the winner of the merge. */
struct kc_entry {
    const char *name;
    const struct mesh_node *value; /* the "cluster" / "user" / "context" map; may be NULL */
    const struct mesh_node *item;  /* the list item, for its position */
    size_t index;                  /* in its file's list, for the field path */
    const struct kc_file *file;
};

struct kc_list {
    struct kc_entry *items;
    size_t len, cap;
};

struct mesh_kubeconfig {
    struct kc_file *files;
    size_t n_files, cap_files;
    struct kc_list clusters, users, contexts;
    const char *current; /* borrowed from a file's tree */
    char *source;        /* "KUBECONFIG" or the one path, for messages */
    const char **context_names;
};

void mesh_kube_credentials_clear(struct mesh_kube_credentials *cred)
{
    if (!cred)
        return;
    free(cred->context);
    free(cred->cluster);
    free(cred->user);
    free(cred->server);
    free(cred->namespace);
    free(cred->ca_pem);
    free(cred->cert_pem);
    free(cred->key_pem);
    if (cred->token) /* a secret: do not leave it in freed memory */
        memset(cred->token, 0, strlen(cred->token));
    free(cred->token);
    memset(cred, 0, sizeof(*cred));
}

/* --- base64 --- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

enum mesh_err mesh_kube_base64_decode(const char *text, char **out, size_t *len)
{
    size_t total = strlen(text), n = total;
    while (n > 0 && text[n - 1] == '=' && total - n < 2)
        n--;
    /* Padding, when present, must make the length a multiple of 4. */
    if (n % 4 == 1 || (n != total && total % 4 != 0))
        return MESH_E_INVALID;
    char *buf = xmalloc(n / 4 * 3 + 3);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)text[i]);
        if (v < 0) {
            free(buf);
            return MESH_E_INVALID;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    buf[o] = '\0';
    *out = buf;
    *len = o;
    return MESH_OK;
}

/* --- files --- */

/* Reads path whole (NUL-terminated). MESH_E_NOTFOUND when it does not exist, MESH_E_IO
 * otherwise, with errno's words in *why (static). */
static enum mesh_err read_file(const char *path, char **out, size_t *len, const char **why)
{
    enum mesh_err err = MESH_OK;
    struct mesh_strbuf sb;
    char chunk[8192];
    FILE *f = fopen(path, "rb");

    mesh_strbuf_init(&sb, KC_MAX_FILE);
    if (!f) {
        *why = strerror(errno);
        return errno == ENOENT ? MESH_E_NOTFOUND : MESH_E_IO;
    }
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (mesh_strbuf_append(&sb, chunk, got) != MESH_OK) {
            *why = "larger than 16 MiB";
            err = MESH_E_IO;
            goto out;
        }
    }
    if (ferror(f)) {
        *why = strerror(errno ? errno : EIO);
        err = MESH_E_IO;
        goto out;
    }
    *len = sb.len;
    *out = mesh_strbuf_take(&sb);
out:
    mesh_strbuf_free(&sb);
    fclose(f);
    return err;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

/* A path written in file f: relative ones are relative to f's directory, as kubectl has it. */
static char *resolve_path(const struct kc_file *f, const char *path)
{
    if (path[0] == '/')
        return xstrdup(path);
    return xasprintf("%s/%s", f->dir, path);
}

/* --- errors --- */

/* "FILE:LINE:COL: LIST[I].FIELD: MESSAGE" for node (may be NULL: no position). */
static enum mesh_err fail_at(char **errmsg, enum mesh_err err, const struct kc_file *f,
                             const struct mesh_node *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum mesh_err fail_at(char **errmsg, enum mesh_err err, const struct kc_file *f,
                             const struct mesh_node *node, const char *path, const char *fmt, ...)
{
    struct mesh_strbuf sb;
    va_list ap;

    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_puts(&sb, f->path);
    if (node && node->line)
        mesh_strbuf_printf(&sb, ":%u:%u", node->line, node->col);
    mesh_strbuf_puts(&sb, ": ");
    if (path && *path)
        mesh_strbuf_printf(&sb, "%s: ", path);
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mesh_strbuf_puts(&sb, msg);
    free(*errmsg);
    *errmsg = mesh_strbuf_take(&sb);
    return err;
}

/* --- node helpers --- */

static bool is_str(const struct mesh_node *n)
{
    return n && n->type == MESH_NODE_SCALAR && n->scalar_kind != MESH_SCALAR_NULL;
}

static bool is_null(const struct mesh_node *n)
{
    return !n || (n->type == MESH_NODE_SCALAR && n->scalar_kind == MESH_SCALAR_NULL);
}

/* A string field of map: MESH_OK with *out (borrowed; NULL when absent, null or ""), or
 * MESH_E_INVALID when it is a map or a list. */
static enum mesh_err get_str(const struct kc_file *f, const struct mesh_node *map, const char *key,
                             const char *path, const char **out, char **errmsg)
{
    const struct mesh_node *n = mesh_node_map_get(map, key);
    *out = NULL;
    if (is_null(n))
        return MESH_OK;
    char *p = xasprintf("%s.%s", path, key);
    enum mesh_err err = MESH_OK;
    if (!is_str(n))
        err = fail_at(errmsg, MESH_E_INVALID, f, n, p, "must be a string");
    else if (n->text[0])
        *out = n->text;
    free(p);
    return err;
}

/* --- loading and merging --- */

static const struct kc_entry *list_find(const struct kc_list *l, const char *name)
{
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return &l->items[i];
    return NULL;
}

/* Adds the entries of one file's list `key` (clusters, users, contexts) whose names are new:
 * the first file to name one wins, as kubectl merges. */
static enum mesh_err merge_list(const struct kc_file *f, const struct mesh_node *root,
                                const char *key, const char *inner, struct kc_list *l,
                                char **errmsg)
{
    const struct mesh_node *seq = mesh_node_map_get(root, key);
    if (is_null(seq))
        return MESH_OK;
    if (seq->type != MESH_NODE_SEQ)
        return fail_at(errmsg, MESH_E_INVALID, f, seq, key, "must be a list");
    for (size_t i = 0; i < seq->len; i++) {
        const struct mesh_node *item = seq->items[i];
        char *path = xasprintf("%s[%zu]", key, i);
        enum mesh_err err = MESH_OK;
        const char *name = NULL;
        const struct mesh_node *value = mesh_node_map_get(item, inner);
        if (!item || item->type != MESH_NODE_MAP)
            err = fail_at(errmsg, MESH_E_INVALID, f, item, path, "must be a map");
        else if ((err = get_str(f, item, "name", path, &name, errmsg)) != MESH_OK)
            ;
        else if (!name)
            err = fail_at(errmsg, MESH_E_INVALID, f, item, path, "has no name");
        else if (!is_null(value) && value->type != MESH_NODE_MAP)
            err = fail_at(errmsg, MESH_E_INVALID, f, value, path, "%s must be a map", inner);
        free(path);
        if (err != MESH_OK)
            return err;
        if (list_find(l, name))
            continue;
        xgrow((void **)&l->items, &l->cap, l->len + 1, sizeof(*l->items));
        l->items[l->len++] = (struct kc_entry){
            .name = name,
            .value = is_null(value) ? NULL : value,
            .item = item,
            .index = i,
            .file = f,
        };
    }
    return MESH_OK;
}

static enum mesh_err merge_file(struct mesh_kubeconfig *kc, const struct kc_file *f, char **errmsg)
{
    const struct mesh_node *root = f->docs.len ? f->docs.items[0].root : NULL;
    enum mesh_err err;
    if (!root) /* an empty file is an empty kubeconfig, as for kubectl */
        return MESH_OK;
    if (f->docs.len > 1)
        return fail_at(errmsg, MESH_E_INVALID, f, f->docs.items[1].root, NULL,
                       "a kubeconfig is one document, this file has %zu", f->docs.len);
    if (root->type != MESH_NODE_MAP)
        return fail_at(errmsg, MESH_E_INVALID, f, root, NULL, "a kubeconfig must be a map");
    if ((err = merge_list(f, root, "clusters", "cluster", &kc->clusters, errmsg)) != MESH_OK ||
        (err = merge_list(f, root, "users", "user", &kc->users, errmsg)) != MESH_OK ||
        (err = merge_list(f, root, "contexts", "context", &kc->contexts, errmsg)) != MESH_OK)
        return err;
    const char *current = NULL;
    if ((err = get_str(f, root, "current-context", "", &current, errmsg)) != MESH_OK)
        return err;
    if (!kc->current && current)
        kc->current = current;
    return MESH_OK;
}

/* Reads one file into kc. MESH_E_NOTFOUND (nothing added) when it does not exist. */
static enum mesh_err add_file(struct mesh_kubeconfig *kc, const char *path, char **errmsg)
{
    char *text = NULL;
    size_t len = 0;
    const char *why = NULL;
    struct mesh_diags diags = {0};
    struct kc_file f = {0};
    enum mesh_err err = read_file(path, &text, &len, &why);

    if (err != MESH_OK) {
        free(*errmsg);
        *errmsg = xasprintf("cannot read kubeconfig %s: %s", path, why);
        goto out;
    }
    f.path = xstrdup(path);
    f.dir = dir_of(path);
    err = mesh_yaml_read(text, len, path, &f.docs, &diags);
    if (err != MESH_OK) {
        free(*errmsg);
        *errmsg = diags.len ? mesh_diag_format(&diags.items[0])
                            : xasprintf("%s: %s", path, mesh_strerror(err));
        goto out;
    }
    xgrow((void **)&kc->files, &kc->cap_files, kc->n_files + 1, sizeof(*kc->files));
    kc->files[kc->n_files++] = f;
    memset(&f, 0, sizeof(f)); /* kc owns it now */
out:
    free(f.path);
    free(f.dir);
    mesh_node_docs_free(&f.docs);
    mesh_diags_clear(&diags);
    free(text);
    return err;
}

/* The files to read: path, else $KUBECONFIG's, else ~/.kube/config. */
static char **file_list(const char *path, size_t *n, char **source)
{
    char **files = NULL;
    size_t cap = 0;
    *n = 0;
    const char *env = getenv("KUBECONFIG");
    if (path) {
        files = xcalloc(1, sizeof(*files));
        files[(*n)++] = xstrdup(path);
        *source = xstrdup(path);
    } else if (env && *env) {
        const char *p = env;
        while (*p) {
            const char *end = strchr(p, ':');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len > 0) {
                xgrow((void **)&files, &cap, *n + 1, sizeof(*files));
                files[(*n)++] = xstrndup(p, len);
            }
            p += len + (end ? 1 : 0);
        }
        *source = xstrdup("KUBECONFIG");
    } else {
        const char *home = getenv("HOME");
        files = xcalloc(1, sizeof(*files));
        files[(*n)++] = xasprintf("%s/.kube/config", home && *home ? home : ".");
        *source = xstrdup(files[0]);
    }
    return files;
}

enum mesh_err mesh_kubeconfig_load(const char *path, struct mesh_kubeconfig **out, char **errmsg)
{
    struct mesh_kubeconfig *kc = xcalloc(1, sizeof(*kc));
    size_t n = 0, read = 0;
    char **files = file_list(path, &n, &kc->source);
    enum mesh_err err = MESH_OK;

    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        err = add_file(kc, files[i], errmsg);
        /* $KUBECONFIG may list files that do not exist; kubectl skips them. */
        if (err == MESH_E_NOTFOUND && !path && n > 1)
            continue;
        if (err != MESH_OK)
            goto out;
        read++;
    }
    if (read == 0) {
        err = MESH_E_NOTFOUND;
        free(*errmsg);
        *errmsg = xasprintf("no kubeconfig: none of the files $KUBECONFIG names exists (%s)",
                            getenv("KUBECONFIG"));
        goto out;
    }
    err = MESH_OK;
    for (size_t i = 0; i < kc->n_files && err == MESH_OK; i++)
        err = merge_file(kc, &kc->files[i], errmsg);
    if (err != MESH_OK)
        goto out;
    *out = kc;
    kc = NULL;
out:
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    mesh_kubeconfig_free(kc);
    return err;
}

void mesh_kubeconfig_free(struct mesh_kubeconfig *kc)
{
    if (!kc)
        return;
    for (size_t i = 0; i < kc->n_files; i++) {
        free(kc->files[i].path);
        free(kc->files[i].dir);
        mesh_node_docs_free(&kc->files[i].docs);
    }
    free(kc->files);
    free(kc->clusters.items);
    free(kc->users.items);
    free(kc->contexts.items);
    free(kc->source);
    free(kc->context_names);
    free(kc);
}

const char *mesh_kubeconfig_current_context(const struct mesh_kubeconfig *kc)
{
    return kc->current;
}

size_t mesh_kubeconfig_contexts(const struct mesh_kubeconfig *kc, const char ***names)
{
    struct mesh_kubeconfig *mut = (struct mesh_kubeconfig *)kc;
    free(mut->context_names);
    mut->context_names = xcalloc(kc->contexts.len + 1, sizeof(*mut->context_names));
    for (size_t i = 0; i < kc->contexts.len; i++)
        mut->context_names[i] = kc->contexts.items[i].name;
    *names = mut->context_names;
    return kc->contexts.len;
}

/* "a, b, c", or "none" */
static char *context_list(const struct mesh_kubeconfig *kc)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < kc->contexts.len; i++)
        mesh_strbuf_printf(&sb, "%s%s", i ? ", " : "", kc->contexts.items[i].name);
    if (kc->contexts.len == 0)
        mesh_strbuf_puts(&sb, "none");
    return mesh_strbuf_take(&sb);
}

/* --- resolution --- */

/* One credential: the file field (a path) or the -data field (base64), not both. *out gets the
 * bytes; nothing when neither is set. */
static enum mesh_err load_blob(const struct kc_entry *e, const char *path, const char *file_key,
                               const char *data_key, char **out, size_t *len, char **errmsg)
{
    const struct kc_file *f = e->file;
    const char *file = NULL, *data = NULL;
    enum mesh_err err;
    if ((err = get_str(f, e->value, file_key, path, &file, errmsg)) != MESH_OK ||
        (err = get_str(f, e->value, data_key, path, &data, errmsg)) != MESH_OK)
        return err;
    if (data) {
        const struct mesh_node *n = mesh_node_map_get(e->value, data_key);
        char *p = xasprintf("%s.%s", path, data_key);
        if (file)
            err = fail_at(errmsg, MESH_E_INVALID, f, n, p, "%s and %s are both set; keep one",
                          file_key, data_key);
        else if (mesh_kube_base64_decode(data, out, len) != MESH_OK)
            err = fail_at(errmsg, MESH_E_INVALID, f, n, p, "is not base64");
        free(p);
        return err;
    }
    if (file) {
        const struct mesh_node *n = mesh_node_map_get(e->value, file_key);
        char *full = resolve_path(f, file);
        char *p = xasprintf("%s.%s", path, file_key);
        const char *why = NULL;
        if (read_file(full, out, len, &why) != MESH_OK)
            err = fail_at(errmsg, MESH_E_IO, f, n, p, "cannot read %s: %s", full, why);
        free(p);
        free(full);
    }
    return err;
}

static enum mesh_err resolve_cluster(const struct kc_entry *e, struct mesh_kube_credentials *cred,
                                     char **errmsg)
{
    const struct kc_file *f = e->file;
    char *path = xasprintf("clusters[%zu].cluster", e->index);
    const char *server = NULL;
    enum mesh_err err;

    if (!e->value) {
        err = fail_at(errmsg, MESH_E_INVALID, f, e->item, path, "missing");
        goto out;
    }
    if ((err = get_str(f, e->value, "server", path, &server, errmsg)) != MESH_OK)
        goto out;
    if (!server) {
        err = fail_at(errmsg, MESH_E_INVALID, f, e->item, path, "server is missing");
        goto out;
    }
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
        err = fail_at(errmsg, MESH_E_INVALID, f, mesh_node_map_get(e->value, "server"), path,
                      "server \"%s\" is not an http:// or https:// URL", server);
        goto out;
    }
    cred->server = xstrdup(server);
    /* "https://host:6443/" and "https://host:6443" name the same server; paths get appended. */
    size_t n = strlen(cred->server);
    while (n > 0 && cred->server[n - 1] == '/')
        cred->server[--n] = '\0';
    const struct mesh_node *insecure = mesh_node_map_get(e->value, "insecure-skip-tls-verify");
    if (!is_null(insecure)) {
        if (insecure->type != MESH_NODE_SCALAR || insecure->scalar_kind != MESH_SCALAR_BOOL) {
            char *p = xasprintf("%s.insecure-skip-tls-verify", path);
            err = fail_at(errmsg, MESH_E_INVALID, f, insecure, p, "must be true or false");
            free(p);
            goto out;
        }
        cred->insecure = strcmp(insecure->text, "true") == 0;
    }
    err = load_blob(e, path, "certificate-authority", "certificate-authority-data", &cred->ca_pem,
                    &cred->ca_len, errmsg);
    if (err != MESH_OK)
        goto out;
    if (cred->insecure && cred->ca_pem) {
        /* kubectl refuses it too: one of the two is a mistake, and we cannot tell which. */
        err = fail_at(errmsg, MESH_E_INVALID, f, insecure, path,
                      "insecure-skip-tls-verify with a certificate authority: keep one");
        goto out;
    }
out:
    free(path);
    return err;
}

/* The plugin's environment: ours, its env entries (replacing ours of the same name) and
 * KUBERNETES_EXEC_INFO. */
static char **plugin_env(const struct kc_file *f, const struct mesh_node *envs, const char *path,
                         const char *api_version, char **errmsg, enum mesh_err *err)
{
    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    size_t n_plugin = envs && envs->type == MESH_NODE_SEQ ? envs->len : 0;
    char **env = xcalloc(n_env + n_plugin + 2, sizeof(*env));
    size_t n = 0;
    *err = MESH_OK;
    for (size_t i = 0; i < n_plugin; i++) {
        const struct mesh_node *item = envs->items[i];
        const char *name = NULL, *value = NULL;
        char *p = xasprintf("%s.env[%zu]", path, i);
        if ((*err = get_str(f, item, "name", p, &name, errmsg)) == MESH_OK &&
            (*err = get_str(f, item, "value", p, &value, errmsg)) == MESH_OK && !name)
            *err = fail_at(errmsg, MESH_E_INVALID, f, item, p, "needs a name");
        free(p);
        if (*err != MESH_OK)
            goto fail;
        env[n++] = xasprintf("%s=%s", name, value ? value : "");
    }
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) == 0;
        for (size_t j = 0; j < n && !replaced; j++)
            replaced = strncmp(env[j], environ[i], klen) == 0 && env[j][klen] == '=';
        if (!replaced)
            env[n++] = xstrdup(environ[i]);
    }
    env[n++] = xasprintf("KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
                         "\"spec\":{\"interactive\":false}}",
                         api_version);
    return env;
fail:
    for (size_t i = 0; i < n; i++)
        free(env[i]);
    free(env);
    return NULL;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs argv with env, stdin from /dev/null, stderr passed through (a plugin's own messages are
 * for the user), stdout collected into *out. *status: its exit status, -1 when it had to be
 * killed for taking too long. */
static enum mesh_err run_plugin(char **argv, char **env, char **out, int *status, const char **why)
{
    int fds[2] = {-1, -1};
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    bool fa_init = false;
    struct mesh_strbuf sb;
    enum mesh_err err = MESH_OK;

    mesh_strbuf_init(&sb, KC_MAX_PLUGIN_OUTPUT);
    /* Close-on-exec: the plugin gets the write end as its stdout only (dup2 clears the flag). */
    if (pipe(fds) != 0 || fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        *why = strerror(errno);
        err = MESH_E_IO;
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    fa_init = true;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
    if (rc != 0) {
        *why = strerror(rc);
        err = MESH_E_IO;
        pid = -1;
        goto out;
    }
    close(fds[1]);
    fds[1] = -1;
    long long deadline = now_ms() + KC_PLUGIN_TIMEOUT_MS;
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (left <= 0) {
            kill(pid, SIGKILL);
            *why = "it did not answer within 60 seconds";
            err = MESH_E_IO;
            break;
        }
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            *why = strerror(errno);
            err = MESH_E_IO;
            kill(pid, SIGKILL);
            break;
        }
        if (pr == 0)
            continue;
        char chunk[4096];
        ssize_t got = read(fds[0], chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (mesh_strbuf_append(&sb, chunk, (size_t)got) != MESH_OK) {
            *why = "its output is larger than 1 MiB";
            err = MESH_E_IO;
            kill(pid, SIGKILL);
            break;
        }
    }
out:
    if (pid > 0) {
        int ws = 0;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
            ;
        *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    }
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (err == MESH_OK)
        *out = mesh_strbuf_take(&sb);
    mesh_strbuf_free(&sb);
    return err;
}

/* The user's exec credential plugin: runs it and takes the token or the certificate and key from
 * the ExecCredential it prints. */
static enum mesh_err run_exec(const struct kc_entry *e, const char *upath,
                              struct mesh_kube_credentials *cred, char **errmsg)
{
    const struct kc_file *f = e->file;
    const struct mesh_node *exec = mesh_node_map_get(e->value, "exec");
    char *path = xasprintf("%s.exec", upath);
    const char *command = NULL, *api_version = NULL;
    char **argv = NULL, **env = NULL, *output = NULL, *cmd = NULL;
    struct mesh_node_docs docs = {0};
    struct mesh_diags diags = {0};
    enum mesh_err err;

    if (exec->type != MESH_NODE_MAP) {
        err = fail_at(errmsg, MESH_E_INVALID, f, exec, path, "must be a map");
        goto out;
    }
    if ((err = get_str(f, exec, "command", path, &command, errmsg)) != MESH_OK ||
        (err = get_str(f, exec, "apiVersion", path, &api_version, errmsg)) != MESH_OK)
        goto out;
    if (!command) {
        err = fail_at(errmsg, MESH_E_INVALID, f, exec, path, "command is missing");
        goto out;
    }
    if (!api_version)
        api_version = "client.authentication.k8s.io/v1";
    /* A relative path with a slash is relative to the kubeconfig; a bare name is looked up in
     * PATH (kubectl's rules). */
    cmd = strchr(command, '/') ? resolve_path(f, command) : xstrdup(command);
    const struct mesh_node *args = mesh_node_map_get(exec, "args");
    size_t n_args = args && args->type == MESH_NODE_SEQ ? args->len : 0;
    if (!is_null(args) && args->type != MESH_NODE_SEQ) {
        char *p = xasprintf("%s.args", path);
        err = fail_at(errmsg, MESH_E_INVALID, f, args, p, "must be a list of strings");
        free(p);
        goto out;
    }
    argv = xcalloc(n_args + 2, sizeof(*argv));
    argv[0] = xstrdup(cmd);
    for (size_t i = 0; i < n_args; i++) {
        if (!is_str(args->items[i])) {
            char *p = xasprintf("%s.args[%zu]", path, i);
            err = fail_at(errmsg, MESH_E_INVALID, f, args->items[i], p, "must be a string");
            free(p);
            goto out;
        }
        argv[i + 1] = xstrdup(args->items[i]->text);
    }
    const struct mesh_node *envs = mesh_node_map_get(exec, "env");
    if (!is_null(envs) && envs->type != MESH_NODE_SEQ) {
        char *p = xasprintf("%s.env", path);
        err = fail_at(errmsg, MESH_E_INVALID, f, envs, p, "must be a list of {name, value}");
        free(p);
        goto out;
    }
    env = plugin_env(f, envs, path, api_version, errmsg, &err);
    if (err != MESH_OK)
        goto out;

    int status = 0;
    const char *why = NULL;
    err = run_plugin(argv, env, &output, &status, &why);
    if (err != MESH_OK) {
        err = fail_at(errmsg, MESH_E_IO, f, exec, path, "cannot run the credential plugin %s: %s",
                      cmd, why);
        goto out;
    }
    if (status != 0) {
        err = fail_at(errmsg, MESH_E_IO, f, exec, path,
                      "the credential plugin %s failed (exit status %d)%s", cmd, status,
                      status == 127 ? ": not found or not executable" : "");
        goto out;
    }
    if (mesh_json_read(output, strlen(output), cmd, &docs, &diags) != MESH_OK || docs.len != 1 ||
        !docs.items[0].root || docs.items[0].root->type != MESH_NODE_MAP) {
        err = fail_at(errmsg, MESH_E_INVALID, f, exec, path,
                      "the credential plugin %s printed no ExecCredential JSON", cmd);
        goto out;
    }
    const struct mesh_node *root = docs.items[0].root;
    const struct mesh_node *kind = mesh_node_map_get(root, "kind");
    const struct mesh_node *st = mesh_node_map_get(root, "status");
    if (!is_str(kind) || strcmp(kind->text, "ExecCredential") != 0 || !st ||
        st->type != MESH_NODE_MAP) {
        err = fail_at(errmsg, MESH_E_INVALID, f, exec, path,
                      "the credential plugin %s printed no ExecCredential with a status", cmd);
        goto out;
    }
    const struct mesh_node *token = mesh_node_map_get(st, "token");
    const struct mesh_node *cert = mesh_node_map_get(st, "clientCertificateData");
    const struct mesh_node *key = mesh_node_map_get(st, "clientKeyData");
    if (is_str(cert) != is_str(key) || (!is_str(token) && !is_str(cert))) {
        err = fail_at(errmsg, MESH_E_INVALID, f, exec, path,
                      "the credential plugin %s gave neither status.token nor both "
                      "status.clientCertificateData and status.clientKeyData",
                      cmd);
        goto out;
    }
    /* The plugin's credentials replace those of the file, as client-go has it. */
    if (is_str(token)) {
        free(cred->token);
        cred->token = xstrdup(token->text);
    }
    if (is_str(cert)) {
        free(cred->cert_pem);
        free(cred->key_pem);
        cred->cert_pem = xstrdup(cert->text);
        cred->cert_len = strlen(cert->text);
        cred->key_pem = xstrdup(key->text);
        cred->key_len = strlen(key->text);
    }
out:
    if (output)
        memset(output, 0, strlen(output));
    free(output);
    free_strv(argv);
    free_strv(env);
    free(cmd);
    mesh_node_docs_free(&docs);
    mesh_diags_clear(&diags);
    free(path);
    return err;
}

static enum mesh_err resolve_user(const struct kc_entry *e, struct mesh_kube_credentials *cred,
                                  char **errmsg)
{
    const struct kc_file *f = e->file;
    char *path = xasprintf("users[%zu].user", e->index);
    const char *token = NULL, *token_file = NULL;
    enum mesh_err err = MESH_OK;

    if (!e->value) /* a user with no credentials: anonymous */
        goto out;
    if (mesh_node_map_get(e->value, "auth-provider")) {
        err = fail_at(errmsg, MESH_E_UNSUPPORTED, f, mesh_node_map_get(e->value, "auth-provider"),
                      path,
                      "auth-provider plugins are not supported (kubectl dropped them in 1.26): "
                      "use an exec credential plugin");
        goto out;
    }
    if (mesh_node_map_get(e->value, "username") || mesh_node_map_get(e->value, "password")) {
        err = fail_at(errmsg, MESH_E_UNSUPPORTED, f, mesh_node_map_get(e->value, "username"), path,
                      "basic authentication (username/password) is not supported (Kubernetes "
                      "removed it in 1.19): use a token, a client certificate or an exec plugin");
        goto out;
    }
    if ((err = load_blob(e, path, "client-certificate", "client-certificate-data", &cred->cert_pem,
                         &cred->cert_len, errmsg)) != MESH_OK ||
        (err = load_blob(e, path, "client-key", "client-key-data", &cred->key_pem, &cred->key_len,
                         errmsg)) != MESH_OK)
        goto out;
    if (!cred->cert_pem != !cred->key_pem) {
        err = fail_at(errmsg, MESH_E_INVALID, f, e->item, path, "has a client %s without a %s",
                      cred->cert_pem ? "certificate" : "key",
                      cred->cert_pem ? "client-key" : "client-certificate");
        goto out;
    }
    if ((err = get_str(f, e->value, "token", path, &token, errmsg)) != MESH_OK ||
        (err = get_str(f, e->value, "tokenFile", path, &token_file, errmsg)) != MESH_OK)
        goto out;
    if (token) {
        cred->token = xstrdup(token);
    } else if (token_file) {
        char *full = resolve_path(f, token_file);
        char *text = NULL;
        size_t len = 0;
        const char *why = NULL;
        char *p = xasprintf("%s.tokenFile", path);
        if (read_file(full, &text, &len, &why) != MESH_OK) {
            err = fail_at(errmsg, MESH_E_IO, f, mesh_node_map_get(e->value, "tokenFile"), p,
                          "cannot read %s: %s", full, why);
        } else {
            while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
                               text[len - 1] == ' ' || text[len - 1] == '\t'))
                text[--len] = '\0';
            if (len == 0)
                err = fail_at(errmsg, MESH_E_INVALID, f, mesh_node_map_get(e->value, "tokenFile"),
                              p, "%s is empty", full);
            else
                cred->token = xstrdup(text);
            memset(text, 0, len);
        }
        free(text);
        free(p);
        free(full);
        if (err != MESH_OK)
            goto out;
    }
    const struct mesh_node *exec = mesh_node_map_get(e->value, "exec");
    if (!is_null(exec))
        err = run_exec(e, path, cred, errmsg);
out:
    free(path);
    return err;
}

enum mesh_err mesh_kubeconfig_resolve(const struct mesh_kubeconfig *kc, const char *context,
                                      struct mesh_kube_credentials *cred, char **errmsg)
{
    enum mesh_err err = MESH_OK;
    const char *name = context && *context ? context : kc->current;
    char *list = context_list(kc);

    if (!name) {
        err = MESH_E_NOTFOUND;
        free(*errmsg);
        *errmsg = xasprintf("no context given and %s sets no current-context: name one "
                            "(contexts: %s)",
                            kc->source, list);
        goto out;
    }
    const struct kc_entry *ctx = list_find(&kc->contexts, name);
    if (!ctx) {
        err = MESH_E_NOTFOUND;
        free(*errmsg);
        *errmsg = xasprintf("context \"%s\" is not in %s (contexts: %s)", name, kc->source, list);
        goto out;
    }
    char *path = xasprintf("contexts[%zu].context", ctx->index);
    const char *cluster = NULL, *user = NULL, *ns = NULL;
    if (!ctx->value)
        err = fail_at(errmsg, MESH_E_INVALID, ctx->file, ctx->item, path, "missing");
    if (err == MESH_OK &&
        (err = get_str(ctx->file, ctx->value, "cluster", path, &cluster, errmsg)) == MESH_OK &&
        (err = get_str(ctx->file, ctx->value, "user", path, &user, errmsg)) == MESH_OK &&
        (err = get_str(ctx->file, ctx->value, "namespace", path, &ns, errmsg)) == MESH_OK &&
        !cluster)
        err = fail_at(errmsg, MESH_E_INVALID, ctx->file, ctx->item, path, "names no cluster");
    const struct kc_entry *ce = err == MESH_OK ? list_find(&kc->clusters, cluster) : NULL;
    const struct kc_entry *ue = err == MESH_OK && user ? list_find(&kc->users, user) : NULL;
    if (err == MESH_OK && !ce)
        err = fail_at(errmsg, MESH_E_NOTFOUND, ctx->file, mesh_node_map_get(ctx->value, "cluster"),
                      path, "cluster \"%s\" is not in %s", cluster, kc->source);
    else if (err == MESH_OK && user && !ue)
        err = fail_at(errmsg, MESH_E_NOTFOUND, ctx->file, mesh_node_map_get(ctx->value, "user"),
                      path, "user \"%s\" is not in %s", user, kc->source);
    free(path);
    if (err != MESH_OK)
        goto out;
    cred->context = xstrdup(name);
    cred->cluster = xstrdup(cluster);
    cred->user = xstrdup(user);
    cred->namespace = xstrdup(ns);
    if ((err = resolve_cluster(ce, cred, errmsg)) != MESH_OK)
        goto out;
    if (ue)
        err = resolve_user(ue, cred, errmsg);
out:
    if (err != MESH_OK)
        mesh_kube_credentials_clear(cred);
    free(list);
    return err;
}
