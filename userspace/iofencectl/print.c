// SPDX-License-Identifier: GPL-2.0-only
/* Each reply printed for people (--json prints it as it came). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void print_peer(json_t *ret)
{
	json_t *r = json_object_get(ret, "record"), *v;
	size_t i;

	printf("host %s on %s: %s", str_of(ret, "host"), str_of(ret, "storage"),
	       str_of(ret, "liveness"));
	if (json_object_get(ret, "progress"))
		printf(", %lld heartbeats in %s",
		       (long long)int_of(ret, "progress"),
		       fmt_duration(int_of(ret, "window_ms")).s);
	if (json_object_get(ret, "reason"))
		printf(" (%s)", str_of(ret, "reason"));
	putchar('\n');
	if (!r)
		return;
	printf("record seq %lld, %s, every %s, timeout %s, ",
	       (long long)int_of(r, "seq"), str_of(r, "state"),
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
