// SPDX-License-Identifier: GPL-2.0-only
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static const char *log_ident = "iofence";
static int log_max_prio = LOG_INFO;
static bool log_journal;

void log_init(const char *ident, int max_prio)
{
	log_ident = ident;
	log_max_prio = max_prio;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_msg(int prio, const char *fmt, ...)
{
	static const char *const level[] = {
		"emerg",   "alert",  "crit", "error",
		"warning", "notice", "info", "debug",
	};
	char line[1024];
	va_list ap;

	if (prio > log_max_prio)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line keeps lines whole when stderr is shared. */
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", prio, line);
	else
		fprintf(stderr, "%s: %s: %s\n", log_ident, level[prio & 7],
			line);
}
