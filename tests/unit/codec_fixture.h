/* What the stream codecs' unit tests (test_avro.c, test_pbwire.c) share: a schema with one column of every kind the
 * codecs map, keyed by a uuid. text_col names the text column, so a test can use a name its format must rewrite. */
#ifndef SL_TEST_CODEC_FIXTURE_H
#define SL_TEST_CODEC_FIXTURE_H

#include "core/record.h"

static inline struct sl_schema codec_test_schema(const char *text_col)
{
	struct sl_schema s;
	sl_schema_init(&s);
	assert_int_equal(sl_schema_add(&s, "id", SL_T_UUID, true, NULL), 0);
	assert_int_equal(sl_schema_add(&s, text_col, SL_T_TEXT, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "n", SL_T_INT, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "big", SL_T_BIGINT, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "x", SL_T_DOUBLE, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "ok", SL_T_BOOLEAN, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "at", SL_T_TIMESTAMP, false, NULL), 0);
	assert_int_equal(sl_schema_add(&s, "day", SL_T_DATE, true, NULL), 0);
	assert_int_equal(sl_schema_set_key(&s, "id", NULL), 0);
	return s;
}

#endif
