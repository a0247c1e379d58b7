// SPDX-License-Identifier: GPL-2.0-only
/*
 * `iofencectl metrics`: one query-status in the OpenMetrics text format,
 * for node_exporter's textfile collector (written to a .prom file by a
 * timer). Every family's samples are together, as the format wants; the
 * names are documented in iofencectl(8) and stay as they are.
 *
 * node_exporter reads the Prometheus text format: "# UNIT" and "# EOF"
 * are comments there, and only gauges and counters are used, which it
 * knows (a storage's state is one gauge per state, 1 for the one it is
 * in, instead of an OpenMetrics stateset).
 */
#include <stdio.h>
#include <string.h>

#include "array_size.h"
#include "ctl.h"

static const char *const hb_states[] = { "healthy", "late", "fenced" };
static const char *const lag_sides[] = { "core", "control" };

/* A gauge in seconds, from a key of query-status. */
struct seconds_metric {
	const char *name, *key, *help;
};

/* A storage's heartbeat latency, under heartbeat.latency_us. */
static const struct seconds_metric latency_metrics[] = {
	{ "iofence_heartbeat_latency_seconds", "last",
	  "How long the last heartbeat write that completed took." },
	{ "iofence_heartbeat_latency_max_seconds", "max",
	  "The slowest heartbeat write since the storage was armed." },
};

/* Each side's lateness, as query-status has it under lag. */
static const struct seconds_metric lag_metrics[] = {
	{ "iofence_lag_recent_seconds", "recent_us",
	  "The worst lateness of a side's timers over the last 10 s." },
	{ "iofence_lag_worst_seconds", "worst_us",
	  "The worst lateness of a side's timers since the start." },
	{ "iofence_lag_p99_seconds", "p99_us",
	  "The 99th percentile of a side's timer lateness (a bucket's upper bound)." },
};

/* The # lines of a family: its name without _total for a counter. */
static void family(const char *name, const char *type, const char *unit,
		   const char *help)
{
	printf("# TYPE %s %s\n", name, type);
	if (unit)
		printf("# UNIT %s %s\n", name, unit);
	printf("# HELP %s %s\n", name, help);
}

/* A label value, escaped as the format says. */
static void label_value(const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			printf("\\%c", *v);
		else if (*v == '\n')
			printf("\\n");
		else
			putchar(*v);
	}
}

/* name{storage="...",host="..."[,key="value"]} */
static void storage_sample(const char *name, json_t *s, const char *key,
			   const char *value)
{
	printf("%s{storage=\"", name);
	label_value(str_of(s, "uuid"));
	printf("\",host=\"");
	label_value(str_of(s, "host_uuid"));
	if (key) {
		printf("\",%s=\"", key);
		label_value(value);
	}
	printf("\"} ");
}

/* Milliseconds or microseconds as seconds, exactly. */
static void seconds(json_int_t v, int digits)
{
	json_int_t div = digits == 3 ? 1000 : 1000000;

	printf("%s%lld.%0*lld\n", v < 0 ? "-" : "",
	       (long long)((v < 0 ? -v : v) / div), digits,
	       (long long)((v < 0 ? -v : v) % div));
}

static void per_daemon(json_t *ret)
{
	json_t *lag = json_object_get(ret, "lag");
	json_t *w = json_object_get(ret, "watchdog");
	json_t *bpf = json_object_get(ret, "bpf");

	family("iofence_uptime_seconds", "gauge", "seconds",
	       "Time since the daemon started.");
	printf("iofence_uptime_seconds ");
	seconds(int_of(ret, "uptime_ms"), 3);
	family("iofence_requests", "counter", NULL,
	       "Request lines served since the daemon started.");
	printf("iofence_requests_total %lld\n",
	       (long long)int_of(ret, "requests"));
	family("iofence_connections", "gauge", NULL,
	       "Control socket connections open now.");
	printf("iofence_connections %lld\n",
	       (long long)int_of(ret, "connections"));
	family("iofence_events", "counter", NULL,
	       "Events journalled: the newest event's number.");
	printf("iofence_events_total %lld\n",
	       (long long)int_of(ret, "last_seq"));

	for (size_t m = 0; m < ARRAY_SIZE(lag_metrics); m++) {
		family(lag_metrics[m].name, "gauge", "seconds",
		       lag_metrics[m].help);
		for (size_t i = 0; i < ARRAY_SIZE(lag_sides); i++) {
			printf("%s{side=\"%s\"} ", lag_metrics[m].name,
			       lag_sides[i]);
			seconds(int_of(json_object_get(lag, lag_sides[i]),
				       lag_metrics[m].key),
				6);
		}
	}
	family("iofence_workers_stuck", "gauge", NULL,
	       "The core's worker threads busy for over 5 s.");
	printf("iofence_workers_stuck %lld\n",
	       (long long)int_of(json_object_get(lag, "workers"), "stuck"));

	family("iofence_watchdog_petting", "gauge", NULL,
	       "1 while the watchdog is petted, 0 when not (or there is none).");
	printf("iofence_watchdog_petting %d\n",
	       json_is_true(json_object_get(w, "petting")));
	family("iofence_kernel_write_fence", "gauge", NULL,
	       "1 when the kernel write fence (BPF LSM) runs.");
	printf("iofence_kernel_write_fence %d\n",
	       json_is_true(json_object_get(bpf, "write_fence")));
	family("iofence_storages", "gauge", NULL, "Storages armed.");
	printf("iofence_storages %zu\n",
	       json_array_size(json_object_get(ret, "storages")));
	family("iofence_storages_unarmed", "gauge", NULL,
	       "Storages of the state file that failed to re-arm.");
	printf("iofence_storages_unarmed %zu\n",
	       json_array_size(json_object_get(ret, "unarmed")));
}

static json_t *hb_of(json_t *s)
{
	return json_object_get(s, "heartbeat");
}

static void per_storage(json_t *list)
{
	static const char *const results[] = { "ok", "failed", "timed_out" };
	static const char *const counts[] = { "writes_ok", "writes_failed",
					      "writes_timed_out" };
	json_t *s, *hb, *v;
	size_t i;

	family("iofence_storage_state", "gauge", NULL,
	       "1 for the state a storage's heartbeats are in, 0 for the others.");
	json_array_foreach(list, i, s)
		for (size_t k = 0; k < 3; k++) {
			storage_sample("iofence_storage_state", s, "state",
				       hb_states[k]);
			printf("%d\n", !strcmp(str_of(hb_of(s), "state"),
					       hb_states[k]));
		}
	for (size_t m = 0; m < ARRAY_SIZE(latency_metrics); m++) {
		family(latency_metrics[m].name, "gauge", "seconds",
		       latency_metrics[m].help);
		json_array_foreach(list, i, s) {
			storage_sample(latency_metrics[m].name, s, NULL, NULL);
			seconds(int_of(json_object_get(hb_of(s), "latency_us"),
				       latency_metrics[m].key),
				6);
		}
	}
	family("iofence_heartbeat_writes", "counter", NULL,
	       "Heartbeat writes by result: ok, failed, timed_out.");
	json_array_foreach(list, i, s)
		for (size_t k = 0; k < 3; k++) {
			storage_sample("iofence_heartbeat_writes_total", s,
				       "result", results[k]);
			printf("%lld\n",
			       (long long)int_of(hb_of(s), counts[k]));
		}
	family("iofence_heartbeat_age_seconds", "gauge", "seconds",
	       "Time since the start of the last heartbeat write that succeeded.");
	json_array_foreach(list, i, s) {
		storage_sample("iofence_heartbeat_age_seconds", s, NULL, NULL);
		seconds(int_of(hb_of(s), "since_ok_ms"), 3);
	}
	family("iofence_heartbeat_last_ok_timestamp_seconds", "gauge",
	       "seconds",
	       "Wall-clock time of the last heartbeat write that succeeded.");
	json_array_foreach(list, i, s) {
		v = json_object_get(hb_of(s), "last_ok_at");
		if (!json_is_object(v))
			continue;
		storage_sample("iofence_heartbeat_last_ok_timestamp_seconds", s,
			       NULL, NULL);
		printf("%lld.%06lld\n", (long long)int_of(v, "seconds"),
		       (long long)int_of(v, "microseconds"));
	}
	family("iofence_fence_in_seconds", "gauge", "seconds",
	       "Time left until the storage is fenced; 0 when it is, or is due.");
	json_array_foreach(list, i, s) {
		json_int_t left = int_of(hb_of(s), "fence_in_ms");

		storage_sample("iofence_fence_in_seconds", s, NULL, NULL);
		seconds(left > 0 ? left : 0, 3);
	}
	family("iofence_fences", "counter", NULL,
	       "Fences of the storage since its heartbeats started.");
	json_array_foreach(list, i, s) {
		storage_sample("iofence_fences_total", s, NULL, NULL);
		printf("%lld\n", (long long)int_of(hb_of(s), "fences"));
	}
	family("iofence_victims_now", "gauge", NULL,
	       "Processes a fence would kill now, by the last census.");
	json_array_foreach(list, i, s) {
		hb = hb_of(s);
		v = json_object_get(hb, "victims_now");
		if (!json_is_array(v))
			continue;
		storage_sample("iofence_victims_now", s, NULL, NULL);
		printf("%lld\n", (long long)(json_array_size(v) +
					     int_of(hb, "victims_now_more")));
	}
	family("iofence_kernel_fenced", "gauge", NULL,
	       "1 while the kernel refuses writes to the storage; only where it guards it.");
	json_array_foreach(list, i, s) {
		v = json_object_get(json_object_get(s, "io"), "kernel_fence");
		if (!json_is_true(json_object_get(v, "active")))
			continue;
		storage_sample("iofence_kernel_fenced", s, NULL, NULL);
		printf("%d\n", json_is_true(json_object_get(v, "fenced")));
	}
}

void print_metrics(json_t *ret)
{
	per_daemon(ret);
	per_storage(json_object_get(ret, "storages"));
	printf("# EOF\n");
}
