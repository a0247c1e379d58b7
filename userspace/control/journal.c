// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "journal.h"
#include "proto.h"
#include "errmsg.h"

void journal_init(struct journal *j)
{
	memset(j, 0, sizeof(*j));
	j->next_seq = 1;
}

static json_t *at(const struct journal *j, unsigned int i)
{
	return j->ring[(j->head + i) % JOURNAL_MAX];
}

void journal_free(struct journal *j)
{
	for (unsigned int i = 0; i < j->count; i++)
		json_decref(at(j, i));
	/* Leaves an empty journal behind, so a second free is harmless. */
	journal_init(j);
}

/* Only messages built by journal_add() or checked by journal_load() get in. */
static uint64_t seq_of(const json_t *msg)
{
	return (uint64_t)json_integer_value(json_object_get(msg, "seq"));
}

json_t *journal_add(struct journal *j, const char *name, json_t *data)
{
	struct timespec ts;
	json_t *msg;

	clock_gettime(CLOCK_REALTIME, &ts);
	msg = proto_event(name, j->next_seq, data, ts.tv_sec,
			  ts.tv_nsec / 1000);
	/* The number is only used up by an event that is kept. */
	if (!msg)
		return NULL;
	if (j->count == JOURNAL_MAX) {
		json_decref(j->ring[j->head]);
		j->ring[j->head] = msg;
		j->held[j->head] = false;
		j->head = (j->head + 1) % JOURNAL_MAX;
	} else {
		j->ring[(j->head + j->count) % JOURNAL_MAX] = msg;
		j->held[(j->head + j->count) % JOURNAL_MAX] = false;
		j->count++;
	}
	j->next_seq++;
	return msg;
}

void journal_drop(struct journal *j, uint64_t seq)
{
	unsigned int i, k;

	for (i = 0; i < j->count && seq_of(at(j, i)) != seq; i++)
		;
	if (i == j->count)
		return;
	json_decref(at(j, i));
	/* Close the hole: everything after it moves one place back. */
	for (k = i; k + 1 < j->count; k++) {
		j->ring[(j->head + k) % JOURNAL_MAX] = at(j, k + 1);
		j->held[(j->head + k) % JOURNAL_MAX] =
			j->held[(j->head + k + 1) % JOURNAL_MAX];
	}
	j->count--;
}

static int find(const struct journal *j, uint64_t seq)
{
	for (unsigned int i = j->count; i-- > 0;)
		if (seq_of(at(j, i)) == seq)
			return (j->head + i) % JOURNAL_MAX;
	return -1;
}

json_t *journal_add_held(struct journal *j, const char *name, json_t *data)
{
	json_t *msg = journal_add(j, name, data);
	int pos = msg ? find(j, seq_of(msg)) : -1;

	if (pos >= 0)
		j->held[pos] = true;
	return msg;
}

void journal_release(struct journal *j, uint64_t seq)
{
	int pos = find(j, seq);

	if (pos >= 0)
		j->held[pos] = false;
}

json_t *journal_since(const struct journal *j, uint64_t since, bool *lost)
{
	/* With nothing kept, everything before next_seq has been dropped. */
	uint64_t oldest = j->count ? seq_of(at(j, 0)) : j->next_seq;
	json_t *arr;

	/*
	 * Written so that no sum wraps for a client that sends UINT64_MAX.
	 * oldest <= next_seq, so this also covers "something came after
	 * @since at all".
	 */
	if (lost)
		*lost = since < oldest - 1;
	arr = json_array();
	if (!arr)
		return NULL;
	for (unsigned int i = 0; i < j->count; i++) {
		json_t *msg = at(j, i);

		/* Held: its fact is not final yet, nobody sees it. */
		if (seq_of(msg) <= since ||
		    j->held[(j->head + i) % JOURNAL_MAX])
			continue;
		if (json_array_append(arr, msg)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *journal_save(const struct journal *j)
{
	json_t *events = json_array();

	if (!events)
		return NULL;
	for (unsigned int i = 0; i < j->count; i++) {
		if (json_array_append(events, at(j, i))) {
			json_decref(events);
			return NULL;
		}
	}
	return json_pack("{s:I,s:o}", "next_seq", (json_int_t)j->next_seq,
			 "events", events);
}

uint64_t journal_last_seq(const struct journal *j)
{
	uint64_t last = j->next_seq - 1;

	/*
	 * The newest event anyone can see: held events, and the numbers of
	 * events taken back, are not there yet or never will be.
	 */
	for (unsigned int i = j->count; i-- > 0;) {
		uint64_t seq = seq_of(at(j, i));

		if (!j->held[(j->head + i) % JOURNAL_MAX])
			return seq;
		last = seq - 1;
	}
	return j->count ? last : j->next_seq - 1;
}

/*
 * The exact shape proto_event() builds, nothing more: the journal hands
 * these messages to clients verbatim, so a doctored file must not smuggle
 * anything else to them.
 */
static int check_event(const json_t *ev, size_t idx, char *err, size_t errlen)
{
	json_t *seq, *ts, *sec, *usec;
	const char *key;
	json_t *val;

	if (!json_is_object(ev))
		return errmsg_invalid(err, errlen,
				      "events[%zu]: must be an object", idx);
	json_object_foreach((json_t *)ev, key, val) {
		if (strcmp(key, "event") && strcmp(key, "seq") &&
		    strcmp(key, "data") && strcmp(key, "timestamp"))
			return errmsg_invalid(err, errlen,
					      "events[%zu]: unknown field '%s'",
					      idx, key);
	}
	if (!json_is_string(json_object_get(ev, "event")))
		return errmsg_invalid(err, errlen,
				      "events[%zu].event: must be a string",
				      idx);
	seq = json_object_get(ev, "seq");
	if (!json_is_integer(seq) || json_integer_value(seq) < 1)
		return errmsg_invalid(
			err, errlen,
			"events[%zu].seq: must be a positive integer", idx);
	/* Any value: journal_add() takes whatever data its caller has. */
	if (!json_object_get(ev, "data"))
		return errmsg_invalid(err, errlen, "events[%zu].data: missing",
				      idx);
	ts = json_object_get(ev, "timestamp");
	if (!json_is_object(ts))
		return errmsg_invalid(
			err, errlen, "events[%zu].timestamp: must be an object",
			idx);
	json_object_foreach(ts, key, val) {
		if (strcmp(key, "seconds") && strcmp(key, "microseconds"))
			return errmsg_invalid(
				err, errlen,
				"events[%zu].timestamp: unknown field '%s'",
				idx, key);
	}
	sec = json_object_get(ts, "seconds");
	if (!json_is_integer(sec))
		return errmsg_invalid(
			err, errlen,
			"events[%zu].timestamp.seconds: must be an integer",
			idx);
	usec = json_object_get(ts, "microseconds");
	if (!json_is_integer(usec) || json_integer_value(usec) < 0 ||
	    json_integer_value(usec) > 999999)
		return errmsg_invalid(
			err, errlen,
			"events[%zu].timestamp.microseconds: must be an "
			"integer in 0..999999",
			idx);
	return 0;
}

int journal_load(struct journal *j, json_t *saved, char *err, size_t errlen)
{
	json_t *ring[JOURNAL_MAX];
	json_t *next, *events, *val;
	size_t n, first, idx;
	uint64_t next_seq, prev = 0;
	const char *key;
	int rc;

	if (!json_is_object(saved))
		return errmsg_invalid(err, errlen,
				      "journal: must be an object");
	json_object_foreach(saved, key, val) {
		if (strcmp(key, "next_seq") && strcmp(key, "events"))
			return errmsg_invalid(err, errlen,
					      "journal: unknown field '%s'",
					      key);
	}
	next = json_object_get(saved, "next_seq");
	if (!json_is_integer(next) || json_integer_value(next) < 1)
		return errmsg_invalid(err, errlen,
				      "next_seq: must be a positive integer");
	next_seq = (uint64_t)json_integer_value(next);
	events = json_object_get(saved, "events");
	if (!json_is_array(events))
		return errmsg_invalid(err, errlen, "events: must be an array");

	/* All of them are checked, also those about to be dropped. */
	json_array_foreach(events, idx, val) {
		uint64_t seq;

		rc = check_event(val, idx, err, errlen);
		if (rc)
			return rc;
		seq = seq_of(val);
		if (seq <= prev)
			return errmsg_invalid(
				err, errlen,
				"events[%zu].seq: %llu does not follow %llu",
				idx, (unsigned long long)seq,
				(unsigned long long)prev);
		if (seq >= next_seq)
			return errmsg_invalid(
				err, errlen,
				"events[%zu].seq: %llu is not below next_seq "
				"%llu",
				idx, (unsigned long long)seq,
				(unsigned long long)next_seq);
		prev = seq;
	}

	/*
	 * Copies, so that the caller may do as it likes with @saved, built
	 * aside so that running out of memory leaves @j as it was.
	 */
	n = json_array_size(events);
	first = n > JOURNAL_MAX ? n - JOURNAL_MAX : 0;
	for (idx = first; idx < n; idx++) {
		ring[idx - first] = json_deep_copy(json_array_get(events, idx));
		if (!ring[idx - first]) {
			while (idx-- > first)
				json_decref(ring[idx - first]);
			if (err && errlen)
				snprintf(err, errlen, "journal: out of memory");
			return -ENOMEM;
		}
	}

	journal_free(j);
	memcpy(j->ring, ring, (n - first) * sizeof(ring[0]));
	j->count = (unsigned int)(n - first);
	j->next_seq = next_seq;
	return 0;
}
