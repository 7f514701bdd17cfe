/* SPDX-License-Identifier: Apache-2.0 */
/* Reads meshctl's -f inputs (files, directories, stdin) and parses every document up front. */
#include "input.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/strbuf.h"
#include "core/xalloc.h"

/* Bounds -R through symlink loops: no real configuration tree is this deep. */
#define MAX_DIR_DEPTH 32

static void add_problem(struct cli_input_file *f, char *line)
{
    f->problems = xrealloc(f->problems, (f->n_problems + 1) * sizeof(*f->problems));
    f->problems[f->n_problems++] = line;
}

/* Reads all of fp into *text (NUL-terminated). MESH_E_NOMEM when over the size limit. */
static enum mesh_err read_all(FILE *fp, char **text, size_t *len)
{
    struct mesh_strbuf sb;
    char chunk[65536];
    size_t got;
    enum mesh_err err = MESH_OK;

    mesh_strbuf_init(&sb, CLI_INPUT_MAX_BYTES);
    while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        err = mesh_strbuf_append(&sb, chunk, got);
        if (err != MESH_OK)
            goto out;
    }
    if (ferror(fp))
        err = MESH_E_IO;
out:
    if (err != MESH_OK) {
        mesh_strbuf_free(&sb);
        return err;
    }
    *len = sb.len;
    *text = mesh_strbuf_take(&sb);
    return MESH_OK;
}

/* Parses text as file name into a new entry of in->files. Document problems become the file's
 * problems; only a failure that is not about the documents is returned. */
static enum mesh_err add_source(struct cli_input *in, const char *name, const char *text,
                                size_t len)
{
    struct mesh_diags diags = {NULL, 0};
    struct cli_input_file *f;

    xgrow((void **)&in->files, &in->cap_files, in->n_files + 1, sizeof(*in->files));
    f = &in->files[in->n_files++];
    memset(f, 0, sizeof(*f));
    f->name = xstrdup(name);

    enum mesh_err err = mesh_parse_documents(text, len, name, &f->res, &f->n, &diags);
    if (err == MESH_E_INVALID) {
        for (size_t i = 0; i < diags.len; i++)
            add_problem(f, mesh_diag_format(&diags.items[i]));
        if (diags.len == 0)
            add_problem(f, xasprintf("%s: invalid input", name));
        f->res = NULL;
        f->n = 0;
        err = MESH_OK;
        goto out;
    }
    if (err != MESH_OK) {
        cli_error("%s: %s", name, mesh_strerror(err));
        goto out;
    }
    xgrow((void **)&in->all, &in->cap_all, in->n_all + f->n, sizeof(*in->all));
    in->all_file = xrealloc(in->all_file, in->cap_all * sizeof(*in->all_file));
    for (size_t i = 0; i < f->n; i++) {
        in->all[in->n_all] = f->res[i];
        in->all_file[in->n_all] = f->name;
        in->n_all++;
    }
out:
    mesh_diags_clear(&diags);
    return err;
}

static enum mesh_err load_stream(struct cli_input *in, const char *name, FILE *fp)
{
    char *text = NULL;
    size_t len = 0;
    enum mesh_err err = read_all(fp, &text, &len);
    if (err == MESH_E_NOMEM) {
        cli_error("%s: larger than %u bytes", name, CLI_INPUT_MAX_BYTES);
        return MESH_E_IO;
    }
    if (err != MESH_OK) {
        cli_error("cannot read %s: %s", name, strerror(errno));
        return MESH_E_IO;
    }
    err = add_source(in, name, text, len);
    free(text);
    return err;
}

static enum mesh_err load_file(struct cli_input *in, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        cli_error("cannot open %s: %s", path, strerror(errno));
        return MESH_E_IO;
    }
    enum mesh_err err = load_stream(in, path, fp);
    fclose(fp);
    return err;
}

static bool has_resource_ext(const char *name)
{
    static const char *const exts[] = {".yaml", ".yml", ".json"};
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        size_t el = strlen(exts[i]);
        if (len > el && strcmp(name + len - el, exts[i]) == 0)
            return true;
    }
    return false;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum mesh_err load_dir(struct cli_input *in, const char *dir, bool recursive, int depth,
                              size_t *found)
{
    enum mesh_err err = MESH_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;

    if (depth > MAX_DIR_DEPTH) {
        cli_error("%s: directories nested deeper than %d levels", dir, MAX_DIR_DEPTH);
        return MESH_E_IO;
    }
    DIR *d = opendir(dir);
    if (!d) {
        cli_error("cannot read directory %s: %s", dir, strerror(errno));
        return MESH_E_IO;
    }
    while ((de = readdir(d)) != NULL) {
        /* Hidden entries are editor and VCS droppings (.git, .#x.yaml), never resources. */
        if (de->d_name[0] == '.')
            continue;
        xgrow((void **)&names, &cap, n + 1, sizeof(*names));
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n > 1) /* qsort wants a non-NULL base even for nothing */
        qsort(names, n, sizeof(*names), compare_names);

    size_t dl = strlen(dir);
    for (size_t i = 0; i < n && err == MESH_OK; i++) {
        char *path = dl && dir[dl - 1] == '/' ? xasprintf("%s%s", dir, names[i])
                                              : xasprintf("%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0) {
            /* a dangling symlink is not an input; anything else unreadable is an error */
            if (errno != ENOENT) {
                cli_error("cannot read %s: %s", path, strerror(errno));
                err = MESH_E_IO;
            }
        } else if (S_ISDIR(st.st_mode)) {
            if (recursive)
                err = load_dir(in, path, recursive, depth + 1, found);
        } else if (S_ISREG(st.st_mode) && has_resource_ext(names[i])) {
            err = load_file(in, path);
            (*found)++;
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return err;
}

enum mesh_err cli_input_load(struct cli_input *in, char *const *paths, size_t n_paths,
                             bool recursive)
{
    enum mesh_err err = MESH_OK;
    for (size_t i = 0; i < n_paths && err == MESH_OK; i++) {
        const char *path = paths[i];
        struct stat st;
        if (strcmp(path, "-") == 0) {
            if (in->read_stdin) {
                cli_error("stdin (-f -) can be read only once");
                return MESH_E_INVALID;
            }
            in->read_stdin = true;
            err = load_stream(in, "<stdin>", stdin);
        } else if (stat(path, &st) != 0) {
            cli_error("cannot open %s: %s", path, strerror(errno));
            err = MESH_E_IO;
        } else if (S_ISDIR(st.st_mode)) {
            size_t found = 0;
            err = load_dir(in, path, recursive, 0, &found);
            if (err == MESH_OK && found == 0) {
                cli_error("no .yaml, .yml or .json files in %s%s", path,
                          recursive ? " or below" : "");
                err = MESH_E_INVALID;
            }
        } else {
            err = load_file(in, path);
        }
    }
    return err;
}

struct dup_key {
    const struct mesh_resource *res;
    size_t index;
};

static int compare_dup_keys(const void *pa, const void *pb)
{
    const struct dup_key *a = pa, *b = pb;
    if (a->res->kind != b->res->kind)
        return a->res->kind < b->res->kind ? -1 : 1;
    int c = strcmp(mesh_resource_namespace(a->res), mesh_resource_namespace(b->res));
    if (c == 0)
        c = strcmp(a->res->name, b->res->name);
    if (c == 0)
        c = a->index < b->index ? -1 : a->index > b->index;
    return c;
}

void cli_input_check_duplicates(struct cli_input *in)
{
    if (in->n_all < 2)
        return;
    /* sorting keeps this n log n: the durability test applies thousands of documents */
    struct dup_key *keys = xcalloc(in->n_all, sizeof(*keys));
    for (size_t i = 0; i < in->n_all; i++) {
        keys[i].res = in->all[i];
        keys[i].index = i;
    }
    qsort(keys, in->n_all, sizeof(*keys), compare_dup_keys);
    size_t first = 0;
    for (size_t i = 1; i < in->n_all; i++) {
        const struct mesh_resource *a = keys[first].res, *b = keys[i].res;
        if (a->kind != b->kind ||
            strcmp(mesh_resource_namespace(a), mesh_resource_namespace(b)) != 0 ||
            strcmp(a->name, b->name) != 0) {
            first = i;
            continue;
        }
        const char *file = in->all_file[keys[i].index];
        for (size_t f = 0; f < in->n_files; f++) {
            if (in->files[f].name != file)
                continue;
            add_problem(&in->files[f],
                        xasprintf("%s: metadata.name: duplicate %s %s/%s (first defined in %s)",
                                  file, mesh_kind_name(b->kind), mesh_resource_namespace(b),
                                  b->name, in->all_file[keys[first].index]));
            break;
        }
    }
    free(keys);
}

bool cli_input_valid(const struct cli_input *in)
{
    for (size_t i = 0; i < in->n_files; i++)
        if (in->files[i].n_problems)
            return false;
    return true;
}

void cli_input_print_problems(const struct cli_input *in, FILE *out)
{
    for (size_t i = 0; i < in->n_files; i++)
        for (size_t j = 0; j < in->files[i].n_problems; j++)
            fprintf(out, "%s\n", in->files[i].problems[j]);
}

void cli_input_free(struct cli_input *in)
{
    for (size_t i = 0; i < in->n_files; i++) {
        struct cli_input_file *f = &in->files[i];
        mesh_resource_list_free(f->res, f->n);
        for (size_t j = 0; j < f->n_problems; j++)
            free(f->problems[j]);
        free(f->problems);
        free(f->name);
    }
    free(in->files);
    free(in->all);
    free(in->all_file);
    memset(in, 0, sizeof(*in));
}

int cli_input_read(const struct cli_command *cmd, struct cli_input *in, char *const *files,
                   size_t n_files, bool recursive, int argc, char **argv)
{
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument \"%s\" (files are given with -f)",
                               argv[optind]);
    if (n_files == 0)
        return cli_usage_error(cmd, "%s needs at least one -f FILE|DIR|-", cmd->name);
    if (cli_input_load(in, files, n_files, recursive) != MESH_OK)
        return CLI_EXIT_ERROR;
    cli_input_check_duplicates(in);
    return CLI_EXIT_OK;
}
