/* The `generate` source: synthetic records shaped exactly like randomuser.me's API (`results[i]` of
 * https://randomuser.me/api/?results=n, version 1.4), so the seed pipeline runs with no network and tests can compute
 * the expected output of any record. A record is a pure function of (seed, index): the same pair always yields the
 * same bytes, on any machine, and records can be produced in any order or in parallel. */
#ifndef SL_GENERATE_H
#define SL_GENERATE_H

#include <stdint.h>

#include "core/buf.h"

/* The fixed "today" that ages (dob.age, registered.age) are computed against, so output does not change with the
 * clock: 2024-06-01T00:00:00Z in ms. */
#define SL_GENERATE_REF_MS 1717200000000LL

/* Appends one record's JSON object (no trailing newline). Returns 0, or SL_ENOMEM when out ran out of memory. */
int sl_generate_record(uint64_t seed, uint64_t index, struct sl_buf *out);
/* Appends a page: {"results":[records first_index .. first_index+count-1],"info":{"seed":"<16 hex>","results":count,
 * "page":first_index/count+1,"version":"1.4"}}. */
int sl_generate_page(uint64_t seed, uint64_t first_index, uint32_t count, struct sl_buf *out);

#endif
