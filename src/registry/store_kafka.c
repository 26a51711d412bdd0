/* The registry's store at scale: the `_schemas` compacted Kafka topic in Confluent's key/value format. */
#include "registry/internal.h"

int sl_reg_store_kafka_open(struct sl_reg_store **out, struct sl_registry *r, const struct sl_registry_conf *conf,
			    struct sl_err *err)
{
	(void)out;
	(void)r;
	return sl_err_set(err, SL_ECONFIG, "registry store kafka (topic %s) is not built yet", conf->topic);
}
