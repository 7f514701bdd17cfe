/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's root rotation (docs/security.md, "Rotating the root"): a new root made beside the
 * current one, then three waves of renewals with traffic flowing, each ended only once every
 * live proxy holds a certificate of that wave:
 *
 *   prepare  the bundle is [old, new]; the old root still signs
 *   switch   the bundle is [old, new]; the new root signs
 *   retire   the bundle is [new]; the new root is "the root" (mesh-root)
 *
 * and then the old root's files are moved to DATA_DIR/ca/retired/. A proxy verifies its peers
 * with the bundle that came with its own certificate, so no wave may start before every proxy
 * has the previous one's. Each wave has its own CA generation, a number that goes into every
 * proxy's config (its change wakes their config watches and makes them renew) and into every
 * certificate answer. The state lives in DATA_DIR/ca/rotation.json, so that a restarted meshd
 * resumes the wave it was in. meshd's loop thread only. */
#ifndef MESH_CONTROL_CA_ROTATION_H
#define MESH_CONTROL_CA_ROTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "ca.h"
#include "mesh/err.h"
#include "registry.h"

/* How long a proxy may take to register again with a meshd that just started: its config watch
 * retries at most 5 s apart (MESH_CONTROL_BACKOFF_MAX_MS), plus the request. A wave does not end
 * before meshd has been up this long (and one heartbeat interval more), or a proxy that has not
 * yet come back would be missed. */
#define MESH_CA_ROTATION_REJOIN_MS 6000u

enum mesh_ca_phase {
    MESH_CA_PHASE_IDLE = 0,
    MESH_CA_PHASE_PREPARE,
    MESH_CA_PHASE_SWITCH,
    MESH_CA_PHASE_RETIRE,
};

/* "idle", "prepare", "switch", "retire". */
const char *mesh_ca_phase_name(enum mesh_ca_phase phase);

struct mesh_ca_rotation;

/* When a wave may end: every live proxy has a certificate of its generation, nothing was issued
 * for grace_ms (the proxies publish theirs a moment after meshd answers), and the monotonic
 * clock has passed hold_until_ms (see MESH_CA_ROTATION_REJOIN_MS). */
struct mesh_ca_rotation_timing {
    uint64_t grace_ms;
    uint64_t hold_until_ms;
};

/* Opens meshd's root in dir (DATA_DIR/ca; mesh_ca_open_root, *created as there) into set (empty;
 * the root becomes items[0]) together with the rotation dir's rotation.json records: an
 * interrupted end of a rotation is finished first, a rotation in progress is resumed with its
 * incoming root loaded and its generation moved on by one (so that every proxy renews again:
 * which certificates they were issued died with the previous meshd), and logged. Incoming-root
 * files without a rotation (a start that crashed) are removed. Errors as mesh_ca_open_root's,
 * plus MESH_E_INVALID for a rotation.json that does not read or files it needs that are gone,
 * each with *errmsg (caller frees) saying what to do. *out: the caller's (mesh_ca_rotation_free,
 * before the set is cleared). */
enum mesh_err mesh_ca_rotation_open(const char *dir, const char *trust_domain, time_t now,
                                    uint64_t wall_ms, struct mesh_ca_set *set,
                                    struct mesh_ca_rotation **out, bool *created, char **errmsg);

/* NULL is a no-op. The set keeps what it holds. */
void mesh_ca_rotation_free(struct mesh_ca_rotation *r);

/* Starts a rotation: makes the incoming root (DATA_DIR/ca/next-root-*.pem, P-256, its CN "...
 * root CA N (TD)"), puts it in the bundle and records the prepare wave under a new generation.
 * MESH_E_CONFLICT when one runs; MESH_E_IO / MESH_E_TLS when the root or the record cannot be
 * written (nothing changed then). *errmsg (caller frees) on every error. mono_ms starts the
 * wave's grace. */
enum mesh_err mesh_ca_rotation_start(struct mesh_ca_rotation *r, uint64_t mono_ms, uint64_t wall_ms,
                                     char **errmsg);

/* Records that proxy id was issued a certificate (with the current bundle) at mono_ms. */
void mesh_ca_rotation_issued(struct mesh_ca_rotation *r, const char *id, uint64_t mono_ms);

/* Whether a live proxy still waits for a certificate of the current wave: the rotation runs and
 * none was issued to it since the wave began. */
bool mesh_ca_rotation_lags(const struct mesh_ca_rotation *r, const char *id);

/* Ends the current wave when t allows it and no proxy of reg lags, starting the next (or
 * finishing the rotation: the old root's files go to DATA_DIR/ca/retired/, the incoming root's
 * become root-*.pem). *changed tells whether the generation or the bundle moved (the configs must
 * be pushed again). MESH_E_IO with *errmsg (caller frees) when the record cannot be written: the
 * wave then stays, and the next tick tries again. */
enum mesh_err mesh_ca_rotation_tick(struct mesh_ca_rotation *r, const struct mesh_registry *reg,
                                    const struct mesh_ca_rotation_timing *t, uint64_t mono_ms,
                                    uint64_t wall_ms, bool *changed, char **errmsg);

enum mesh_ca_phase mesh_ca_rotation_phase(const struct mesh_ca_rotation *r);
/* The generation every proxy's config and certificate carries: 0 before the first rotation, one
 * more for each wave. */
uint64_t mesh_ca_rotation_generation(const struct mesh_ca_rotation *r);

/* The status of docs/api.md (GET /v1/ca "rotation"): phase, id, generation, started, completed,
 * waiting_for (the lagging proxies of reg), live_proxies, phases[]. The caller owns it. */
json_t *mesh_ca_rotation_json(const struct mesh_ca_rotation *r, const struct mesh_registry *reg);

#endif
