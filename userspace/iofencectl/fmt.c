// SPDX-License-Identifier: GPL-2.0-only
/* Figures of a reply as people read them: durations, sizes, times. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

int clamp_int(int64_t v)
{
	return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
}

json_int_t int_of(json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

const char *str_of(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "-";
}

/* 500ms, 2s, 1.5s, 1m15s, 1h: the forms a setup takes, where they fit. */
struct text fmt_duration(json_int_t ms)
{
	struct text t;
	int n = 0;

	if (ms < 1000) {
		if (ms)
			snprintf(t.s, sizeof(t.s), "%lldms", (long long)ms);
		else
			snprintf(t.s, sizeof(t.s), "0s");
		return t;
	}
	if (ms >= 3600000)
		n += snprintf(t.s + n, sizeof(t.s) - n, "%lldh",
			      (long long)(ms / 3600000));
	if (ms % 3600000 >= 60000)
		n += snprintf(t.s + n, sizeof(t.s) - n, "%lldm",
			      (long long)(ms % 3600000 / 60000));
	if (ms % 60000) {
		n += snprintf(t.s + n, sizeof(t.s) - n, "%lld",
			      (long long)(ms % 60000 / 1000));
		if (ms % 1000) {
			n += snprintf(t.s + n, sizeof(t.s) - n, ".%03lld",
				      (long long)(ms % 1000));
			while (t.s[n - 1] == '0')
				t.s[--n] = '\0';
		}
		snprintf(t.s + n, sizeof(t.s) - n, "s");
	}
	return t;
}

/* 12.3s, 850ms, 2m30s: a time left, to a tenth of a second below 60 s. */
struct text fmt_left(json_int_t ms)
{
	struct text t;

	if (ms < 0)
		ms = 0;
	if (ms < 1000 || ms >= 60000)
		return fmt_duration(ms < 1000 ? ms : ms / 1000 * 1000);
	snprintf(t.s, sizeof(t.s), "%lld.%llds", (long long)(ms / 1000),
		 (long long)(ms % 1000 / 100));
	return t;
}

struct text fmt_bytes(json_int_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB" };
	double v = bytes;
	struct text t;
	int u = -1;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(t.s, sizeof(t.s), "%lld B", (long long)bytes);
	else
		snprintf(t.s, sizeof(t.s), "%.1f %s", v, units[u]);
	return t;
}

/*
 * Local time, ISO 8601 with the offset from UTC; to the millisecond
 * unless @usec < 0 (times the daemon keeps in whole seconds).
 */
struct text fmt_time(json_int_t sec, json_int_t usec)
{
	time_t when = (time_t)sec;
	struct text t;
	struct tm tm;
	size_t n;

	if (!localtime_r(&when, &tm)) {
		snprintf(t.s, sizeof(t.s), "%lld", (long long)sec);
		return t;
	}
	n = strftime(t.s, sizeof(t.s), "%Y-%m-%dT%H:%M:%S", &tm);
	if (usec >= 0)
		n += snprintf(t.s + n, sizeof(t.s) - n, ".%03lld",
			      (long long)(usec / 1000));
	strftime(t.s + n, sizeof(t.s) - n, "%z", &tm);
	return t;
}

/* An event-style timestamp ({seconds, microseconds}) as fmt_time(). */
struct text fmt_stamp(json_t *ts)
{
	struct text t;

	if (!json_is_object(ts)) {
		snprintf(t.s, sizeof(t.s), "never");
		return t;
	}
	return fmt_time(int_of(ts, "seconds"), int_of(ts, "microseconds"));
}

/* "force" publishes a deadline after t_ok; the others promise none. */
struct text fmt_deadline(json_t *timeline)
{
	json_int_t ms = int_of(timeline, "fence_deadline_ms");
	struct text t;

	if (ms)
		return fmt_duration(ms);
	snprintf(t.s, sizeof(t.s), "none");
	return t;
}

void print_json(json_t *v)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
					   JSON_ENCODE_ANY);

	if (text)
		puts(text);
	free(text);
}

void print_indented(FILE *out, const char *text, int column)
{
	for (const char *nl; (nl = strchr(text, '\n')); text = nl + 1)
		fprintf(out, "%.*s\n%*s", (int)(nl - text), text, column, "");
	fprintf(out, "%s\n", text);
}

int max_width(json_t *list, const char *key, int min)
{
	json_t *item;
	size_t i;
	int w = min;

	json_array_foreach(list, i, item) {
		int n = (int)strlen(str_of(item, key));

		if (n > w)
			w = n;
	}
	return w;
}
