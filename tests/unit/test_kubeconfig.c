/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for kubeconfig reading: kubectl's merge of $KUBECONFIG, resolution of a context's
 * cluster and user (files, base64 data, token files, exec credential plugins) and the messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/xalloc.h"
#include "kube/kubeconfig.h"

/* "-----BEGIN CERTIFICATE-----\nca\n" and friends: content only needs to come back byte for
 * byte; TLS is exercised end to end against a real server (tests/e2e/test_kube.py). */
#define CA_TEXT "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
#define CA_B64  "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmNhCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"

static char tmpdir[64];

static int make_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_kubeconfig.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    unsetenv("KUBECONFIG");
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    unsetenv("KUBECONFIG");
    return rc == 0 ? 0 : -1;
}

/* Writes tmpdir/name; returns its path (caller frees). */
static char *write_file(const char *name, const char *text, mode_t mode)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static struct mesh_kubeconfig *load_ok(const char *path)
{
    struct mesh_kubeconfig *kc = NULL;
    char *why = NULL;
    enum mesh_err err = mesh_kubeconfig_load(path, &kc, &why);
    if (err != MESH_OK)
        print_error("load: %s\n", why);
    assert_int_equal(err, MESH_OK);
    assert_non_null(kc);
    free(why);
    return kc;
}

static void resolve_ok(const struct mesh_kubeconfig *kc, const char *context,
                       struct mesh_kube_credentials *cred)
{
    char *why = NULL;
    memset(cred, 0, sizeof(*cred));
    enum mesh_err err = mesh_kubeconfig_resolve(kc, context, cred, &why);
    if (err != MESH_OK)
        print_error("resolve: %s\n", why);
    assert_int_equal(err, MESH_OK);
    free(why);
}

/* Resolving context fails with want and exactly message (tmpdir replaced by "DIR"). */
static void resolve_fails(const struct mesh_kubeconfig *kc, const char *context, enum mesh_err want,
                          const char *message)
{
    struct mesh_kube_credentials cred = {0};
    char *why = NULL;
    assert_int_equal(mesh_kubeconfig_resolve(kc, context, &cred, &why), want);
    assert_non_null(why);
    assert_null(cred.server);
    char *got = xstrdup(why);
    char *at;
    while ((at = strstr(got, tmpdir)) != NULL) {
        memcpy(at, "DIR", 3);
        memmove(at + 3, at + strlen(tmpdir), strlen(at + strlen(tmpdir)) + 1);
    }
    assert_string_equal(got, message);
    free(got);
    free(why);
}

static void test_base64_decodes_padded_and_unpadded(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(mesh_kube_base64_decode("aGVsbG8=", &out, &len), MESH_OK);
    assert_int_equal(len, 5);
    assert_string_equal(out, "hello");
    free(out);
    assert_int_equal(mesh_kube_base64_decode("aGVsbG8", &out, &len), MESH_OK);
    assert_string_equal(out, "hello");
    free(out);
    assert_int_equal(mesh_kube_base64_decode("", &out, &len), MESH_OK);
    assert_int_equal(len, 0);
    free(out);
    assert_int_equal(mesh_kube_base64_decode(CA_B64, &out, &len), MESH_OK);
    assert_string_equal(out, CA_TEXT);
    free(out);
    out = NULL;
    assert_int_equal(mesh_kube_base64_decode("aGVs bG8=", &out, &len), MESH_E_INVALID);
    assert_int_equal(mesh_kube_base64_decode("a", &out, &len), MESH_E_INVALID);
    assert_int_equal(mesh_kube_base64_decode("aGVsbG8==", &out, &len), MESH_E_INVALID);
    assert_null(out);
}

static void test_one_file_with_token_and_ca_data(void **state)
{
    (void)state;
    char *path = write_file("config",
                            "apiVersion: v1\n"
                            "kind: Config\n"
                            "clusters:\n"
                            "- name: prod\n"
                            "  cluster:\n"
                            "    server: https://10.0.0.1:6443/\n"
                            "    certificate-authority-data: " CA_B64 "\n"
                            "users:\n"
                            "- name: admin\n"
                            "  user:\n"
                            "    token: s3cret\n"
                            "contexts:\n"
                            "- name: production\n"
                            "  context:\n"
                            "    cluster: prod\n"
                            "    user: admin\n"
                            "    namespace: payments\n"
                            "current-context: production\n",
                            0600);
    struct mesh_kubeconfig *kc = load_ok(path);
    assert_string_equal(mesh_kubeconfig_current_context(kc), "production");
    struct mesh_kube_credentials cred;
    resolve_ok(kc, NULL, &cred);
    assert_string_equal(cred.context, "production");
    assert_string_equal(cred.cluster, "prod");
    assert_string_equal(cred.user, "admin");
    assert_string_equal(cred.server, "https://10.0.0.1:6443"); /* trailing slash dropped */
    assert_string_equal(cred.namespace, "payments");
    assert_string_equal(cred.token, "s3cret");
    assert_int_equal(cred.ca_len, strlen(CA_TEXT));
    assert_memory_equal(cred.ca_pem, CA_TEXT, cred.ca_len);
    assert_false(cred.insecure);
    assert_null(cred.cert_pem);
    mesh_kube_credentials_clear(&cred);
    mesh_kubeconfig_free(kc);
    free(path);
}

static void test_client_certificate_files_are_relative_to_the_kubeconfig(void **state)
{
    (void)state;
    char *sub = xasprintf("%s/sub", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    free(sub);
    char *cert = write_file("sub/client.crt", "CERT PEM\n", 0600);
    char *key = write_file("sub/client.key", "KEY PEM\n", 0600);
    char *ca = write_file("sub/ca.crt", CA_TEXT, 0600);
    char *path = write_file("sub/config",
                            "clusters:\n"
                            "- name: c\n"
                            "  cluster: {server: 'https://127.0.0.1:1', certificate-authority: "
                            "ca.crt}\n"
                            "users:\n"
                            "- name: u\n"
                            "  user: {client-certificate: client.crt, client-key: client.key}\n"
                            "contexts:\n"
                            "- {name: a, context: {cluster: c, user: u}}\n",
                            0600);
    struct mesh_kubeconfig *kc = load_ok(path);
    assert_null(mesh_kubeconfig_current_context(kc));
    struct mesh_kube_credentials cred;
    resolve_ok(kc, "a", &cred);
    assert_string_equal(cred.cert_pem, "CERT PEM\n");
    assert_int_equal(cred.cert_len, 9);
    assert_string_equal(cred.key_pem, "KEY PEM\n");
    assert_string_equal(cred.ca_pem, CA_TEXT);
    assert_null(cred.token);
    assert_null(cred.namespace);
    mesh_kube_credentials_clear(&cred);
    /* No context named and no current-context: the message lists what there is. */
    resolve_fails(kc, NULL, MESH_E_NOTFOUND,
                  "no context given and DIR/sub/config sets no current-context: name one "
                  "(contexts: a)");
    mesh_kubeconfig_free(kc);
    free(path);
    free(cert);
    free(key);
    free(ca);
}

static void test_kubeconfig_env_merges_first_wins(void **state)
{
    (void)state;
    char *a = write_file("a.yaml",
                         "clusters:\n"
                         "- name: shared\n"
                         "  cluster: {server: 'https://first:6443', insecure-skip-tls-verify: "
                         "true}\n"
                         "contexts:\n"
                         "- {name: a, context: {cluster: shared}}\n"
                         "- {name: both, context: {cluster: shared, namespace: from-a}}\n",
                         0600);
    char *b = write_file("b.yaml",
                         "clusters:\n"
                         "- name: shared\n"
                         "  cluster: {server: 'https://second:6443'}\n"
                         "- name: only-b\n"
                         "  cluster: {server: 'https://b:6443'}\n"
                         "users:\n"
                         "- {name: bu, user: {token: tb}}\n"
                         "contexts:\n"
                         "- {name: both, context: {cluster: only-b, namespace: from-b}}\n"
                         "- {name: b, context: {cluster: only-b, user: bu}}\n"
                         "current-context: b\n",
                         0600);
    char *c = write_file("c.yaml", "current-context: a\n", 0600);
    char *env = xasprintf("%s:%s/missing.yaml::%s:%s", a, tmpdir, b, c);
    setenv("KUBECONFIG", env, 1);
    struct mesh_kubeconfig *kc = load_ok(NULL);
    /* current-context: the first file that sets one (b), not the last (c). */
    assert_string_equal(mesh_kubeconfig_current_context(kc), "b");
    const char **names = NULL;
    assert_int_equal(mesh_kubeconfig_contexts(kc, &names), 3);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[1], "both");
    assert_string_equal(names[2], "b");
    struct mesh_kube_credentials cred;
    resolve_ok(kc, NULL, &cred);
    assert_string_equal(cred.server, "https://b:6443");
    assert_string_equal(cred.token, "tb");
    mesh_kube_credentials_clear(&cred);
    /* "both" and cluster "shared" come from a.yaml, the first to name them. */
    resolve_ok(kc, "both", &cred);
    assert_string_equal(cred.namespace, "from-a");
    assert_string_equal(cred.server, "https://first:6443");
    assert_true(cred.insecure);
    mesh_kube_credentials_clear(&cred);
    resolve_fails(kc, "production", MESH_E_NOTFOUND,
                  "context \"production\" is not in KUBECONFIG (contexts: a, both, b)");
    mesh_kubeconfig_free(kc);

    /* Only missing files: an error naming the variable. */
    char *none = xasprintf("%s/nope1:%s/nope2", tmpdir, tmpdir);
    setenv("KUBECONFIG", none, 1);
    struct mesh_kubeconfig *kc2 = NULL;
    char *why = NULL;
    assert_int_equal(mesh_kubeconfig_load(NULL, &kc2, &why), MESH_E_NOTFOUND);
    assert_null(kc2);
    assert_non_null(strstr(why, "none of the files $KUBECONFIG names exists"));
    free(why);
    unsetenv("KUBECONFIG");
    free(none);
    free(env);
    free(a);
    free(b);
    free(c);
}

static void test_explicit_file_must_exist(void **state)
{
    (void)state;
    char *path = xasprintf("%s/absent", tmpdir);
    struct mesh_kubeconfig *kc = NULL;
    char *why = NULL;
    assert_int_equal(mesh_kubeconfig_load(path, &kc, &why), MESH_E_NOTFOUND);
    char *want = xasprintf("cannot read kubeconfig %s: No such file or directory", path);
    assert_string_equal(why, want);
    free(want);
    free(why);
    free(path);
}

static void test_errors_name_file_line_and_field(void **state)
{
    (void)state;
    char *path = write_file("bad",
                            "clusters:\n"
                            "- name: c\n"
                            "  cluster:\n"
                            "    server: https://x\n"
                            "    certificate-authority-data: not*base64\n"
                            "- name: both\n"
                            "  cluster:\n"
                            "    server: https://x\n"
                            "    certificate-authority: /etc/hostname\n"
                            "    insecure-skip-tls-verify: true\n"
                            "- name: noserver\n"
                            "  cluster: {}\n"
                            "users:\n"
                            "- name: u\n"
                            "  user:\n"
                            "    tokenFile: no-such-token\n"
                            "- name: half\n"
                            "  user: {client-certificate-data: " CA_B64 "}\n"
                            "contexts:\n"
                            "- {name: b64, context: {cluster: c}}\n"
                            "- {name: both, context: {cluster: both}}\n"
                            "- {name: noserver, context: {cluster: noserver}}\n"
                            "- {name: tokenfile, context: {cluster: nocluster, user: u}}\n"
                            "- {name: tokenfile2, context: {cluster: c2, user: u}}\n"
                            "- {name: half, context: {cluster: c2, user: half}}\n"
                            "- {name: nouser, context: {cluster: c2, user: ghost}}\n",
                            0600);
    char *more =
        write_file("more", "clusters: [{name: c2, cluster: {server: 'http://h:8080'}}]\n", 0600);
    char *env = xasprintf("%s:%s", path, more);
    setenv("KUBECONFIG", env, 1);
    struct mesh_kubeconfig *kc = load_ok(NULL);
    resolve_fails(kc, "b64", MESH_E_INVALID,
                  "DIR/bad:5:33: clusters[0].cluster.certificate-authority-data: is not base64");
    resolve_fails(kc, "both", MESH_E_INVALID,
                  "DIR/bad:10:31: clusters[1].cluster: insecure-skip-tls-verify with a "
                  "certificate authority: keep one");
    resolve_fails(kc, "noserver", MESH_E_INVALID,
                  "DIR/bad:11:3: clusters[2].cluster: server is missing");
    resolve_fails(kc, "tokenfile", MESH_E_NOTFOUND,
                  "DIR/bad:23:40: contexts[3].context: cluster \"nocluster\" is not in KUBECONFIG");
    resolve_fails(kc, "tokenfile2", MESH_E_IO,
                  "DIR/bad:16:16: users[0].user.tokenFile: cannot read DIR/no-such-token: No such "
                  "file or directory");
    resolve_fails(kc, "half", MESH_E_INVALID,
                  "DIR/bad:17:3: users[1].user: has a client certificate without a client-key");
    resolve_fails(kc, "nouser", MESH_E_NOTFOUND,
                  "DIR/bad:26:47: contexts[6].context: user \"ghost\" is not in KUBECONFIG");
    mesh_kubeconfig_free(kc);
    unsetenv("KUBECONFIG");

    /* Structure problems are found on load. */
    char *shape = write_file("shape", "clusters:\n- name: c\n  cluster: [1, 2]\n", 0600);
    struct mesh_kubeconfig *kc2 = NULL;
    char *why = NULL;
    assert_int_equal(mesh_kubeconfig_load(shape, &kc2, &why), MESH_E_INVALID);
    char *want = xasprintf("%s:3:12: clusters[0]: cluster must be a map", shape);
    assert_string_equal(why, want);
    free(want);
    free(why);
    why = NULL;
    char *syntax = write_file("syntax", "clusters: [\n", 0600);
    assert_int_equal(mesh_kubeconfig_load(syntax, &kc2, &why), MESH_E_INVALID);
    assert_non_null(strstr(why, syntax));
    free(why);
    free(syntax);
    free(shape);
    free(env);
    free(more);
    free(path);
}

static void test_token_file_is_trimmed(void **state)
{
    (void)state;
    char *tok = write_file("token", "abc.def\n", 0600);
    char *path = write_file("tf",
                            "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
                            "users: [{name: u, user: {tokenFile: token}}]\n"
                            "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
                            0600);
    struct mesh_kubeconfig *kc = load_ok(path);
    struct mesh_kube_credentials cred;
    resolve_ok(kc, "x", &cred);
    assert_string_equal(cred.token, "abc.def");
    mesh_kube_credentials_clear(&cred);
    mesh_kubeconfig_free(kc);
    free(path);
    free(tok);
}

static void test_exec_plugin_gives_token_and_certificate(void **state)
{
    (void)state;
    /* The plugin echoes its argument, its env and what it was told back, so that the test sees
     * all three arrived. */
    char *plugin = write_file("plugin.sh",
                              "#!/bin/sh\n"
                              "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3 ;; "
                              "esac\n"
                              "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                              "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s-%s\"}}' "
                              "\"$1\" \"$PLUGIN_REGION\"\n",
                              0700);
    char *certs = write_file("certs.sh",
                             "#!/bin/sh\n"
                             "printf '{\"kind\":\"ExecCredential\",\"status\":"
                             "{\"clientCertificateData\":\"CERT\\\\n\","
                             "\"clientKeyData\":\"KEY\\\\n\"}}'\n",
                             0700);
    char *failing = write_file("fail.sh", "#!/bin/sh\necho oops >&2\nexit 4\n", 0700);
    char *garbage = write_file("garbage.sh", "#!/bin/sh\necho not json\n", 0700);
    char *path = write_file("execcfg",
                            "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
                            "users:\n"
                            "- name: eks\n"
                            "  user:\n"
                            "    token: from-file\n"
                            "    exec:\n"
                            "      apiVersion: client.authentication.k8s.io/v1\n"
                            "      command: ./plugin.sh\n"
                            "      args: [token-for]\n"
                            "      env: [{name: PLUGIN_REGION, value: eu-west-1}]\n"
                            "      interactiveMode: Never\n"
                            "- name: certs\n"
                            "  user: {exec: {command: ./certs.sh}}\n"
                            "- name: failing\n"
                            "  user: {exec: {command: ./fail.sh}}\n"
                            "- name: garbage\n"
                            "  user: {exec: {command: ./garbage.sh}}\n"
                            "- name: absent\n"
                            "  user: {exec: {command: no-such-plugin-anywhere}}\n"
                            "contexts:\n"
                            "- {name: eks, context: {cluster: c, user: eks}}\n"
                            "- {name: certs, context: {cluster: c, user: certs}}\n"
                            "- {name: failing, context: {cluster: c, user: failing}}\n"
                            "- {name: garbage, context: {cluster: c, user: garbage}}\n"
                            "- {name: absent, context: {cluster: c, user: absent}}\n",
                            0600);
    struct mesh_kubeconfig *kc = load_ok(path);
    struct mesh_kube_credentials cred;
    resolve_ok(kc, "eks", &cred);
    assert_string_equal(cred.token, "token-for-eu-west-1"); /* the plugin's wins */
    mesh_kube_credentials_clear(&cred);
    resolve_ok(kc, "certs", &cred);
    assert_string_equal(cred.cert_pem, "CERT\n");
    assert_string_equal(cred.key_pem, "KEY\n");
    assert_null(cred.token);
    mesh_kube_credentials_clear(&cred);
    resolve_fails(kc, "failing", MESH_E_IO,
                  "DIR/execcfg:15:16: users[2].user.exec: the credential plugin DIR/./fail.sh "
                  "failed (exit status 4)");
    resolve_fails(kc, "garbage", MESH_E_INVALID,
                  "DIR/execcfg:17:16: users[3].user.exec: the credential plugin DIR/./garbage.sh "
                  "printed no ExecCredential JSON");
    struct mesh_kube_credentials c2 = {0};
    char *why = NULL;
    assert_int_equal(mesh_kubeconfig_resolve(kc, "absent", &c2, &why), MESH_E_IO);
    assert_non_null(strstr(why, "no-such-plugin-anywhere"));
    free(why);
    mesh_kubeconfig_free(kc);
    free(path);
    free(plugin);
    free(certs);
    free(failing);
    free(garbage);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_decodes_padded_and_unpadded),
        cmocka_unit_test(test_one_file_with_token_and_ca_data),
        cmocka_unit_test(test_client_certificate_files_are_relative_to_the_kubeconfig),
        cmocka_unit_test(test_kubeconfig_env_merges_first_wins),
        cmocka_unit_test(test_explicit_file_must_exist),
        cmocka_unit_test(test_errors_name_file_line_and_field),
        cmocka_unit_test(test_token_file_is_trimmed),
        cmocka_unit_test(test_exec_plugin_gives_token_and_certificate),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
