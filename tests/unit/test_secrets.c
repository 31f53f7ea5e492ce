/* test_secrets.c — the secrets module (src/lib/net/secrets.c): what create refuses (header
 * injection through a value or a placeholder, bad names and hosts), the secrets file's round
 * trip and a damaged one, the guest's env (never the value), host matching. */
#include "secrets.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static int check1(const char *name, const char *value, const char *const *hosts, const char *ph)
{
    boxlite_secret s = {name, value, hosts, ph};
    return bl_secrets_check(&s, 1);
}

static void refusals(void)
{
    const char *const bad_host[] = {"ex ample.com", NULL};
    const char *const comma[] = {"a.com,b.com", NULL};
    const char *const good[] = {"api.example.com", "*.example.org:443", "203.0.113.0/24", NULL};

    CHECK(check1("API_KEY", "v", good, NULL) == 0, "a good secret");
    CHECK(check1("API_KEY", "v\r\nX-Evil: 1", NULL, NULL) != 0, "CRLF in a value");
    CHECK(check1("API_KEY", "v\tw", NULL, NULL) != 0, "a tab in a value");
    CHECK(check1("API_KEY", "", NULL, NULL) != 0, "an empty value");
    CHECK(check1("API_KEY", "v", NULL, "<p>\r\n") != 0, "CRLF in a placeholder");
    CHECK(check1("API_KEY", "xx-v-xx", NULL, "v") != 0, "a placeholder inside its value");
    CHECK(check1("1KEY", "v", NULL, NULL) != 0, "a name starting with a digit");
    CHECK(check1("A-B", "v", NULL, NULL) != 0, "a name that is no env name");
    CHECK(check1(NULL, "v", NULL, NULL) != 0, "no name");
    CHECK(check1("A", "v", bad_host, NULL) != 0, "a bad host");
    CHECK(check1("A", "v", comma, NULL) != 0, "a comma in a host");
}

static void file_round_trip(void)
{
    const char *const hosts[] = {"api.example.com", "*.example.org:443", NULL};
    boxlite_secret in[2] = {{"A", "value-a", hosts, NULL}, {"B", "value b", NULL, "[[B]]"}};
    struct bl_secret *out = NULL;
    size_t n = 0;
    char *text = bl_secrets_encode(in, 2);

    CHECK(text && bl_secrets_parse(&out, &n, text) == 0 && n == 2, "encode then parse");
    CHECK(n == 2 && strcmp(out[0].value, "value-a") == 0 &&
              strcmp(out[0].placeholder, "<BOXLITE_SECRET:A>") == 0 && out[0].nhosts == 2,
          "the first as written, its default placeholder");
    CHECK(n == 2 && strcmp(out[1].placeholder, "[[B]]") == 0 && out[1].nhosts == 0,
          "the second: its own placeholder, any host");
    CHECK(n == 2 && bl_secret_applies(&out[0], "api.example.com", 80) &&
              bl_secret_applies(&out[0], "x.example.org", 443) &&
              !bl_secret_applies(&out[0], "x.example.org", 8443) &&
              !bl_secret_applies(&out[0], "example.org", 443) &&
              !bl_secret_applies(&out[0], "api.example.com.evil.net", 443) &&
              bl_secret_applies(&out[1], "anything.net", 1),
          "host matching: names, wildcards, ports, none");
    bl_secrets_free(out, n);
    free(text);
    out = NULL;
    CHECK(bl_secrets_parse(&out, &n, "A\tv\n") != 0, "a damaged file is refused");
    CHECK(bl_secrets_parse(&out, &n, "A\tv\tp\tex ample\n") != 0, "a damaged host is refused");
}

static void guest_env(void)
{
    const char *const env[] = {"HTTPS_PROXY=mine", "X=1", NULL};
    boxlite_secret s = {"API_KEY", "the-value", NULL, NULL};
    char **e = bl_secrets_env(env, &s, 1);
    int has_value = 0, ph = 0, mine = 0, bundle = 0;

    for (size_t i = 0; e && e[i]; i++) {
        has_value |= strstr(e[i], "the-value") != NULL;
        ph |= strcmp(e[i], "API_KEY=<BOXLITE_SECRET:API_KEY>") == 0;
        mine += strncmp(e[i], "HTTPS_PROXY=", 12) == 0 && strcmp(e[i], "HTTPS_PROXY=mine") == 0;
        bundle |= strcmp(e[i], "SSL_CERT_FILE=" BL_SECRETS_GUEST_BUNDLE) == 0;
    }
    CHECK(e && !has_value && ph, "the guest's env has the placeholder, never the value");
    CHECK(mine == 1 && bundle, "the user's own proxy setting is kept; the CA bundle is set");
    bl_strv_free(e);
}

int main(void)
{
    refusals();
    file_round_trip();
    guest_env();
    return tap_done();
}
