/* SPDX-License-Identifier: Apache-2.0 */
/* meshctl tap's side of a proxy's GET /tap: one non-blocking connection per proxy, its response
 * head, and the chunked body cut into the JSON lines the proxy sends (docs/meshproxy.md). */
#ifndef MESH_CLI_TAP_STREAM_H
#define MESH_CLI_TAP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"
#include "mesh/err.h"

enum cli_tap_state {
    CLI_TAP_HEAD = 0,  /* waiting for the response head */
    CLI_TAP_SIZE,      /* reading a chunk-size line */
    CLI_TAP_DATA,      /* reading chunk data */
    CLI_TAP_DATA_CRLF, /* the CRLF after chunk data */
    CLI_TAP_TRAILER,   /* after the last chunk, up to the empty line */
    CLI_TAP_DONE,      /* the proxy ended the stream */
};

/* One proxy's tap. Strings are owned. */
struct cli_tap_stream {
    char *proxy; /* its id, for messages and each event's "proxy" ("" for --admin) */
    char *admin; /* HOST:PORT */
    int fd;      /* -1 once closed */
    enum cli_tap_state state;
    struct mesh_strbuf in;   /* bytes read and not yet used */
    struct mesh_strbuf line; /* the JSON line being put together from chunk data */
    uint64_t chunk_left;
    size_t line_bytes; /* bytes of the current chunk-size or trailer line */
    int status;        /* the response's, once its head is in */
};

/* Connects to admin (HOST:PORT, or http://HOST:PORT) within timeout_ms and sends GET target
 * ("/tap?..."), then waits for the response head, within the same time. MESH_OK: a 200 with a
 * chunked body, the stream is ready for cli_tap_stream_read. Otherwise *errmsg (caller frees)
 * says why, naming the proxy: MESH_E_UNAVAILABLE (cannot connect, no answer in time),
 * MESH_E_INVALID (an answer other than a chunked 200: its status and body text). s is set up
 * either way; cli_tap_stream_close it. */
enum mesh_err cli_tap_stream_open(struct cli_tap_stream *s, const char *proxy, const char *admin,
                                  const char *target, long timeout_ms, char **errmsg);

/* What one JSON line is handed to: the line without its '\n', NUL-terminated, borrowed. */
typedef void (*cli_tap_line_fn)(void *ctx, struct cli_tap_stream *s, const char *line);

/* Reads what the socket has (it does not block) and calls fn for every complete line. Returns
 * MESH_OK while the stream goes on, MESH_E_AGAIN never; when the stream ended: MESH_OK with
 * s->state CLI_TAP_DONE (the last chunk came), MESH_E_UNAVAILABLE (the proxy closed or reset the
 * connection first), MESH_E_INVALID (broken chunked framing), with *errmsg (caller frees). fn may
 * ask the caller to stop, but is called for every line already read. */
enum mesh_err cli_tap_stream_read(struct cli_tap_stream *s, cli_tap_line_fn fn, void *ctx,
                                  char **errmsg);

/* Closes the connection (the proxy ends the session when it sees it) and frees s's buffers.
 * Safe on a stream that failed to open, and twice. */
void cli_tap_stream_close(struct cli_tap_stream *s);

#endif
