/* SPDX-License-Identifier: Apache-2.0 */
/* Durations as people write them ("250ms", "10s", "1m30s", "1.5s") and their shortest exact form.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "schema.h"

struct unit {
    const char *name;
    unsigned long long ms;
};

/* Longest names first so that "ms" is not read as "m" followed by "s". */
static const struct unit units[] = {
    {"ms", 1},
    {"h", 3600000ULL},
    {"m", 60000ULL},
    {"s", 1000ULL},
};

static const struct unit *unit_at(const char *p, size_t *len)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].name);
        if (strncmp(p, units[i].name, n) == 0) {
            *len = n;
            return &units[i];
        }
    }
    return NULL;
}

static bool bad(const char *text, char *why, size_t len)
{
    snprintf(why, len,
             "invalid duration \"%s\": use a number and a unit (ms, s, m, h), like 100ms, 10s "
             "or 1m30s",
             text);
    return false;
}

/* A well-formed duration too large to count ("999999999999h") gives ULLONG_MAX, so that callers
 * say it is too long rather than that it is malformed. */
bool mesh_duration_parse(const char *text, unsigned long long *ms, char *why, size_t len)
{
    const char *p = text;
    unsigned long long total = 0;
    bool huge = false;
    if (!*p)
        return bad(text, why, len);
    while (*p) {
        unsigned long long whole = 0, frac = 0, scale = 1;
        if (!isdigit((unsigned char)*p))
            return bad(text, why, len);
        for (; isdigit((unsigned char)*p); p++) {
            if (whole > 1000000000ULL)
                huge = true; /* keep checking the syntax, stop counting */
            else
                whole = whole * 10 + (unsigned long long)(*p - '0');
        }
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p))
                return bad(text, why, len);
            for (; isdigit((unsigned char)*p); p++) {
                if (scale < 1000000000ULL) {
                    frac = frac * 10 + (unsigned long long)(*p - '0');
                    scale *= 10;
                }
            }
        }
        size_t ulen = 0;
        const struct unit *u = unit_at(p, &ulen);
        if (!u)
            return bad(text, why, len);
        p += ulen;
        if (!huge)
            total += whole * u->ms + (frac * u->ms + scale / 2) / scale;
        if (total > 1000000000000000ULL) /* far beyond any bound: stop before overflow */
            huge = true;
    }
    *ms = huge ? ULLONG_MAX : total;
    return true;
}

void mesh_duration_format(unsigned long long ms, char *buf, size_t len)
{
    if (ms && ms % 3600000ULL == 0)
        snprintf(buf, len, "%lluh", ms / 3600000ULL);
    else if (ms && ms % 60000ULL == 0)
        snprintf(buf, len, "%llum", ms / 60000ULL);
    else if (ms && ms % 1000ULL == 0)
        snprintf(buf, len, "%llus", ms / 1000ULL);
    else
        snprintf(buf, len, "%llums", ms);
}
