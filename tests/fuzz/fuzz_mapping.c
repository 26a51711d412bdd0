/* libFuzzer target for the mapping and the record codec. Each input is used three ways: as a raw API record under the
 * seed's mapping (a mapped record must encode, decode and re-encode to the same payload); as a payload decoded against
 * the seed schema; and, when it starts with "columns:", as a mapping to compile (errors are fine, crashes are not). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/record_json.h"
#include "mapping/mapping.h"

static const char SEED[] =
	"columns:\n"
	"  id: { path: login.uuid, type: uuid, default: \"uuid()\" }\n"
	"  first_name: name.first\n"
	"  last_name: name.last\n"
	"  gender: gender\n"
	"  address: { template: \"{location.street.number} {location.street.name}, {location.city}, "
	"{location.state}, {location.country}\" }\n"
	"  post_code: { path: location.postcode, type: text }\n"
	"  email: email\n"
	"  username: login.username\n"
	"  dob: dob.date\n"
	"  registered_date: registered.date\n"
	"  phone: phone\n"
	"  picture: picture.medium\n"
	"  age: { path: dob.age, type: int }\n"
	"  seen: { path: registered.date, type: timestamp }\n"
	"  day: { path: dob.date, type: date }\n"
	"  lat: { path: location.coordinates.latitude, type: double }\n"
	"  flag: { path: flag, type: boolean, default: false }\n"
	"  n: { path: location.street.number, type: bigint }\n";

static struct sl_json_parser *P;
static struct sl_mapping *M;
static struct sl_mapping_env ENV;
static struct sl_arena A;

static void init(void)
{
	struct sl_err err;
	struct sl_cfg_doc doc;
	if (sl_json_parser_new(&P, 1 << 20, 64, &err) || sl_cfg_load_string(&doc, "seed", SEED, strlen(SEED), &err) ||
	    sl_mapping_compile(sl_cfg_get(doc.root, "columns"), "id", &M, &err))
		abort();
	sl_cfg_free(&doc);
	sl_mapping_env_init(&ENV);
	ENV.now_ms = 1;
	ENV.rng = 1;
	sl_arena_init(&A, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!P)
		init();
	struct sl_err err;
	struct sl_json_val root;
	struct sl_record r, back;
	const struct sl_schema *s = sl_mapping_schema(M);
	sl_arena_reset(&A);

	if (size >= 8 && !memcmp(data, "columns:", 8)) {
		struct sl_cfg_doc doc;
		struct sl_mapping *m;
		if (!sl_cfg_load_string(&doc, "fuzz", (const char *)data, size, &err)) {
			if (!sl_mapping_compile(sl_cfg_get(doc.root, "columns"), "id", &m, &err)) {
				if (!sl_json_parse(P, "{\"a\":{\"b\":[1,\"2\"]},\"id\":\"x\"}", 27, &root, &err))
					sl_mapping_apply(m, root, &ENV, &A, &r, &err);
				sl_mapping_free(m);
			}
			sl_cfg_free(&doc);
		}
		return 0;
	}

	if (sl_json_parse(P, (const char *)data, size, &root, &err))
		return 0;
	if (!sl_mapping_apply(M, root, &ENV, &A, &r, &err)) {
		struct sl_buf a, b;
		sl_buf_init(&a);
		sl_buf_init(&b);
		if (sl_record_to_json(&r, &a, &err))
			abort(); /* mapped values are always representable */
		if (sl_record_decode_json(&back, s, P, a.data, a.len, &A, &err))
			abort();
		for (size_t i = 0; i < s->n; i++)
			if (!sl_value_eq(s->fields[i].type, &r.v[i], &back.v[i]))
				abort();
		if (sl_record_to_json(&back, &b, &err) || a.len != b.len || memcmp(a.data, b.data, a.len))
			abort();
		sl_buf_free(&a);
		sl_buf_free(&b);
		if (sl_json_parse(P, (const char *)data, size, &root, &err))
			abort();
	} else if (!err.msg[0]) {
		abort();
	}
	/* The same bytes as a payload of the seed schema. */
	if (sl_record_from_json(&r, s, root, &A, &err) == 0 && sl_record_check(&r, &err))
		abort();
	return 0;
}
