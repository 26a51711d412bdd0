/* The topic store: which log backend the config chose (Kafka when there is a `kafka:` section, else the embedded
 * log), opened once here so no caller branches on the backend, and the source cursors that live beside the log
 * (always in the embedded log's database, whatever carries the topics). The backends' ops are in kafka.c and
 * embedded.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topic/topic.h"

int sl_topic_store_open(const struct sl_cfg_node *kafka, const char *data_dir, int flags, struct sl_topic_store **out,
			struct sl_err *err)
{
	bool inspect = flags & SL_TOPIC_INSPECT;
	struct sl_embedded_log *log = NULL;
	int rc;
	if (!kafka || !inspect) {
		if (inspect) {
			char path[4200];
			snprintf(path, sizeof path, "%s/log.db", data_dir);
			if (access(path, R_OK) != 0)
				return sl_err_set(err, SL_ENOTFOUND, "embedded log %s: not there yet (no pipeline has run)",
						  path);
		}
		if ((rc = sl_embedded_open(data_dir, &log, err)))
			return rc;
	}
	rc = kafka ? sl_kafka_store_open(kafka, out, err) : sl_embedded_store_open(log, true, out, err);
	if (rc) {
		sl_embedded_close(log);
		return rc;
	}
	(*out)->state = log; /* the embedded store has it already */
	return 0;
}

void sl_topic_store_close(struct sl_topic_store *s)
{
	if (s)
		s->ops->close(s);
}

int sl_topic_cursor_get(struct sl_topic_store *s, const char *name, char *out, size_t outsz, struct sl_err *err)
{
	if (!s->state)
		return sl_err_set(err, SL_EINVAL, "topic store: opened for inspection, without cursors");
	return sl_embedded_cursor_get(s->state, name, out, outsz, err);
}

int sl_topic_cursor_put(struct sl_topic_store *s, const char *name, const char *value, struct sl_err *err)
{
	if (!s->state)
		return sl_err_set(err, SL_EINVAL, "topic store: opened for inspection, without cursors");
	return sl_embedded_cursor_put(s->state, name, value, err);
}

void sl_topic_descs_free(struct sl_topic_desc *d, size_t n)
{
	for (size_t i = 0; d && i < n; i++)
		free(d[i].parts);
	free(d);
}

const char *sl_topic_backend_name(const struct sl_cfg_node *kafka)
{
	return kafka ? "kafka" : "embedded";
}
