/* `sluice cql`: a tiny cqlsh over sluice's own CQL client. Runs one statement (-e) or ;-terminated statements from
 * stdin, fetching every page, and prints rows as an aligned table or as JSON lines. Any failure names the statement
 * and exits 1. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "cql/cql.h"

static void usage(FILE *fp)
{
	fprintf(fp,
		"Usage: sluice cql [-h host[,host...]] [-p port] [-u user] [-P password] [--keyspace ks]\n"
		"                  [--lz4] [--tls] [--consistency LEVEL] [--json] [-e \"STATEMENT\"]\n\n"
		"Runs STATEMENT, or the ;-terminated statements read from stdin, against Cassandra and prints the rows.\n"
		"The password may come from the environment variable SL_CQL_PASSWORD instead of -P.\n"
		"  --json         one JSON object per row instead of an aligned table\n"
		"  --lz4          compress frames with lz4\n"
		"  --consistency  ONE, LOCAL_QUORUM, ... (default LOCAL_ONE)\n");
}

struct table {
	int ncols;
	char **names;
	struct sl_buf cells; /* NUL-separated formatted cells, row-major */
	int nrows;
	size_t *width;
};

static int print_page(const struct sl_cql_result *r, bool json, struct table *t)
{
	int ncols = sl_cql_result_column_count(r);
	if (!t->names) {
		t->ncols = ncols;
		t->names = calloc((size_t)ncols + 1, sizeof *t->names);
		t->width = calloc((size_t)ncols + 1, sizeof *t->width);
		if (!t->names || !t->width)
			return SL_ENOMEM;
		for (int c = 0; c < ncols; c++) {
			t->names[c] = strdup(sl_cql_result_column(r, c)->name);
			t->width[c] = strlen(t->names[c]);
		}
	}
	struct sl_cql_iter it;
	sl_cql_iter_init(&it, r);
	struct sl_buf line;
	sl_buf_init(&line);
	int rc = 0;
	while (rc == 0 && sl_cql_iter_next(&it)) {
		if (json) {
			sl_buf_reset(&line);
			sl_buf_putc(&line, '{');
			for (int c = 0; c < ncols && rc == 0; c++) {
				if (c)
					sl_buf_puts(&line, ", ");
				sl_buf_json_str(&line, t->names[c], strlen(t->names[c]));
				sl_buf_puts(&line, ": ");
				rc = sl_cql_value_format(&line, sl_cql_iter_value(&it, c), true);
			}
			sl_buf_putc(&line, '}');
			if (rc == 0)
				printf("%s\n", sl_buf_cstr(&line));
		} else {
			for (int c = 0; c < ncols && rc == 0; c++) {
				size_t start = t->cells.len;
				rc = sl_cql_value_format(&t->cells, sl_cql_iter_value(&it, c), false);
				size_t w = t->cells.len - start;
				if (w > t->width[c])
					t->width[c] = w;
				sl_buf_putc(&t->cells, '\0');
			}
		}
		t->nrows++;
	}
	sl_buf_free(&line);
	sl_cql_iter_free(&it);
	return rc;
}

static void print_table(struct table *t)
{
	for (int c = 0; c < t->ncols; c++)
		printf("%s%-*s", c ? " | " : " ", (int)t->width[c], t->names[c]);
	printf("\n");
	for (int c = 0; c < t->ncols; c++) {
		printf("%s", c ? "-+-" : "-");
		for (size_t k = 0; k < t->width[c]; k++)
			putchar('-');
	}
	printf("\n");
	const char *p = t->cells.data;
	for (int r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			printf("%s%-*s", c ? " | " : " ", (int)t->width[c], p);
			p += strlen(p) + 1;
		}
		printf("\n");
	}
	printf("\n(%d rows)\n", t->nrows);
}

static void table_free(struct table *t)
{
	for (int c = 0; t->names && c < t->ncols; c++)
		free(t->names[c]);
	free(t->names);
	free(t->width);
	sl_buf_free(&t->cells);
	memset(t, 0, sizeof *t);
}

static int run_one(struct sl_cql_session *s, const char *stmt, bool json, int cl)
{
	struct sl_cql_statement *st = sl_cql_statement_new(stmt, 0);
	if (!st)
		return sl_cli_fail("cql", "out of memory");
	sl_cql_statement_set_page_size(st, 5000);
	if (cl >= 0)
		sl_cql_statement_set_consistency(st, cl);
	struct table t;
	memset(&t, 0, sizeof t);
	sl_buf_init(&t.cells);
	int status = 0;
	bool rows = false;
	for (;;) {
		struct sl_cql_future *f = sl_cql_session_execute(s, st);
		if (!f || sl_cql_future_wait(f) < 0) {
			status = sl_cli_fail("cql", "%s", f ? sl_cql_future_error(f)->msg : "out of memory");
			sl_cql_future_release(f);
			break;
		}
		const struct sl_cql_result *r = sl_cql_future_result(f);
		for (const char *const *w = sl_cql_result_warnings(r); *w; w++)
			fprintf(stderr, "warning: %s\n", *w);
		if (sl_cql_result_kind(r) == SL_CQL_RESULT_ROWS) {
			rows = true;
			if (print_page(r, json, &t) < 0) {
				status = sl_cli_fail("cql", "\"%s\": cannot format a value of the result", stmt);
				sl_cql_future_release(f);
				break;
			}
		}
		bool more = sl_cql_result_has_more_pages(r) && sl_cql_statement_set_paging_state(st, r) == 0;
		sl_cql_future_release(f);
		if (!more)
			break;
	}
	if (status == 0 && rows && !json)
		print_table(&t);
	table_free(&t);
	sl_cql_statement_free(st);
	return status;
}

/* Splits stdin on ';' outside quotes, $$ bodies and comments. */
static int run_stdin(struct sl_cql_session *s, bool json, int cl)
{
	struct sl_buf in, cur;
	sl_buf_init(&in);
	sl_buf_init(&cur);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
		sl_buf_append(&in, chunk, n);
	const char *p = in.data ? sl_buf_cstr(&in) : "";
	char quote = 0;
	bool dollar = false;
	int status = 0;
	for (; *p && status == 0; p++) {
		if (!quote && !dollar && ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '/'))) {
			while (*p && *p != '\n')
				p++;
			if (!*p)
				break;
			continue;
		}
		if (!quote && p[0] == '$' && p[1] == '$') {
			dollar = !dollar;
			sl_buf_append(&cur, p, 2);
			p++;
			continue;
		}
		if (!dollar && (*p == '\'' || *p == '"')) {
			if (!quote)
				quote = *p;
			else if (quote == *p)
				quote = 0;
		}
		if (*p == ';' && !quote && !dollar) {
			const char *stmt = sl_buf_cstr(&cur);
			while (stmt && (*stmt == ' ' || *stmt == '\n' || *stmt == '\t' || *stmt == '\r'))
				stmt++;
			if (stmt && *stmt)
				status = run_one(s, stmt, json, cl);
			sl_buf_reset(&cur);
			continue;
		}
		sl_buf_putc(&cur, *p);
	}
	const char *rest = cur.len ? sl_buf_cstr(&cur) : "";
	while (*rest == ' ' || *rest == '\n' || *rest == '\t' || *rest == '\r')
		rest++;
	if (status == 0 && *rest)
		status = run_one(s, rest, json, cl);
	sl_buf_free(&in);
	sl_buf_free(&cur);
	return status;
}

int sl_cli_cql(int argc, char **argv)
{
	struct sl_cql_options o;
	sl_cql_options_init(&o);
	const char *stmt = NULL;
	bool json = false;
	int cl = -1;
	static const struct option longopts[] = {
		{"host", required_argument, NULL, 'h'}, {"port", required_argument, NULL, 'p'},
		{"user", required_argument, NULL, 'u'}, {"password", required_argument, NULL, 'P'},
		{"keyspace", required_argument, NULL, 'k'}, {"execute", required_argument, NULL, 'e'},
		{"json", no_argument, NULL, 'j'}, {"lz4", no_argument, NULL, 'z'}, {"tls", no_argument, NULL, 't'},
		{"consistency", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'H'}, {0},
	};
	o.password = getenv("SL_CQL_PASSWORD");
	o.heartbeat_interval_ms = 0;
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, "h:p:u:P:k:e:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h': o.contact_points = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'u': o.username = optarg; break;
		case 'P': o.password = optarg; break;
		case 'k': o.keyspace = optarg; break;
		case 'e': stmt = optarg; break;
		case 'j': json = true; break;
		case 'z': o.compression = true; break;
		case 't': o.tls = true; break;
		case 'c':
			cl = sl_cql_consistency_parse(optarg);
			if (cl < 0) {
				fprintf(stderr, "sluice cql: unknown consistency '%s'\n", optarg);
				return 2;
			}
			break;
		case 'H': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice cql: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (o.port <= 0 || o.port > 65535) {
		fprintf(stderr, "sluice cql: bad port\n");
		return 2;
	}
	struct sl_cql_session *s;
	struct sl_err e = {0};
	if (sl_cql_session_connect(&s, &o, &e) < 0)
		return sl_cli_fail("cql", "%s", e.msg);
	int status = stmt ? run_one(s, stmt, json, cl) : run_stdin(s, json, cl);
	sl_cql_session_close(s);
	return status;
}
