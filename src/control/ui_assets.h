/* SPDX-License-Identifier: Apache-2.0 */
/* The dashboard's files (src/control/ui/), compiled into meshd: the build turns each into a
 * byte array (scripts/embed_ui.sh writes $(BUILD)/gen/ui_assets.c), so that meshd serves the
 * page from its own binary and nothing is fetched from anywhere else. */
#ifndef MESH_CONTROL_UI_ASSETS_H
#define MESH_CONTROL_UI_ASSETS_H

#include <stddef.h>

struct mesh_ui_asset {
    const char *name;         /* the file name: "index.html", "app.js", "style.css" */
    const char *content_type; /* from the extension, with charset=utf-8 */
    const unsigned char *data;
    size_t len;
};

/* Every file, sorted by name. */
extern const struct mesh_ui_asset mesh_ui_assets[];
extern const size_t mesh_ui_assets_len;

#endif
