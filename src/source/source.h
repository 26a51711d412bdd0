/* Sources: where raw records come from. A source yields pages (one API response body, or one synthetic page) and,
 * with each page, the cursor to save once every record of that page is confirmed by the log. The ingest loop owns the
 * rest: extracting records (records_path), mapping, producing, and saving cursors in order. A source is a struct of
 * callbacks; `generate` (generate.c) and `http` (http.c) implement it. */
#ifndef SL_SOURCE_H
#define SL_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"

#define SL_CURSOR_MAX 1024

struct sl_page {
	const char *body;            /* valid until the next next_page() call */
	size_t len;
	uint64_t seq;                /* 0, 1, 2, ... in the order pages were fetched this run */
	char cursor[SL_CURSOR_MAX];  /* opaque text to save after the page is delivered; resumes after this page */
	const char *url;             /* for messages (redacted); may be NULL */
};

/* Statistics a source keeps for the ingest summary and metrics. */
struct sl_source_stats {
	uint64_t requests, retries, failures, bytes;
	uint64_t ends; /* times the source found no more pages (end of data, or nothing new until the next poll) */
};

struct sl_source;
struct sl_source_ops {
	/* 0: a page is in out. SL_ENOTFOUND: the source has no more pages (end of a finite source, or the API said
	 * so). SL_EAGAIN: nothing now (poll interval not reached); call again. Other errors are fatal for the run and
	 * err names the request. */
	int (*next_page)(struct sl_source *s, struct sl_page *out, struct sl_err *err);
	void (*destroy)(struct sl_source *s);
	/* Optional. The ingest loop's verdict on the page last handed out: bad (not JSON, no array at records_path,
	 * no record an object) with why, or good. A source with a circuit breaker (http) backs off on consecutive bad
	 * pages and fails the run after its limit; a source without one leaves this NULL. */
	void (*page_verdict)(struct sl_source *s, bool bad, const char *why);
};

struct sl_source {
	const struct sl_source_ops *ops;
	const char *records_path;    /* where the array of records is in a page, e.g. "$.results"; NULL: the body itself */
	bool single_record;          /* records_path holds one record (an object), not an array of them */
	bool any_records;            /* records may be any JSON value; by default each must be an object */
	int64_t count;               /* records in all, across restarts (0 = no end); the ingest loop keeps the total */
	int64_t dlq_max_bytes;       /* per run: dead-letter bytes this source may cause; beyond, entries are dropped */
	struct sl_source_stats stats;
};

/* Builds a source from its config node (pipelines.<name>.source). resume is the saved cursor of an earlier run, or
 * NULL. name is the pipeline's name for messages. */
int sl_source_new(const char *name, const struct sl_cfg_node *conf, const char *resume, struct sl_source **out,
		  struct sl_err *err);
/* The sources' option tables (for docs/configuration.md and its completeness test). */
extern const struct sl_opt *sl_source_generate_opts;
extern const struct sl_opt *sl_source_http_opts;
/* Worked examples of the http source, one per pagination kind, in Markdown (docs/configuration.md). */
extern const char *sl_source_http_examples_md;

int sl_source_generate_new(const char *name, const struct sl_cfg_node *conf, const char *resume,
			   struct sl_source **out, struct sl_err *err);
int sl_source_http_new(const char *name, const struct sl_cfg_node *conf, const char *resume, struct sl_source **out,
		       struct sl_err *err);

#endif
