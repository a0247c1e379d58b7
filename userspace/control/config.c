// SPDX-License-Identifier: GPL-2.0-only
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ini.h>

#include "config.h"
#include "proto.h"
#include "watchdog.h"

enum {
	OPT_NO_BPF = 0x100,
	OPT_SOCKET_GROUP,
	OPT_CONTROL_GROUP,
	OPT_MAX_CONNECTIONS,
	OPT_IDLE_TIMEOUT,
	OPT_WATCHDOG,
	OPT_WATCHDOG_TIMEOUT,
	OPT_FENCE_HOOK,
	OPT_RT_PRIORITY,
	OPT_CHECK_CONFIG,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "socket", required_argument, NULL, 's' },
	{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
	{ "control-group", required_argument, NULL, OPT_CONTROL_GROUP },
	{ "state-dir", required_argument, NULL, 'd' },
	{ "pin-dir", required_argument, NULL, 'p' },
	{ "foreground", no_argument, NULL, 'f' },
	{ "no-bpf", no_argument, NULL, OPT_NO_BPF },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "watchdog", required_argument, NULL, OPT_WATCHDOG },
	{ "watchdog-timeout", required_argument, NULL, OPT_WATCHDOG_TIMEOUT },
	{ "fence-hook", required_argument, NULL, OPT_FENCE_HOOK },
	{ "rt-priority", required_argument, NULL, OPT_RT_PRIORITY },
	{ "verbose", no_argument, NULL, 'v' },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{},
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: iofenced [OPTION]...\n"
		"Self-fencing watchdog for hypervisor hosts on shared storage.\n"
		"\n"
		"Options (the config file takes the same names, without the\n"
		"dashes and with '_' for '-', in its [daemon] section; the\n"
		"command line wins over the file):\n"
		"  -c, --config FILE         config file (default " IOFENCE_DEFAULT_CONFIG
		";\n"
		"                            a missing default file is not an error)\n"
		"  -s, --socket PATH         control socket, mode 0660\n"
		"                            (default " IOFENCE_DEFAULT_SOCKET
		");\n"
		"                            a socket passed by socket activation\n"
		"                            (LISTEN_FDS) is served instead\n"
		"      --socket-group GROUP  owning group of the socket: its members may\n"
		"                            connect and query (default: root only)\n"
		"      --control-group GROUP members may also change state (setup,\n"
		"                            teardown, set-host-state); default: root only\n"
		"  -d, --state-dir DIR       persisted state (default " IOFENCE_DEFAULT_STATE_DIR
		")\n"
		"  -p, --pin-dir DIR         bpffs folder for maps and links\n"
		"                            (default " IOFENCE_DEFAULT_PIN_DIR
		")\n"
		"  -f, --foreground          stay in the foreground (use under systemd);\n"
		"                            otherwise detach once the socket is ready,\n"
		"                            keeping a passed socket\n"
		"      --no-bpf              run without the kernel tracker\n"
		"      --max-connections N   control connections at once (default %d)\n"
		"      --idle-timeout S      close a connection that sent no complete\n"
		"                            request for S seconds while no reply is owed\n"
		"                            to it; subscribers never time out\n"
		"                            (default %d; 0: never)\n"
		"      --watchdog PATH       watchdog device the fencing core pets while\n"
		"                            every storage is inside its contract (default " WATCHDOG_DEFAULT_PATH
		",\n"
		"                            skipped with a warning when absent); a FIFO or\n"
		"                            file works as a test device; 'none': no watchdog,\n"
		"                            so no fence deadline is published\n"
		"      --watchdog-timeout S  set the device's timeout to S seconds, 1-3600\n"
		"                            (default 0: keep the device's own)\n"
		"      --fence-hook PATH     run at every fence of a storage without its\n"
		"                            own fence_hook (default: none)\n"
		"      --rt-priority N       SCHED_FIFO priority of the fencing core (its\n"
		"                            victim searches run one below), 1-99, or 0\n"
		"                            to stay SCHED_OTHER (default %d); the control\n"
		"                            plane always runs SCHED_OTHER\n"
		"  -v, --verbose             log debug messages\n"
		"      --check-config        read the config file and the command line,\n"
		"                            print the resulting settings (in the\n"
		"                            file's syntax) and exit: 0 when they are\n"
		"                            valid, 1 when not\n"
		"  -h, --help                show this help and exit\n"
		"  -V, --version             show the version and exit\n",
		IOFENCE_DEFAULT_MAX_CONNECTIONS, IOFENCE_DEFAULT_IDLE_TIMEOUT,
		IOFENCE_BUILD_RT_PRIORITY);
	if (BUILD_ASAN)
		fprintf(out,
			"\nThis is an ASan build: --rt-priority defaults to 0, not %d, because\n"
			"its allocator's spin locks stall real-time threads (see iofenced(8)).\n",
			IOFENCE_DEFAULT_RT_PRIORITY);
}

static int set_str(char **dst, const char *val)
{
	char *s = strdup(val);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int parse_bool(const char *val, bool *out)
{
	if (!strcmp(val, "1") || !strcasecmp(val, "yes") ||
	    !strcasecmp(val, "true") || !strcasecmp(val, "on"))
		*out = true;
	else if (!strcmp(val, "0") || !strcasecmp(val, "no") ||
		 !strcasecmp(val, "false") || !strcasecmp(val, "off"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_int(const char *val, int min, int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (errno || end == val || *end || v < min || v > max)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/*
 * Every setting of the file, by its name there. The command line reaches
 * the same entries through its long option's name, with '_' for '-', so
 * the file and the command line cannot accept different things, and
 * --check-config prints each of them.
 */
enum setting_kind {
	SET_STR, /* a non-empty string */
	SET_GROUP, /* a group name; empty: none (root only) */
	SET_HOOK, /* an absolute path; empty: none */
	SET_WATCHDOG, /* a path or "none"; set at all, it must open */
	SET_BOOL,
	SET_INT,
};

struct setting {
	const char *name;
	enum setting_kind kind;
	size_t off;
	int min, max;
};

#define SETTING(n, k, field)                                                \
	{                                                                   \
		.name = n, .kind = k, .off = offsetof(struct config, field) \
	}
#define SETTING_INT(n, field, lo, hi)                                       \
	{                                                                   \
		.name = n, .kind = SET_INT,                                 \
		.off = offsetof(struct config, field), .min = lo, .max = hi \
	}

static const struct setting settings[] = {
	SETTING("socket", SET_STR, socket_path),
	SETTING("socket_group", SET_GROUP, socket_group),
	SETTING("control_group", SET_GROUP, control_group),
	SETTING("state_dir", SET_STR, state_dir),
	SETTING("pin_dir", SET_STR, pin_dir),
	SETTING("foreground", SET_BOOL, foreground),
	SETTING("no_bpf", SET_BOOL, no_bpf),
	SETTING_INT("max_connections", max_connections, 1, 4096),
	SETTING_INT("idle_timeout", idle_timeout_s, 0, 86400),
	SETTING("watchdog", SET_WATCHDOG, watchdog),
	/* 0: the device's own, so that what --check-config prints loads. */
	SETTING_INT("watchdog_timeout", watchdog_timeout_s, 0, 3600),
	SETTING("fence_hook", SET_HOOK, fence_hook),
	SETTING_INT("rt_priority", rt_priority, 0, 99),
	SETTING("verbose", SET_BOOL, verbose),
};

/*
 * --check-config prints a value as "name = value", and that must load
 * again as the same value: inih strips the spaces around a value, ends
 * it at a ';' after a space (an inline comment), and reads lines of at
 * most INI_MAX_LINE - 1 bytes. A value it could not give back is
 * refused, from the file as from the command line.
 */
static bool file_value(const char *name, const char *v)
{
	size_t n = strlen(v);

	if (strlen(name) + strlen(" = ") + n > INI_MAX_LINE - 1 ||
	    v[0] == ';' || isspace((unsigned char)v[0]) ||
	    (n && isspace((unsigned char)v[n - 1])))
		return false;
	for (size_t i = 1; i < n; i++)
		if (v[i] == '\n' || v[i] == '\r' ||
		    (v[i] == ';' && isspace((unsigned char)v[i - 1])))
			return false;
	return true;
}

/* One setting by name, from the file or the command line. */
static int config_set(struct config *cfg, const char *name, const char *val,
		      const char *where)
{
	const struct setting *s = NULL;
	void *field;
	int ret;

	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (!strcmp(settings[i].name, name))
			s = &settings[i];
	if (!s) {
		fprintf(stderr, "iofenced: %s: unknown setting '%s'\n", where,
			name);
		return -ENOENT;
	}
	field = (char *)cfg + s->off;
	if (s->kind != SET_BOOL && s->kind != SET_INT &&
	    !file_value(name, val)) {
		fprintf(stderr,
			"iofenced: %s: %s: invalid value '%s' (a config line holds at most %d bytes, and no value starts with ';' or a space, ends with a space or has ';' after a space)\n",
			where, name, val, INI_MAX_LINE - 1);
		return -EINVAL;
	}
	switch (s->kind) {
	case SET_GROUP:
	case SET_HOOK:
		if (!val[0]) {
			free(*(char **)field);
			*(char **)field = NULL;
			return 0;
		}
		ret = s->kind == SET_HOOK && val[0] != '/' ?
			      -EINVAL :
			      set_str(field, val);
		break;
	case SET_WATCHDOG:
		cfg->watchdog_required = true;
		/* fallthrough */
	case SET_STR:
		ret = val[0] ? set_str(field, val) : -EINVAL;
		break;
	case SET_BOOL:
		ret = parse_bool(val, field);
		break;
	case SET_INT:
		ret = parse_int(val, s->min, s->max, field);
		break;
	default:
		ret = -EINVAL;
	}
	if (ret == -EINVAL)
		fprintf(stderr, "iofenced: %s: %s: invalid value '%s'\n", where,
			name, val);
	return ret;
}

/*
 * --check-config: the settings in the file's own syntax, so that the
 * output loads as a config file and gives the same settings. The default
 * watchdog is printed commented out: named in a file, it would have to
 * open, where the default is skipped when absent.
 */
static void config_print(const struct config *cfg, bool found)
{
	printf("# iofenced --check-config: %s%s; the command line over it\n",
	       cfg->config_path, found ? "" : " (not found: the defaults)");
	printf("[daemon]\n");
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const struct setting *s = &settings[i];
		const void *field = (const char *)cfg + s->off;
		const char *str;

		switch (s->kind) {
		case SET_BOOL:
			printf("%s = %s\n", s->name,
			       *(const bool *)field ? "yes" : "no");
			break;
		case SET_INT:
			printf("%s = %d\n", s->name, *(const int *)field);
			break;
		case SET_WATCHDOG:
			printf("%s%s = %s\n", cfg->watchdog_required ? "" : "#",
			       s->name, *(char *const *)field);
			break;
		default:
			str = *(char *const *)field;
			printf("%s =%s%s\n", s->name, str ? " " : "",
			       str ? str : "");
		}
	}
}

struct ini_ctx {
	struct config *cfg;
	int ret;
};

static int config_ini_entry(void *user, const char *section, const char *name,
			    const char *value)
{
	struct ini_ctx *ctx = user;
	char where[PATH_MAX + 32];

	snprintf(where, sizeof(where), "%s [%s]", ctx->cfg->config_path,
		 section);
	if (strcmp(section, "daemon")) {
		fprintf(stderr, "iofenced: %s: unknown section\n", where);
		ctx->ret = -EINVAL;
		return 0;
	}
	if (config_set(ctx->cfg, name, value, where)) {
		ctx->ret = -EINVAL;
		return 0;
	}
	return 1;
}

static int load_file(struct config *cfg, bool explicit, bool *found)
{
	struct ini_ctx ctx = { .cfg = cfg };
	FILE *f = fopen(cfg->config_path, "re");
	int line;

	*found = f != NULL;
	if (!f) {
		if (errno == ENOENT && !explicit)
			return 0;
		fprintf(stderr, "iofenced: %s: %s\n", cfg->config_path,
			strerror(errno));
		return -errno;
	}
	line = ini_parse_file(f, config_ini_entry, &ctx);
	fclose(f);
	if (line > 0 && !ctx.ret) {
		fprintf(stderr, "iofenced: %s:%d: syntax error\n",
			cfg->config_path, line);
		return -EINVAL;
	}
	return ctx.ret;
}

static const char *opt_name(int c)
{
	for (const struct option *o = long_options; o->name; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

int config_load(struct config *cfg, int argc, char **argv)
{
	bool explicit = false, check = false, found;
	char name[64];
	int c, ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_connections = IOFENCE_DEFAULT_MAX_CONNECTIONS;
	cfg->idle_timeout_s = IOFENCE_DEFAULT_IDLE_TIMEOUT;
	cfg->rt_priority = IOFENCE_BUILD_RT_PRIORITY;
	if (set_str(&cfg->config_path, IOFENCE_DEFAULT_CONFIG) ||
	    set_str(&cfg->watchdog, WATCHDOG_DEFAULT_PATH) ||
	    set_str(&cfg->socket_path, IOFENCE_DEFAULT_SOCKET) ||
	    set_str(&cfg->state_dir, IOFENCE_DEFAULT_STATE_DIR) ||
	    set_str(&cfg->pin_dir, IOFENCE_DEFAULT_PIN_DIR))
		return -ENOMEM;

	/* Pass 1: only --config, --help and --version, and bad options. */
	opterr = 1;
	optind = 0; /* glibc: a full restart, for a second argv */
	while ((c = getopt_long(argc, argv, "c:s:d:p:fvhV", long_options,
				NULL)) != -1) {
		switch (c) {
		case 'c':
			if (set_str(&cfg->config_path, optarg))
				return -ENOMEM;
			explicit = true;
			break;
		case OPT_CHECK_CONFIG:
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("iofenced %d.%d.%d\n", IOFENCE_VERSION_MAJOR,
			       IOFENCE_VERSION_MINOR, IOFENCE_VERSION_MICRO);
			return 1;
		case '?':
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "iofenced: unexpected argument '%s'\n",
			argv[optind]);
		return -EINVAL;
	}
	ret = load_file(cfg, explicit, &found);
	if (ret)
		return ret;

	/* Pass 2: the command line over the file. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "c:s:d:p:fvhV", long_options,
				NULL)) != -1) {
		const char *val = optarg;

		if (c == 'c' || c == OPT_CHECK_CONFIG)
			continue;
		if (c == 'f' || c == 'v' || c == OPT_NO_BPF)
			val = "1";
		snprintf(name, sizeof(name), "%s", opt_name(c));
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = '_';
		if (config_set(cfg, name, val, "command line"))
			return -EINVAL;
	}
	if (check) {
		config_print(cfg, found);
		return 1;
	}
	return 0;
}

void config_free(struct config *cfg)
{
	free(cfg->config_path);
	free(cfg->socket_path);
	free(cfg->socket_group);
	free(cfg->control_group);
	free(cfg->state_dir);
	free(cfg->pin_dir);
	free(cfg->watchdog);
	free(cfg->fence_hook);
}
