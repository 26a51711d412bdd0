/* Prints records seed:first .. seed:first+n-1 of the `generate` source, one JSON object per line: the very records
 * `sluice ingest` makes with that seed, so the Python producer and kcat in bench/ingest/run work on the same data.
 * Usage: gen_records SEED N */
#include <stdio.h>
#include <stdlib.h>

#include "source/generate.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: gen_records SEED N\n");
		return 2;
	}
	uint64_t seed = strtoull(argv[1], NULL, 10), n = strtoull(argv[2], NULL, 10);
	struct sl_buf b;
	sl_buf_init(&b);
	for (uint64_t i = 0; i < n; i++) {
		sl_buf_reset(&b);
		if (sl_generate_record(seed, i, &b))
			return 1;
		fwrite(b.data, 1, b.len, stdout);
		putchar('\n');
	}
	sl_buf_free(&b);
	return 0;
}
