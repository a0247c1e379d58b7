// SPDX-License-Identifier: GPL-2.0-only
/*
 * The network fence (userspace/control/netfence.c) from the command line,
 * for test_netfence: each run opens it on the pin dir as a daemon start
 * does (loading it, or reusing the pins), does one thing, and leaves the
 * pins in place but with "close".
 *
 *   netfence_ctl PIN_DIR open              "loaded" or "reused"
 *   netfence_ctl PIN_DIR mark PID STORAGE  the CLOCK_MONOTONIC ns of the
 *                                          mark, and how long it took (ns)
 *   netfence_ctl PIN_DIR unmark STORAGE    how many marks were lifted
 *   netfence_ctl PIN_DIR count STORAGE     "DROPPED REFUSED LIFTED", the
 *                                          last over all storages
 *   netfence_ctl PIN_DIR close             unpinned: the programs detach
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "netfence.h"

static unsigned long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull +
	       (unsigned long long)ts.tv_nsec;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: netfence_ctl PIN_DIR open|close|mark PID STORAGE|unmark STORAGE|count STORAGE\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned long long t0, t1;
	struct netfence *nf;
	const char *cmd;
	uint32_t idx;
	int ret;

	if (argc < 3)
		return usage();
	log_init("netfence_ctl", LOG_INFO);
	cmd = argv[2];
	ret = netfence_open(&nf, argv[1]);
	if (ret) {
		fprintf(stderr, "netfence_ctl: %s\n", strerror(-ret));
		return 1;
	}
	if (!strcmp(cmd, "open") && argc == 3) {
		printf("%s\n", netfence_reused(nf) ? "reused" : "loaded");
	} else if (!strcmp(cmd, "mark") && argc == 5) {
		t0 = mono_ns();
		ret = netfence_mark(nf, atoi(argv[3]), (uint32_t)atoi(argv[4]));
		t1 = mono_ns();
		if (ret)
			fprintf(stderr, "netfence_ctl: mark: %s\n",
				strerror(-ret));
		printf("%llu %llu\n", t0, t1 - t0);
	} else if (!strcmp(cmd, "unmark") && argc == 4) {
		printf("%d\n",
		       netfence_unmark_storage(nf, (uint32_t)atoi(argv[3])));
	} else if (!strcmp(cmd, "count") && argc == 4) {
		idx = (uint32_t)atoi(argv[3]);
		printf("%llu %llu %llu\n",
		       (unsigned long long)netfence_dropped(nf, idx),
		       (unsigned long long)netfence_refused(nf, idx),
		       (unsigned long long)netfence_dropped_lifted(nf));
	} else if (!strcmp(cmd, "close") && argc == 3) {
		netfence_close(nf, true);
		return 0;
	} else {
		netfence_close(nf, false);
		return usage();
	}
	netfence_close(nf, false);
	return ret ? 1 : 0;
}
