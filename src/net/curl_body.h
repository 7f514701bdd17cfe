/* SPDX-License-Identifier: Apache-2.0 */
/* What the libcurl clients (kube/client.c, provider/grafana.c) share: a once-only
 * curl_global_init and a write callback that gathers an answer's body up to a limit. */
#ifndef MESH_NET_CURL_BODY_H
#define MESH_NET_CURL_BODY_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/strbuf.h"

/* curl_global_init(CURL_GLOBAL_DEFAULT), run once per process whoever asks first; every call
 * answers that first call's result. Any thread. */
CURLcode mesh_curl_global_init(void);

/* An answer's body as it arrives; too_big is set when it outgrew the limit given to
 * mesh_curl_body_init, which makes the transfer end with CURLE_WRITE_ERROR. */
struct mesh_curl_body {
    struct mesh_strbuf sb;
    bool too_big;
};

void mesh_curl_body_init(struct mesh_curl_body *body, size_t max);

/* A CURLOPT_WRITEFUNCTION; CURLOPT_WRITEDATA is the struct mesh_curl_body. */
size_t mesh_curl_body_write(char *data, size_t size, size_t nmemb, void *arg);

#endif
