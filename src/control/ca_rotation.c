/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's root rotation: the three waves, their record in DATA_DIR/ca/rotation.json, and the
 * moves of the root files when the rotation ends, made so that a crash at any point is finished
 * by the next start. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h" /* the string map */
#include "ca_rotation.h"
#include "core/xalloc.h"

#define N_WAVES 3

/* One wave of a rotation, as recorded. */
struct wave {
    enum mesh_ca_phase phase;
    uint64_t generation;
    uint64_t started_ms, completed_ms; /* wall clock; completed 0 while it runs */
    uint64_t proxies;                  /* live proxies it waited for, once it ended */
};

/* What rotation.json holds. */
struct state {
    enum mesh_ca_phase phase;
    uint64_t generation;
    uint64_t id;                       /* rotations started so far: the current or the last one */
    uint64_t started_ms, completed_ms; /* wall clock, of rotation id */
    struct wave waves[N_WAVES];        /* of rotation id */
    size_t n_waves;
};

struct mesh_ca_rotation {
    char *dir;
    char *trust_domain;
    struct mesh_ca_set *set; /* borrowed: main.c's */
    struct state st;
    struct mesh_api_map issued; /* ids issued a certificate in the current wave (value: any) */
    uint64_t quiet_since_ms;    /* monotonic: the wave's start or its latest issuance */
};

static const char *const phase_names[] = {"idle", "prepare", "switch", "retire"};

const char *mesh_ca_phase_name(enum mesh_ca_phase phase)
{
    return (unsigned)phase < sizeof(phase_names) / sizeof(phase_names[0]) ? phase_names[phase]
                                                                          : "?";
}

static bool phase_parse(const char *text, enum mesh_ca_phase *out)
{
    for (size_t i = 0; text && i < sizeof(phase_names) / sizeof(phase_names[0]); i++) {
        if (strcmp(text, phase_names[i]) == 0) {
            *out = (enum mesh_ca_phase)i;
            return true;
        }
    }
    return false;
}

/* --- files --- */

static char *path_in(const struct mesh_ca_rotation *r, const char *name)
{
    return xasprintf("%s/%s", r->dir, name);
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* renames survive a crash too */
        close(fd);
    }
}

static json_t *wave_json(const struct wave *w)
{
    return json_pack("{s:s,s:I,s:I,s:I,s:I}", "phase", mesh_ca_phase_name(w->phase), "generation",
                     (json_int_t)w->generation, "started_ms", (json_int_t)w->started_ms,
                     "completed_ms", (json_int_t)w->completed_ms, "proxies",
                     (json_int_t)w->proxies);
}

/* Writes st to rotation.json: a temporary file, synced, renamed over the old one. */
static enum mesh_err save(const struct mesh_ca_rotation *r, const struct state *st, char **errmsg)
{
    enum mesh_err err = MESH_E_IO;
    char *path = path_in(r, MESH_CA_ROTATION_FILE);
    char *tmp = xasprintf("%s/.%s.%ld.tmp", r->dir, MESH_CA_ROTATION_FILE, (long)getpid());
    json_t *waves = json_array();
    for (size_t i = 0; i < st->n_waves; i++)
        json_array_append_new(waves, wave_json(&st->waves[i]));
    json_t *doc = json_pack("{s:I,s:s,s:I,s:I,s:I,s:o}", "rotation", (json_int_t)st->id, "phase",
                            mesh_ca_phase_name(st->phase), "generation", (json_int_t)st->generation,
                            "started_ms", (json_int_t)st->started_ms, "completed_ms",
                            (json_int_t)st->completed_ms, "waves", waves);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    json_decref(doc);
    if (!text)
        abort(); /* control plane: out of memory is fatal, as with xalloc */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        *errmsg = xasprintf("cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        *errmsg = xasprintf("cannot write %s: %s", path, strerror(ok ? errno : saved));
        unlink(tmp);
        goto out;
    }
    sync_dir(r->dir);
    err = MESH_OK;
out:
    free(text);
    free(tmp);
    free(path);
    return err;
}

static bool get_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool wave_read(json_t *o, struct wave *w)
{
    return json_is_object(o) &&
           phase_parse(json_string_value(json_object_get(o, "phase")), &w->phase) &&
           w->phase != MESH_CA_PHASE_IDLE && get_u64(o, "generation", &w->generation) &&
           get_u64(o, "started_ms", &w->started_ms) &&
           get_u64(o, "completed_ms", &w->completed_ms) && get_u64(o, "proxies", &w->proxies);
}

/* Reads rotation.json into r->st; an absent file is a mesh that never rotated. */
static enum mesh_err load(struct mesh_ca_rotation *r, char **errmsg)
{
    char *path = path_in(r, MESH_CA_ROTATION_FILE);
    json_error_t jerr;
    enum mesh_err err = MESH_OK;
    json_t *doc = NULL;
    if (!exists(path))
        goto out;
    doc = json_load_file(path, 0, &jerr);
    struct state st = {0};
    json_t *waves = doc ? json_object_get(doc, "waves") : NULL;
    bool ok = json_is_object(doc) &&
              phase_parse(json_string_value(json_object_get(doc, "phase")), &st.phase) &&
              get_u64(doc, "rotation", &st.id) && get_u64(doc, "generation", &st.generation) &&
              get_u64(doc, "started_ms", &st.started_ms) &&
              get_u64(doc, "completed_ms", &st.completed_ms) && json_is_array(waves) &&
              json_array_size(waves) <= N_WAVES;
    for (size_t i = 0; ok && i < json_array_size(waves); i++)
        ok = wave_read(json_array_get(waves, i), &st.waves[st.n_waves++]);
    if (ok && st.phase != MESH_CA_PHASE_IDLE)
        ok = st.n_waves > 0 && st.waves[st.n_waves - 1].phase == st.phase;
    if (!ok) {
        err = MESH_E_INVALID;
        *errmsg = xasprintf("%s does not read as meshd's root rotation record%s%s: restore it "
                            "from a backup (delete it only if no rotation was running: meshd "
                            "then starts with its root, %s)",
                            path, doc ? "" : ": ", doc ? "" : jerr.text, MESH_CA_ROOT_CERT_FILE);
        goto out;
    }
    r->st = st;
out:
    json_decref(doc);
    free(path);
    return err;
}

/* The names the old root gets in DATA_DIR/ca/retired/ at the end of rotation id. */
static char *retired_path(const struct mesh_ca_rotation *r, const char *file)
{
    return xasprintf("%s/%s/rotation-%" PRIu64 "-%s", r->dir, MESH_CA_RETIRED_DIR, r->st.id, file);
}

/* The end of a rotation on disk: the old root's key, then its certificate, into retired/; then
 * the incoming root's key and certificate to root-*.pem. Each step runs only when its source is
 * there and its target is free, so that running it again after a crash at any point finishes
 * the job and changes nothing that was done. */
static enum mesh_err finish_files(const struct mesh_ca_rotation *r, char **errmsg)
{
    enum mesh_err err = MESH_E_IO;
    char *retired = xasprintf("%s/%s", r->dir, MESH_CA_RETIRED_DIR);
    char *root[2] = {path_in(r, MESH_CA_ROOT_KEY_FILE), path_in(r, MESH_CA_ROOT_CERT_FILE)};
    char *next[2] = {path_in(r, MESH_CA_NEXT_KEY_FILE), path_in(r, MESH_CA_NEXT_CERT_FILE)};
    char *gone[2] = {retired_path(r, MESH_CA_ROOT_KEY_FILE),
                     retired_path(r, MESH_CA_ROOT_CERT_FILE)};
    if (mkdir(retired, 0700) != 0 && errno != EEXIST) {
        *errmsg = xasprintf("cannot create %s: %s", retired, strerror(errno));
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        if (exists(next[i]) && exists(root[i]) && !exists(gone[i]) && rename(root[i], gone[i])) {
            *errmsg = xasprintf("cannot move %s to %s: %s", root[i], gone[i], strerror(errno));
            goto out;
        }
    }
    sync_dir(retired);
    for (int i = 0; i < 2; i++) {
        if (exists(next[i]) && !exists(root[i]) && rename(next[i], root[i]) != 0) {
            *errmsg = xasprintf("cannot move %s to %s: %s", next[i], root[i], strerror(errno));
            goto out;
        }
    }
    sync_dir(r->dir);
    if (exists(next[0]) || exists(next[1]) || !exists(root[0]) || !exists(root[1])) {
        *errmsg = xasprintf("cannot retire the old root in %s: %s, %s, %s and %s are not as a "
                            "finished rotation leaves them",
                            r->dir, root[0], root[1], next[0], next[1]);
        goto out;
    }
    err = MESH_OK;
out:
    for (int i = 0; i < 2; i++) {
        free(root[i]);
        free(next[i]);
        free(gone[i]);
    }
    free(retired);
    return err;
}

/* Whether the end of rotation id was under way when meshd stopped: something of it was moved. */
static bool finishing(const struct mesh_ca_rotation *r)
{
    char *paths[] = {retired_path(r, MESH_CA_ROOT_KEY_FILE),
                     retired_path(r, MESH_CA_ROOT_CERT_FILE), path_in(r, MESH_CA_ROOT_KEY_FILE),
                     path_in(r, MESH_CA_ROOT_CERT_FILE)};
    bool moved = exists(paths[0]) || exists(paths[1]) || !exists(paths[2]) || !exists(paths[3]);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        free(paths[i]);
    return moved;
}

/* Removes incoming-root files that no rotation uses (a start that crashed before recording). */
static void remove_stray_next(const struct mesh_ca_rotation *r)
{
    const char *files[] = {MESH_CA_NEXT_KEY_FILE, MESH_CA_NEXT_CERT_FILE};
    for (size_t i = 0; i < 2; i++) {
        char *p = path_in(r, files[i]);
        if (unlink(p) == 0)
            fprintf(stderr,
                    "lvl=warn msg=\"removed an incoming root no rotation uses (a rotation start "
                    "was interrupted)\" path=%s\n",
                    p);
        free(p);
    }
}

/* --- open, free --- */

static void log_root(const char *msg, const struct mesh_ca_rotation *r, const struct mesh_ca *ca)
{
    char when[MESH_CA_TIME_LEN];
    mesh_ca_format_time(mesh_ca_not_after(ca), when, sizeof(when));
    fprintf(stderr,
            "lvl=info msg=\"%s\" rotation=%" PRIu64 " phase=%s generation=%" PRIu64
            " subject=\"%s\" sha256_fingerprint=%s not_after=%s\n",
            msg, r->st.id, mesh_ca_phase_name(r->st.phase), r->st.generation, mesh_ca_subject(ca),
            mesh_ca_fingerprint(ca), when);
}

/* The incoming root of a rotation in progress, staged into the set as its wave wants it. */
static enum mesh_err resume(struct mesh_ca_rotation *r, time_t now, char **errmsg)
{
    struct mesh_ca *next = NULL;
    bool created = false;
    enum mesh_err err = mesh_ca_open_root_files(
        r->dir, MESH_CA_NEXT_CERT_FILE, MESH_CA_NEXT_KEY_FILE, MESH_CA_NEXT_ROOT_NAME,
        (unsigned)r->st.id + 1, false, r->trust_domain, now, &next, &created, errmsg);
    if (err != MESH_OK) {
        char *why = *errmsg;
        *errmsg = xasprintf("the root rotation in progress (%s/%s, phase %s) needs its incoming "
                            "root: %s",
                            r->dir, MESH_CA_ROTATION_FILE, mesh_ca_phase_name(r->st.phase), why);
        free(why);
        return err == MESH_E_NOTFOUND ? MESH_E_INVALID : err;
    }
    /* Which proxies got which bundle died with the previous meshd: a new generation makes every
     * proxy renew in this wave again. */
    struct state st = r->st;
    st.generation++;
    st.waves[st.n_waves - 1].generation = st.generation;
    err = save(r, &st, errmsg);
    if (err != MESH_OK) {
        mesh_ca_free(next);
        return err;
    }
    r->st = st;
    mesh_ca_set_stage(r->set, next, r->st.phase != MESH_CA_PHASE_PREPARE);
    log_root("resuming the root rotation: every proxy renews again in this phase", r, next);
    if (r->st.phase == MESH_CA_PHASE_RETIRE)
        mesh_ca_set_promote_next(r->set);
    return MESH_OK;
}

enum mesh_err mesh_ca_rotation_open(const char *dir, const char *trust_domain, time_t now,
                                    uint64_t wall_ms, struct mesh_ca_set *set,
                                    struct mesh_ca_rotation **out, bool *created, char **errmsg)
{
    struct mesh_ca_rotation *r = xcalloc(1, sizeof(*r));
    struct mesh_ca *root = NULL;
    r->dir = xstrdup(dir);
    r->trust_domain = xstrdup(trust_domain);
    r->set = set;
    *out = NULL;
    *created = false;
    *errmsg = NULL;

    enum mesh_err err = load(r, errmsg);
    if (err != MESH_OK)
        goto out;
    if (r->st.phase != MESH_CA_PHASE_IDLE && r->st.phase != MESH_CA_PHASE_RETIRE && finishing(r)) {
        /* Never a fresh root in the middle of a rotation: the proxies hold certificates of the
         * missing one. */
        err = MESH_E_INVALID;
        *errmsg = xasprintf("%s/%s or %s is missing, but a root rotation is in progress (%s/%s, "
                            "phase %s): restore the root from a backup",
                            dir, MESH_CA_ROOT_CERT_FILE, MESH_CA_ROOT_KEY_FILE, dir,
                            MESH_CA_ROTATION_FILE, mesh_ca_phase_name(r->st.phase));
        goto out;
    }
    if (r->st.phase == MESH_CA_PHASE_RETIRE && finishing(r)) {
        /* meshd stopped while it moved the roots: finish that before anything opens them. */
        err = finish_files(r, errmsg);
        if (err != MESH_OK)
            goto out;
        struct state st = r->st;
        st.phase = MESH_CA_PHASE_IDLE;
        st.completed_ms = wall_ms;
        st.waves[st.n_waves - 1].completed_ms = wall_ms;
        err = save(r, &st, errmsg);
        if (err != MESH_OK)
            goto out;
        r->st = st;
        fprintf(stderr,
                "lvl=info msg=\"finished the end of an interrupted root rotation: the old root "
                "is in %s/%s\" rotation=%" PRIu64 "\n",
                dir, MESH_CA_RETIRED_DIR, r->st.id);
    }
    err = mesh_ca_open_root(dir, trust_domain, now, &root, created, errmsg);
    if (err == MESH_OK)
        err = mesh_ca_set_add(set, root, errmsg); /* takes root in every case */
    if (err != MESH_OK)
        goto out;
    if (r->st.phase != MESH_CA_PHASE_IDLE)
        err = resume(r, now, errmsg);
    else
        remove_stray_next(r);
    if (err != MESH_OK)
        goto out;
    *out = r;
    r = NULL;
out:
    mesh_ca_rotation_free(r);
    return err;
}

void mesh_ca_rotation_free(struct mesh_ca_rotation *r)
{
    if (!r)
        return;
    mesh_api_map_clear(&r->issued, NULL);
    free(r->dir);
    free(r->trust_domain);
    free(r);
}

/* --- the waves --- */

static void new_wave(struct state *st, enum mesh_ca_phase phase, uint64_t wall_ms)
{
    st->phase = phase;
    st->generation++;
    st->waves[st->n_waves++] = (struct wave){
        .phase = phase,
        .generation = st->generation,
        .started_ms = wall_ms,
    };
}

/* A new wave starts with nobody served. */
static void wave_begins(struct mesh_ca_rotation *r, uint64_t mono_ms)
{
    mesh_api_map_clear(&r->issued, NULL);
    r->quiet_since_ms = mono_ms;
}

enum mesh_err mesh_ca_rotation_start(struct mesh_ca_rotation *r, uint64_t mono_ms, uint64_t wall_ms,
                                     char **errmsg)
{
    struct mesh_ca *next = NULL;
    bool created = false;
    *errmsg = NULL;
    if (r->st.phase != MESH_CA_PHASE_IDLE) {
        *errmsg = xasprintf("a root rotation is running already (rotation %" PRIu64
                            ", phase %s): GET /v1/ca shows how far it is",
                            r->st.id, mesh_ca_phase_name(r->st.phase));
        return MESH_E_CONFLICT;
    }
    remove_stray_next(r);
    struct state st = r->st;
    st.id++;
    st.started_ms = wall_ms;
    st.completed_ms = 0;
    st.n_waves = 0;
    new_wave(&st, MESH_CA_PHASE_PREPARE, wall_ms);
    /* Rotation N makes root N + 1: the first root has no number. */
    enum mesh_err err =
        mesh_ca_open_root_files(r->dir, MESH_CA_NEXT_CERT_FILE, MESH_CA_NEXT_KEY_FILE,
                                MESH_CA_NEXT_ROOT_NAME, (unsigned)st.id + 1, true, r->trust_domain,
                                (time_t)(wall_ms / 1000), &next, &created, errmsg);
    if (err == MESH_OK && !created) {
        err = MESH_E_IO; /* remove_stray_next could not remove them */
        *errmsg = xasprintf("cannot make the incoming root: %s/%s is in the way", r->dir,
                            MESH_CA_NEXT_CERT_FILE);
    }
    if (err == MESH_OK)
        err = save(r, &st, errmsg);
    if (err != MESH_OK) {
        mesh_ca_free(next);
        if (created)
            remove_stray_next(r);
        return err;
    }
    r->st = st;
    mesh_ca_set_stage(r->set, next, false);
    wave_begins(r, mono_ms);
    log_root("root rotation started: the bundle holds both roots", r, next);
    return MESH_OK;
}

void mesh_ca_rotation_issued(struct mesh_ca_rotation *r, const char *id, uint64_t mono_ms)
{
    if (r->st.phase == MESH_CA_PHASE_IDLE)
        return;
    mesh_api_map_put(&r->issued, id, r);
    r->quiet_since_ms = mono_ms;
}

bool mesh_ca_rotation_lags(const struct mesh_ca_rotation *r, const char *id)
{
    return r->st.phase != MESH_CA_PHASE_IDLE && !mesh_api_map_get(&r->issued, id);
}

static size_t count_lagging(const struct mesh_ca_rotation *r, const struct mesh_registry *reg,
                            size_t *live)
{
    size_t n = 0, lagging = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(reg, &n);
    for (size_t i = 0; i < n; i++)
        lagging += mesh_ca_rotation_lags(r, list[i]->id);
    *live = n;
    return lagging;
}

static void log_wave_done(const struct mesh_ca_rotation *r, const struct wave *w)
{
    fprintf(stderr,
            "lvl=info msg=\"root rotation phase done\" rotation=%" PRIu64 " phase=%s "
            "generation=%" PRIu64 " proxies=%" PRIu64 " took_ms=%" PRIu64 " next=%s\n",
            r->st.id, mesh_ca_phase_name(w->phase), w->generation, w->proxies,
            w->completed_ms > w->started_ms ? w->completed_ms - w->started_ms : 0,
            mesh_ca_phase_name(r->st.phase));
}

enum mesh_err mesh_ca_rotation_tick(struct mesh_ca_rotation *r, const struct mesh_registry *reg,
                                    const struct mesh_ca_rotation_timing *t, uint64_t mono_ms,
                                    uint64_t wall_ms, bool *changed, char **errmsg)
{
    size_t live = 0;
    *changed = false;
    *errmsg = NULL;
    if (r->st.phase == MESH_CA_PHASE_IDLE || count_lagging(r, reg, &live) > 0 ||
        mono_ms < t->hold_until_ms || mono_ms < r->quiet_since_ms + t->grace_ms)
        return MESH_OK;

    struct state st = r->st;
    struct wave *done = &st.waves[st.n_waves - 1];
    done->completed_ms = wall_ms;
    done->proxies = live;
    enum mesh_err err = MESH_OK;
    if (st.phase == MESH_CA_PHASE_RETIRE) {
        /* Idempotent: after a failure the next tick tries the rest. */
        err = finish_files(r, errmsg);
        st.phase = MESH_CA_PHASE_IDLE;
        st.completed_ms = wall_ms;
    } else {
        new_wave(&st,
                 st.phase == MESH_CA_PHASE_PREPARE ? MESH_CA_PHASE_SWITCH : MESH_CA_PHASE_RETIRE,
                 wall_ms);
    }
    if (err == MESH_OK)
        err = save(r, &st, errmsg);
    if (err != MESH_OK)
        return err;
    struct wave finished = *done;
    r->st = st;
    if (r->st.phase == MESH_CA_PHASE_SWITCH) {
        mesh_ca_set_stage(r->set, r->set->next, true);
    } else if (r->st.phase == MESH_CA_PHASE_RETIRE) {
        mesh_ca_set_promote_next(r->set);
    }
    *changed = r->st.phase != MESH_CA_PHASE_IDLE;
    wave_begins(r, mono_ms);
    log_wave_done(r, &finished);
    if (r->st.phase == MESH_CA_PHASE_IDLE) {
        const struct mesh_ca *root = r->set->items[0];
        fprintf(stderr,
                "lvl=info msg=\"root rotation complete: the old root is retired\" "
                "rotation=%" PRIu64 " root=\"%s\" sha256_fingerprint=%s retired=%s/%s\n",
                r->st.id, mesh_ca_subject(root), mesh_ca_fingerprint(root), r->dir,
                MESH_CA_RETIRED_DIR);
    }
    return MESH_OK;
}

enum mesh_ca_phase mesh_ca_rotation_phase(const struct mesh_ca_rotation *r)
{
    return r->st.phase;
}

uint64_t mesh_ca_rotation_generation(const struct mesh_ca_rotation *r)
{
    return r->st.generation;
}

/* --- status --- */

static json_t *time_or_null(uint64_t wall_ms)
{
    char text[MESH_CA_TIME_LEN];
    if (!wall_ms)
        return json_null();
    mesh_ca_format_time((time_t)(wall_ms / 1000), text, sizeof(text));
    return json_string(text);
}

json_t *mesh_ca_rotation_json(const struct mesh_ca_rotation *r, const struct mesh_registry *reg)
{
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(reg, &n);
    json_t *waiting = json_array();
    for (size_t i = 0; i < n; i++)
        if (mesh_ca_rotation_lags(r, list[i]->id))
            json_array_append_new(waiting, json_string(list[i]->id));
    json_t *waves = json_array();
    for (size_t i = 0; i < r->st.n_waves; i++) {
        const struct wave *w = &r->st.waves[i];
        bool done = w->completed_ms != 0;
        json_array_append_new(
            waves, json_pack("{s:s,s:I,s:o,s:o,s:o,s:o}", "phase", mesh_ca_phase_name(w->phase),
                             "generation", (json_int_t)w->generation, "started",
                             time_or_null(w->started_ms), "completed",
                             time_or_null(w->completed_ms), "duration_ms",
                             done ? json_integer((json_int_t)(w->completed_ms >= w->started_ms
                                                                  ? w->completed_ms - w->started_ms
                                                                  : 0))
                                  : json_null(),
                             "proxies", done ? json_integer((json_int_t)w->proxies) : json_null()));
    }
    const struct mesh_ca *issuer = mesh_ca_set_issuer(r->set);
    return json_pack("{s:s,s:I,s:I,s:o,s:o,s:s,s:I,s:o,s:o}", "phase",
                     mesh_ca_phase_name(r->st.phase), "id", (json_int_t)r->st.id, "generation",
                     (json_int_t)r->st.generation, "started", time_or_null(r->st.started_ms),
                     "completed", time_or_null(r->st.completed_ms), "issuing_root",
                     issuer ? mesh_ca_name(issuer) : "", "live_proxies", (json_int_t)n,
                     "waiting_for", waiting, "phases", waves);
}
