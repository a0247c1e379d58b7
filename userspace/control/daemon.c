// SPDX-License-Identifier: GPL-2.0-only
/* The daemon's state as a whole: host state, events, the persisted form. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "netfence.h"
#include "rados_link.h"
#include "commands.h"
#include "deadlines.h"
#include "fencer.h"
#include "log.h"
#include "paths.h"
#include "record.h"
#include "sd_notify.h"
#include "sd_status.h"

#define STATE_DOC_VERSION 1

static const char *const host_state_names[] = {
	[HOST_CONNECTING] = "connecting",
	[HOST_CONNECTED] = "connected",
	[HOST_DISCONNECTED] = "disconnected",
};

const char *host_state_name(enum host_state s)
{
	return host_state_names[s];
}

int host_state_parse(const char *name, enum host_state *s)
{
	for (unsigned int i = 0; i < 3; i++) {
		if (!strcmp(name, host_state_names[i])) {
			*s = i;
			return 0;
		}
	}
	return -EINVAL;
}

static bool stored(const char *uuid, void *ctx);

json_t *daemon_state_doc(struct daemon *d)
{
	json_t *list = json_array(), *entry;
	struct storage *s;
	unsigned int i;
	size_t k;

	json_array_extend(list, d->unarmed);
	/*
	 * At start-up, a storage still re-arming is neither armed nor
	 * unarmed yet: a write made meanwhile (another one's REARMED)
	 * keeps its entry as the state file had it, or a crash then would
	 * lose it for good.
	 */
	json_array_foreach(d->rearming, k, entry) {
		const char *u = json_string_value(json_object_get(
			json_object_get(entry, "params"), "uuid"));

		if (u && !stored(u, d))
			json_array_append(list, entry);
	}
	storage_for_each(&d->storages, i, s) {
		json_t *e = json_pack("{s:s,s:b,s:I,s:I,s:I,s:o}", "host_uuid",
				      s->host_uuid, "reconnect", s->reconnect,
				      "flight", (json_int_t)s->flight,
				      "armed_at", (json_int_t)s->armed_real_s,
				      "updated_at",
				      (json_int_t)s->updated_real_s, "params",
				      storage_params_json(&s->p));
		json_t *fence = s->hb ? fencer_state_json(s->hb) : NULL;

		if (fence)
			json_object_set_new(e, "fence", fence);
		json_array_append_new(list, e);
	}
	return json_pack("{s:i,s:s,s:I,s:o,s:o}", "version", STATE_DOC_VERSION,
			 "host_state", host_state_name(d->host_state),
			 "next_flight", (json_int_t)d->next_flight, "storages",
			 list, "journal", journal_save(&d->journal));
}

void daemon_watchdog_update(struct daemon *d)
{
	bool hold = json_array_size(d->unarmed_hung) > 0;

	if (hold == d->rearm_hold)
		return;
	d->rearm_hold = hold;
	core_hold_rearm(&d->core, hold);
}

bool daemon_core_alive(const struct daemon *d)
{
	return d->core_seen_ms &&
	       loop_now_ms() - d->core_seen_ms < CORE_ALIVE_MS;
}

static void on_core_report(struct msg *m, void *ctx)
{
	struct msg_core_report *r = container_of(m, struct msg_core_report, m);
	struct daemon *d = ctx;

	d->core_last = *r;
	d->core_seen_ms = loop_now_ms();
	free(r);
}

static void on_core_event(struct msg *m, void *ctx)
{
	struct msg_core_event *e = container_of(m, struct msg_core_event, m);

	daemon_event(ctx, e->name, e->data);
	free(e);
}

static const struct core_ops core_ops = {
	.fencer_report = fencer_on_report,
	.unfence_done = fencer_on_unfence_done,
	.core_report = on_core_report,
	.core_event = on_core_event,
};

static enum sd_kernel_fence kernel_fence(const struct daemon *d)
{
	if (d->cfg.no_bpf)
		return SD_KFENCE_OFF;
	if (!d->tracker.active)
		return SD_KFENCE_NO_BPF;
	return d->tracker.write_fence ? SD_KFENCE_ON : SD_KFENCE_NO_LSM;
}

/* The STATUS= line of now, from what the control plane knows. */
static void status_text(struct daemon *d, char *buf, size_t len)
{
	struct sd_status st = {
		.phase = d->loop.stopping ? SD_STOPPING :
			 d->ctl.fd < 0	  ? SD_STARTING :
					    SD_RUNNING,
		.stored = d->stored,
		.armed = d->storages.count,
		.unarmed = (unsigned int)json_array_size(d->unarmed),
		.watchdog = d->core.wd.fd >= 0 ? d->core.wd.path : NULL,
		.watchdog_timeout_ms = d->core.wd.timeout_ms,
		.watchdog_held = d->core_last.wd_holding,
		.kernel_fence = kernel_fence(d),
		.host_state = host_state_name(d->host_state),
	};
	struct storage *s;
	unsigned int i;

	storage_for_each(&d->storages, i, s) {
		if (!s->hb || !s->hb->have_snap)
			continue;
		st.late += s->hb->snap.state == HB_LATE;
		st.fenced += s->hb->snap.state == HB_FENCED;
	}
	sd_status_text(&st, buf, len);
}

/*
 * Tells systemd @what (NULL: nothing but the status) and the status
 * line, when the line changed or @what is given.
 */
static void status_notify(struct daemon *d, const char *what)
{
	char line[sizeof(d->sd_status)], msg[sizeof(line) + 64];

	if (!d->sd_notify)
		return;
	status_text(d, line, sizeof(line));
	if (!what && !strcmp(line, d->sd_status))
		return;
	snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", what ? what : "",
		 what ? "\n" : "", line);
	if (sd_notify_send(msg))
		return;
	memcpy(d->sd_status, line, sizeof(line));
}

static void pulse_arm(struct daemon *d)
{
	struct io_uring_sqe *sqe = loop_sqe(&d->loop, &d->pulse);

	d->pulse_ts.tv_sec = d->pulse_due_ns / 1000000000ull;
	d->pulse_ts.tv_nsec = d->pulse_due_ns % 1000000000ull;
	io_uring_prep_timeout(sqe, &d->pulse_ts, 0, IORING_TIMEOUT_ABS);
}

/*
 * The control plane's pulse: how late its own timers run, and systemd's
 * watchdog, told only while both sides make progress: this one (its
 * timer ran) and the core (it reported lately). A stalled control plane
 * costs a restart by systemd, never the host: the hardware watchdog is
 * the core's alone.
 */
static void pulse_done(struct loop_op *op, int res, unsigned int flags)
{
	struct daemon *d = container_of(op, struct daemon, pulse);
	uint64_t now = loop_now_ns(), now_ms = now / 1000000;

	if (d->loop.stopping)
		return;
	lag_add(&d->lag, now,
		now > d->pulse_due_ns ? now - d->pulse_due_ns : 0);
	if (d->sd_watchdog_ms && now_ms >= d->sd_next_ms) {
		if (daemon_core_alive(d)) {
			sd_notify_send("WATCHDOG=1");
			d->sd_next_ms = now_ms + d->sd_watchdog_ms / 2;
		} else {
			pr_err("fencing core: no report for %llu ms; systemd's watchdog is not told we are alive",
			       (unsigned long long)(now_ms - d->core_seen_ms));
			d->sd_next_ms = now_ms + d->sd_watchdog_ms / 4;
		}
	}
	/*
	 * Re-arming waits on each storage's deadlines: the start may take
	 * longer than TimeoutStartSec, and is given more time while both
	 * sides make progress.
	 */
	if (d->sd_notify && d->ctl.fd < 0 && now_ms >= d->sd_extend_ms &&
	    daemon_core_alive(d)) {
		char msg[64];

		snprintf(msg, sizeof(msg), "EXTEND_TIMEOUT_USEC=%llu",
			 SD_START_EXTEND_MS * 1000ull);
		sd_notify_send(msg);
		d->sd_extend_ms = now_ms + SD_START_EXTEND_MS / 4;
	}
	/* At most once a pulse, and only when it reads differently. */
	status_notify(d, NULL);
	if (!d->starting)
		target_watch_tick(&d->targets);
	/*
	 * Never beside a request's flight, and not while an earlier step
	 * is still stuck in the kernel: each try on a dead storage would
	 * hold one more io-wq worker for good.
	 */
	if (json_array_size(d->unarmed) && !d->starting &&
	    list_empty(&d->flights) && list_empty(&d->stuck_flights) &&
	    now_ms >= d->rearm_retry_ms) {
		d->rearm_retry_ms = now_ms + REARM_RETRY_MS;
		setup_rearm_retry(d);
	}
	d->pulse_due_ns += DAEMON_PULSE_MS * 1000000ull;
	if (d->pulse_due_ns < now)
		d->pulse_due_ns = now + DAEMON_PULSE_MS * 1000000ull;
	pulse_arm(d);
}

json_t *daemon_event_journal(struct daemon *d, const char *name, json_t *data)
{
	json_t *msg = journal_add_held(&d->journal, name, data);

	if (!msg)
		pr_err("event %s: out of memory; not journalled", name);
	return msg;
}

void daemon_event_publish(struct daemon *d, json_t *msg)
{
	struct list_head *pos, *tmp;
	char *text;

	journal_release(&d->journal,
			json_integer_value(json_object_get(msg, "seq")));
	text = json_dumps(json_object_get(msg, "data"), JSON_COMPACT);
	pr_info("event %s %s", json_string_value(json_object_get(msg, "event")),
		text ? text : "");
	free(text);
	list_for_each_safe(pos, tmp, &d->ctl.conns) {
		struct ctl_conn *c = list_entry(pos, struct ctl_conn, link);

		if (c->subscribed && !c->closing)
			ctl_conn_send(c, json_incref(msg));
	}
}

void daemon_event_defer(struct daemon *d, json_t *msg)
{
	json_array_append(d->pending_events, msg);
	persist_kick(&d->persist);
}

/*
 * An event is shown to anyone only once a state write carries it: a
 * number a client has seen is never given to another event after a
 * crash.
 */
void daemon_event(struct daemon *d, const char *name, json_t *data)
{
	json_t *msg = daemon_event_journal(d, name, data);

	if (msg)
		daemon_event_defer(d, msg);
}

void daemon_events_written(struct daemon *d, size_t n)
{
	while (n-- && json_array_size(d->pending_events)) {
		daemon_event_publish(d, json_array_get(d->pending_events, 0));
		json_array_remove(d->pending_events, 0);
	}
}

static int resolve_group(const char *name, gid_t *gid)
{
	struct group *gr;

	*gid = (gid_t)-1;
	if (!name)
		return 0;
	errno = 0;
	gr = getgrnam(name);
	if (!gr) {
		pr_err("socket_group %s: %s", name,
		       errno ? strerror(errno) : "no such group");
		return -EINVAL;
	}
	*gid = gr->gr_gid;
	return 0;
}

/*
 * What a previous run left: the host state, the journal, and the storages,
 * which are re-armed before the socket opens, so no request ever sees a
 * daemon that has forgotten what it guarded.
 */
static int load_state(struct daemon *d)
{
	json_t *doc, *storages;
	const char *hs;
	char err[256];
	int ret = persist_load(&d->persist, &doc);

	if (ret || !doc) {
		setup_rearm(d, NULL);
		return 0;
	}
	hs = json_string_value(json_object_get(doc, "host_state"));
	if (hs && host_state_parse(hs, &d->host_state))
		pr_warn("state: unknown host_state '%s'; using connecting", hs);
	if (json_object_get(doc, "journal") &&
	    journal_load(&d->journal, json_object_get(doc, "journal"), err,
			 sizeof(err))) {
		json_t *next = json_object_get(json_object_get(doc, "journal"),
					       "next_seq");

		/* Numbers must still only grow: keep counting from there. */
		if (json_integer_value(next) > 0)
			d->journal.next_seq = json_integer_value(next);
		pr_err("state: journal: %s; its events are lost, numbering goes on at %llu",
		       err, (unsigned long long)d->journal.next_seq);
	}
	/* Flight ids stay unique across restarts, like event numbers. */
	d->next_flight =
		json_integer_value(json_object_get(doc, "next_flight"));
	storages = json_object_get(doc, "storages");
	d->stored = (unsigned int)json_array_size(storages);
	d->rearming = json_incref(storages);
	pr_info("state: re-arming %u storages", d->stored);
	status_notify(d, NULL);
	d->starting = true;
	setup_rearm(d, storages);
	json_decref(doc);
	return 0;
}

/* A storage of the state that is armed, or is to be tried again. */
static bool stored(const char *uuid, void *ctx)
{
	struct daemon *d = ctx;
	json_t *entry;
	size_t i;

	if (storage_find(&d->storages, uuid))
		return true;
	json_array_foreach(d->unarmed, i, entry) {
		const char *u = json_string_value(json_object_get(
			json_object_get(entry, "params"), "uuid"));

		if (u && !strcmp(u, uuid))
			return true;
	}
	return false;
}

void daemon_started(struct daemon *d)
{
	int ret, fd;

	if (!d->starting && d->ctl.fd >= 0)
		return;
	d->starting = false;
	/* Every stored storage is armed or kept unarmed by now. */
	json_decref(d->rearming);
	d->rearming = NULL;
	/*
	 * What the state re-armed took its slots over; a slot of a storage
	 * it no longer holds would stay fenced with nobody to lift it.
	 */
	tracker_forget_stale(&d->tracker, stored, d);
	/*
	 * A passed socket may have held clients since before this daemon
	 * ran: their requests are read from here on, after the re-arm.
	 */
	fd = d->listen.passed ? d->listen.fd : -1;
	ret = ctl_server_open(&d->ctl, &d->loop,
			      fd >= 0 && d->listen.path[0] ? d->listen.path :
							     d->cfg.socket_path,
			      fd, d->socket_gid, d->cfg.max_connections,
			      proto_greeting(commands_capabilities(d)),
			      commands_dispatch, d);
	if (fd >= 0)
		d->listen.fd = -1; /* the server's now */
	if (ret) {
		d->exit_code = ret;
		loop_stop(&d->loop);
		return;
	}
	ctl_server_set_idle_timeout(&d->ctl, d->cfg.idle_timeout_s);
	pr_info("ready on %s%s (state %s, %u storages armed)", d->ctl.path,
		fd >= 0 ? ", passed by the service manager" : "",
		d->cfg.state_dir, d->storages.count);
	status_notify(d, "READY=1");
	if (d->ready_fd >= 0) {
		if (write(d->ready_fd, "r", 1) != 1)
			pr_warn("cannot tell the parent we are ready");
		close(d->ready_fd);
		d->ready_fd = -1;
	}
}

static void free_storages(struct daemon *d)
{
	struct storage *s;
	unsigned int i;

	storage_for_each(&d->storages, i, s) {
		storage_remove(&d->storages, s);
		storage_free(s);
	}
}

/*
 * What the daemon runs without although it was not told to: each said
 * where it was found (the log) and journalled, so that an agent that
 * reads events learns it too. Off by choice (--no-bpf, --watchdog none)
 * is no news.
 */
static void degraded_events(struct daemon *d)
{
	char why[PATH_MAX + 64];

	if (!d->cfg.no_bpf && !d->tracker.active)
		daemon_event(d, "DEGRADED",
			     json_pack("{s:s,s:s}", "part", "bpf_tracker",
				       "reason", d->tracker.off_why));
	if (d->core.wd.fd < 0 && d->cfg.watchdog &&
	    strcmp(d->cfg.watchdog, "none")) {
		snprintf(
			why, sizeof(why),
			"%s is not present: fence deadlines are published as none",
			d->cfg.watchdog);
		daemon_event(d, "DEGRADED",
			     json_pack("{s:s,s:s}", "part", "watchdog",
				       "reason", why));
	}
}

int daemon_open(struct daemon *d, int ready_fd)
{
	int ret;

	d->start_mono_ms = loop_now_ms();
	d->sigfd = -1;
	d->ready_fd = ready_fd;
	d->ctl.fd = -1;
	d->host_state = HOST_CONNECTING;
	list_init(&d->flights);
	list_init(&d->stuck_flights);
	list_init(&d->peers);
	list_init(&d->ctl.conns);
	journal_init(&d->journal);
	d->unarmed = json_array();
	d->unarmed_hung = json_array();
	d->pending_events = json_array();
	ret = resolve_group(d->cfg.socket_group, &d->socket_gid);
	if (!ret)
		ret = resolve_group(d->cfg.control_group, &d->control_gid);
	if (ret)
		goto out_cfg;
	d->sd_notify = getenv("NOTIFY_SOCKET") && *getenv("NOTIFY_SOCKET");
	ret = daemon_make_state_dir(d->cfg.state_dir);
	if (ret)
		goto out_cfg;
	ret = loop_init(&d->loop, DAEMON_LOOP_ENTRIES);
	if (ret)
		goto out_cfg;
	storage_set_closer(&d->loop);
	ret = chan_init(&d->in, d);
	if (ret)
		goto out_loop;
	chan_attach(&d->in, &d->loop);
	if (d->cfg.no_bpf)
		pr_info("BPF tracker off (--no-bpf): no block I/O evidence, no kernel write fence");
	else
		tracker_open(&d->tracker, d->cfg.pin_dir, &d->in);
	/* The ring core_open() makes is the one the kernel sees heartbeats on. */
	tracker_register_ring(&d->tracker);
	ret = core_open(&d->core, &d->in, &core_ops, d->cfg.rt_priority);
	if (ret)
		goto out_tracker;
	target_watch_init(&d->targets, d);
	d->pulse.cb = pulse_done;
	d->pulse_due_ns = loop_now_ns() + DAEMON_PULSE_MS * 1000000ull;
	pulse_arm(d);
	/* Before re-arming: its timeout is part of every fence deadline. */
	ret = watchdog_open(&d->core.wd, &d->core.loop, d->cfg.watchdog,
			    d->cfg.watchdog_timeout_s,
			    d->cfg.watchdog_required);
	if (ret)
		goto out_tracker;
	ret = persist_open(&d->persist, d, d->cfg.state_dir);
	if (ret)
		goto out_core;
	/* Read here: the core never reads procfs, not even this. */
	record_boot_id();
	/* Heartbeats start with the first re-armed storage. */
	ret = core_start(&d->core);
	if (ret) {
		persist_close(&d->persist);
		goto out_core;
	}
	load_state(d);
	degraded_events(d);
	return 0;

out_core:
	core_stop(&d->core);
out_tracker:
	/* The slots of an earlier daemon stay guarded: another may take them. */
	tracker_close(&d->tracker, !tracker_holds(&d->tracker));
	chan_exit(&d->in);
out_loop:
	storage_set_closer(NULL);
	loop_exit(&d->loop);
out_cfg:
	journal_free(&d->journal);
	json_decref(d->unarmed);
	json_decref(d->unarmed_hung);
	json_decref(d->pending_events);
	config_free(&d->cfg);
	return ret;
}

int daemon_make_state_dir(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	size_t n;
	int ret;

	n = strlen(dir);
	if (n >= sizeof(path)) {
		pr_err("state dir %s: longer than %zu bytes", dir,
		       sizeof(path) - 1);
		return -ENAMETOOLONG;
	}
	/* "a/b/" is "a/b": the last part is the one made 0700. */
	while (n > 1 && dir[n - 1] == '/')
		n--;
	memcpy(path, dir, n);
	path[n] = '\0';
	if (!stat(path, &st)) {
		if (S_ISDIR(st.st_mode))
			return 0;
		pr_err("state dir %s: not a folder", path);
		return -ENOTDIR;
	}
	if (errno != ENOENT) {
		ret = -errno;
		pr_err("state dir %s: %s", path, strerror(errno));
		return ret;
	}
	ret = mkdir_parents(path, 0755);
	if (!ret && mkdir(path, 0700) && errno != EEXIST)
		ret = -errno;
	if (ret) {
		pr_err("state dir %s: cannot create it: %s", path,
		       strerror(-ret));
		return ret;
	}
	pr_info("state dir %s: created (mode 0700), with any missing parents (0755)",
		path);
	return 0;
}

void daemon_stop(struct daemon *d)
{
	loop_stop(&d->loop);
	ctl_server_stop_accepting(&d->ctl);
	status_notify(d, "STOPPING=1");
}

const struct netfence *daemon_net_fence(struct daemon *d)
{
	char dir[PATH_MAX];
	int ret;

	if (d->net || d->net_tried || d->cfg.no_bpf)
		return d->net;
	d->net_tried = true;
	/*
	 * Beside the tracker's pins, not among them: the tracker's clean-up
	 * owns its directory. Kept across restarts like them.
	 */
	snprintf(dir, sizeof(dir), "%s-net", d->cfg.pin_dir);
	ret = netfence_open(&d->net, dir);
	if (ret) {
		d->net = NULL;
		pr_warn("no network fence for rbd victims (%s): a fence kills them, their queued writes may still leave",
			strerror(-ret));
	} else {
		pr_info("network fence for rbd victims on (%s%s)", dir,
			netfence_reused(d->net) ? ", taken over" : "");
	}
	return d->net;
}

void daemon_net_unfence(struct daemon *d, const struct storage *s)
{
	if (d->net && s->p.type == STORAGE_RBD)
		netfence_unmark_storage(d->net, s->idx);
}

/* A fenced rbd storage keeps its victims' sockets cut off across a stop. */
static bool net_holds(struct daemon *d)
{
	struct storage *s;
	unsigned int i;

	storage_for_each(&d->storages, i, s)
		if (s->p.type == STORAGE_RBD && s->hb &&
		    s->hb->snap.state == HB_FENCED)
			return true;
	return false;
}

void daemon_close(struct daemon *d)
{
	/*
	 * The core writes each storage's last heartbeat (they stay armed:
	 * a stop is a restart to come) and ends; what it still sent is run
	 * here, so no event is lost.
	 */
	core_stop(&d->core);
	chan_drain(&d->in);
	loop_quiesce(&d->loop, CANCEL_QUIESCE_MS);
	/* Ends the flights waiting on a write; queued ones then fail. */
	persist_close(&d->persist);
	/*
	 * The pins stay while a slot is armed: the programs go on counting
	 * and the dead man's switch on guarding while the daemon is away,
	 * until a restarted one takes them over. Only a teardown disarms.
	 */
	tracker_close(&d->tracker, !tracker_holds(&d->tracker));
	if (d->net)
		netfence_close(d->net, !net_holds(d));
	d->net = NULL;
	/* The socket goes last of what a new daemon needs: it may start. */
	ctl_server_close(&d->ctl);
	if (d->listen.passed && d->listen.fd >= 0)
		close(d->listen.fd);
	free_storages(d);
	peer_queries_free(d);
	if (d->sigfd >= 0)
		close(d->sigfd);
	/* A Ceph connection of a query or a staging answers here. */
	if (rados_links_quiet(CANCEL_QUIESCE_MS))
		chan_exit(&d->in);
	/* The closes queued last go to io-wq before the ring does. */
	io_uring_submit(&d->loop.ring);
	storage_set_closer(NULL);
	loop_exit(&d->loop);
	journal_free(&d->journal);
	json_decref(d->status);
	json_decref(d->rearming);
	json_decref(d->unarmed);
	json_decref(d->unarmed_hung);
	json_decref(d->pending_events);
	config_free(&d->cfg);
	if (d->ready_fd >= 0)
		close(d->ready_fd);
}
