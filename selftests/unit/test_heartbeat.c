// SPDX-License-Identifier: GPL-2.0-only
/*
 * Heartbeats, against a real daemon in this process: the record each
 * armed storage gets every interval (file and block storages), its last
 * clean-shutdown record, the sequence across a restart, the slots a
 * setup must refuse, the watchdog device, unfence and query-peer. Every
 * wait pumps the daemon's loop up to a deadline for a condition.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <criterion/criterion.h>

#include "fencer.h"
#include "persist.h"
#include "state_file.h"
#include "harness.h"
#include "record.h"
#include "storage.h"

#define INTERVAL_MS 100
/* The default max_attempts is 5. */
#define TIMEOUT_MS (5 * INTERVAL_MS)
/* How long a test waits for something that comes within an interval. */
/*
 * These storages live on this machine's own file system, and the loop
 * only runs while a test pumps it: a fence can come from a test that
 * merely paused longer than a timeout (a slow sanitizer build), and it
 * kills whatever matches the victim filter there, a developer's real
 * VMs included. So no storage here matches any process.
 */
#define NOBODY ",\"victims\":[\"iofence-test-matches-no-process\"]"
#define WAIT_MS 3000
/* The backing file of a loop device: 256 slots. */
#define LOOP_SIZE (1024 * 1024)

static struct harness h;
static char m1[128], m2[128];
static char loopdev[64];

static void start(void)
{
	harness_start(&h, NULL);
	mkdir(harness_path(&h, "m1", m1, sizeof(m1)), 0755);
	mkdir(harness_path(&h, "m2", m2, sizeof(m2)), 0755);
}

static void loop_detach(void)
{
	char cmd[128];

	if (!loopdev[0])
		return;
	snprintf(cmd, sizeof(cmd), "losetup -d %s", loopdev);
	if (system(cmd))
		fprintf(stderr, "warning: '%s' failed\n", cmd);
	loopdev[0] = '\0';
}

static void stop(void)
{
	harness_stop(&h);
	loop_detach();
}

/* --- helpers -------------------------------------------------------------- */

static void pump_for(unsigned int ms)
{
	uint64_t end = loop_now_ms() + ms, now;

	while ((now = loop_now_ms()) < end)
		harness_pump(&h, end - now);
}

static void record_path(const char *target, const char *host, char *buf,
			size_t len)
{
	snprintf(buf, len, "%s/.iofence/%s", target, host);
}

/* 4096 bytes at @off of @path (a record file or a device), O_DIRECT. */
static int read_raw(const char *path, uint64_t off, void *out)
{
	void *buf = NULL;
	ssize_t n;
	int fd, err;

	fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (posix_memalign(&buf, 4096, 4096)) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, buf, 4096, off);
	err = errno;
	close(fd);
	if (n < 0) {
		free(buf);
		return -err;
	}
	memset((char *)buf + n, 0, 4096 - n);
	memcpy(out, buf, 4096);
	free(buf);
	return (int)n;
}

static int read_record(const char *path, uint64_t off, struct record *r)
{
	char buf[4096];
	int n = read_raw(path, off, buf);

	if (n < 0)
		return n;
	return record_decode(buf, n, r);
}

/*
 * Pumps until the record at @off of @path decodes with @state, a sequence
 * number of at least @min_seq and written (CLOCK_MONOTONIC) at @since_ns
 * or later. 0, or the last decode result (1: a record, but not yet the
 * one waited for); @r is the last read.
 */
static int wait_record_since(const char *path, uint64_t off,
			     enum record_state state, uint64_t min_seq,
			     uint64_t since_ns, struct record *r)
{
	uint64_t end = loop_now_ms() + WAIT_MS;
	int ret;

	for (;;) {
		memset(r, 0, sizeof(*r));
		ret = read_record(path, off, r);
		if (!ret && r->state == state && r->seq >= min_seq &&
		    r->monotonic_ns >= since_ns)
			return 0;
		if (loop_now_ms() >= end)
			return ret ? ret : 1;
		harness_pump(&h, 5);
	}
}

static int wait_record(const char *path, uint64_t off, enum record_state state,
		       uint64_t min_seq, struct record *r)
{
	return wait_record_since(path, off, state, min_seq, 0, r);
}

#define assert_record(path_, off_, state_, min_seq_, r_)                                                   \
	do {                                                                                               \
		int ret_ = wait_record(path_, off_, state_, min_seq_, r_);                                 \
		cr_assert_eq(                                                                              \
			ret_, 0,                                                                           \
			"%s@%llu: waited for a %s record with seq >= %llu: decode %d, state %d, seq %llu", \
			path_, (unsigned long long)(off_),                                                 \
			record_state_name(state_),                                                         \
			(unsigned long long)(min_seq_), ret_, (r_)->state,                                 \
			(unsigned long long)(r_)->seq);                                                    \
	} while (0)

static json_t *arm(int fd, const char *host, const char *uuid, const char *type,
		   const char *target, const char *more)
{
	return harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"%s\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"%s\",\"type\":\"%s\",\"target\":\"%s\",\"interval_ms\":%d" NOBODY
		"%s}]}}",
		host, uuid, type, target, INTERVAL_MS, more);
}

static const char *result_of(json_t *reply, size_t i)
{
	return json_string_value(json_object_get(
		json_array_get(json_object_get(reply_ret(reply), "storages"),
			       i),
		"result"));
}

/* A setup that must arm: the reply checked and freed. */
static void arm_ok(int fd, const char *host, const char *uuid, const char *type,
		   const char *target, const char *more)
{
	json_t *r = arm(fd, host, uuid, type, target, more);

	cr_assert_null(reply_class(r), "setup %s: %s: %s", uuid, reply_class(r),
		       reply_desc(r));
	cr_assert_str_eq(result_of(r, 0), "armed");
	json_decref(r);
}

static void teardown(int fd, const char *host, const char *uuid)
{
	json_t *r = harness_call(
		&h, fd,
		"{\"execute\":\"teardown\",\"arguments\":{\"host_uuid\":\"%s\",\"storages\":[\"%s\"]}}",
		host, uuid);

	cr_assert_null(reply_class(r), "%s", reply_desc(r));
	cr_assert_str_eq(result_of(r, 0), "disarmed");
	json_decref(r);
}

static json_t *status(int fd)
{
	json_t *r = harness_call(&h, fd, "{\"execute\":\"query-status\"}");

	cr_assert_null(reply_class(r), "%s", reply_desc(r));
	return r;
}

static json_t *find_storage(json_t *status_reply, const char *uuid)
{
	json_t *s;
	size_t i;

	json_array_foreach(json_object_get(reply_ret(status_reply), "storages"),
			   i, s)
		if (!strcmp(json_string_value(json_object_get(s, "uuid")),
			    uuid))
			return s;
	return NULL;
}

static size_t storages_armed(int fd)
{
	json_t *r = status(fd);
	size_t n = json_array_size(json_object_get(reply_ret(r), "storages"));

	json_decref(r);
	return n;
}

static json_int_t int_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "%s: not an integer", key);
	return json_integer_value(v);
}

static const char *str_at(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool contains(const char *haystack, const char *needle)
{
	return haystack && strstr(haystack, needle);
}

/* The fencer of an armed storage, for the tests that time a stop. */
static struct fencer_link *fencer_of(const char *uuid)
{
	struct storage *s = storage_find(&h.d.storages, uuid);

	cr_assert_not_null(s, "%s is not armed", uuid);
	cr_assert_not_null(s->hb, "%s has no fencer", uuid);
	return s->hb;
}

/* A record as another host would have written it. */
static void foreign_record(void *buf, uint32_t size, const char *host,
			   const char *storage, enum record_state state)
{
	struct record r = {
		.size = size,
		.state = state,
		.seq = 41,
		.realtime_ns = 1700000000ull * 1000000000ull,
		.monotonic_ns = 123456789,
		.interval_ms = INTERVAL_MS,
		.timeout_ms = TIMEOUT_MS,
	};

	memset(buf, 0, size);
	snprintf(r.host_uuid, sizeof(r.host_uuid), "%s", host);
	snprintf(r.storage_uuid, sizeof(r.storage_uuid), "%s", storage);
	cr_assert_eq(record_encode(&r, buf), 0);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/*
 * A loop device on a LOOP_SIZE file of zeros, with @len bytes of @data
 * at @off first when given. Skips the test when losetup cannot do it.
 */
static void loop_attach(const void *data, size_t len, uint64_t off)
{
	harness_loop_attach(&h, LOOP_SIZE, data, len, off, loopdev,
			    sizeof(loopdev));
}

static int logical_block_size(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC), lbs = 0;

	cr_assert(fd >= 0, "%s: %s", dev, strerror(errno));
	cr_assert_eq(ioctl(fd, BLKSSZGET, &lbs), 0, "BLKSSZGET: %s",
		     strerror(errno));
	close(fd);
	return lbs;
}

static bool all_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* 1. The record on a file storage, and the heartbeat status. */
TestSuite(record, .init = start, .fini = stop);

Test(record, written_every_interval_with_the_contract)
{
	int fd = harness_connect(&h);
	struct timespec rt;
	struct record r;
	uint64_t seq, now_ns;
	char path[192];
	json_t *st, *hb;

	arm_ok(fd, "h", "a", "file", m1, "");
	pump_for(350);
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 1, &r);
	cr_expect_eq(r.size, 4096);
	cr_expect_str_eq(r.host_uuid, "h");
	cr_expect_str_eq(r.storage_uuid, "a");
	cr_expect_eq(r.interval_ms, INTERVAL_MS);
	cr_expect_eq(r.timeout_ms, TIMEOUT_MS);
	cr_expect_eq(r.fence_deadline_ms, 0, "no watchdog: no deadline");
	cr_expect_eq(memcmp(r.boot_id, record_boot_id(), sizeof(r.boot_id)), 0,
		     "the record carries this boot's id");
	cr_expect_gt(r.seq, 1, "several heartbeats in 350 ms");
	clock_gettime(CLOCK_REALTIME, &rt);
	now_ns = (uint64_t)rt.tv_sec * 1000000000ull + rt.tv_nsec;
	cr_expect(r.realtime_ns <= now_ns &&
			  now_ns - r.realtime_ns < 5000000000ull,
		  "written just now");
	cr_expect_leq(r.monotonic_ns, loop_now_ns());

	seq = r.seq;
	assert_record(path, 0, RECORD_ARMED, seq + 1, &r);
	cr_expect_gt(r.seq, seq, "the sequence grows");

	st = status(fd);
	hb = json_object_get(find_storage(st, "a"), "heartbeat");
	cr_assert(json_is_object(hb));
	cr_expect_str_eq(str_at(hb, "state"), "healthy");
	cr_expect_geq(int_at(hb, "writes_ok"), 2);
	cr_expect_eq(int_at(hb, "writes_failed"), 0);
	cr_expect(json_is_true(json_object_get(hb, "direct")),
		  "ext4 takes O_DIRECT");
	cr_expect_eq(int_at(hb, "record_size"), 4096);
	cr_expect_geq(int_at(hb, "seq"), (json_int_t)r.seq);
	json_decref(st);
	close(fd);
}

/*
 * 2. A teardown's last record (clean shutdown: the storage is released),
 * and a clean daemon stop's (a last heartbeat: it stays armed).
 */
TestSuite(last_record, .init = start, .fini = stop);

Test(last_record, teardown_writes_clean_shutdown)
{
	int fd = harness_connect(&h);
	struct record r;
	char path[192];
	uint64_t seq;

	arm_ok(fd, "h", "a", "file", m1, "");
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 2, &r);
	seq = r.seq;
	teardown(fd, "h", "a");
	assert_record(path, 0, RECORD_CLEAN_SHUTDOWN, seq + 1, &r);
	cr_expect_gt(r.seq, seq);
	cr_expect_str_eq(r.host_uuid, "h");
	cr_expect_eq(storages_armed(fd), 0);
	/* And it stays the last one: nothing writes after it. */
	seq = r.seq;
	pump_for(3 * INTERVAL_MS);
	cr_expect_eq(read_record(path, 0, &r), 0);
	cr_expect_eq(r.state, RECORD_CLEAN_SHUTDOWN);
	cr_expect_eq(r.seq, seq, "no heartbeat after the last record");
	close(fd);
}

/* The daemon stops (daemon_close) between two heartbeat writes. */
Test(last_record, clean_stop_when_idle_writes_a_last_heartbeat)
{
	int fd = harness_connect(&h);
	struct fencer_link *fc;
	struct record r;
	char path[192];
	uint64_t seq, end;

	arm_ok(fd, "h", "a", "file", m1, "");
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 2, &r);
	close(fd);
	fc = fencer_of("a");
	end = loop_now_ms() + WAIT_MS;
	while (fencer_writing(fc) && loop_now_ms() < end)
		harness_pump(&h, 1);
	cr_assert(!fencer_writing(fc));
	cr_assert_eq(read_record(path, 0, &r), 0);
	seq = r.seq;
	daemon_close(&h.d);
	h.running = false;
	cr_assert_eq(read_record(path, 0, &r), 0);
	cr_expect_eq(r.state, RECORD_ARMED,
		     "a stop that keeps the storage armed left a %s record",
		     record_state_name(r.state));
	cr_expect_gt(r.seq, seq);
	cr_expect_eq(r.timeout_ms, TIMEOUT_MS, "the same contract");
}

/*
 * The same with a heartbeat write in the kernel at that moment: the
 * daemon waits for it anyway, and the last heartbeat follows it.
 */
Test(last_record, clean_stop_during_a_write_writes_a_last_heartbeat)
{
	int fd = harness_connect(&h);
	struct fencer_link *fc;
	struct record r;
	char path[192];
	uint64_t seq, end;

	arm_ok(fd, "h", "a", "file", m1, "");
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 2, &r);
	close(fd);
	fc = fencer_of("a");
	/*
	 * Past the write in flight now, to the start of the next one. The
	 * record on disk is no measure of it: the core's report that a
	 * write began may come after that write landed.
	 */
	end = loop_now_ms() + WAIT_MS;
	while (fencer_writing(fc) && loop_now_ms() < end)
		harness_pump(&h, 1);
	while (!(seq = fencer_writing(fc)) && loop_now_ms() < end)
		harness_pump(&h, 1);
	cr_assert(seq, "no heartbeat write started");
	daemon_close(&h.d);
	h.running = false;
	cr_assert_eq(read_record(path, 0, &r), 0);
	cr_expect_eq(
		r.state, RECORD_ARMED,
		"a clean stop with a heartbeat in flight left a %s record (seq %llu)",
		record_state_name(r.state), (unsigned long long)r.seq);
	cr_expect_gt(
		r.seq, seq,
		"the write in flight (seq %llu), then the last one: seq %llu",
		(unsigned long long)seq, (unsigned long long)r.seq);
}

/* 3. A restart: the sequence goes on from the record. */
TestSuite(restart, .init = start, .fini = stop);

Test(restart, sequence_continues_from_the_record)
{
	int fd = harness_connect(&h);
	struct record r;
	char path[192];
	uint64_t seen, since;
	json_t *st;
	int ret;

	arm_ok(fd, "h", "a", "file", m1, "");
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 3, &r);
	seen = r.seq;
	close(fd);

	/* Whatever the old daemon writes from here on is its last heartbeat. */
	since = loop_now_ns();
	harness_restart(&h);
	ret = wait_record_since(path, 0, RECORD_ARMED, 1, since, &r);
	cr_assert_eq(
		ret, 0,
		"no heartbeat after the restart: decode %d, state %s, seq %llu",
		ret, record_state_name(r.state), (unsigned long long)r.seq);
	cr_expect_gt(
		r.seq, seen,
		"the first record after the restart has seq %llu, one before it had %llu",
		(unsigned long long)r.seq, (unsigned long long)seen);
	seen = r.seq;
	assert_record(path, 0, RECORD_ARMED, seen + 1, &r);
	fd = harness_connect(&h);
	st = status(fd);
	cr_expect_geq(
		int_at(json_object_get(find_storage(st, "a"), "heartbeat"),
		       "seq"),
		(json_int_t)r.seq);
	json_decref(st);
	close(fd);
}

/*
 * A fence outlives a restart, but only on the storage that was fenced:
 * the state file says fenced, the record on the target says whose it is.
 */
TestSuite(restore, .init = start, .fini = stop);

/* The stopped daemon's state file, to be edited by a test. */
static json_t *state_read(void)
{
	char path[160], err[256], *buf;
	json_t *doc;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/" PERSIST_FILE, h.state);
	buf = malloc(1 << 20);
	cr_assert_not_null(buf);
	fd = open(path, O_RDONLY);
	cr_assert(fd >= 0);
	n = read(fd, buf, 1 << 20);
	close(fd);
	cr_assert_eq(state_decode(buf, n, &doc, err, sizeof(err)), 0, "%s",
		     err);
	free(buf);
	return doc;
}

/* Writes @doc (stolen) as the state file. */
static void state_write(json_t *doc)
{
	char path[160], *text;
	size_t len;

	snprintf(path, sizeof(path), "%s/" PERSIST_FILE, h.state);
	text = state_encode(doc, &len);
	json_decref(doc);
	cr_assert_not_null(text);
	write_file(path, text, len);
	free(text);
}

/* Stops the daemon with "a" marked fenced in its state file. */
static void stop_fenced(void)
{
	json_t *doc;

	daemon_close(&h.d);
	h.running = false;
	doc = state_read();
	json_object_set_new(json_array_get(json_object_get(doc, "storages"), 0),
			    "fence",
			    json_pack("{s:i,s:s,s:b}", "fenced_at", 1, "reason",
				      "lost in a test", "escalated", 0));
	state_write(doc);
}

static const char *hb_state(int fd)
{
	static char state[16];
	json_t *st = status(fd);

	snprintf(state, sizeof(state), "%s",
		 str_at(json_object_get(find_storage(st, "a"), "heartbeat"),
			"state"));
	json_decref(st);
	return state;
}

Test(restore, fence_survives_a_restart_until_unfenced)
{
	int fd = harness_connect(&h);
	char path[192];
	struct record r;
	json_t *rep;

	arm_ok(fd, "h", "a", "file", m1, "");
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 2, &r);
	close(fd);
	stop_fenced();
	harness_reopen(&h);
	fd = harness_connect(&h);
	cr_expect_str_eq(hb_state(fd), "fenced");
	/* Its heartbeats succeed: the operator may lift it. */
	pump_for(3 * INTERVAL_MS);
	rep = harness_call(
		&h, fd,
		"{\"execute\":\"unfence\",\"arguments\":{\"uuid\":\"a\"}}");
	cr_expect_null(reply_class(rep), "%s", reply_desc(rep));
	json_decref(rep);
	cr_expect_str_eq(hb_state(fd), "healthy");
	close(fd);
}

/* The journal's first event @name, or NULL; the reply in *@keep. */
static json_t *journal_event(int fd, const char *name, json_t **keep)
{
	json_t *r = harness_call(
		&h, fd,
		"{\"execute\":\"query-events\",\"arguments\":{\"since\":0}}");
	json_t *ev, *events = json_object_get(reply_ret(r), "events");
	size_t i;

	*keep = r;
	json_array_foreach(events, i, ev)
		if (!strcmp(str_at(ev, "event"), name))
			return ev;
	return NULL;
}

/*
 * The daemon before may have died while killing the victims: the first
 * search after the restart is held to kill_grace like a new fence's own,
 * and settles the fence: FENCE_COMPLETED, all dead once the search
 * completed, or, under "force", FENCE_ESCALATED when it could not finish
 * in time (a process on this machine whose /proc entries block holds it).
 * Taken as done before it ran, a stuck search spared the victims with
 * nothing said.
 */
Test(restore, first_search_after_a_restart_settles_the_fence)
{
	int fd = harness_connect(&h);
	char path[192];
	uint64_t end;
	struct record r;
	json_t *rep = NULL, *ev = NULL, *data, *esc;
	bool done;

	arm_ok(fd, "h", "a", "file", m1, ",\"kill_grace_ms\":300");
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 2, &r);
	close(fd);
	stop_fenced();
	harness_reopen(&h);
	fd = harness_connect(&h);
	cr_expect_str_eq(hb_state(fd), "fenced");
	for (end = loop_now_ms() + WAIT_MS; loop_now_ms() < end;) {
		json_decref(rep);
		ev = journal_event(fd, "FENCE_COMPLETED", &rep);
		if (ev)
			break;
		pump_for(INTERVAL_MS);
	}
	cr_assert_not_null(ev, "no FENCE_COMPLETED after the restart: %s",
			   json_dumps(reply_ret(rep), JSON_COMPACT));
	data = json_object_get(ev, "data");
	done = json_is_true(
		json_object_get(json_object_get(data, "scan"), "complete"));
	cr_expect_eq(json_is_true(json_object_get(data, "all_dead")), done,
		     "no victim: all dead exactly when the search completed");
	json_decref(rep);
	pump_for(INTERVAL_MS);
	esc = journal_event(fd, "FENCE_ESCALATED", &rep);
	cr_expect_eq(esc != NULL, !done,
		     "escalated exactly when the search did not finish");
	json_decref(rep);
	assert_record(path, 0, RECORD_FENCED, r.seq + 1, &r);
	cr_expect_str_eq(hb_state(fd), "fenced");
	close(fd);
}

Test(restore, not_on_another_device_behind_the_same_path)
{
	int fd = harness_connect(&h);
	char path[192];
	struct record r;

	arm_ok(fd, "h", "a", "file", m1, "");
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 2, &r);
	close(fd);
	stop_fenced();
	/* What the path leads to now never held this host's record. */
	cr_assert_eq(truncate(path, 0), 0);
	harness_reopen(&h);
	fd = harness_connect(&h);
	cr_expect_str_eq(hb_state(fd), "healthy");
	close(fd);
}

/* 4. What a setup finds in the record file of a file storage. */
TestSuite(foreign, .init = start, .fini = stop);

Test(foreign, another_hosts_live_record_is_refused_untouched)
{
	int fd = harness_connect(&h);
	char dir[160], path[192], before[4096], after[4096];
	json_t *r;

	snprintf(dir, sizeof(dir), "%s/.iofence", m1);
	cr_assert_eq(mkdir(dir, 0755), 0);
	record_path(m1, "h", path, sizeof(path));
	foreign_record(before, 4096, "other", "a", RECORD_ARMED);
	write_file(path, before, sizeof(before));

	r = arm(fd, "h", "a", "file", m1, "");
	cr_expect_str_eq(reply_class(r), "ArmingFailed", "%s", reply_desc(r));
	cr_expect(contains(reply_desc(r), "other"), "%s", reply_desc(r));
	json_decref(r);
	cr_expect_eq(storages_armed(fd), 0, "nothing armed");
	pump_for(2 * INTERVAL_MS);
	cr_assert_eq(read_raw(path, 0, after), 4096);
	cr_expect_eq(memcmp(before, after, sizeof(before)), 0,
		     "the other host's record is left as it was");
	close(fd);
}

Test(foreign, garbage_record_file_is_rewritten)
{
	int fd = harness_connect(&h);
	char dir[160], path[192], junk[4096];
	struct record r;

	snprintf(dir, sizeof(dir), "%s/.iofence", m1);
	cr_assert_eq(mkdir(dir, 0755), 0);
	record_path(m1, "h", path, sizeof(path));
	memset(junk, 0x5a, sizeof(junk));
	write_file(path, junk, sizeof(junk));

	arm_ok(fd, "h", "a", "file", m1, "");
	assert_record(path, 0, RECORD_ARMED, 1, &r);
	cr_expect_str_eq(r.host_uuid, "h");
	cr_expect_str_eq(r.storage_uuid, "a");
	close(fd);
}

/* 5. Block storages: a slot of a loop device. */
TestSuite(block, .init = start, .fini = stop);

Test(block, zeroed_slot_is_armed_record_at_its_offset)
{
	int fd, lbs;
	struct record r;
	char raw[4096];
	uint64_t off = 8192 + 3 * 4096;
	json_t *st, *hb;

	loop_attach(NULL, 0, 0);
	lbs = logical_block_size(loopdev);
	fd = harness_connect(&h);
	arm_ok(fd, "h", "a", "block", loopdev,
	       ",\"region_offset\":8192,\"slot\":3");
	assert_record(loopdev, off, RECORD_ARMED, 2, &r);
	cr_expect_eq(r.size, (uint32_t)lbs,
		     "the record is one logical block (%d)", lbs);
	cr_expect_str_eq(r.host_uuid, "h");
	cr_expect_str_eq(r.storage_uuid, "a");
	cr_expect_eq(r.interval_ms, INTERVAL_MS);
	cr_expect_eq(r.timeout_ms, TIMEOUT_MS);
	/* The record takes the start of its slot and nothing else. */
	cr_assert_eq(read_raw(loopdev, off, raw), 4096);
	cr_expect(all_zero(raw + lbs, 4096 - lbs),
		  "the rest of the slot is untouched");
	for (uint64_t o = 0; o < 16 * 4096; o += 4096) {
		if (o == off)
			continue;
		cr_assert_eq(read_raw(loopdev, o, raw), 4096);
		cr_expect(all_zero(raw, sizeof(raw)), "offset %llu was written",
			  (unsigned long long)o);
	}
	st = status(fd);
	hb = json_object_get(find_storage(st, "a"), "heartbeat");
	cr_expect_str_eq(str_at(hb, "state"), "healthy");
	cr_expect_eq(int_at(hb, "record_size"), lbs);
	cr_expect(json_is_true(json_object_get(hb, "direct")));
	json_decref(st);
	close(fd);
}

Test(block, slot_with_foreign_bytes_is_refused_untouched)
{
	char junk[4096], raw[4096];
	int fd;
	json_t *r;

	memset(junk, 0x5a, sizeof(junk));
	loop_attach(junk, sizeof(junk), 4096);
	fd = harness_connect(&h);
	r = arm(fd, "h", "a", "block", loopdev, ",\"slot\":1");
	cr_expect_str_eq(reply_class(r), "ArmingFailed", "%s", reply_desc(r));
	cr_expect(contains(reply_desc(r), "not an iofence record"), "%s",
		  reply_desc(r));
	json_decref(r);
	cr_expect_eq(storages_armed(fd), 0);
	pump_for(2 * INTERVAL_MS);
	cr_assert_eq(read_raw(loopdev, 4096, raw), 4096);
	cr_expect_eq(memcmp(raw, junk, sizeof(raw)), 0,
		     "the slot is left as it was");
	close(fd);
}

Test(block, slot_with_another_hosts_live_record_is_refused)
{
	char rec[4096], raw[4096];
	int fd;
	json_t *r;

	/* 512 bytes: a valid record whatever the device's block size. */
	foreign_record(rec, 512, "other", "a", RECORD_ARMED);
	loop_attach(rec, 512, 2 * 4096);
	fd = harness_connect(&h);
	r = arm(fd, "h", "a", "block", loopdev, ",\"slot\":2");
	cr_expect_str_eq(reply_class(r), "ArmingFailed", "%s", reply_desc(r));
	cr_expect(contains(reply_desc(r), "other"), "%s", reply_desc(r));
	json_decref(r);
	cr_expect_eq(storages_armed(fd), 0);
	cr_assert_eq(read_raw(loopdev, 2 * 4096, raw), 4096);
	cr_expect_eq(memcmp(raw, rec, 512), 0, "the slot is left as it was");
	close(fd);
}

Test(block, slot_past_the_device_is_refused_last_one_fits)
{
	struct record r;
	int fd;
	json_t *res;

	loop_attach(NULL, 0, 0);
	fd = harness_connect(&h);
	/* 1 MiB: slots 0 to 255. */
	res = arm(fd, "h", "a", "block", loopdev, ",\"slot\":256");
	cr_expect_str_eq(reply_class(res), "ArmingFailed", "%s",
			 reply_desc(res));
	cr_expect(contains(reply_desc(res), "past the device"), "%s",
		  reply_desc(res));
	json_decref(res);
	cr_expect_eq(storages_armed(fd), 0);

	arm_ok(fd, "h", "a", "block", loopdev, ",\"slot\":255");
	assert_record(loopdev, 255 * 4096, RECORD_ARMED, 1, &r);
	close(fd);
}

/* 6. The watchdog device: a FIFO that receives the keepalives. */
static char wd_fifo[128];
static const char *const wd_extra[] = { "--watchdog", wd_fifo,
					"--watchdog-timeout", "1", NULL };

static void start_watchdog(void)
{
	start();
	/* The FIFO lives in the harness folder, so the daemon starts again. */
	cr_assert_eq(mkfifo(harness_path(&h, "wd", wd_fifo, sizeof(wd_fifo)),
			    0600),
		     0);
	for (int i = 0; wd_extra[i]; i++)
		h.extra[i] = wd_extra[i];
	harness_restart(&h);
}

/* Reads what is in the FIFO: the count of 'k', and the other bytes. */
static unsigned int drain(int rd, char *others, size_t len)
{
	unsigned int k = 0;
	size_t n_others = 0;
	char buf[256];
	ssize_t n;

	while ((n = read(rd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 'k')
				k++;
			else if (n_others + 1 < len)
				others[n_others++] = buf[i];
		}
	others[n_others] = '\0';
	return k;
}

TestSuite(watchdog, .init = start_watchdog, .fini = stop);

/* Rewrites the state file: storage 0 becomes a block storage at @target. */
static void state_make_block(const char *target)
{
	json_t *doc = state_read(), *params;

	params = json_object_get(
		json_array_get(json_object_get(doc, "storages"), 0), "params");
	json_object_set_new(params, "type", json_string("block"));
	json_object_set_new(params, "target", json_string(target));
	state_write(doc);
}

/*
 * A storage whose re-arm hangs at start-up was promised a deadline this
 * host can no longer keep: with "force" the petting stops, until a
 * teardown lets the storage go.
 */
Test(watchdog, storage_hung_at_rearm_holds_the_petting)
{
	int rd = open(wd_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC), fd, reader;
	char others[64], hang[128], *text;
	json_t *r;

	cr_assert(rd >= 0, "%s: %s", wd_fifo, strerror(errno));
	/* Opening a FIFO for writing blocks until a reader comes. */
	cr_assert_eq(mkfifo(harness_path(&h, "hang", hang, sizeof(hang)), 0600),
		     0);
	fd = harness_connect(&h);
	arm_ok(fd, "h", "a", "file", m1, "");
	close(fd);
	daemon_close(&h.d);
	h.running = false;
	state_make_block(hang);
	harness_reopen(&h);
	h.running = true;

	drain(rd, others, sizeof(others));
	pump_for(1000);
	cr_expect_eq(drain(rd, others, sizeof(others)), 0,
		     "the watchdog is still petted");
	fd = harness_connect(&h);
	r = harness_call(&h, fd, "{\"execute\":\"query-status\"}");
	cr_expect_eq(json_array_size(json_object_get(reply_ret(r), "unarmed")),
		     1);
	json_decref(r);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"query-events\",\"arguments\":{\"since\":0}}");
	text = json_dumps(reply_ret(r), JSON_COMPACT);
	cr_expect(contains(text, "\"REARM_FAILED\"") &&
			  contains(text, "\"hung\":true"),
		  "REARM_FAILED journalled, hung: %s", text);
	free(text);
	json_decref(r);

	r = harness_call(
		&h, fd,
		"{\"execute\":\"teardown\",\"arguments\":{\"host_uuid\":\"h\",\"storages\":[\"a\"]}}");
	cr_expect_null(reply_class(r), "%s", reply_desc(r));
	json_decref(r);
	pump_for(1000);
	cr_expect_geq(drain(rd, others, sizeof(others)), 3,
		      "petting resumes once the storage is let go");
	close(fd);
	/* Release the stuck open; its late fd is closed by the daemon. */
	reader = open(hang, O_RDONLY | O_NONBLOCK);
	pump_for(50);
	close(reader);
	close(rd);
}

/*
 * What the watchdog got after the stop, to the writer's close: every
 * byte but the last a keepalive; returns the last one (0: none).
 */
static char read_to_end(int rd)
{
	size_t total = 0;
	char buf[256], last = 0;
	ssize_t n;

	while ((n = read(rd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i + 1 < n; i++)
			cr_expect_eq(buf[i], 'k', "byte %zu is '%c'", total + i,
				     buf[i]);
		total += n;
		last = buf[n - 1];
	}
	cr_expect_eq(n, 0, "the writer closed: EOF, not %s",
		     n < 0 ? strerror(errno) : "data");
	return last;
}

Test(watchdog, petted_published_and_closed_with_magic)
{
	int rd = open(wd_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC), fd;
	unsigned int pets, more;
	struct record r;
	char others[64], path[192];
	json_t *st, *s;

	cr_assert(rd >= 0, "%s: %s", wd_fifo, strerror(errno));
	/*
	 * One keepalive at start, then one every 1000 / 4 ms. The core
	 * thread pets once it runs, which on a loaded machine may be a
	 * little after the harness is up.
	 */
	pets = drain(rd, others, sizeof(others));
	for (unsigned int i = 0; !pets && i < 100; i++) {
		pump_for(10);
		pets = drain(rd, others, sizeof(others));
	}
	cr_expect_geq(pets, 1, "the first keepalive comes at start");
	cr_expect_str_eq(others, "");
	pump_for(1000);
	more = drain(rd, others, sizeof(others));
	cr_expect(more >= 3 && more <= 5,
		  "%u keepalives in 1 s, one every 250 ms expected", more);
	cr_expect_str_eq(others, "");

	fd = harness_connect(&h);
	arm_ok(fd, "h", "a", "file", m1, ",\"kill_grace_ms\":300");
	arm_ok(fd, "h", "b", "file", m2, ",\"strategy\":\"kill-only\"");
	st = status(fd);
	s = find_storage(st, "a");
	/* T + G + W with force: 500 + 300 + 1000. */
	cr_expect_eq(int_at(json_object_get(s, "timeline"),
			    "fence_deadline_ms"),
		     TIMEOUT_MS + 300 + 1000);
	s = find_storage(st, "b");
	cr_expect_eq(int_at(json_object_get(s, "timeline"),
			    "fence_deadline_ms"),
		     0, "kill-only promises no deadline");
	json_decref(st);
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 1, &r);
	cr_expect_eq(r.fence_deadline_ms, TIMEOUT_MS + 300 + 1000);
	record_path(m2, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_ARMED, 1, &r);
	cr_expect_eq(r.fence_deadline_ms, 0);

	/*
	 * A stop with nothing armed that counts on the watchdog ("b" is
	 * kill-only): keepalives, then the magic close as the last byte.
	 */
	teardown(fd, "h", "a");
	record_path(m1, "h", path, sizeof(path));
	assert_record(path, 0, RECORD_CLEAN_SHUTDOWN, 1, &r);
	cr_expect_eq(r.fence_deadline_ms, 0,
		     "a released storage promises none");
	close(fd);
	harness_stop(&h);
	cr_expect_eq(read_to_end(rd), 'V',
		     "the last byte is not the magic 'V'");
	close(rd);
}

Test(watchdog, left_armed_by_a_stop_that_keeps_a_deadline)
{
	int rd = open(wd_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC), fd;

	cr_assert(rd >= 0, "%s: %s", wd_fifo, strerror(errno));
	fd = harness_connect(&h);
	arm_ok(fd, "h", "a", "file", m1, "");
	close(fd);
	/*
	 * "a" stays armed across the stop, and peers count its deadline,
	 * the reset included, from its last heartbeat: no magic close.
	 */
	harness_stop(&h);
	cr_expect_eq(read_to_end(rd), 'k', "the last byte is not a keepalive");
	close(rd);
}

/* 7. unfence on storages that are not fenced. */
TestSuite(unfence, .init = start, .fini = stop);

Test(unfence, refused_unless_fenced)
{
	int fd = harness_connect(&h);
	json_t *r;

	arm_ok(fd, "h", "a", "file", m1, "");
	pump_for(2 * INTERVAL_MS);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"unfence\",\"arguments\":{\"uuid\":\"a\"}}");
	cr_expect_str_eq(reply_class(r), "GenericError", "%s", reply_desc(r));
	cr_expect(contains(reply_desc(r), "not fenced"), "%s", reply_desc(r));
	json_decref(r);

	r = harness_call(
		&h, fd,
		"{\"execute\":\"unfence\",\"arguments\":{\"uuid\":\"nope\"}}");
	cr_expect_str_eq(reply_class(r), "NotFound", "%s", reply_desc(r));
	json_decref(r);

	r = harness_call(&h, fd, "{\"execute\":\"unfence\",\"arguments\":{}}");
	cr_expect_str_eq(reply_class(r), "InvalidArgument", "%s",
			 reply_desc(r));
	cr_expect(contains(reply_desc(r), "uuid"), "%s", reply_desc(r));
	json_decref(r);

	/* Still armed and healthy. */
	r = status(fd);
	cr_expect_str_eq(
		str_at(json_object_get(find_storage(r, "a"), "heartbeat"),
		       "state"),
		"healthy");
	json_decref(r);
	close(fd);
}

/* 8. query-peer: the liveness of another host, from its record. */
TestSuite(query_peer, .init = start, .fini = stop);

/*
 * Two hosts of one daemon on one folder: storage a of h, b of h2, records
 * h and h2; returns once h2's record is there, its path in @path.
 */
static void two_hosts(int fd, char *path, size_t len, struct record *rr)
{
	arm_ok(fd, "h", "a", "file", m1, "");
	arm_ok(fd, "h2", "b", "file", m1, "");
	record_path(m1, "h2", path, len);
	assert_record(path, 0, RECORD_ARMED, 1, rr);
}

static json_t *peer(int fd, const char *storage, const char *host,
		    const char *more)
{
	return harness_call(
		&h, fd,
		"{\"execute\":\"query-peer\",\"arguments\":{\"storage\":\"%s\",\"host\":\"%s\"%s}}",
		storage, host, more);
}

static void expect_liveness(json_t *r, const char *liveness)
{
	cr_assert_null(reply_class(r), "%s: %s", reply_class(r), reply_desc(r));
	cr_expect_str_eq(str_at(reply_ret(r), "liveness"), liveness,
			 "reason: %s", str_at(reply_ret(r), "reason"));
}

Test(query_peer, alive_then_dead_after_teardown)
{
	int fd = harness_connect(&h);
	json_t *r, *rec;
	struct record rr;
	char path[192];

	two_hosts(fd, path, sizeof(path), &rr);

	r = peer(fd, "a", "h2", ",\"window_ms\":300");
	expect_liveness(r, "alive");
	cr_expect_geq(int_at(reply_ret(r), "progress"), 1);
	cr_expect_eq(int_at(reply_ret(r), "window_ms"), 300);
	cr_expect_geq(int_at(reply_ret(r), "observed_ms"), 300);
	cr_expect_str_eq(str_at(reply_ret(r), "host"), "h2");
	cr_expect_str_eq(str_at(reply_ret(r), "storage"), "a");
	rec = json_object_get(reply_ret(r), "record");
	cr_expect_str_eq(str_at(rec, "state"), "armed");
	cr_expect(json_is_false(json_object_get(rec, "clean_shutdown")));
	cr_expect_eq(int_at(rec, "interval_ms"), INTERVAL_MS);
	cr_expect_eq(int_at(rec, "timeout_ms"), TIMEOUT_MS);
	cr_expect_eq(int_at(rec, "fence_deadline_ms"), 0);
	json_decref(r);

	teardown(fd, "h2", "b");
	assert_record(path, 0, RECORD_CLEAN_SHUTDOWN, 1, &rr);
	/*
	 * Longer than the timeout it publishes (500), but stopped on
	 * purpose: nothing fences its VMs, so never dead.
	 */
	r = peer(fd, "a", "h2", ",\"window_ms\":600");
	expect_liveness(r, "unknown");
	cr_expect(strstr(str_at(reply_ret(r), "reason"), "on purpose"));
	cr_expect_eq(int_at(reply_ret(r), "progress"), 0);
	rec = json_object_get(reply_ret(r), "record");
	cr_expect(json_is_true(json_object_get(rec, "clean_shutdown")));
	cr_expect_str_eq(str_at(rec, "state"), "clean-shutdown");
	cr_expect_eq(int_at(rec, "seq"), (json_int_t)rr.seq);
	json_decref(r);
	close(fd);
}

Test(query_peer, default_window_is_the_published_timeout)
{
	int fd = harness_connect(&h);
	struct record rr;
	char path[192];
	json_t *r;

	two_hosts(fd, path, sizeof(path), &rr);
	r = peer(fd, "a", "h2", "");
	expect_liveness(r, "alive");
	cr_expect_eq(int_at(reply_ret(r), "window_ms"), TIMEOUT_MS);
	cr_expect_geq(int_at(reply_ret(r), "progress"), 1);
	json_decref(r);
	close(fd);
}

Test(query_peer, unknown_without_record_or_window)
{
	int fd = harness_connect(&h);
	struct record rr;
	char path[192];
	json_t *r;

	two_hosts(fd, path, sizeof(path), &rr);

	r = peer(fd, "a", "nobody", ",\"window_ms\":300");
	expect_liveness(r, "unknown");
	cr_expect_not_null(str_at(reply_ret(r), "reason"));
	cr_expect_null(json_object_get(reply_ret(r), "record"));
	json_decref(r);

	r = peer(fd, "a", "h2", ",\"window_ms\":0");
	expect_liveness(r, "unknown");
	cr_expect_not_null(str_at(reply_ret(r), "reason"));
	cr_expect_null(json_object_get(reply_ret(r), "progress"));
	cr_expect_str_eq(str_at(json_object_get(reply_ret(r), "record"),
				"state"),
			 "armed");
	json_decref(r);
	close(fd);
}

Test(query_peer, argument_errors)
{
	int fd = harness_connect(&h);
	json_t *r;

	arm_ok(fd, "h", "a", "file", m1, "");
	r = peer(fd, "a", "h2", ",\"slot\":1");
	cr_expect_str_eq(reply_class(r), "InvalidArgument", "%s",
			 reply_desc(r));
	cr_expect(contains(reply_desc(r), "slot"), "%s", reply_desc(r));
	json_decref(r);

	r = peer(fd, "nope", "h2", "");
	cr_expect_str_eq(reply_class(r), "NotFound", "%s", reply_desc(r));
	json_decref(r);

	r = harness_call(
		&h, fd,
		"{\"execute\":\"query-peer\",\"arguments\":{\"storage\":\"a\"}}");
	cr_expect_str_eq(reply_class(r), "InvalidArgument", "%s",
			 reply_desc(r));
	cr_expect(contains(reply_desc(r), "host"), "%s", reply_desc(r));
	json_decref(r);
	close(fd);
}

Test(query_peer, block_storage_needs_a_slot)
{
	int fd;
	struct record rr;
	json_t *r;

	loop_attach(NULL, 0, 0);
	fd = harness_connect(&h);
	arm_ok(fd, "h", "a", "block", loopdev, "");
	assert_record(loopdev, 0, RECORD_ARMED, 1, &rr);

	r = peer(fd, "a", "h", ",\"window_ms\":300");
	cr_expect_str_eq(reply_class(r), "InvalidArgument", "%s",
			 reply_desc(r));
	cr_expect(contains(reply_desc(r), "slot"), "%s", reply_desc(r));
	json_decref(r);

	/* By slot: this host's own record moves; an empty slot is unknown. */
	r = peer(fd, "a", "h", ",\"slot\":0,\"window_ms\":300");
	expect_liveness(r, "alive");
	cr_expect_geq(int_at(reply_ret(r), "progress"), 1);
	json_decref(r);
	r = peer(fd, "a", "h", ",\"slot\":1,\"window_ms\":300");
	expect_liveness(r, "unknown");
	cr_expect_not_null(str_at(reply_ret(r), "reason"));
	json_decref(r);
	close(fd);
}
