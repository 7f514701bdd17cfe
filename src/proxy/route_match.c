/* SPDX-License-Identifier: Apache-2.0 */
/* Route conditions: compile from the model once, then match requests without allocating. */
#include "route_match.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_error(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static enum mesh_err dup_string(const char *s, char **out, size_t *len)
{
    *len = strlen(s);
    *out = malloc(*len + 1);
    if (*out == NULL)
        return MESH_E_NOMEM;
    memcpy(*out, s, *len + 1);
    return MESH_OK;
}

/* Compiles pattern anchored at both ends. The bare pattern is compiled first so that one which
 * only compiles thanks to the wrapping ("a)|(b" inside "^(...)$") is refused, not silently
 * given another meaning. */
static enum mesh_err compile_anchored(regex_t *re, const char *pattern, const char *what,
                                      char *errbuf, size_t errlen)
{
    enum mesh_err err = MESH_OK;
    char reason[160];
    char *wrapped = NULL;
    regex_t bare;
    int rc = regcomp(&bare, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, &bare, reason, sizeof(reason));
        set_error(errbuf, errlen, "%s regex \"%s\" does not compile: %s", what, pattern, reason);
        return MESH_E_INVALID;
    }
    regfree(&bare);
    size_t len = strlen(pattern);
    wrapped = malloc(len + 5);
    if (wrapped == NULL) {
        err = MESH_E_NOMEM;
        goto out;
    }
    memcpy(wrapped, "^(", 2);
    memcpy(wrapped + 2, pattern, len);
    memcpy(wrapped + 2 + len, ")$", 3);
    rc = regcomp(re, wrapped, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, re, reason, sizeof(reason));
        set_error(errbuf, errlen, "%s regex \"%s\" does not compile: %s", what, pattern, reason);
        err = rc == REG_ESPACE ? MESH_E_NOMEM : MESH_E_INVALID;
    }
out:
    free(wrapped);
    return err;
}

static enum mesh_err compile_path(const struct mesh_path_match *src, struct mesh_route_matcher *m,
                                  char *errbuf, size_t errlen)
{
    m->path_kind = src->kind;
    if (src->kind == MESH_PATH_ANY)
        return MESH_OK;
    if (src->value == NULL) {
        set_error(errbuf, errlen, "path condition without a value");
        return MESH_E_INVALID;
    }
    switch (src->kind) {
    case MESH_PATH_REGEX: {
        enum mesh_err err = compile_anchored(&m->path_re, src->value, "path", errbuf, errlen);
        m->has_path_re = err == MESH_OK;
        return err;
    }
    case MESH_PATH_GLOB: {
        enum mesh_err err = dup_string(src->value, &m->path, &m->path_len);
        if (err != MESH_OK)
            return err;
        const char *first = memchr(m->path, '*', m->path_len);
        const char *last = strrchr(m->path, '*');
        /* A glob without '*' is an exact path. */
        m->glob_first_star = first ? (size_t)(first - m->path) : m->path_len;
        m->glob_last_star = last ? (size_t)(last - m->path) : m->path_len;
        if (first == NULL)
            m->path_kind = MESH_PATH_EXACT;
        return MESH_OK;
    }
    case MESH_PATH_EXACT:
    case MESH_PATH_PREFIX:
        return dup_string(src->value, &m->path, &m->path_len);
    case MESH_PATH_ANY:
        break;
    }
    set_error(errbuf, errlen, "unknown path condition kind %d", (int)src->kind);
    return MESH_E_INVALID;
}

static enum mesh_err compile_header(const struct mesh_header_match *src,
                                    struct mesh_header_matcher *h, char *errbuf, size_t errlen)
{
    if (src->name == NULL || src->name[0] == '\0') {
        set_error(errbuf, errlen, "header condition without a name");
        return MESH_E_INVALID;
    }
    h->kind = src->kind;
    if (src->kind != MESH_HEADER_PRESENT && src->value == NULL) {
        set_error(errbuf, errlen, "header %s: condition without a value", src->name);
        return MESH_E_INVALID;
    }
    enum mesh_err err = dup_string(src->name, &h->name, &h->name_len);
    if (err != MESH_OK)
        return err;
    switch (src->kind) {
    case MESH_HEADER_EXACT:
    case MESH_HEADER_PREFIX:
        return dup_string(src->value, &h->value, &h->value_len);
    case MESH_HEADER_REGEX: {
        char what[96];
        snprintf(what, sizeof(what), "header %s", src->name);
        err = compile_anchored(&h->re, src->value, what, errbuf, errlen);
        h->has_re = err == MESH_OK;
        return err;
    }
    case MESH_HEADER_PRESENT:
        return MESH_OK;
    }
    set_error(errbuf, errlen, "header %s: unknown condition kind %d", src->name, (int)src->kind);
    return MESH_E_INVALID;
}

static void free_header(struct mesh_header_matcher *h)
{
    free(h->name);
    free(h->value);
    if (h->has_re)
        regfree(&h->re);
    memset(h, 0, sizeof(*h));
}

enum mesh_err mesh_route_matcher_compile(const struct mesh_route_match *src,
                                         struct mesh_route_matcher *out, char *errbuf,
                                         size_t errlen)
{
    struct mesh_route_matcher m;
    memset(&m, 0, sizeof(m));
    memset(out, 0, sizeof(*out));
    enum mesh_err err = compile_path(&src->path, &m, errbuf, errlen);
    if (err != MESH_OK)
        goto out;
    if (src->n_headers > 0) {
        m.headers = calloc(src->n_headers, sizeof(*m.headers));
        if (m.headers == NULL) {
            err = MESH_E_NOMEM;
            goto out;
        }
    }
    for (; m.n_headers < src->n_headers; m.n_headers++) {
        /* Counted before it is complete, so that the cleanup frees a half-compiled one too. */
        err = compile_header(&src->headers[m.n_headers], &m.headers[m.n_headers], errbuf, errlen);
        if (err != MESH_OK) {
            m.n_headers++;
            goto out;
        }
    }
    if (src->method != NULL) {
        err = dup_string(src->method, &m.method, &m.method_len);
        if (err != MESH_OK)
            goto out;
    }
    *out = m;
    memset(&m, 0, sizeof(m)); /* out owns it all now */
out:
    if (err == MESH_E_NOMEM)
        set_error(errbuf, errlen, "out of memory compiling a route match");
    mesh_route_matcher_free(&m);
    return err;
}

void mesh_route_matcher_free(struct mesh_route_matcher *m)
{
    if (m == NULL)
        return;
    free(m->path);
    if (m->has_path_re)
        regfree(&m->path_re);
    for (size_t i = 0; i < m->n_headers; i++)
        free_header(&m->headers[i]);
    free(m->headers);
    free(m->method);
    memset(m, 0, sizeof(*m));
}

/* regexec needs a NUL-terminated subject; the slice is copied to the stack, never the heap. */
static bool regex_match(const regex_t *re, struct mesh_slice s)
{
    char buf[MESH_ROUTE_REGEX_MAX_SUBJECT + 1];
    if (s.len > MESH_ROUTE_REGEX_MAX_SUBJECT)
        return false;
    if (s.len > 0) {
        /* A NUL inside would hide what follows it from regexec; the parser refuses NUL in a
         * head already, and refusing here keeps the matcher right on its own. */
        if (memchr(s.p, '\0', s.len) != NULL)
            return false;
        memcpy(buf, s.p, s.len);
    }
    buf[s.len] = '\0';
    return regexec(re, buf, 0, NULL, 0) == 0;
}

static bool bytes_eq(const char *a, size_t alen, struct mesh_slice s)
{
    return alen == s.len && (alen == 0 || memcmp(a, s.p, alen) == 0);
}

static bool bytes_prefix(const char *prefix, size_t plen, struct mesh_slice s)
{
    return plen <= s.len && (plen == 0 || memcmp(prefix, s.p, plen) == 0);
}

/* The first place of needle (len >= 1) in hay, or NULL (memmem is a GNU extension). */
static const char *find_bytes(const char *hay, size_t hay_len, const char *needle, size_t len)
{
    const char *end = hay + hay_len;
    while ((size_t)(end - hay) >= len) {
        const char *p = memchr(hay, needle[0], (size_t)(end - hay) - len + 1);
        if (p == NULL)
            return NULL;
        if (memcmp(p, needle, len) == 0)
            return p;
        hay = p + 1;
    }
    return NULL;
}

/* '*'-only globs need no backtracking: the text before the first '*' must start the subject,
 * the text after the last must end it, and each piece in between is taken at its leftmost
 * place after the previous one (a later place never helps the pieces that follow). One pass,
 * no recursion, whatever the pattern. */
static bool glob_match(const struct mesh_route_matcher *m, struct mesh_slice s)
{
    const char *pat = m->path;
    size_t head = m->glob_first_star;
    size_t tail = m->path_len - m->glob_last_star - 1;
    if (head + tail > s.len || !bytes_prefix(pat, head, s) ||
        (tail > 0 && memcmp(pat + m->glob_last_star + 1, s.p + s.len - tail, tail) != 0))
        return false;
    const char *at = s.p + head;
    const char *end = s.p + s.len - tail;
    size_t i = head + 1;
    while (i < m->glob_last_star + 1) {
        const char *star = memchr(pat + i, '*', m->glob_last_star + 1 - i);
        size_t piece = (size_t)(star - (pat + i));
        if (piece > 0) {
            const char *found = find_bytes(at, (size_t)(end - at), pat + i, piece);
            if (found == NULL)
                return false;
            at = found + piece;
        }
        i += piece + 1;
    }
    return true;
}

static bool path_matches(const struct mesh_route_matcher *m, struct mesh_slice path)
{
    const char *q = path.len > 0 ? memchr(path.p, '?', path.len) : NULL;
    if (q != NULL)
        path.len = (size_t)(q - path.p);
    switch (m->path_kind) {
    case MESH_PATH_ANY:
        return true;
    case MESH_PATH_EXACT:
        return bytes_eq(m->path, m->path_len, path);
    case MESH_PATH_PREFIX:
        return bytes_prefix(m->path, m->path_len, path);
    case MESH_PATH_GLOB:
        return glob_match(m, path);
    case MESH_PATH_REGEX:
        return m->has_path_re && regex_match(&m->path_re, path);
    }
    return false;
}

static bool header_value_matches(const struct mesh_header_matcher *h, struct mesh_slice v)
{
    switch (h->kind) {
    case MESH_HEADER_EXACT:
        return bytes_eq(h->value, h->value_len, v);
    case MESH_HEADER_PREFIX:
        return bytes_prefix(h->value, h->value_len, v);
    case MESH_HEADER_REGEX:
        return h->has_re && regex_match(&h->re, v);
    case MESH_HEADER_PRESENT:
        return true;
    }
    return false;
}

static bool header_matches(const struct mesh_header_matcher *h,
                           const struct mesh_h1_header *headers, size_t n)
{
    struct mesh_slice name = {h->name, h->name_len};
    for (size_t i = 0; i < n; i++)
        if (mesh_slice_eq_nocase(headers[i].name, name) &&
            header_value_matches(h, headers[i].value))
            return true;
    return false;
}

bool mesh_route_matcher_match(const struct mesh_route_matcher *m, struct mesh_slice method,
                              struct mesh_slice path, const struct mesh_h1_header *headers,
                              size_t n_headers)
{
    if (m->method != NULL && !bytes_eq(m->method, m->method_len, method))
        return false;
    if (!path_matches(m, path))
        return false;
    for (size_t i = 0; i < m->n_headers; i++)
        if (!header_matches(&m->headers[i], headers, n_headers))
            return false;
    return true;
}

/* host ends with suffix (which starts with '.'), ASCII case-insensitively. */
static bool ends_with_nocase(struct mesh_slice host, const char *suffix, size_t slen)
{
    return host.len >= slen &&
           mesh_slice_eq_nocase((struct mesh_slice){host.p + host.len - slen, slen},
                                (struct mesh_slice){suffix, slen});
}

bool mesh_host_matches(const char *pattern, struct mesh_slice host)
{
    if (pattern[0] == '*' && pattern[1] == '\0')
        return true;
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t slen = strlen(pattern + 1);
        /* At least one character before the dot: the apex is not a subdomain. */
        return host.len > slen && ends_with_nocase(host, pattern + 1, slen);
    }
    return mesh_slice_eq_cstr_nocase(host, pattern);
}

static bool all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

struct mesh_slice mesh_host_strip_port(struct mesh_slice host)
{
    if (host.len == 0)
        return host;
    if (host.p[0] == '[') {
        const char *close = memchr(host.p, ']', host.len);
        if (close == NULL)
            return host;
        size_t keep = (size_t)(close - host.p) + 1;
        const char *rest = host.p + keep;
        size_t rest_len = host.len - keep;
        if (rest_len == 0 || (rest[0] == ':' && all_digits(rest + 1, rest_len - 1)))
            return (struct mesh_slice){host.p, keep};
        return host;
    }
    const char *colon = memchr(host.p, ':', host.len);
    if (colon == NULL)
        return host;
    size_t keep = (size_t)(colon - host.p);
    /* A second ':' means a bare IPv6 address, not host:port. */
    if (memchr(colon + 1, ':', host.len - keep - 1) != NULL)
        return host;
    if (!all_digits(colon + 1, host.len - keep - 1))
        return host;
    return (struct mesh_slice){host.p, keep};
}
