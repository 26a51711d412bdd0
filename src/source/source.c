/* Source construction by type, and the `generate` source: deterministic randomuser-shaped pages (generate.h) behind
 * the source interface, so the seed pipeline runs with no network at all. Its cursor is the index of the next record,
 * so a restart resumes exactly where the last delivered page ended. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "source/generate.h"
#include "source/source.h"

struct gen_conf {
	char *type;
	int64_t seed;
	int64_t count;     /* records in all; 0 = unbounded */
	int64_t page_size;
	double rate;       /* records per second; 0 = as fast as possible */
};

static const struct sl_opt gen_opts[] = {
	{"type", SL_OPT_ENUM, "generate", offsetof(struct gen_conf, type), "source kind", .choices = "generate|http"},
	{"seed", SL_OPT_INT, "42", offsetof(struct gen_conf, seed),
	 "seed of the generator; the same seed gives the same records"},
	{"count", SL_OPT_INT, "0", offsetof(struct gen_conf, count),
	 "records to generate in all, across restarts (0 = no end)", .min = 0, .max = INT64_MAX},
	{"page_size", SL_OPT_INT, "100", offsetof(struct gen_conf, page_size), "records per page (one API response)",
	 .min = 1, .max = 100000},
	{"rate", SL_OPT_DOUBLE, "0", offsetof(struct gen_conf, rate), "records per second (0 = as fast as possible)"},
	{NULL},
};

const struct sl_opt *sl_source_generate_opts = gen_opts;

struct gen_source {
	struct sl_source base;
	struct gen_conf conf;
	uint64_t next;      /* index of the next record */
	uint64_t seq;
	struct sl_buf page;
	double start; /* sl_mono_s() at open: the rate limit counts from here */
	char name[64]; /* the page as asked for, for messages: "generate records 100-199" */
	uint64_t first;
};

static int gen_next(struct sl_source *bs, struct sl_page *out, struct sl_err *err)
{
	struct gen_source *s = (struct gen_source *)bs;
	uint64_t n = (uint64_t)s->conf.page_size;
	if (s->conf.count) {
		if (s->next >= (uint64_t)s->conf.count) {
			s->base.stats.ends++;
			return SL_ENOTFOUND;
		}
		if (s->next + n > (uint64_t)s->conf.count)
			n = (uint64_t)s->conf.count - s->next;
	}
	if (s->conf.rate > 0 && (double)(s->next - s->first) >= s->conf.rate * (sl_mono_s() - s->start))
		return SL_EAGAIN;
	sl_buf_reset(&s->page);
	if (sl_generate_page((uint64_t)s->conf.seed, s->next, (uint32_t)n, &s->page) != 0 || !sl_buf_ok(&s->page))
		return sl_err_set(err, SL_ENOMEM, "generate: out of memory building a page");
	out->body = s->page.data;
	out->len = s->page.len;
	out->seq = s->seq++;
	snprintf(s->name, sizeof s->name, "generate records %" PRIu64 "-%" PRIu64, s->next, s->next + n - 1);
	out->url = s->name;
	s->next += n;
	snprintf(out->cursor, sizeof out->cursor, "%" PRIu64, s->next);
	s->base.stats.requests++;
	s->base.stats.bytes += out->len;
	return 0;
}

static void gen_destroy(struct sl_source *bs)
{
	struct gen_source *s = (struct gen_source *)bs;
	sl_opt_free(gen_opts, &s->conf);
	sl_buf_free(&s->page);
	free(s);
}

static const struct sl_source_ops gen_ops = {.next_page = gen_next, .destroy = gen_destroy};

int sl_source_generate_new(const char *name, const struct sl_cfg_node *conf, const char *resume,
			   struct sl_source **out, struct sl_err *err)
{
	struct gen_source *s = calloc(1, sizeof *s);
	if (!s)
		return sl_err_set(err, SL_ENOMEM, "out of memory");
	char section[256];
	snprintf(section, sizeof section, "pipelines.%s.source", name);
	if (sl_opt_bind(gen_opts, conf, section, &s->conf, err)) {
		gen_destroy(&s->base);
		return SL_ECONFIG;
	}
	s->base.ops = &gen_ops;
	s->base.records_path = "$.results";
	s->base.count = s->conf.count;
	s->base.dlq_max_bytes = 64 << 20;
	sl_buf_init(&s->page);
	if (resume && *resume) {
		char *end;
		unsigned long long v = strtoull(resume, &end, 10);
		if (*end) {
			gen_destroy(&s->base);
			return sl_err_set(err, SL_EINVAL, "pipeline %s: saved cursor '%s' is not a record index", name,
					  resume);
		}
		s->next = v;
	}
	s->first = s->next;
	s->start = sl_mono_s();
	*out = &s->base;
	return 0;
}

int sl_source_new(const char *name, const struct sl_cfg_node *conf, const char *resume, struct sl_source **out,
		  struct sl_err *err)
{
	const struct sl_cfg_node *type = sl_cfg_get(conf, "type");
	char w[300];
	if (!type || type->kind != SL_CFG_SCALAR)
		return sl_err_set(err, SL_ECONFIG, "%s: pipelines.%s.source needs 'type: generate' or 'type: http'",
				  sl_cfg_where(conf, w, sizeof w), name);
	if (!strcmp(type->value, "generate"))
		return sl_source_generate_new(name, conf, resume, out, err);
	if (!strcmp(type->value, "http"))
		return sl_source_http_new(name, conf, resume, out, err);
	return sl_err_set(err, SL_ECONFIG, "%s: pipelines.%s.source.type must be generate or http, got '%s'",
			  sl_cfg_where(type, w, sizeof w), name, type->value);
}
