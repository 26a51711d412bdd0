/* Fuzzes the config path: YAML text -> node tree (libyaml, env expansion, depth and duplicate checks) -> option
 * tables of every kind -> the mapping compiler on a `mapping:` node. Whatever the bytes, no crash, no leak, and a
 * failure always comes with a message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "mapping/mapping.h"

struct inner {
	char *s;
	int64_t i;
};

struct fz {
	char *name, *mode;
	int64_t n, ms, bytes;
	double d;
	bool b;
	struct sl_strlist list;
	struct sl_strmap map;
	const struct sl_cfg_node *mapping;
	struct inner sec;
};

static const struct sl_opt inner_opts[] = {
	{"s", SL_OPT_STRING, "x", offsetof(struct inner, s), "s"},
	{"i", SL_OPT_INT, "1", offsetof(struct inner, i), "i", .min = 0, .max = 100},
	{NULL},
};

static const struct sl_opt opts[] = {
	{"name", SL_OPT_STRING, NULL, offsetof(struct fz, name), "name"},
	{"mode", SL_OPT_ENUM, "a", offsetof(struct fz, mode), "mode", .choices = "a|b|c"},
	{"n", SL_OPT_INT, "0", offsetof(struct fz, n), "n"},
	{"timeout", SL_OPT_DURATION, "1s", offsetof(struct fz, ms), "t"},
	{"size", SL_OPT_SIZE, "1KiB", offsetof(struct fz, bytes), "s"},
	{"ratio", SL_OPT_DOUBLE, "0.5", offsetof(struct fz, d), "r"},
	{"flag", SL_OPT_BOOL, "false", offsetof(struct fz, b), "f"},
	{"list", SL_OPT_STRLIST, NULL, offsetof(struct fz, list), "l"},
	{"properties", SL_OPT_STRMAP, NULL, offsetof(struct fz, map), "m"},
	{"mapping", SL_OPT_NODE, NULL, offsetof(struct fz, mapping), "m"},
	{"section", SL_OPT_SECTION, NULL, offsetof(struct fz, sec), "s", .sub = inner_opts},
	{NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_cfg_doc doc;
	struct sl_err err = {0};
	if (sl_cfg_load_string(&doc, "fuzz.yaml", (const char *)data, size, &err) != 0) {
		if (!err.msg[0])
			abort(); /* a failure must say why */
		return 0;
	}
	struct fz f;
	memset(&f, 0, sizeof f);
	if (sl_opt_bind(opts, doc.root, "", &f, &err) != 0 && !err.msg[0])
		abort();
	/* The mapping compiler on any map found under `mapping:` (or under pipelines.<x>.mapping in real configs). */
	const struct sl_cfg_node *m = sl_cfg_get(doc.root, "mapping");
	const struct sl_cfg_node *ps = sl_cfg_get(doc.root, "pipelines");
	if (!m && ps && ps->kind == SL_CFG_MAP && ps->n > 0)
		m = sl_cfg_get(ps->items[0], "mapping");
	if (m && m->kind == SL_CFG_MAP) {
		struct sl_mapping *mp = NULL;
		if (sl_mapping_compile(m, "id", &mp, &err) == 0)
			sl_mapping_free(mp);
		else if (!err.msg[0])
			abort();
	}
	sl_opt_free(opts, &f);
	sl_cfg_free(&doc);
	return 0;
}
