/* cli_text.c — the one sanitiser for bytes a guest (or an image, or a registry) wrote that
 * reach a terminal: logs, error messages, inspect. Controls and invalid UTF-8 come out
 * escaped, so no guest can move the cursor, set the title or clear the screen. */
#include "cli.h"

#include <string.h>

/* Continuation bytes needed after lead byte c, and the allowed range of the first one. */
static size_t utf8_need(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        return 1;
    if (c >= 0xe0 && c <= 0xef) {
        *lo = c == 0xe0 ? 0xa0 : 0x80;
        *hi = c == 0xed ? 0x9f : 0xbf;
        return 2;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        *lo = c == 0xf0 ? 0x90 : 0x80;
        *hi = c == 0xf4 ? 0x8f : 0xbf;
        return 3;
    }
    return 0;
}

size_t cli_text_unit(const unsigned char *s, size_t n, unsigned *cp, int *ok)
{
    unsigned char lo, hi;
    size_t need;

    *cp = s[0];
    if (s[0] < 0x80) {
        *ok = s[0] == '\n' || s[0] == '\t' || (s[0] >= 0x20 && s[0] != 0x7f) ||
              (s[0] == '\r' && n > 1 && s[1] == '\n'); /* a serial console's line end */
        return 1;
    }
    need = utf8_need(s[0], &lo, &hi);
    *ok = 0;
    if (need == 0 || need >= n || s[1] < lo || s[1] > hi)
        return 1; /* an invalid byte: one unit of its own */
    for (size_t i = 2; i <= need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 1;
    *cp = s[0] & (0x7f >> (need + 1));
    for (size_t i = 1; i <= need; i++)
        *cp = (*cp << 6) | (s[i] & 0x3f);
    *ok = *cp > 0x9f; /* C1 controls (U+0080-U+009F) are escaped as their code point */
    return need + 1;
}

void cli_text_write(FILE *f, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;

    while (n > 0) {
        unsigned cp;
        int ok;
        size_t k = cli_text_unit(s, n, &cp, &ok);
        if (ok)
            fwrite(s, 1, k, f);
        else if (k == 1)
            fprintf(f, "\\x%02x", s[0]);
        else
            fprintf(f, "\\u%04x", cp);
        s += k;
        n -= k;
    }
}

void cli_text_puts(FILE *f, const char *text)
{
    cli_text_write(f, text ? text : "", text ? strlen(text) : 0);
}
