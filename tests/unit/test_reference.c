/* test_reference.c — unit tests of the image subsystem's parsers: references (Docker's
 * rules), WWW-Authenticate challenges, manifests/indexes/configs and layer entry paths. */
#include "boxlite.h"
#include "layer.h"
#include "manifest.h"
#include "reference.h"
#include "registry.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static void ref_case(const char *in, const char *registry, const char *repo, const char *tag,
                     const char *digest)
{
    struct bl_ref r = {0};
    char name[600];
    int rc = bl_ref_parse(&r, in);

    snprintf(name, sizeof(name), "parse %s", in);
    CHECK(rc == 0 && strcmp(r.registry, registry) == 0 && strcmp(r.repository, repo) == 0 &&
              ((!tag && !r.tag) || (tag && r.tag && strcmp(r.tag, tag) == 0)) &&
              ((!digest && !r.digest) || (digest && r.digest && strcmp(r.digest, digest) == 0)),
          name);
    bl_ref_clear(&r);
}

static void ref_bad(const char *in)
{
    struct bl_ref r = {0};
    char name[600];

    snprintf(name, sizeof(name), "reject \"%s\"", in);
    CHECK(bl_ref_parse(&r, in) == BOXLITE_EINVAL && r.registry == NULL, name);
}

static void test_refs(void)
{
    const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char buf[200];
    struct bl_ref r = {0};
    char *s;

    ref_case("alpine", "docker.io", "library/alpine", "latest", NULL);
    ref_case("python:slim", "docker.io", "library/python", "slim", NULL);
    ref_case("user/img:1.0", "docker.io", "user/img", "1.0", NULL);
    ref_case("ghcr.io/org/img:v2", "ghcr.io", "org/img", "v2", NULL);
    ref_case("localhost/x", "localhost", "x", "latest", NULL);
    ref_case("127.0.0.1:5000/a/b/c:t_1.x-y", "127.0.0.1:5000", "a/b/c", "t_1.x-y", NULL);
    snprintf(buf, sizeof(buf), "ghcr.io/org/img@%s", d);
    ref_case(buf, "ghcr.io", "org/img", NULL, d);
    snprintf(buf, sizeof(buf), "alpine:3.20@%s", d);
    ref_case(buf, "docker.io", "library/alpine", "3.20", d);
    ref_case("a__b/c-d.e", "docker.io", "a__b/c-d.e", "latest", NULL);
    ref_bad("");
    ref_bad("UPPER");
    ref_bad("a/../b");
    ref_bad("alpine:");
    ref_bad("alpine:-bad");
    ref_bad("alpine@sha256:123");
    ref_bad("alpine@md5:0123456789abcdef0123456789abcdef");
    ref_bad("host:99999999/x");
    ref_bad("a//b");
    ref_bad("-a");
    ref_bad("a:b:c");
    CHECK(bl_ref_parse(&r, "python:slim") == 0 && r.short_name, "short name flagged");
    s = r.registry ? bl_ref_string(&r) : NULL;
    CHECK(s && strcmp(s, "docker.io/library/python:slim") == 0, "canonical string");
    free(s);
    {
        struct bl_ref m = {0};
        CHECK(bl_ref_with_registry(&m, &r, "127.0.0.1:5000", 0) == 0 &&
                  strcmp(m.repository, "python") == 0,
              "mirror without library/");
        bl_ref_clear(&m);
        CHECK(bl_ref_with_registry(&m, &r, "127.0.0.1:5000", 1) == 0 &&
                  strcmp(m.repository, "library/python") == 0,
              "mirror with library/");
        bl_ref_clear(&m);
    }
    bl_ref_clear(&r);
}

static void test_www_auth(void)
{
    struct bl_www_auth a;

    CHECK(bl_www_auth_parse(&a, "Bearer realm=\"https://auth.docker.io/token\",service=\"registry"
                                ".docker.io\",scope=\"repository:library/alpine:pull\"") == 0 &&
              strcmp(a.scheme, "bearer") == 0 &&
              strcmp(a.realm, "https://auth.docker.io/token") == 0 &&
              strcmp(a.service, "registry.docker.io") == 0 &&
              strcmp(a.scope, "repository:library/alpine:pull") == 0,
          "bearer challenge");
    bl_www_auth_clear(&a);
    CHECK(bl_www_auth_parse(&a, "Basic realm=\"x \\\"q\\\"\"") == 0 &&
              strcmp(a.scheme, "basic") == 0 && strcmp(a.realm, "x \"q\"") == 0,
          "basic challenge with escapes");
    bl_www_auth_clear(&a);
    CHECK(bl_www_auth_parse(&a, "Negotiate abc") != 0, "unknown scheme refused");
    CHECK(bl_www_auth_parse(&a, "Bearer realm=\"unterminated") != 0, "unterminated quote");
    CHECK(bl_www_auth_parse(&a, "Bearer =x") != 0, "empty key");
}

static const char *manifest_json =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
    "\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":10},"
    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":"
    "\"sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":5}]}";

static const char *index_json =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+"
    "json\",\"manifests\":[{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+"
    "json\",\"digest\":\"sha256:2123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},{\"mediaType\":"
    "\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"sha256:3123456789abcd"
    "ef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":1,\"platform\":{\"os\":"
    "\"linux\",\"architecture\":\"amd64\"}}]}";

static void test_manifests(void)
{
    struct bl_manifest m = {0};
    struct bl_image_config c = {0};
    const char *cfg = "{\"os\":\"linux\",\"architecture\":\"amd64\",\"config\":{\"Env\":[\"A=1\"],"
                      "\"Entrypoint\":null,\"Cmd\":[\"sh\",\"-c\"],\"WorkingDir\":\"/w\",\"User\":"
                      "\"1000:1000\"},\"rootfs\":{\"diff_ids\":[\"sha256:x\"]}}";
    char *big;

    CHECK(bl_manifest_parse(&m, manifest_json, strlen(manifest_json), NULL, "linux", "amd64") ==
                  0 &&
              m.kind == BL_MANIFEST_IMAGE && m.n_layers == 1 && m.layers[0].comp == BL_COMP_ZSTD &&
              m.layers[0].size == 5,
          "OCI manifest");
    bl_manifest_clear(&m);
    CHECK(bl_manifest_parse(&m, index_json, strlen(index_json), NULL, "linux", "amd64") == 0 &&
              m.kind == BL_MANIFEST_INDEX &&
              strncmp(m.platform_manifest.digest, "sha256:31", 9) == 0,
          "manifest list picks linux/amd64");
    bl_manifest_clear(&m);
    CHECK(bl_manifest_parse(&m, index_json, strlen(index_json), NULL, "linux", "s390x") ==
              BOXLITE_ENOTFOUND,
          "no manifest for the platform");
    CHECK(bl_manifest_parse(&m, "{\"schemaVersion\":2,\"mediaType\":\"application/x-evil\"}", 53,
                            NULL, "linux", "amd64") == BOXLITE_EPROTO,
          "unknown media type refused");
    CHECK(bl_manifest_parse(&m, "{\"schemaVersion\":1}", 19, NULL, "linux", "amd64") != 0,
          "schema 1 refused");
    CHECK(bl_manifest_parse(&m, "[1,2", 4, NULL, "linux", "amd64") == BOXLITE_EPROTO,
          "broken JSON refused");
    big = malloc(BL_MANIFEST_MAX + 2);
    if (big) {
        memset(big, ' ', BL_MANIFEST_MAX + 1);
        big[BL_MANIFEST_MAX + 1] = '\0';
        CHECK(bl_manifest_parse(&m, big, BL_MANIFEST_MAX + 1, NULL, "linux", "amd64") ==
                  BOXLITE_EPROTO,
              "manifest over the cap refused");
        free(big);
    }
    {
        char bad[1024];
        snprintf(bad, sizeof(bad), "%s", manifest_json);
        char *p = strstr(bad, "tar+zstd");
        memcpy(p, "tar+lzma", 8);
        CHECK(bl_manifest_parse(&m, bad, strlen(bad), NULL, "linux", "amd64") == BOXLITE_EPROTO,
              "unknown layer media type refused");
    }
    CHECK(bl_image_config_parse(&c, cfg, strlen(cfg)) == 0 && strcmp(c.env[0], "A=1") == 0 &&
              c.entrypoint[0] == NULL && strcmp(c.cmd[1], "-c") == 0 &&
              strcmp(c.workdir, "/w") == 0 && strcmp(c.user, "1000:1000") == 0 && c.n_diff_ids == 1,
          "image config");
    bl_image_config_clear(&c);
    CHECK(bl_image_config_parse(&c, "{\"config\":{\"Env\":[1]}}", 22) == BOXLITE_EPROTO,
          "non-string Env refused");
}

static void path_case(const char *in, const char *want)
{
    char out[BL_LAYER_PATH_MAX + 1];
    char name[300];
    int rc = bl_layer_clean_path(out, in);

    snprintf(name, sizeof(name), "layer path \"%s\"", in);
    if (want)
        CHECK(rc == 0 && strcmp(out, want) == 0, name);
    else
        CHECK(rc == BOXLITE_EINVAL, name);
}

static void test_paths(void)
{
    path_case("./a//b/", "a/b");
    path_case(".", "");
    path_case("./", "");
    path_case("a/./b", "a/b");
    path_case("../x", NULL);
    path_case("a/../../x", NULL);
    path_case("a/..", NULL);
    path_case("/etc/passwd", NULL);
    path_case("a..b/c", "a..b/c");
}

int main(void)
{
    (void)tap_skip;
    test_refs();
    test_www_auth();
    test_manifests();
    test_paths();
    return tap_done();
}
