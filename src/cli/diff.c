/* SPDX-License-Identifier: Apache-2.0 */
/* Line diff by longest common subsequence, printed as a unified diff with context hunks. */
#include "diff.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

/* The LCS table is (old lines + 1) x (new lines + 1) cells; beyond this the changed middle is
 * shown as one replacement, still a correct diff, just not a minimal one. */
#define LCS_MAX_CELLS (16u * 1024 * 1024)

struct line {
    const char *p;
    size_t len;
};

struct lines {
    struct line *v;
    size_t n;
};

enum op_tag {
    OP_KEEP = ' ',
    OP_DEL = '-',
    OP_ADD = '+',
};

/* ai/bi: how many old/new lines come before this op; the op's own line when it has one. */
struct op {
    enum op_tag tag;
    size_t ai, bi;
};

static void split_lines(const char *text, struct lines *out)
{
    size_t n = 0, cap = 0;
    struct line *v = NULL;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        xgrow((void **)&v, &cap, n + 1, sizeof(*v));
        v[n].p = p;
        v[n].len = len;
        n++;
        p += len + (nl ? 1 : 0);
    }
    out->v = v;
    out->n = n;
}

static bool line_eq(const struct line *a, const struct line *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

static void push(struct op *ops, size_t *n, enum op_tag tag, size_t ai, size_t bi)
{
    ops[*n].tag = tag;
    ops[*n].ai = ai;
    ops[*n].bi = bi;
    (*n)++;
}

/* Fills ops (room for a->n + b->n) with an edit script turning a into b; returns its length. */
static size_t edit_script(const struct lines *a, const struct lines *b, struct op *ops)
{
    size_t n = 0, pre = 0, suf = 0;
    while (pre < a->n && pre < b->n && line_eq(&a->v[pre], &b->v[pre]))
        pre++;
    while (suf < a->n - pre && suf < b->n - pre &&
           line_eq(&a->v[a->n - 1 - suf], &b->v[b->n - 1 - suf]))
        suf++;
    for (size_t k = 0; k < pre; k++)
        push(ops, &n, OP_KEEP, k, k);

    size_t na = a->n - pre - suf, nb = b->n - pre - suf;
    size_t i = 0, j = 0;
    if (na && nb && na + 1 <= LCS_MAX_CELLS / (nb + 1)) {
        /* only here are both sides non-empty, so a->v and b->v are not NULL */
        const struct line *av = a->v + pre, *bv = b->v + pre;
        /* lcs[i][j] = length of the LCS of av[i..] and bv[j..] */
        size_t w = nb + 1;
        uint32_t *lcs = xcalloc((na + 1) * w, sizeof(*lcs));
        for (size_t x = na; x-- > 0;)
            for (size_t y = nb; y-- > 0;) {
                if (line_eq(&av[x], &bv[y]))
                    lcs[x * w + y] = lcs[(x + 1) * w + y + 1] + 1;
                else if (lcs[(x + 1) * w + y] >= lcs[x * w + y + 1])
                    lcs[x * w + y] = lcs[(x + 1) * w + y];
                else
                    lcs[x * w + y] = lcs[x * w + y + 1];
            }
        while (i < na && j < nb) {
            if (line_eq(&av[i], &bv[j])) {
                push(ops, &n, OP_KEEP, pre + i, pre + j);
                i++;
                j++;
            } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
                push(ops, &n, OP_DEL, pre + i, pre + j);
                i++;
            } else {
                push(ops, &n, OP_ADD, pre + i, pre + j);
                j++;
            }
        }
        free(lcs);
    }
    for (; i < na; i++)
        push(ops, &n, OP_DEL, pre + i, pre + j);
    for (; j < nb; j++)
        push(ops, &n, OP_ADD, pre + i, pre + j);
    for (size_t k = 0; k < suf; k++)
        push(ops, &n, OP_KEEP, a->n - suf + k, b->n - suf + k);
    return n;
}

/* "start,len" as diff -u writes it: a range of one line is just its number, and an empty range
 * names the line before it. */
static void print_range(FILE *out, size_t before, size_t len)
{
    if (len == 1)
        fprintf(out, "%zu", before + 1);
    else
        fprintf(out, "%zu,%zu", len ? before + 1 : before, len);
}

static void print_hunk(const struct op *ops, size_t start, size_t end, const struct lines *a,
                       const struct lines *b, FILE *out)
{
    size_t alen = 0, blen = 0;
    for (size_t k = start; k < end; k++) {
        alen += ops[k].tag != OP_ADD;
        blen += ops[k].tag != OP_DEL;
    }
    fputs("@@ -", out);
    print_range(out, ops[start].ai, alen);
    fputs(" +", out);
    print_range(out, ops[start].bi, blen);
    fputs(" @@\n", out);
    for (size_t k = start; k < end; k++) {
        const struct line *l = ops[k].tag == OP_ADD ? &b->v[ops[k].bi] : &a->v[ops[k].ai];
        fprintf(out, "%c%.*s\n", (char)ops[k].tag, (int)l->len, l->p);
    }
}

bool cli_diff_unified(const char *old_text, const char *new_text, const char *old_label,
                      const char *new_label, FILE *out)
{
    struct lines a, b;
    split_lines(old_text, &a);
    split_lines(new_text, &b);
    struct op *ops = xcalloc(a.n + b.n + 1, sizeof(*ops));
    size_t nops = edit_script(&a, &b, ops);
    bool differ = false;

    size_t i = 0;
    while (i < nops) {
        if (ops[i].tag == OP_KEEP) {
            i++;
            continue;
        }
        if (!differ) {
            fprintf(out, "--- %s\n+++ %s\n", old_label, new_label);
            differ = true;
        }
        /* Changes separated by at most 2 * context unchanged lines share one hunk. */
        size_t start = i > CLI_DIFF_CONTEXT ? i - CLI_DIFF_CONTEXT : 0;
        size_t last = i;
        for (size_t j = i + 1; j < nops; j++) {
            if (ops[j].tag != OP_KEEP)
                last = j;
            else if (j - last > 2 * CLI_DIFF_CONTEXT)
                break;
        }
        size_t end = last + CLI_DIFF_CONTEXT + 1 < nops ? last + CLI_DIFF_CONTEXT + 1 : nops;
        print_hunk(ops, start, end, &a, &b, out);
        i = end;
    }
    free(ops);
    free(a.v);
    free(b.v);
    return differ;
}
