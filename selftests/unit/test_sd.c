// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for what the daemon tells systemd and reads from it: the
 * STATUS= line a person reads in `systemctl status` (sd_status.c), and
 * the meaning of the socket activation variables (sd_listen.c). Taking
 * the fds themselves is end to end (test_systemd.sh): fd 3 is the test
 * runner's here.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "sd_listen.h"
#include "sd_status.h"

static struct sd_status running(void)
{
	return (struct sd_status){
		.phase = SD_RUNNING,
		.armed = 3,
		.late = 1,
		.fenced = 0,
		.watchdog = "/dev/watchdog",
		.watchdog_timeout_ms = 30000,
		.kernel_fence = SD_KFENCE_NO_LSM,
		.host_state = "connected",
	};
}

static const char *text(const struct sd_status *st)
{
	static char buf[256];

	sd_status_text(st, buf, sizeof(buf));
	return buf;
}

Test(sd_status, running_reads_as_a_sentence)
{
	struct sd_status st = running();

	cr_expect_str_eq(
		text(&st),
		"3 storages armed, 1 late, 0 fenced; watchdog on (/dev/watchdog, 30s), kernel fence off (no BPF LSM); host connected");
}

Test(sd_status, one_storage_is_singular)
{
	struct sd_status st = running();

	st.armed = 1;
	st.late = 0;
	cr_expect(strstr(text(&st), "1 storage armed, 0 late, 0 fenced;"), "%s",
		  text(&st));
	st.phase = SD_STOPPING;
	cr_expect(strstr(text(&st), "stopping; 1 storage stays armed;"), "%s",
		  text(&st));
}

Test(sd_status, unarmed_ones_are_told)
{
	struct sd_status st = running();

	st.unarmed = 2;
	cr_expect(strstr(text(&st), "0 fenced, 2 not re-armed;"), "%s",
		  text(&st));
}

Test(sd_status, starting_counts_the_re_arm)
{
	struct sd_status st = running();

	st.phase = SD_STARTING;
	st.stored = 4;
	st.armed = 0;
	cr_expect(strstr(text(&st), "re-arming 4 storages;") == text(&st), "%s",
		  text(&st));
	st.armed = 2;
	st.unarmed = 1;
	cr_expect(strstr(text(&st),
			 "re-arming 4 storages (2 armed, 1 failed so far);") ==
			  text(&st),
		  "%s", text(&st));
}

Test(sd_status, stopping_says_what_stays_armed)
{
	struct sd_status st = running();

	st.phase = SD_STOPPING;
	cr_expect(strstr(text(&st), "stopping; 3 storages stay armed;") ==
			  text(&st),
		  "%s", text(&st));
}

Test(sd_status, watchdog_states)
{
	struct sd_status st = running();

	st.watchdog = NULL;
	cr_expect(strstr(text(&st), "; watchdog none, kernel fence"), "%s",
		  text(&st));
	st.watchdog = "/run/wd.fifo";
	st.watchdog_timeout_ms = 1500;
	cr_expect(strstr(text(&st), "watchdog on (/run/wd.fifo, 1500 ms),"),
		  "%s", text(&st));
	st.watchdog_timeout_ms = 0;
	cr_expect(strstr(text(&st), "watchdog on (/run/wd.fifo),"), "%s",
		  text(&st));
	st.watchdog_held = true;
	cr_expect(strstr(text(&st),
			 "watchdog held: reset coming (/run/wd.fifo),"),
		  "%s", text(&st));
}

Test(sd_status, kernel_fence_states)
{
	struct sd_status st = running();
	static const struct {
		enum sd_kernel_fence k;
		const char *want;
	} cases[] = {
		{ SD_KFENCE_ON, ", kernel fence on;" },
		{ SD_KFENCE_NO_LSM, ", kernel fence off (no BPF LSM);" },
		{ SD_KFENCE_NO_BPF, ", kernel fence off (no BPF);" },
		{ SD_KFENCE_OFF, ", kernel fence off (--no-bpf);" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st.kernel_fence = cases[i].k;
		cr_expect(strstr(text(&st), cases[i].want), "%s: %s",
			  cases[i].want, text(&st));
	}
}

Test(sd_status, no_host_state_no_host_part)
{
	struct sd_status st = running();

	st.host_state = NULL;
	cr_expect_null(strstr(text(&st), "host"), "%s", text(&st));
}

Test(sd_status, short_buffer_is_cut_and_terminated)
{
	struct sd_status st = running();
	char whole[256], buf[16];
	size_t want = sd_status_text(&st, whole, sizeof(whole));

	memset(buf, 'x', sizeof(buf));
	cr_expect_eq(sd_status_text(&st, buf, sizeof(buf)), want);
	cr_expect_eq(strlen(buf), sizeof(buf) - 1);
	cr_expect_eq(strncmp(buf, whole, sizeof(buf) - 1), 0);
	cr_expect_eq(want, strlen(whole));
	cr_expect_eq(sd_status_text(&st, NULL, 0), want);
}

Test(sd_listen, count_is_for_this_pid_only)
{
	cr_expect_eq(sd_listen_count("42", "1", 42), 1);
	cr_expect_eq(sd_listen_count("42", "3", 42), 3);
	cr_expect_eq(sd_listen_count("42", "0", 42), 0);
	cr_expect_eq(sd_listen_count("41", "1", 42), 0, "another process's");
}

Test(sd_listen, nothing_passed)
{
	cr_expect_eq(sd_listen_count(NULL, NULL, 42), 0);
	cr_expect_eq(sd_listen_count("42", NULL, 42), 0);
	cr_expect_eq(sd_listen_count(NULL, "1", 42), 0,
		     "LISTEN_FDS without LISTEN_PID is not for us");
}

Test(sd_listen, malformed_variables_are_refused)
{
	static const char *const bad[][2] = {
		{ "", "1" },	{ "42", "" },	{ "x", "1" },
		{ "42", "1x" }, { "42", "-1" }, { "-42", "1" },
		{ "0", "1" },	{ "42", "+1" }, { "42", "99999999999" },
		{ "42 ", "1" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(sd_listen_count(bad[i][0], bad[i][1], 42), -EINVAL,
			     "LISTEN_PID='%s' LISTEN_FDS='%s'", bad[i][0],
			     bad[i][1]);
}
