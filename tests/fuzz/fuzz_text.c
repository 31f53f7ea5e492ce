/* fuzz_text.c — libFuzzer target for the CLI's terminal sanitiser (src/cli/cli_text.c): every
 * input is split into units that cover it exactly, and no unit passed through raw holds a
 * control byte but \n, \t or the \r of a \r\n. */
#include "../../src/cli/cli.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    while (off < size) {
        unsigned cp = 0;
        int ok = 0;
        size_t k = cli_text_unit(data + off, size - off, &cp, &ok);
        if (k == 0 || k > 4 || k > size - off)
            abort();
        for (size_t i = 0; ok && i < k; i++) {
            uint8_t c = data[off + i];
            int crlf = c == '\r' && off + i + 1 < size && data[off + i + 1] == '\n';
            if ((c < 0x20 && c != '\n' && c != '\t' && !crlf) || c == 0x7f)
                abort();
        }
        if (ok && k == 2 && cp <= 0x9f)
            abort(); /* a C1 control let through */
        off += k;
    }
    FILE *f = fopen("/dev/null", "w");
    if (f) {
        cli_text_write(f, (const char *)data, size);
        fclose(f);
    }
    return 0;
}
