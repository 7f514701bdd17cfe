/* SPDX-License-Identifier: Apache-2.0 */
/* The libcurl plumbing kube/client.c and provider/grafana.c share (curl_body.h). */
#include "curl_body.h"

#include <pthread.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void init_curl(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURLcode mesh_curl_global_init(void)
{
    /* One call for the process: curl_global_init is not thread-safe on every libcurl build. */
    pthread_once(&curl_once, init_curl);
    return curl_init_rc;
}

void mesh_curl_body_init(struct mesh_curl_body *body, size_t max)
{
    body->too_big = false;
    mesh_strbuf_init(&body->sb, max);
}

size_t mesh_curl_body_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct mesh_curl_body *body = arg;
    if (mesh_strbuf_append(&body->sb, data, size * nmemb) != MESH_OK) {
        body->too_big = true;
        return 0; /* fewer bytes than given: libcurl stops with CURLE_WRITE_ERROR */
    }
    return size * nmemb;
}
