/* tests/fuzz/replay_main.c - runs a fuzz harness over files given on the
 * command line (the seed corpus), without libFuzzer: `make test` uses it so
 * the harnesses stay built and the seeds stay clean under the sanitizers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    int n = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        static uint8_t buf[1 << 20];
        size_t len;
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        /* also every prefix-truncation, a cheap source of malformed input */
        for (size_t cut = 1; cut < len; cut += 1 + len / 16)
            LLVMFuzzerTestOneInput(buf, cut);
        n++;
    }
    printf("replayed %d inputs and their truncations\n", n);
    return 0;
}
