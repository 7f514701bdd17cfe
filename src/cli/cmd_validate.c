/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl validate`: parse and check resource files without opening any store. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "core/xalloc.h"
#include "input.h"

static int run_validate(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_validate = {
    .name = "validate",
    .summary = "Check resource files without touching a store",
    .usage = "Check resource files without touching a store.\n"
             "\n"
             "Prints \"FILE: N documents valid\" for each valid file, and every problem of the\n"
             "others as FILE:LINE:COL: FIELD.PATH: message. Exits 1 when any file is invalid.\n"
             "\n"
             "Usage:\n"
             "  meshctl validate -f FILE|DIR|- [-f ...] [-R]\n"
             "\n"
             "Flags:\n"
             "  -f, --filename PATH   a file, a directory (its .yaml, .yml and .json files) or -\n"
             "                        for stdin; repeatable\n"
             "  -R, --recursive       also read the subdirectories of a directory\n"
             "  -h, --help            show this help\n"
             "\n"
             "Examples:\n"
             "  meshctl validate -f examples/\n"
             "  meshctl validate -f - < payment-virtual-service.yaml\n",
    .run = run_validate,
};

static int run_validate(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_validate;
    struct cli_input in = {0};
    char **files = xcalloc((size_t)argc + 1, sizeof(*files));
    size_t n_files = 0;
    bool recursive = false;
    int rc = CLI_EXIT_OK, c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:Rh", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            files[n_files++] = optarg;
            break;
        case 'R':
            recursive = true;
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                goto out;
            break;
        }
    }
    rc = cli_input_read(cmd, &in, files, n_files, recursive, argc, argv);
    if (rc != CLI_EXIT_OK)
        goto out;
    for (size_t i = 0; i < in.n_files; i++) {
        const struct cli_input_file *f = &in.files[i];
        if (f->n_problems == 0) {
            printf("%s: %zu document%s valid\n", f->name, f->n, f->n == 1 ? "" : "s");
            continue;
        }
        /* stdout keeps its order with the problems when both go to a terminal */
        fflush(stdout);
        for (size_t j = 0; j < f->n_problems; j++)
            fprintf(stderr, "%s\n", f->problems[j]);
        rc = CLI_EXIT_ERROR;
    }
out:
    cli_input_free(&in);
    free(files);
    return rc;
}
