// SPDX-License-Identifier: GPL-2.0-only
#include <stdarg.h>
#include <stdio.h>

#include "sd_status.h"

struct out {
	char *buf;
	size_t len, used;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o,
						      const char *fmt, ...)
{
	size_t room = o->used < o->len ? o->len - o->used : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

static const char *plural(unsigned int n)
{
	return n == 1 ? "" : "s";
}

static void put_storages(struct out *o, const struct sd_status *st)
{
	switch (st->phase) {
	case SD_STARTING:
		put(o, "re-arming %u storage%s", st->stored,
		    plural(st->stored));
		if (st->armed || st->unarmed)
			put(o, " (%u armed, %u failed so far)", st->armed,
			    st->unarmed);
		return;
	case SD_STOPPING:
		put(o, "stopping; %u storage%s stay%s armed", st->armed,
		    plural(st->armed), st->armed == 1 ? "s" : "");
		return;
	case SD_RUNNING:
		put(o, "%u storage%s armed, %u late, %u fenced", st->armed,
		    plural(st->armed), st->late, st->fenced);
		if (st->unarmed)
			put(o, ", %u not re-armed", st->unarmed);
		return;
	}
}

static void put_watchdog(struct out *o, const struct sd_status *st)
{
	if (!st->watchdog) {
		put(o, "watchdog none");
		return;
	}
	put(o, "watchdog %s (%s",
	    st->watchdog_held ? "held: reset coming" : "on", st->watchdog);
	if (!st->watchdog_timeout_ms)
		put(o, ")");
	else if (st->watchdog_timeout_ms % 1000)
		put(o, ", %u ms)", st->watchdog_timeout_ms);
	else
		put(o, ", %us)", st->watchdog_timeout_ms / 1000);
}

static const char *const kernel_fence_text[] = {
	[SD_KFENCE_ON] = "kernel fence on",
	[SD_KFENCE_NO_LSM] = "kernel fence off (no BPF LSM)",
	[SD_KFENCE_NO_BPF] = "kernel fence off (no BPF)",
	[SD_KFENCE_OFF] = "kernel fence off (--no-bpf)",
};

size_t sd_status_text(const struct sd_status *st, char *buf, size_t len)
{
	struct out o = { .buf = buf, .len = len };

	if (len)
		buf[0] = '\0';
	put_storages(&o, st);
	put(&o, "; ");
	put_watchdog(&o, st);
	put(&o, ", %s", kernel_fence_text[st->kernel_fence]);
	if (st->host_state)
		put(&o, "; host %s", st->host_state);
	return o.used;
}
