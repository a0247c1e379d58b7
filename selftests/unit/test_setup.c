// SPDX-License-Identifier: GPL-2.0-only
/*
 * The setup rules of the control plane (issue: early arming at
 * reconnect), one test group per rule, against a real daemon in this
 * process: real io_uring, real socket, real files.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "harness.h"
#include "persist.h"
#include "proto.h"
#include "state_file.h"

static struct harness h;
static char m1[128], m2[128], m3[128];

static void start(void)
{
	harness_start(&h, NULL);
	mkdir(harness_path(&h, "m1", m1, sizeof(m1)), 0755);
	mkdir(harness_path(&h, "m2", m2, sizeof(m2)), 0755);
	mkdir(harness_path(&h, "m3", m3, sizeof(m3)), 0755);
}

static void stop(void)
{
	harness_stop(&h);
}

static json_t *find_storage(json_t *status, const char *uuid)
{
	json_t *s;
	size_t i;

	json_array_foreach(json_object_get(reply_ret(status), "storages"), i, s)
		if (!strcmp(json_string_value(json_object_get(s, "uuid")),
			    uuid))
			return s;
	return NULL;
}

/*
 * query-status, with each storage's live heartbeat counters reduced to
 * its state: they move with time, what the tests compare must not.
 */
static json_t *status(int fd)
{
	json_t *r = harness_call(&h, fd, "{\"execute\":\"query-status\"}");
	json_t *s, *hb;
	size_t i;

	json_array_foreach(json_object_get(reply_ret(r), "storages"), i, s) {
		hb = json_object_get(s, "heartbeat");
		cr_assert(json_is_object(hb),
			  "an armed storage has heartbeats");
		json_object_set(s, "heartbeat", json_object_get(hb, "state"));
	}
	return r;
}

static const char *result_of(json_t *reply, size_t i)
{
	return json_string_value(json_object_get(
		json_array_get(json_object_get(reply_ret(reply), "storages"),
			       i),
		"result"));
}

/* The string @key of @o, "" when there is none. */
static const char *str_at(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? v : "";
}

static json_int_t storage_int(json_t *st, const char *param)
{
	return json_integer_value(
		json_object_get(json_object_get(st, "params"), param));
}

/* The plain case: one file storage of host h, armed with the bypass. */
static json_t *arm_file(int fd, const char *uuid, const char *target)
{
	return harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"%s\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		uuid, target);
}

static void set_connected(int fd)
{
	json_t *r = harness_call(
		&h, fd,
		"{\"execute\":\"set-host-state\",\"arguments\":{\"state\":\"connected\"}}");

	cr_assert_null(reply_class(r));
	json_decref(r);
}

/* 1. The status check, and its one-time bypass. */
TestSuite(status_check, .init = start, .fini = stop);

Test(status_check, refused_until_connected_bypass_is_one_time)
{
	int fd = harness_connect(&h);
	json_t *r;

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1);
	cr_expect_str_eq(reply_class(r), "HostNotConnected");
	json_decref(r);

	r = arm_file(fd, "a", m1);
	cr_expect_null(reply_class(r), "%s", reply_desc(r));
	cr_expect_str_eq(result_of(r, 0), "armed");
	json_decref(r);

	/* The bypass changed no stored state: the next request is checked. */
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"storages\":[{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m2);
	cr_expect_str_eq(reply_class(r), "HostNotConnected");
	json_decref(r);
	r = status(fd);
	cr_expect_str_eq(
		json_string_value(json_object_get(reply_ret(r), "host_state")),
		"connecting");
	cr_expect_null(find_storage(r, "b"));
	json_decref(r);

	set_connected(fd);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"storages\":[{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m2);
	cr_expect_str_eq(result_of(r, 0), "armed");
	json_decref(r);
	close(fd);
}

/* 2. The reconnect marker: kept with the storage and carried in events. */
TestSuite(reconnect_marker, .init = start, .fini = stop);

Test(reconnect_marker, recorded_shown_and_in_events)
{
	int fd = harness_connect(&h);
	json_t *r, *ev;

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"reconnect\":true,\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1);
	cr_assert_null(reply_class(r), "%s", reply_desc(r));
	cr_expect(json_is_true(json_object_get(reply_ret(r), "reconnect")));
	json_decref(r);
	r = status(fd);
	cr_expect(json_is_true(
		json_object_get(find_storage(r, "a"), "reconnect")));
	json_decref(r);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"query-events\",\"arguments\":{\"since\":0}}");
	ev = json_array_get(json_object_get(reply_ret(r), "events"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(ev, "event")),
			 "ARMED");
	cr_expect(json_is_true(
		json_object_get(json_object_get(ev, "data"), "reconnect")));
	json_decref(r);
	close(fd);
}

/* 3. Single flight, with reconnect in the key. */
TestSuite(single_flight, .init = start, .fini = stop);

#define CLIENTS 24

static void send_setup(int fd, bool reconnect)
{
	harness_send(
		fd,
		"{\"execute\":\"setup\",\"id\":%d,\"arguments\":{\"host_uuid\":\"h\",\"reconnect\":%s,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":500}]}}",
		fd, reconnect ? "true" : "false", m1, m2);
}

Test(single_flight, identical_requests_run_once)
{
	int fds[CLIENTS], ctl = harness_connect(&h), owners = 0;
	json_int_t flight = -1;

	set_connected(ctl);
	for (int i = 0; i < CLIENTS; i++)
		fds[i] = harness_connect(&h);
	/* Every request is in the socket before the daemon reads any. */
	for (int i = 0; i < CLIENTS; i++)
		send_setup(fds[i], false);
	for (int i = 0; i < CLIENTS; i++) {
		json_t *r = harness_read(&h, fds[i]), *ret = reply_ret(r);

		cr_assert_not_null(ret, "%s", reply_desc(r));
		cr_expect_eq(json_integer_value(json_object_get(r, "id")),
			     fds[i]);
		if (flight < 0)
			flight = json_integer_value(
				json_object_get(ret, "flight"));
		cr_expect_eq(json_integer_value(json_object_get(ret, "flight")),
			     flight, "every caller gets the one flight");
		owners += !json_is_true(json_object_get(ret, "joined"));
		cr_expect_str_eq(result_of(r, 0), "armed");
		json_decref(r);
		close(fds[i]);
	}
	cr_expect_eq(owners, 1, "one execution, %d callers joined it",
		     CLIENTS - 1);
	close(ctl);
}

Test(single_flight, reconnect_never_merges_with_connect)
{
	int ctl = harness_connect(&h), fds[4];
	json_int_t flights[4];

	set_connected(ctl);
	for (int i = 0; i < 4; i++)
		fds[i] = harness_connect(&h);
	/* plain, reconnect, reconnect, plain: both orders at once. */
	send_setup(fds[0], false);
	send_setup(fds[1], true);
	send_setup(fds[2], true);
	send_setup(fds[3], false);
	for (int i = 0; i < 4; i++) {
		json_t *r = harness_read(&h, fds[i]), *ret = reply_ret(r);

		cr_assert_not_null(ret, "%s", reply_desc(r));
		flights[i] = json_integer_value(json_object_get(ret, "flight"));
		cr_expect_eq(json_is_true(json_object_get(ret, "reconnect")),
			     i == 1 || i == 2);
		json_decref(r);
		close(fds[i]);
	}
	cr_expect_neq(flights[0], flights[1]);
	cr_expect_neq(flights[0], flights[2]);
	cr_expect_eq(flights[1], flights[2], "identical reconnects merge");
	cr_expect_eq(flights[0], flights[3], "identical connects merge");
	close(ctl);
}

Test(single_flight, changed_parameters_are_another_flight)
{
	int ctl = harness_connect(&h), a = harness_connect(&h),
	    b = harness_connect(&h);
	json_t *ra, *rb;

	set_connected(ctl);
	send_setup(a, false);
	harness_send(
		b,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":600}]}}",
		m1, m2);
	ra = harness_read(&h, a);
	rb = harness_read(&h, b);
	cr_expect_neq(
		json_integer_value(json_object_get(reply_ret(ra), "flight")),
		json_integer_value(json_object_get(reply_ret(rb), "flight")));
	cr_expect_str_eq(result_of(rb, 1), "updated");
	json_decref(ra);
	json_decref(rb);
}

/* 4. All or nothing, undone in reverse. */
TestSuite(rollback, .init = start, .fini = stop);

static json_t *arm_a(int fd)
{
	json_t *r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":1000}]}}",
		m1);

	cr_assert_null(reply_class(r), "%s", reply_desc(r));
	json_decref(r);
	r = status(fd);
	return r;
}

Test(rollback, failed_step_restores_everything)
{
	int fd = harness_connect(&h);
	json_t *before = arm_a(fd), *r, *after;
	char missing[128];

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":2000},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"c\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1, m2, harness_path(&h, "missing", missing, sizeof(missing)));
	cr_expect_str_eq(reply_class(r), "ArmingFailed");
	cr_expect(strstr(reply_desc(r), "storages[2] (c)") != NULL, "%s",
		  reply_desc(r));
	json_decref(r);
	after = status(fd);
	cr_expect(json_equal(json_object_get(reply_ret(before), "storages"),
			     json_object_get(reply_ret(after), "storages")),
		  "the armed set is exactly as before the batch");
	cr_expect_eq(storage_int(find_storage(after, "a"), "interval_ms"),
		     1000);
	cr_expect_null(find_storage(after, "b"));
	json_decref(before);
	json_decref(after);
	close(fd);
}

Test(rollback, failed_persist_undoes_the_commit)
{
	int fd = harness_connect(&h);
	json_t *before = arm_a(fd), *r, *after;
	char tmp[160];

	/* The state write cannot create its temp file. */
	snprintf(tmp, sizeof(tmp), "%s/" PERSIST_TMP_FILE, h.state);
	cr_assert_eq(mkdir(tmp, 0700), 0);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":2000},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1, m2);
	cr_expect_str_eq(reply_class(r), "ArmingFailed");
	cr_expect(strstr(reply_desc(r), "persisting the state") != NULL, "%s",
		  reply_desc(r));
	json_decref(r);
	after = status(fd);
	cr_expect(json_equal(json_object_get(reply_ret(before), "storages"),
			     json_object_get(reply_ret(after), "storages")));
	json_decref(before);
	json_decref(after);

	rmdir(tmp);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":2000},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1, m2);
	cr_expect_str_eq(result_of(r, 0), "updated");
	cr_expect_str_eq(result_of(r, 1), "armed");
	json_decref(r);
	close(fd);
}

Test(rollback, bad_arguments_change_nothing)
{
	int fd = harness_connect(&h);
	json_t *before = arm_a(fd), *r, *after;

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":2000},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":50}]}}",
		m1, m2);
	cr_expect_str_eq(reply_class(r), "InvalidArgument");
	cr_expect_str_eq(
		reply_desc(r),
		"storages[1].interval_ms: must be between 100 and 600000");
	json_decref(r);
	after = status(fd);
	cr_expect(json_equal(json_object_get(reply_ret(before), "storages"),
			     json_object_get(reply_ret(after), "storages")));
	json_decref(before);
	json_decref(after);
	close(fd);
}

/* 5. Early and late setups: unchanged, or updated in place. */
TestSuite(idempotent, .init = start, .fini = stop);

Test(idempotent, same_is_unchanged_changed_is_updated_in_place)
{
	int fd = harness_connect(&h);
	json_t *s1 = arm_a(fd), *r, *s2;
	json_t *a1 = find_storage(s1, "a"), *a2;

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":1000}]}}",
		m1);
	cr_expect_str_eq(result_of(r, 0), "unchanged");
	json_decref(r);
	s2 = status(fd);
	cr_expect(json_equal(a1, find_storage(s2, "a")),
		  "an unchanged storage is the very same one");
	json_decref(s2);

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":3000}]}}",
		m1);
	cr_expect_str_eq(result_of(r, 0), "updated");
	json_decref(r);
	s2 = status(fd);
	a2 = find_storage(s2, "a");
	cr_expect_eq(storage_int(a2, "interval_ms"), 3000);
	cr_expect_eq(json_integer_value(json_object_get(a2, "index")),
		     json_integer_value(json_object_get(a1, "index")),
		     "updated in its own slot");
	cr_expect_eq(json_integer_value(json_object_get(a2, "armed_at")),
		     json_integer_value(json_object_get(a1, "armed_at")),
		     "still armed since the first setup");
	json_decref(s1);
	json_decref(s2);
	close(fd);
}

/* 6. Storages not connected on this host are skipped. */
TestSuite(skipped, .init = start, .fini = stop);

Test(skipped, never_armed_and_an_armed_one_stays)
{
	int fd = harness_connect(&h);
	json_t *r, *s;

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\",\"connected\":false}]}}",
		m1, m2);
	cr_expect_str_eq(result_of(r, 0), "armed");
	cr_expect_str_eq(result_of(r, 1), "skipped");
	json_decref(r);
	s = status(fd);
	cr_expect_null(find_storage(s, "b"));
	json_decref(s);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\",\"connected\":false}]}}",
		m1);
	cr_expect_str_eq(result_of(r, 0), "skipped");
	json_decref(r);
	s = status(fd);
	cr_expect_not_null(find_storage(s, "a"));
	json_decref(s);
	close(fd);
}

/* 7. Deadlines: a step that overruns fails the request and rolls back. */
TestSuite(deadlines, .init = start, .fini = stop);

Test(deadlines, hung_open_times_out_and_rolls_back)
{
	int fd = harness_connect(&h), reader;
	json_t *r, *s;
	char fifo[128];

	/* Opening a FIFO for writing blocks until a reader comes. */
	cr_assert_eq(mkfifo(harness_path(&h, "fifo", fifo, sizeof(fifo)), 0600),
		     0);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"timeout_ms\":300,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"b\",\"type\":\"block\",\"target\":\"%s\"}]}}",
		m1, fifo);
	cr_expect_str_eq(reply_class(r), "Timeout", "%s", reply_desc(r));
	cr_expect(strstr(reply_desc(r), "storages[1] (b)") != NULL, "%s",
		  reply_desc(r));
	json_decref(r);
	s = status(fd);
	cr_expect_eq(json_array_size(json_object_get(reply_ret(s), "storages")),
		     0);
	json_decref(s);
	/* Release the stuck open; its late fd is closed by the daemon. */
	reader = open(fifo, O_RDONLY | O_NONBLOCK);
	harness_pump(&h, 50);
	close(reader);
	r = harness_call(&h, fd, "{\"execute\":\"query-version\"}");
	cr_expect_null(reply_class(r));
	json_decref(r);
	close(fd);
}

Test(deadlines, request_deadline_bounds)
{
	int fd = harness_connect(&h);
	json_t *r;

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"timeout_ms\":5,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1);
	cr_expect_str_eq(reply_desc(r),
			 "timeout_ms: must be between 100 and 600000");
	json_decref(r);
	close(fd);
}

/* 8. Persistence: on disk before the reply, re-armed at start. */
TestSuite(persistence, .init = start, .fini = stop);

static json_t *read_state(void)
{
	char path[160], buf[65536], err[256];
	json_t *doc = NULL;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/" PERSIST_FILE, h.state);
	fd = open(path, O_RDONLY);
	cr_assert(fd >= 0, "no state file: %s", strerror(errno));
	n = read(fd, buf, sizeof(buf));
	close(fd);
	cr_assert_eq(state_decode(buf, n, &doc, err, sizeof(err)), 0, "%s",
		     err);
	return doc;
}

Test(persistence, armed_means_on_disk_and_survives_restart)
{
	int fd = harness_connect(&h);
	json_t *r, *doc, *before, *after;

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"reconnect\":true,\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\",\"strategy\":\"kill-only\"}]}}",
		m1, m2);
	cr_assert_null(reply_class(r), "%s", reply_desc(r));
	json_decref(r);
	/* The reply came: the state file already holds both. */
	doc = read_state();
	cr_expect_eq(json_array_size(json_object_get(doc, "storages")), 2);
	json_decref(doc);
	before = status(fd);
	close(fd);

	harness_restart(&h);
	fd = harness_connect(&h);
	after = status(fd);
	cr_expect(json_is_true(
		json_object_get(find_storage(after, "a"), "reconnect")));
	cr_expect_str_eq(
		json_string_value(json_object_get(
			json_object_get(find_storage(after, "b"), "params"),
			"strategy")),
		"kill-only");
	cr_expect_eq(
		json_array_size(json_object_get(reply_ret(after), "storages")),
		2);
	cr_expect_gt(json_integer_value(
			     json_object_get(reply_ret(after), "last_seq")),
		     json_integer_value(
			     json_object_get(reply_ret(before), "last_seq")),
		     "event numbers go on across a restart");
	json_decref(before);
	json_decref(after);
	close(fd);
}

Test(persistence, corrupt_state_is_set_aside_never_half_applied)
{
	int fd = harness_connect(&h);
	char path[160];
	json_t *r;

	r = arm_file(fd, "a", m1);
	json_decref(r);
	close(fd);
	/* A torn write: the file lost its last bytes. */
	snprintf(path, sizeof(path), "%s/" PERSIST_FILE, h.state);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(truncate(path, st.st_size - 5), 0);

	harness_restart(&h);
	fd = harness_connect(&h);
	r = status(fd);
	cr_expect_eq(json_array_size(json_object_get(reply_ret(r), "storages")),
		     0);
	json_decref(r);
	cr_expect_neq(access(path, F_OK), 0, "the bad file was moved aside");
	close(fd);
}

/* 9. Access control: who may connect, who may change state. */
static void start_with_groups(void)
{
	static const char *const extra[] = { "--socket-group", "nogroup",
					     NULL };

	harness_start(&h, extra);
	mkdir(harness_path(&h, "m1", m1, sizeof(m1)), 0755);
}

TestSuite(access, .init = start_with_groups, .fini = stop);

/* In a child as nobody: 0 when query works and setup is refused. */
static int as_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");
	pid_t pid;
	int st;

	if (!pw || !gr || getuid() != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd, rc = 0;
		json_t *r;

		harness_client_only = true;
		if (setgroups(0, NULL) || setgid(gr->gr_gid) ||
		    setuid(pw->pw_uid))
			_exit(10);
		/* The daemon lives in the parent: a blocking client here. */
		fd = harness_connect(&h);
		r = harness_call(&h, fd, "{\"execute\":\"query-status\"}");
		rc |= reply_class(r) ? 1 : 0;
		json_decref(r);
		r = arm_file(fd, "a", m1);
		rc |= (!reply_class(r) ||
		       strcmp(reply_class(r), "PermissionDenied")) ?
			      2 :
			      0;
		json_decref(r);
		_exit(rc);
	}
	/* Serve the child until it is done. */
	while (waitpid(pid, &st, WNOHANG) == 0)
		harness_pump(&h, 5);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

Test(access, group_may_query_not_change)
{
	struct stat st;
	int rc;

	cr_assert_eq(stat(h.sock, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0660);
	rc = as_nobody();
	if (rc < 0)
		cr_skip_test("SKIP: needs root and a nobody/nogroup account");
	cr_expect_eq(rc, 0,
		     "child result %d (1: query refused, 2: setup not denied)",
		     rc);
}

/* 10. Limits: each over-limit case is a clear error, never a stall. */
static void start_small(void)
{
	static const char *const extra[] = { "--max-connections", "3", NULL };

	harness_start(&h, extra);
	mkdir(harness_path(&h, "m1", m1, sizeof(m1)), 0755);
}

TestSuite(limits, .init = start_small, .fini = stop);

Test(limits, connections)
{
	int fds[3];
	json_t *msg;

	for (int i = 0; i < 3; i++)
		fds[i] = harness_connect(&h);
	/* The fourth gets an error in place of the greeting, then EOF. */
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	char buf[512];
	ssize_t n = 0;

	strcpy(addr.sun_path, h.sock);
	cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 1000 && n <= 0; i++) {
		harness_pump(&h, 1);
		n = recv(fd, buf, sizeof(buf) - 1, 0);
	}
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	msg = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
	cr_expect_str_eq(reply_class(msg), "LimitExceeded");
	json_decref(msg);
	close(fd);
	/* The others are served as before. */
	msg = harness_call(&h, fds[0], "{\"execute\":\"query-version\"}");
	cr_expect_null(reply_class(msg));
	json_decref(msg);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

Test(limits, storages_per_request)
{
	int fd = harness_connect(&h);
	json_t *list = json_array(), *args, *r;
	char *text;

	for (int i = 0; i < 513; i++)
		json_array_append_new(list,
				      json_pack("{s:s,s:s,s:s}", "uuid", "x",
						"type", "file", "target", m1));
	args = json_pack("{s:s,s:{s:s,s:o}}", "execute", "setup", "arguments",
			 "host_uuid", "h", "storages", list);
	text = json_dumps(args, JSON_COMPACT);
	r = harness_call(&h, fd, "%s", text);
	cr_expect_str_eq(reply_class(r), "InvalidArgument");
	cr_expect_str_eq(reply_desc(r),
			 "storages: must be a list of 1 to 512 storages");
	json_decref(r);
	json_decref(args);
	free(text);
	close(fd);
}

static json_int_t ctl_stat(const char *name)
{
	json_t *st = json_object();
	json_int_t v;

	ctl_server_stats_put(st, &h.d.ctl);
	v = json_integer_value(json_object_get(st, name));

	json_decref(st);
	return v;
}

Test(limits, slow_consumer_is_paused_then_dropped_when_idle)
{
	int lazy = harness_connect(&h), fd = harness_connect(&h);
	int sent = 0;
	json_t *r;

	/*
	 * The lazy client asks and never reads: once its unread replies
	 * pass the pause mark the daemon stops reading it, so it soon cannot
	 * send any more, and everybody else is served meanwhile.
	 */
	for (int i = 0; i < 20000 && sent == i; i++) {
		char req[] = "{\"execute\":\"query-commands\"}\n";

		if (send(lazy, req, sizeof(req) - 1, MSG_NOSIGNAL) ==
		    (ssize_t)sizeof(req) - 1)
			sent++;
		harness_pump(&h, 0);
	}
	for (int i = 0; i < 200; i++)
		harness_pump(&h, 1);
	cr_expect_lt(sent, 20000, "the lazy client is no longer read from");
	r = harness_call(&h, fd, "{\"execute\":\"query-status\"}");
	cr_expect_null(reply_class(r));
	json_decref(r);
	cr_expect_eq(ctl_stat("paused"), 1);
	cr_expect_eq(ctl_stat("connections"), 2);
	/* Paused, it sends no request the daemon reads: it is idle. */
	ctl_server_set_idle_timeout(&h.d.ctl, 1);
	for (int i = 0; i < 30 && ctl_stat("connections") > 1; i++) {
		r = harness_call(&h, fd, "{\"execute\":\"query-version\"}");
		json_decref(r);
		harness_pump(&h, 100);
	}
	cr_expect_eq(ctl_stat("connections"), 1,
		     "the lazy client was let go (sent %d)", sent);
	cr_expect_eq(ctl_stat("dropped_idle"), 1);
	cr_expect_eq(ctl_stat("paused"), 0);
	close(lazy);
	close(fd);
}

Test(limits, oversize_line_closes_only_that_connection)
{
	int big = harness_connect(&h), fd = harness_connect(&h);
	char *line = malloc(PROTO_MAX_LINE + 16);
	json_t *r;

	memset(line, 'x', PROTO_MAX_LINE + 8);
	line[PROTO_MAX_LINE + 8] = '\0';
	/* The daemon reads as we write; the reply is an error line. */
	for (size_t off = 0; off < PROTO_MAX_LINE + 8;) {
		ssize_t n = send(big, line + off, PROTO_MAX_LINE + 8 - off,
				 MSG_NOSIGNAL);

		if (n > 0)
			off += n;
		else if (errno != EAGAIN)
			break;
		harness_pump(&h, 1);
	}
	r = harness_read(&h, big);
	cr_expect_str_eq(reply_class(r), "LimitExceeded");
	json_decref(r);
	free(line);
	r = harness_call(&h, fd, "{\"execute\":\"query-version\"}");
	cr_expect_null(reply_class(r));
	json_decref(r);
	close(big);
	close(fd);
}

/* Events: live to subscribers, and from the journal to whoever was away. */
TestSuite(events, .init = start, .fini = stop);

Test(events, subscribers_get_them_live_in_order)
{
	int sub = harness_connect(&h), fd = harness_connect(&h);
	json_t *r, *ev;
	json_int_t seq0;

	r = harness_call(&h, sub, "{\"execute\":\"subscribe\"}");
	seq0 = json_integer_value(json_object_get(reply_ret(r), "seq"));
	json_decref(r);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1, m2);
	json_decref(r);
	for (int i = 0; i < 2; i++) {
		ev = harness_read(&h, sub);
		cr_assert_not_null(ev);
		cr_expect_str_eq(
			json_string_value(json_object_get(ev, "event")),
			"ARMED");
		cr_expect_eq(json_integer_value(json_object_get(ev, "seq")),
			     seq0 + 1 + i);
		json_decref(ev);
	}
	r = harness_call(
		&h, fd,
		"{\"execute\":\"query-events\",\"arguments\":{\"since\":%lld}}",
		(long long)seq0 + 1);
	cr_expect_eq(json_array_size(json_object_get(reply_ret(r), "events")),
		     1, "only what came after 'since'");
	cr_expect(json_is_false(json_object_get(reply_ret(r), "lost")));
	json_decref(r);
	close(sub);
	close(fd);
}

Test(events, teardown_is_journalled_and_idempotent)
{
	int fd = harness_connect(&h);
	json_t *r;

	json_decref(arm_file(fd, "a", m1));
	r = harness_call(
		&h, fd,
		"{\"execute\":\"teardown\",\"arguments\":{\"host_uuid\":\"h\",\"storages\":[\"a\"]}}");
	cr_expect_str_eq(result_of(r, 0), "disarmed");
	json_decref(r);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"teardown\",\"arguments\":{\"host_uuid\":\"h\",\"storages\":[\"a\"]}}");
	cr_expect_str_eq(result_of(r, 0), "absent");
	json_decref(r);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"query-events\",\"arguments\":{\"since\":0}}");
	json_t *evs = json_object_get(reply_ret(r), "events");
	cr_expect_str_eq(json_string_value(json_object_get(
				 json_array_get(evs, 1), "event")),
			 "DISARMED");
	json_decref(r);
	close(fd);
}

Test(events, half_closed_client_still_gets_its_reply)
{
	int fd = harness_connect(&h);
	json_t *r;

	harness_send(
		fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1);
	shutdown(fd, SHUT_WR);
	r = harness_read(&h, fd);
	cr_assert_not_null(r, "the reply was lost on a half-close");
	cr_expect_str_eq(result_of(r, 0), "armed");
	json_decref(r);
	cr_expect_null(harness_read(&h, fd), "then the daemon closes");
	close(fd);
}

Test(events, teardown_of_all_includes_a_setup_queued_before_it)
{
	int a = harness_connect(&h), b = harness_connect(&h);
	json_t *r;

	/* Both in the socket before the daemon runs either. */
	harness_send(
		a,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1);
	harness_send(
		b,
		"{\"execute\":\"teardown\",\"arguments\":{\"host_uuid\":\"h\"}}");
	r = harness_read(&h, a);
	cr_expect_str_eq(result_of(r, 0), "armed");
	json_decref(r);
	r = harness_read(&h, b);
	cr_expect_str_eq(result_of(r, 0), "disarmed");
	json_decref(r);
	r = status(a);
	cr_expect_eq(json_array_size(json_object_get(reply_ret(r), "storages")),
		     0);
	json_decref(r);
	close(a);
	close(b);
}

Test(persistence, failed_rearm_is_kept_and_retried)
{
	int fd = harness_connect(&h);
	char gone[160];
	json_t *r;

	json_decref(harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1, m2));
	close(fd);
	/* The mount of a is away while the daemon restarts. */
	snprintf(gone, sizeof(gone), "%s.away", m1);
	cr_assert_eq(rename(m1, gone), 0);
	harness_restart(&h);
	fd = harness_connect(&h);
	r = status(fd);
	cr_expect_not_null(find_storage(r, "b"));
	cr_expect_null(find_storage(r, "a"));
	cr_expect_eq(json_array_size(json_object_get(reply_ret(r), "unarmed")),
		     1, "a is reported, not forgotten");
	json_decref(r);
	/* A state write in between must keep it too. */
	json_decref(harness_call(
		&h, fd,
		"{\"execute\":\"teardown\",\"arguments\":{\"host_uuid\":\"h\",\"storages\":[\"b\"]}}"));
	close(fd);

	cr_assert_eq(rename(gone, m1), 0);
	harness_restart(&h);
	fd = harness_connect(&h);
	r = status(fd);
	cr_expect_not_null(find_storage(r, "a"), "re-armed once it is back");
	cr_expect_eq(json_array_size(json_object_get(reply_ret(r), "unarmed")),
		     0);
	json_decref(r);
	close(fd);
}

/*
 * 11. One record, one storage: two storages that would write the same
 * heartbeat record are refused, within a batch and against the armed.
 */
static char loopdev[64];
static bool bound; /* m3 is a bind mount of m1 */

static void stop_records(void)
{
	char cmd[128];

	if (bound && umount2(m3, MNT_DETACH))
		fprintf(stderr, "warning: umount %s: %s\n", m3,
			strerror(errno));
	bound = false;
	harness_stop(&h);
	if (loopdev[0]) {
		snprintf(cmd, sizeof(cmd), "losetup -d %s", loopdev);
		if (system(cmd))
			fprintf(stderr, "warning: '%s' failed\n", cmd);
		loopdev[0] = '\0';
	}
}

TestSuite(one_record, .init = start, .fini = stop_records);

/* m3 shows m1's folder: another path to the same records. */
static void bind_m1_on_m3(void)
{
	if (mount(m1, m3, NULL, MS_BIND, NULL)) {
		fprintf(stderr, "SKIP: bind mount: %s\n", strerror(errno));
		cr_skip_test("SKIP: bind mount: %s", strerror(errno));
	}
	bound = true;
}

/* A loop device on a 1 MiB file of zeros: 256 slots. */
static void loop_attach(void)
{
	harness_loop_attach(&h, 1024 * 1024, NULL, 0, 0, loopdev,
			    sizeof(loopdev));
}

/* The description of a refusal with InvalidArgument; fails on success. */
static const char *refused(json_t *r)
{
	cr_assert_not_null(reply_class(r), "accepted, not refused");
	cr_expect_str_eq(reply_class(r), "InvalidArgument", "%s",
			 reply_desc(r));
	return reply_desc(r);
}

static size_t armed_count(json_t *status_reply)
{
	return json_array_size(
		json_object_get(reply_ret(status_reply), "storages"));
}

Test(one_record, same_target_and_host_in_one_batch_is_refused)
{
	int fd = harness_connect(&h);
	json_t *r, *s;
	char want[512];

	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"c\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m2, m1, m1);
	refused(r);
	snprintf(
		want, sizeof(want),
		"storages[2]: same heartbeat record as storage b (host h): %s/.iofence/h and %s/.iofence/h are one file (device ",
		m1, m1);
	cr_expect(!strncmp(reply_desc(r), want, strlen(want)), "%s",
		  reply_desc(r));
	cr_expect(strstr(reply_desc(r), "nothing was changed") != NULL, "%s",
		  reply_desc(r));
	json_decref(r);
	s = status(fd);
	cr_expect_eq(armed_count(s), 0, "nothing of the batch is armed");
	json_decref(s);
	close(fd);
}

Test(one_record, second_uuid_on_an_armed_record_is_refused)
{
	int fd = harness_connect(&h);
	const char *want =
		"storages[0]: same heartbeat record as storage a (host h): ";
	json_t *before = arm_a(fd), *r, *after;

	r = arm_file(fd, "b", m1);
	refused(r);
	cr_expect(!strncmp(reply_desc(r), want, strlen(want)), "%s",
		  reply_desc(r));
	json_decref(r);
	after = status(fd);
	cr_expect(json_equal(json_object_get(reply_ret(before), "storages"),
			     json_object_get(reply_ret(after), "storages")),
		  "the armed one is exactly as before");
	json_decref(after);

	/* Another path to the same folder is the same record. */
	bind_m1_on_m3();
	r = arm_file(fd, "b", m3);
	refused(r);
	cr_expect(strstr(reply_desc(r), "same heartbeat record as storage a") !=
			  NULL,
		  "%s", reply_desc(r));
	json_decref(r);
	after = status(fd);
	cr_expect(json_equal(json_object_get(reply_ret(before), "storages"),
			     json_object_get(reply_ret(after), "storages")));
	json_decref(after);
	json_decref(before);

	/* Updated in place, the same storage keeps its own record. */
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\",\"interval_ms\":2000}]}}",
		m3);
	cr_expect_str_eq(result_of(r, 0), "updated", "%s", reply_desc(r));
	json_decref(r);
	close(fd);
}

Test(one_record, other_host_or_a_record_given_up_in_the_batch_is_fine)
{
	int fd = harness_connect(&h);
	json_t *r;

	json_decref(arm_a(fd));
	/* Another host's record is another file on the same target. */
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h2\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"x\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1);
	cr_expect_str_eq(result_of(r, 0), "armed", "%s", reply_desc(r));
	json_decref(r);
	/* a moves to m2 in the batch that gives its record to b. */
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1, m2);
	cr_expect_str_eq(result_of(r, 0), "armed", "%s", reply_desc(r));
	cr_expect_str_eq(result_of(r, 1), "updated", "%s", reply_desc(r));
	json_decref(r);
	close(fd);
}

Test(one_record, rearm_onto_an_armed_record_is_left_out)
{
	int fd = harness_connect(&h);
	json_t *r, *unarmed, *ev, *failed = NULL;
	const char *armed, *out;
	char want[64];
	size_t i;

	json_decref(harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"a\",\"type\":\"file\",\"target\":\"%s\"},{\"uuid\":\"b\",\"type\":\"file\",\"target\":\"%s\"}]}}",
		m1, m3));
	close(fd);
	daemon_close(&h.d);
	h.running = false;
	/* While the daemon is down, b's target comes to show a's folder. */
	bind_m1_on_m3();
	harness_reopen(&h);
	fd = harness_connect(&h);
	r = status(fd);
	/*
	 * Re-arms run side by side (a hung storage must cost the others
	 * nothing): the one that reaches the record first keeps it.
	 */
	armed = find_storage(r, "a") ? "a" : "b";
	out = find_storage(r, "a") ? "b" : "a";
	cr_expect_not_null(find_storage(r, armed), "neither was re-armed");
	cr_expect_null(find_storage(r, out), "%s would overwrite %s's record",
		       out, armed);
	unarmed = json_array_get(json_object_get(reply_ret(r), "unarmed"), 0);
	cr_expect_eq(json_array_size(json_object_get(reply_ret(r), "unarmed")),
		     1, "%s is kept in the state, not forgotten", out);
	cr_expect_str_eq(str_at(json_object_get(unarmed, "params"), "uuid"),
			 out);
	json_decref(r);
	r = harness_call(
		&h, fd,
		"{\"execute\":\"query-events\",\"arguments\":{\"since\":0}}");
	json_array_foreach(json_object_get(reply_ret(r), "events"), i, ev)
		if (!strcmp(str_at(ev, "event"), "REARM_FAILED"))
			failed = json_object_get(ev, "data");
	cr_assert_not_null(failed, "no REARM_FAILED");
	cr_expect_str_eq(str_at(failed, "storage"), out);
	snprintf(want, sizeof(want), "same heartbeat record as storage %s",
		 armed);
	cr_expect(strstr(str_at(failed, "reason"), want), "reason: %s",
		  str_at(failed, "reason"));
	json_decref(r);
	close(fd);
}

static json_t *arm_blocks(int fd, unsigned int slot0, unsigned int slot1)
{
	return harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"b0\",\"type\":\"block\",\"target\":\"%s\",\"slot\":%u},{\"uuid\":\"b1\",\"type\":\"block\",\"target\":\"%s\",\"slot\":%u}]}}",
		loopdev, slot0, loopdev, slot1);
}

Test(one_record, same_block_slot_refused_other_slots_armed)
{
	int fd = harness_connect(&h);
	json_t *r, *s;
	char want[512];

	loop_attach();
	r = arm_blocks(fd, 3, 3);
	refused(r);
	snprintf(
		want, sizeof(want),
		"storages[1]: same heartbeat record as storage b0 (host h): slot 3 of %s and slot 3 of %s are the same bytes of block device ",
		loopdev, loopdev);
	cr_expect(!strncmp(reply_desc(r), want, strlen(want)), "%s",
		  reply_desc(r));
	json_decref(r);
	s = status(fd);
	cr_expect_eq(armed_count(s), 0, "nothing of the batch is armed");
	json_decref(s);

	r = arm_blocks(fd, 3, 4);
	cr_expect_null(reply_class(r), "%s", reply_desc(r));
	cr_expect_str_eq(result_of(r, 0), "armed");
	cr_expect_str_eq(result_of(r, 1), "armed");
	json_decref(r);

	/* Against the armed one: a third storage on slot 4 is refused. */
	r = harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[{\"uuid\":\"b2\",\"type\":\"block\",\"target\":\"%s\",\"slot\":4}]}}",
		loopdev);
	refused(r);
	cr_expect(
		strstr(reply_desc(r),
		       "storages[0]: same heartbeat record as storage b1 (host h)") !=
			NULL,
		"%s", reply_desc(r));
	json_decref(r);
	s = status(fd);
	cr_expect_eq(armed_count(s), 2);
	json_decref(s);
	close(fd);
}

/* 13. rbd storages: their keys, and arming without a cluster. */
TestSuite(rbd_params, .init = start, .fini = stop);

/* Setup of one storage given as the JSON object @st; the reply. */
static json_t *setup_one(int fd, const char *st)
{
	return harness_call(
		&h, fd,
		"{\"execute\":\"setup\",\"arguments\":{\"host_uuid\":\"h\",\"no_status_check\":true,\"storages\":[%s]}}",
		st);
}

Test(rbd_params, each_key_has_its_rule)
{
	static const struct {
		const char *storage, *desc;
	} cases[] = {
		{ "{\"uuid\":\"r\",\"type\":\"rbd\"}",
		  "storages[0].pool: missing" },
		{ "{\"uuid\":\"r\",\"type\":\"rbd\",\"pool\":\"a/b\"}",
		  "storages[0].pool: must be 1 to 127 of A-Z a-z 0-9 . _ + - and not start with '.'" },
		{ "{\"uuid\":\"r\",\"type\":\"rbd\",\"pool\":\".p\"}",
		  "storages[0].pool: must be 1 to 127 of A-Z a-z 0-9 . _ + - and not start with '.'" },
		{ "{\"uuid\":\"r\",\"type\":\"rbd\",\"pool\":\"p\",\"namespace\":\"x y\"}",
		  "storages[0].namespace: must be 1 to 127 of A-Z a-z 0-9 . _ + - and not start with '.' (or \"\": the default one)" },
		{ "{\"uuid\":\"r\",\"type\":\"rbd\",\"pool\":\"p\",\"client\":\"client.\"}",
		  "storages[0].client: must be client.ID or ID, ID 1 to 64 of A-Z a-z 0-9 . _ + - and not starting with '.'" },
		{ "{\"uuid\":\"r\",\"type\":\"rbd\",\"pool\":\"p\",\"ceph_conf\":\"ceph.conf\"}",
		  NULL /* a relative path: args_path's own rule */ },
		{ "{\"uuid\":\"r\",\"type\":\"rbd\",\"pool\":\"p\",\"target\":\"/mnt\"}",
		  "storages[0].target: an rbd storage's target is rbd:p, from its pool and namespace; give \"pool\" (and \"namespace\"), not a target" },
		{ "{\"uuid\":\"r\",\"type\":\"rbd\",\"pool\":\"p\",\"slot\":1}",
		  "storages[0].slot: only for block storages" },
		{ "{\"uuid\":\"f\",\"type\":\"file\",\"target\":\"/mnt\",\"pool\":\"p\"}",
		  "storages[0].pool: only for rbd storages" },
		{ "{\"uuid\":\"f\",\"type\":\"block\",\"target\":\"/dev/x\",\"keyring\":\"/k\"}",
		  "storages[0].keyring: only for rbd storages" },
		{ "{\"uuid\":\"f\",\"type\":\"ceph\",\"target\":\"/mnt\"}",
		  "storages[0].type: must be \"file\", \"block\" or \"rbd\"" },
	};
	int fd = harness_connect(&h);
	json_t *r, *s;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		r = setup_one(fd, cases[i].storage);
		if (cases[i].desc)
			cr_expect_str_eq(refused(r), cases[i].desc, "%s",
					 cases[i].storage);
		else
			cr_expect(strstr(refused(r), "ceph_conf") != NULL, "%s",
				  reply_desc(r));
		json_decref(r);
	}
	s = status(fd);
	cr_expect_eq(armed_count(s), 0, "nothing armed");
	json_decref(s);
	close(fd);
}

/*
 * A cluster whose conf cannot be read fails at its step, through the link
 * thread, in bounded time, and arms nothing; the target said back is the
 * derived one, and it is accepted as given.
 */
Test(rbd_params, no_cluster_fails_at_its_step)
{
	int fd = harness_connect(&h);
	json_t *r, *s;

	r = setup_one(
		fd,
		"{\"uuid\":\"r\",\"type\":\"rbd\",\"pool\":\"p\",\"namespace\":\"n\",\"target\":\"rbd:p/n\",\"client\":\"admin\",\"ceph_conf\":\"/nonexistent/ceph.conf\"}");
	cr_assert_not_null(reply_class(r), "armed without a cluster");
	cr_expect_str_eq(reply_class(r), "ArmingFailed", "%s", reply_desc(r));
	cr_expect(strstr(reply_desc(r),
			 "connect to the cluster of rbd:p/n: read the conf:") !=
			  NULL,
		  "%s", reply_desc(r));
	cr_expect(strstr(reply_desc(r), "nothing was changed") != NULL, "%s",
		  reply_desc(r));
	json_decref(r);
	s = status(fd);
	cr_expect_eq(armed_count(s), 0, "nothing armed");
	json_decref(s);
	close(fd);
}
