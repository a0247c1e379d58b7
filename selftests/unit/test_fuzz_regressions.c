// SPDX-License-Identifier: GPL-2.0-only
/*
 * Replays every input of selftests/fuzz: each target's seed corpus and
 * each input a fuzzer ever found to crash it (selftests/fuzz/regressions/
 * <target>/), through the fuzz targets' own entry points, built here
 * with the ordinary compiler and flags. An entry point aborts on a
 * broken invariant; under SANITIZE=1 memory errors fail too.
 *
 * Run from the top of the tree, as selftests/run.sh does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../fuzz/fuzz.h"

#define FUZZ_DIR "selftests/fuzz"

/* Feeds each file of @dir to @fn; returns how many there were. */
static unsigned int replay_dir(const char *dir,
			       int (*fn)(const uint8_t *, size_t))
{
	unsigned int n = 0;
	struct dirent *de;
	DIR *dp = opendir(dir);

	if (!dp) {
		cr_assert(errno == ENOENT, "%s: %s", dir, strerror(errno));
		return 0;
	}
	while ((de = readdir(dp))) {
		char path[512];
		struct stat st;
		uint8_t *buf;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
		cr_assert(!fstat(fd, &st));
		/* Exactly its size, so a read past the end is caught. */
		buf = malloc(st.st_size ? st.st_size : 1);
		cr_assert(buf);
		cr_assert(read(fd, buf, st.st_size) == st.st_size, "%s", path);
		close(fd);
		cr_log_info("%s", path);
		fn(buf, st.st_size);
		free(buf);
		n++;
	}
	closedir(dp);
	return n;
}

static void replay(const char *name, int (*fn)(const uint8_t *, size_t))
{
	char dir[256];
	unsigned int seeds;

	snprintf(dir, sizeof(dir), FUZZ_DIR "/corpus/%s", name);
	seeds = replay_dir(dir, fn);
	cr_expect(seeds > 0,
		  "%s: no seed corpus (run from the top of the tree)", dir);
	snprintf(dir, sizeof(dir), FUZZ_DIR "/regressions/%s", name);
	replay_dir(dir, fn);
	/* No input at all is an input too. */
	fn((const uint8_t *)"", 0);
}

Test(fuzz_regressions, request)
{
	replay("request", fuzz_request);
}

Test(fuzz_regressions, state)
{
	replay("state", fuzz_state);
}

Test(fuzz_regressions, record)
{
	replay("record", fuzz_record);
}

Test(fuzz_regressions, config)
{
	replay("config", fuzz_config);
}

Test(fuzz_regressions, linebuf)
{
	replay("linebuf", fuzz_linebuf);
}

Test(fuzz_regressions, rbd_cmdline)
{
	replay("rbd_cmdline", fuzz_rbd_cmdline);
}
