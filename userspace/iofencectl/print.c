// SPDX-License-Identifier: GPL-2.0-only
/* Each reply printed for people (--json prints it as it came). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* Writes the storage's devices hold, and how long the oldest has waited. */
static void print_in_flight(json_t *f)
{
	json_t *age = json_object_get(f, "oldest_write_ms");

	if (!json_is_object(f))
		return;
	printf("; in flight %lld reads, %lld writes",
	       (long long)int_of(f, "reads"), (long long)int_of(f, "writes"));
	if (json_is_object(age))
		printf(" (the oldest for %s)",
		       fmt_duration(int_of(age, "min")).s);
}

/* The daemon's heartbeat writes as the kernel saw them complete. */
static void print_kernel_heartbeats(json_t *h)
{
	if (!json_is_true(json_object_get(h, "seen_by_kernel")))
		return;
	printf("; kernel-seen heartbeats %lld", (long long)int_of(h, "count"));
	if (json_is_integer(json_object_get(h, "since_ms")))
		printf(", the last one %s ago",
		       fmt_duration(int_of(h, "since_ms")).s);
}

/* The kernel write fence of the storage, where the BPF LSM runs. */
static void print_kernel_fence(json_t *k)
{
	json_t *why = json_object_get(k, "reasons"), *r;
	size_t i;

	if (!json_is_true(json_object_get(k, "active")))
		return;
	if (!json_is_true(json_object_get(k, "fenced"))) {
		if (json_is_integer(json_object_get(k, "switch_in_ms")))
			printf("; kernel fence armed, the switch in %s",
			       fmt_duration(int_of(k, "switch_in_ms")).s);
		return;
	}
	printf("; KERNEL FENCED (");
	json_array_foreach(why, i, r)
		printf("%s%s", i ? ", " : "", json_string_value(r));
	printf(") for %s, %lld writes refused",
	       fmt_duration(int_of(k, "since_ms")).s,
	       (long long)int_of(k, "writes_refused"));
}

/* What the BPF tracker saw on the storage's device, or why nothing. */
static void print_io(json_t *io)
{
	json_t *net = json_object_get(io, "net_fence");

	if (json_is_object(io) && json_object_get(io, "net_fence")) {
		if (!json_is_object(net))
			printf("Ceph (no network fence for its victims)\n");
		else
			printf("Ceph; network fence: %lld packets dropped, %lld connects refused\n",
			       (long long)int_of(net, "packets_dropped"),
			       (long long)int_of(net, "connects_refused"));
		return;
	}
	if (!json_is_object(io)) {
		printf("no block device (no I/O evidence)\n");
		return;
	}
	printf("device %s: ", str_of(io, "device"));
	if (!json_is_true(json_object_get(io, "tracked"))) {
		printf("not tracked\n");
		return;
	}
	printf("%lld completions, %lld errors, %s",
	       (long long)int_of(io, "completions"),
	       (long long)int_of(io, "errors"),
	       fmt_bytes(int_of(io, "bytes")).s);
	if (int_of(io, "last_error"))
		printf(", last error %lld",
		       (long long)int_of(io, "last_error"));
	print_in_flight(json_object_get(io, "in_flight"));
	print_kernel_heartbeats(json_object_get(io, "heartbeats"));
	print_kernel_fence(json_object_get(io, "kernel_fence"));
	putchar('\n');
}

/* The host column only earns its width when there is more than one. */
static bool one_host(json_t *list)
{
	const char *first = str_of(json_array_get(list, 0), "host_uuid");
	json_t *s;
	size_t i;

	json_array_foreach(list, i, s)
		if (strcmp(str_of(s, "host_uuid"), first))
			return false;
	return true;
}

/* The watchdog device, and whether the core still pets it. */
static void print_watchdog(json_t *w)
{
	if (!json_is_object(w)) {
		printf("watchdog: none (a fence that cannot finish only reports)\n");
		return;
	}
	printf("watchdog: %s, timeout %s, ", str_of(w, "path"),
	       fmt_duration(int_of(w, "timeout_ms")).s);
	if (json_is_true(json_object_get(w, "petting")))
		printf("petting (%lld pets)\n", (long long)int_of(w, "pets"));
	else
		printf("NOT PETTING: the host resets within %s\n",
		       fmt_duration(int_of(w, "timeout_ms")).s);
}

/* The kernel write fence: whether it runs, and over which storages. */
static void print_write_fence(json_t *bpf, json_t *list)
{
	size_t i, guarded = 0, fenced = 0;
	json_t *s;

	if (!json_is_true(json_object_get(bpf, "write_fence"))) {
		printf("kernel fence: off (the BPF LSM does not run here)\n");
		return;
	}
	json_array_foreach(list, i, s) {
		json_t *k = json_object_get(json_object_get(s, "io"),
					    "kernel_fence");

		guarded += json_is_true(json_object_get(k, "active"));
		fenced += json_is_true(json_object_get(k, "fenced"));
	}
	printf("kernel fence: on, %zu of %zu storages guarded", guarded,
	       json_array_size(list));
	if (fenced)
		printf(", %zu FENCED (writes refused)", fenced);
	putchar('\n');
}

/*
 * A census starts at a heartbeat write, every 5 s at most: older than
 * this, one is held up (a process it cannot read) or the writes are.
 */
#define CENSUS_STALE_MS 15000

/* The processes a fence would kill now, as the last census saw them. */
static void print_would_kill(json_t *hb)
{
	json_t *now = json_object_get(hb, "victims_now");
	json_int_t age = int_of(hb, "victims_now_age_ms");
	size_t n = json_array_size(now) + int_of(hb, "victims_now_more");
	json_int_t unread =
		int_of(json_object_get(hb, "victims_now_scan"), "skipped");

	if (!json_is_array(now)) {
		printf("would kill: not known yet");
		return;
	}
	if (n)
		printf("would kill %zu now", n);
	else
		printf("would kill none now");
	/* A candidate it could not read may be a victim too. */
	if (unread)
		printf(", %lld unreadable", (long long)unread);
	printf(age > CENSUS_STALE_MS ? " (as of %s ago: stale)" :
				       " (as of %s ago)",
	       fmt_duration(age / 100 * 100).s);
}

/* Under a storage's line: the time to fence, the last good heartbeat. */
static void print_outlook(json_t *hb)
{
	json_t *left = json_object_get(hb, "fence_in_ms");

	if (!json_is_object(hb)) {
		printf("no heartbeats\n");
		return;
	}
	if (!strcmp(str_of(hb, "state"), "fenced"))
		printf("FENCED");
	else if (json_integer_value(left) > 0)
		printf("fence in %s", fmt_left(json_integer_value(left)).s);
	else
		printf("fence due now");
	printf(", last ok %s, ",
	       fmt_stamp(json_object_get(hb, "last_ok_at")).s);
	print_would_kill(hb);
	putchar('\n');
}

void print_status(json_t *ret)
{
	json_t *bpf = json_object_get(ret, "bpf");
	json_t *list = json_object_get(ret, "storages");
	size_t i, n = json_array_size(list);
	bool hosts = !one_host(list);
	int uw = max_width(list, "uuid", 7),
	    hw = max_width(list, "host_uuid", 4);
	json_t *s;

	printf("iofenced: host %s, up %s, %lld requests served, %lld connections, last event %lld\n",
	       str_of(ret, "host_state"),
	       fmt_duration(int_of(ret, "uptime_ms") / 100 * 100).s,
	       (long long)int_of(ret, "requests"),
	       (long long)int_of(ret, "connections"),
	       (long long)int_of(ret, "last_seq"));
	if (json_is_true(json_object_get(bpf, "active")))
		printf("BPF tracker: active, pinned in %s\n",
		       str_of(bpf, "pin_dir"));
	else
		printf("BPF tracker: off (no block I/O evidence)\n");
	print_watchdog(json_object_get(ret, "watchdog"));
	print_write_fence(bpf, list);
	printf("%zu storage%s armed", n, n == 1 ? "" : "s");
	if (n && !hosts)
		printf(" for host %s",
		       str_of(json_array_get(list, 0), "host_uuid"));
	putchar('\n');
	if (!n)
		return;
	printf("%-*s ", uw, "STORAGE");
	if (hosts)
		printf("%-*s ", hw, "HOST");
	printf("%-8s %-5s %-8s %-8s %-10s %-8s %s\n", "STATE", "TYPE",
	       "INTERVAL", "TIMEOUT", "STRATEGY", "DEADLINE", "TARGET");
	json_array_foreach(list, i, s) {
		json_t *p = json_object_get(s, "params");
		json_t *io = json_object_get(s, "io");

		printf("%-*s ", uw, str_of(s, "uuid"));
		if (hosts)
			printf("%-*s ", hw, str_of(s, "host_uuid"));
		printf("%-8s %-5s %-8s %-8s %-10s %-8s %s\n",
		       str_of(json_object_get(s, "heartbeat"), "state"),
		       str_of(p, "type"),
		       fmt_duration(int_of(p, "interval_ms")).s,
		       fmt_duration(int_of(p, "timeout_ms")).s,
		       str_of(p, "strategy"),
		       fmt_deadline(json_object_get(s, "timeline")).s,
		       str_of(p, "target"));
		printf("%*s", uw + 1, "");
		print_outlook(json_object_get(s, "heartbeat"));
		/* Evidence under its storage; nothing to say without it. */
		if (json_is_true(json_object_get(io, "tracked"))) {
			printf("%*s", uw + 1, "");
			print_io(io);
		}
	}
}

static void print_heartbeat(json_t *hb)
{
	json_t *fence = json_object_get(hb, "fence"), *v;
	size_t i;

	printf("heartbeat %s, record %lld written %s ago, %lld ok, %lld failed, %lld timed out",
	       str_of(hb, "state"), (long long)int_of(hb, "seq"),
	       fmt_duration(int_of(hb, "since_ok_ms")).s,
	       (long long)int_of(hb, "writes_ok"),
	       (long long)int_of(hb, "writes_failed"),
	       (long long)int_of(hb, "writes_timed_out"));
	if (json_object_get(hb, "last_error") &&
	    !json_is_null(json_object_get(hb, "last_error")))
		printf(" (%s)", str_of(hb, "last_error"));
	printf("\nlatency   last %lld us, max %lld us%s\n",
	       (long long)int_of(json_object_get(hb, "latency_us"), "last"),
	       (long long)int_of(json_object_get(hb, "latency_us"), "max"),
	       json_is_true(json_object_get(hb, "direct")) ? "" :
							     " (no O_DIRECT)");
	printf("outlook   ");
	print_outlook(hb);
	json_array_foreach(json_object_get(hb, "victims_now"), i, v) {
		printf("would kill %lld %s", (long long)int_of(v, "pid"),
		       str_of(v, "exe"));
		if (json_is_string(json_object_get(v, "vm_uuid")))
			printf(" VM %s", str_of(v, "vm_uuid"));
		putchar('\n');
	}
	if (int_of(hb, "victims_now_more"))
		printf("would kill %lld more, not listed\n",
		       (long long)int_of(hb, "victims_now_more"));
	if (!fence)
		return;
	printf("fenced    %s: %s%s%s\n",
	       fmt_time(int_of(fence, "fenced_at"), -1).s,
	       str_of(fence, "reason"),
	       json_is_true(json_object_get(fence, "escalated")) ?
		       ", escalated" :
		       "",
	       json_is_true(json_object_get(fence, "restored")) ?
		       "; storage restored, unfence to resume" :
		       "");
	json_array_foreach(json_object_get(fence, "victims"), i, v)
		printf("victim    %lld %s (%s): %s\n",
		       (long long)int_of(v, "pid"), str_of(v, "exe"),
		       str_of(v, "why"), str_of(v, "result"));
}

void print_storage(json_t *s)
{
	json_t *p = json_object_get(s, "params");
	json_t *tl = json_object_get(s, "timeline");
	json_t *v;
	size_t i;

	printf("storage   %s (index %lld)\n", str_of(s, "uuid"),
	       (long long)int_of(s, "index"));
	printf("host      %s, armed by %s, flight %lld\n",
	       str_of(s, "host_uuid"),
	       json_is_true(json_object_get(s, "reconnect")) ? "a reconnect" :
							       "a connect",
	       (long long)int_of(s, "flight"));
	printf("armed     %s", fmt_time(int_of(s, "armed_at"), -1).s);
	if (int_of(s, "updated_at") != int_of(s, "armed_at"))
		printf(", updated %s", fmt_time(int_of(s, "updated_at"), -1).s);
	printf("\ntarget    %s %s", str_of(p, "type"), str_of(p, "target"));
	if (json_object_get(p, "slot"))
		printf(", slot %lld of the region at %lld",
		       (long long)int_of(p, "slot"),
		       (long long)int_of(p, "region_offset"));
	printf("\nheartbeat every %s, I/O timeout %s, %lld attempts\n",
	       fmt_duration(int_of(p, "interval_ms")).s,
	       fmt_duration(int_of(p, "io_timeout_ms")).s,
	       (long long)int_of(p, "max_attempts"));
	printf("fence     after %s, %s, kill grace %s, victims",
	       fmt_duration(int_of(p, "timeout_ms")).s, str_of(p, "strategy"),
	       fmt_duration(int_of(p, "kill_grace_ms")).s);
	json_array_foreach(json_object_get(p, "victims"), i, v)
		printf(" %s", json_string_value(v));
	if (json_object_get(p, "fence_hook"))
		printf(", hook %s", str_of(p, "fence_hook"));
	printf("\ntimeline  late %s, fence %s, escalate %s after the last good heartbeat\n",
	       fmt_duration(int_of(tl, "late_ms")).s,
	       fmt_duration(int_of(tl, "fence_ms")).s,
	       fmt_duration(int_of(tl, "escalate_ms")).s);
	printf("deadline  %s\n", fmt_deadline(tl).s);
	print_heartbeat(json_object_get(s, "heartbeat"));
	printf("io        ");
	print_io(json_object_get(s, "io"));
}

void print_version(json_t *ret)
{
	printf("%s %lld.%lld.%lld\n", str_of(ret, "package"),
	       (long long)int_of(ret, "major"), (long long)int_of(ret, "minor"),
	       (long long)int_of(ret, "micro"));
}

void print_capabilities(json_t *ret)
{
	json_t *c;
	size_t i;

	printf("capabilities:");
	json_array_foreach(json_object_get(ret, "capabilities"), i, c)
		printf(" %s", json_string_value(c));
	printf("\nBPF tracker: %s\n",
	       json_is_true(json_object_get(ret, "bpf")) ? "active" : "off");
}

void print_commands(json_t *ret)
{
	json_t *list = json_object_get(ret, "commands"), *c;
	int w = max_width(list, "name", 7);
	size_t i;

	printf("%-*s %-8s %s\n", w, "COMMAND", "CHANGES", "SUMMARY");
	json_array_foreach(list, i, c)
		printf("%-*s %-8s %s\n", w, str_of(c, "name"),
		       json_is_true(json_object_get(c, "mutating")) ? "state" :
								      "-",
		       str_of(c, "summary"));
}

void print_host_state(json_t *ret)
{
	const char *state = str_of(ret, "state");
	const char *prev = str_of(ret, "previous");

	if (strcmp(state, prev))
		printf("host state %s (was %s)\n", state, prev);
	else
		printf("host state %s (unchanged)\n", state);
}

void print_unfence(json_t *ret)
{
	printf("%s: unfenced, heartbeats %s\n", str_of(ret, "uuid"),
	       str_of(ret, "state"));
}

/*
 * When a dead peer's VMs may be restarted, in wall-clock ms: its
 * record's fence deadline, counted from the later of when it wrote the
 * record (its clock) and when this daemon first read it (ours: the
 * record was there before, so its write began before). The second needs
 * no agreement between the clocks; the first keeps the answer safe should
 * ours run behind. 0: the record publishes no deadline.
 */
static int64_t peer_safe_ms(json_t *ret, json_t *r, int64_t *first_read)
{
	json_int_t deadline = int_of(r, "fence_deadline_ms");
	json_int_t written = int_of(r, "written_at_ms");
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* The reply came after the query's observed_ms: an upper bound. */
	*first_read = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
		      int_of(ret, "observed_ms");
	if (!deadline)
		return 0;
	return (written > *first_read ? written : *first_read) + deadline;
}

static struct text fmt_ms_time(int64_t ms)
{
	return fmt_time(ms / 1000, ms % 1000 * 1000);
}

/* Whether, and from when, another host's VMs may be restarted. */
static void print_verdict(json_t *ret, json_t *r)
{
	const char *liveness = str_of(ret, "liveness");
	int64_t safe, first_read;

	if (!strcmp(liveness, "alive")) {
		printf("alive: do not restart its VMs\n");
		return;
	}
	if (strcmp(liveness, "dead")) {
		printf("unknown: do not restart its VMs on this evidence\n");
		return;
	}
	safe = peer_safe_ms(ret, r, &first_read);
	if (!safe) {
		printf("dead; its record publishes no fence deadline (strategy kill-only or permissive, or no watchdog): no safe time to restart its VMs can be derived from the record\n");
		return;
	}
	printf("dead; its VMs may be restarted %s %s (its fence deadline %s after its last write: written %s by its clock, before our first read at %s)\n",
	       safe <= first_read + int_of(ret, "observed_ms") ?
		       "now: the deadline passed at" :
		       "after",
	       fmt_ms_time(safe).s,
	       fmt_duration(int_of(r, "fence_deadline_ms")).s,
	       fmt_ms_time(int_of(r, "written_at_ms")).s,
	       fmt_ms_time(first_read).s);
}

static void print_addrs(json_t *list)
{
	json_t *v;
	size_t i;

	json_array_foreach(list, i, v)
		printf(" %s", json_string_value(v));
}

void print_peer(json_t *ret)
{
	json_t *r = json_object_get(ret, "record"), *v;
	size_t i;

	if (json_object_get(ret, "blocklisted")) {
		printf("host %s blocklisted on storage %s%s:",
		       str_of(ret, "host"), str_of(ret, "storage"),
		       json_is_true(json_object_get(ret, "forced")) ?
			       " (forced)" :
			       "");
		print_addrs(json_object_get(ret, "blocklisted"));
		printf("\nthe cluster refuses its writes from now on: its VMs may be restarted now\n");
	} else if (json_object_get(ret, "unblocklisted")) {
		printf("host %s unblocklisted on storage %s:",
		       str_of(ret, "host"), str_of(ret, "storage"));
		print_addrs(json_object_get(ret, "unblocklisted"));
		printf("\nthe cluster takes writes from it again\n");
		return;
	}
	printf("host %s on storage %s: %s", str_of(ret, "host"),
	       str_of(ret, "storage"), str_of(ret, "liveness"));
	if (json_object_get(ret, "progress"))
		printf(", %lld heartbeats in %s",
		       (long long)int_of(ret, "progress"),
		       fmt_duration(int_of(ret, "window_ms")).s);
	if (json_object_get(ret, "reason"))
		printf(" (%s)", str_of(ret, "reason"));
	putchar('\n');
	if (!json_object_get(ret, "blocklisted"))
		print_verdict(ret, r);
	if (!r)
		return;
	printf("record seq %lld, %s, written %s, every %s, timeout %s, ",
	       (long long)int_of(r, "seq"), str_of(r, "state"),
	       fmt_ms_time(int_of(r, "written_at_ms")).s,
	       fmt_duration(int_of(r, "interval_ms")).s,
	       fmt_duration(int_of(r, "timeout_ms")).s);
	if (int_of(r, "fence_deadline_ms"))
		printf("fence deadline %s\n",
		       fmt_duration(int_of(r, "fence_deadline_ms")).s);
	else
		printf("no fence deadline\n");
	printf("VMs:");
	json_array_foreach(json_object_get(r, "vms"), i, v)
		printf(" %s", json_string_value(v));
	if (int_of(r, "vms_omitted"))
		printf(" (and %lld more)", (long long)int_of(r, "vms_omitted"));
	if (!json_array_size(json_object_get(r, "vms")) &&
	    !int_of(r, "vms_omitted"))
		printf(" none");
	putchar('\n');
}

int peer_status(json_t *ret)
{
	const char *liveness = str_of(ret, "liveness");

	/* --blocklist and --unblocklist: done is success. */
	if (json_object_get(ret, "blocklisted") ||
	    json_object_get(ret, "unblocklisted"))
		return 0;
	if (!strcmp(liveness, "alive"))
		return PEER_EXIT_ALIVE;
	if (!strcmp(liveness, "dead"))
		return PEER_EXIT_DEAD;
	return PEER_EXIT_UNKNOWN;
}

/* setup and teardown: the flight, then each storage's result. */
void print_flight(json_t *ret)
{
	json_t *s;
	size_t i;

	printf("flight %lld%s\n", (long long)int_of(ret, "flight"),
	       json_is_true(json_object_get(ret, "joined")) ? " (joined)" : "");
	json_array_foreach(json_object_get(ret, "storages"), i, s) {
		printf("%s: %s", str_of(s, "uuid"), str_of(s, "result"));
		if (json_object_get(s, "reason"))
			printf(" (%s)", str_of(s, "reason"));
		putchar('\n');
	}
}

/* A value of an event's data: bare when that cannot be misread. */
static void print_data_value(json_t *v)
{
	const char *s = json_string_value(v);
	char *text;

	if (s && *s && !s[strcspn(s, " \t\n\"=\\")]) {
		fputs(s, stdout);
		return;
	}
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	fputs(text ? text : "?", stdout);
	free(text);
}

/* SEQ TIME EVENT key=value ..., or the message as one JSON line. */
void print_event(const struct client *cl, json_t *ev)
{
	json_t *ts = json_object_get(ev, "timestamp");
	json_t *data = json_object_get(ev, "data"), *v;
	const char *key;
	char *text;

	if (cl->json) {
		text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(text ? text : "");
		free(text);
		return;
	}
	printf("%lld %s %s", (long long)int_of(ev, "seq"),
	       fmt_time(int_of(ts, "seconds"), int_of(ts, "microseconds")).s,
	       str_of(ev, "event"));
	if (json_is_object(data)) {
		json_object_foreach(data, key, v) {
			printf(" %s=", key);
			print_data_value(v);
		}
	} else if (data && !json_is_null(data)) {
		printf(" data=");
		print_data_value(data);
	}
	putchar('\n');
}
