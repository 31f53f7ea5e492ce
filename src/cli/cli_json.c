/* cli_json.c — JSON output for `ls --format json` and `inspect`: string escaping (controls,
 * C1 and invalid UTF-8 as cli_text.c classifies them). */
#include "cli.h"

#include <string.h>

const char *cli_oci_engine(const char *image, char *buf, size_t cap)
{
    static const char prefix[] = "localhost/oci-";
    size_t n;

    if (strncmp(image, prefix, sizeof prefix - 1) != 0)
        return NULL;
    image += sizeof prefix - 1;
    n = strcspn(image, ":/");
    if (n == 0 || n >= cap || image[n] != ':')
        return NULL;
    memcpy(buf, image, n);
    buf[n] = '\0';
    return buf;
}

void cli_json_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);

    fputc('"', f);
    while (n > 0) {
        unsigned cp;
        int ok;
        size_t k = cli_text_unit(p, n, &cp, &ok); /* the one sanitiser (cli_text.c) */
        if (k == 1 && (*p == '"' || *p == '\\'))
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (ok)
            fwrite(p, 1, k, f);
        else
            fprintf(f, "\\u%04x", k == 1 && *p >= 0x80 ? 0xfffd : cp);
        p += k;
        n -= k;
    }
    fputc('"', f);
}
