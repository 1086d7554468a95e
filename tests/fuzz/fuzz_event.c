/* tests/fuzz/fuzz_event.c - libFuzzer harness for the event decoder: any
 * input either fails cleanly or decodes to an event that re-encodes to a
 * fixed point (encode(decode(encode(e))) == encode(e)). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cb_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cb_event ev, back;
    char err[256], *s1 = NULL, *s2 = NULL;
    size_t n1, n2;

    if (cb_event_decode(data, size, &ev, err, sizeof err) != CB_OK)
        return 0;
    if (cb_event_encode(&ev, &s1, &n1) != CB_OK)
        abort();
    if (cb_event_decode(s1, n1, &back, err, sizeof err) != CB_OK)
        abort(); /* what we write we must read */
    if (cb_event_encode(&back, &s2, &n2) != CB_OK || n1 != n2 || memcmp(s1, s2, n1) != 0)
        abort();
    free(s1);
    free(s2);
    cb_event_cleanup(&ev);
    cb_event_cleanup(&back);
    return 0;
}
