/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The event journal: the last JOURNAL_MAX events, each with a sequence
 * number that only grows (also across daemon restarts, since the journal
 * is persisted with the state), so an agent that was away asks for what
 * came after the last number it saw.
 */
#ifndef IOFENCE_JOURNAL_H
#define IOFENCE_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#define JOURNAL_MAX 1024

struct journal {
	json_t *ring[JOURNAL_MAX]; /* full event messages, oldest at head */
	bool held[JOURNAL_MAX]; /* by ring slot: not shown by journal_since */
	unsigned int head, count;
	uint64_t next_seq; /* the number the next event gets; starts at 1 */
};

void journal_init(struct journal *j);
void journal_free(struct journal *j);
/*
 * Appends the event @name with @data (stolen) stamped with the realtime
 * clock; returns the full event message (borrowed: valid until the
 * journal drops it) or NULL on ENOMEM.
 */
json_t *journal_add(struct journal *j, const char *name, json_t *data);
/*
 * An event whose fact becomes true only with the next state write: it is
 * saved with the journal (so the write carries it) but hidden from
 * journal_since() until journal_release(), or taken back by journal_drop().
 */
json_t *journal_add_held(struct journal *j, const char *name, json_t *data);
void journal_release(struct journal *j, uint64_t seq);
/*
 * Takes back an event whose fact did not come true (a change that could
 * not be persisted). Its number stays used: numbers never repeat.
 */
void journal_drop(struct journal *j, uint64_t seq);
/*
 * The events with seq > @since, oldest first, as a new array; *@lost is
 * true when some of them were already dropped from the journal.
 */
json_t *journal_since(const struct journal *j, uint64_t since, bool *lost);
/*
 * The journal as a JSON object to persist, and back. journal_load() copies
 * from @saved (borrowed) and returns 0, -EINVAL with the bad field named in
 * @err, or -ENOMEM; on error @j is left as it was.
 */
json_t *journal_save(const struct journal *j);
int journal_load(struct journal *j, json_t *saved, char *err, size_t errlen);
/* The newest event journal_since() shows, 0 before the first. */
uint64_t journal_last_seq(const struct journal *j);

#endif
