// SPDX-License-Identifier: GPL-2.0-only
/*
 * The config file, through config_load() as iofenced calls it, from a
 * memfd named by --config. The file is root's, but it is edited by
 * hand: whatever it holds must end in a clean error or a config whose
 * values are in their ranges, never a crash. And what loads, printed by
 * --check-config, must load again as the same settings (config.c
 * promises it: the output is a config file).
 */
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static int load(struct config *cfg, int fd, bool check)
{
	char path[64], *argv[5] = { "iofenced", "--config", path };

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	argv[3] = check ? "--check-config" : NULL;
	return config_load(cfg, check ? 4 : 3, argv);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool same_config(const struct config *a, const struct config *b)
{
	return str_eq(a->socket_path, b->socket_path) &&
	       str_eq(a->socket_group, b->socket_group) &&
	       str_eq(a->control_group, b->control_group) &&
	       str_eq(a->state_dir, b->state_dir) &&
	       str_eq(a->pin_dir, b->pin_dir) &&
	       a->foreground == b->foreground && a->no_bpf == b->no_bpf &&
	       a->verbose == b->verbose &&
	       a->max_connections == b->max_connections &&
	       a->idle_timeout_s == b->idle_timeout_s &&
	       str_eq(a->watchdog, b->watchdog) &&
	       a->watchdog_required == b->watchdog_required &&
	       a->watchdog_timeout_s == b->watchdog_timeout_s &&
	       str_eq(a->fence_hook, b->fence_hook) &&
	       a->rt_priority == b->rt_priority;
}

/* --check-config's output of the file in @fd, into @out. */
static void print_config(int fd, int out)
{
	struct config printed;
	int saved, ret;

	FUZZ_CHECK(!ftruncate(out, 0) && !lseek(out, 0, SEEK_SET));
	fflush(stdout);
	saved = dup(STDOUT_FILENO); /* -1: libFuzzer closed it */
	FUZZ_CHECK(dup2(out, STDOUT_FILENO) == STDOUT_FILENO);
	clearerr(stdout);
	ret = load(&printed, fd, true);
	fflush(stdout);
	if (saved >= 0) {
		dup2(saved, STDOUT_FILENO);
		close(saved);
	} else {
		close(STDOUT_FILENO);
	}
	config_free(&printed);
	FUZZ_CHECK(ret == 1);
}

int fuzz_config(const uint8_t *data, size_t size)
{
	static int fd = -1, out = -1;
	struct config cfg, again;
	int ret;

	if (fd < 0)
		fd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (out < 0)
		out = memfd_create("fuzz_config_printed", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0 && out >= 0);
	FUZZ_CHECK(!ftruncate(fd, 0));
	FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
	ret = load(&cfg, fd, false);
	FUZZ_CHECK(ret <= 0);
	if (ret) {
		config_free(&cfg);
		return 0;
	}
	FUZZ_CHECK(cfg.socket_path && cfg.state_dir && cfg.pin_dir &&
		   cfg.watchdog && cfg.config_path);
	FUZZ_CHECK(cfg.max_connections >= 1);
	FUZZ_CHECK(cfg.idle_timeout_s >= 0);
	FUZZ_CHECK(cfg.watchdog_timeout_s >= 0);
	FUZZ_CHECK(cfg.rt_priority >= 0 && cfg.rt_priority <= 99);
	FUZZ_CHECK(!cfg.fence_hook || cfg.fence_hook[0] == '/');

	print_config(fd, out);
	FUZZ_CHECK(!load(&again, out, false));
	FUZZ_CHECK(same_config(&cfg, &again));
	config_free(&again);
	config_free(&cfg);
	return 0;
}
FUZZ_ENTRY(fuzz_config);
