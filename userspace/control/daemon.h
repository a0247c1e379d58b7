/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control plane's state: everything its loop owns. The fencers and
 * the watchdog are the core's (core.h); what the control plane knows of
 * them is what the core last reported.
 */
#ifndef IOFENCE_DAEMON_H
#define IOFENCE_DAEMON_H

#include <sys/signalfd.h>

#include "chan.h"
#include "config.h"
#include "core.h"
#include "ctl_server.h"
#include "journal.h"
#include "list.h"
#include "loop.h"
#include "persist.h"
#include "storage.h"
#include "tracker.h"
#include "lag.h"
#include "sd_listen.h"
#include "target_watch.h"

enum host_state {
	HOST_CONNECTING,
	HOST_CONNECTED,
	HOST_DISCONNECTED,
};

struct daemon {
	struct config cfg;
	struct loop loop;
	struct chan in; /* from the fencing core */
	struct core core;
	struct tracker tracker;
	/* rbd victims' network fence: opened with the first rbd storage */
	struct netfence *net;
	bool net_tried;
	struct storage_table storages;
	struct ctl_server ctl;
	struct persister persist;
	struct journal journal;
	enum host_state host_state;
	struct list_head flights; /* setups queued; the first one runs */
	struct list_head peers; /* query-peer observations under way */
	json_t *unarmed; /* state entries that failed to re-arm, kept */
	json_t *rearming; /* start-up: the state file's storages, until re-armed */
	json_t *status; /* query-status's reply, kept and updated (status.c) */
	/*
	 * uuids of those that failed because their storage hung, with
	 * "force": this host cannot keep their contract, so the watchdog
	 * is not petted while any is left.
	 */
	json_t *unarmed_hung;
	json_t *pending_events; /* held until a state write carries them */
	uint64_t next_flight;
	uint64_t next_fencer_id;
	bool rearm_hold; /* told the core to hold the watchdog */
	struct msg_core_report core_last; /* the core's last report */
	uint64_t core_seen_ms; /* when it came */
	/* the control plane's own pulse: its lag, systemd's watchdog */
	struct loop_op pulse;
	struct __kernel_timespec pulse_ts;
	uint64_t pulse_due_ns;
	struct lag lag;
	uint64_t sd_watchdog_ms; /* systemd's WatchdogSec; 0: none */
	uint64_t sd_next_ms;
	/* systemd: the control socket it passed, and what it was told */
	struct sd_socket listen;
	bool sd_notify; /* $NOTIFY_SOCKET is set */
	char sd_status[256]; /* the STATUS= line last sent */
	uint64_t sd_extend_ms; /* next start timeout extension */
	unsigned int stored; /* storages the state held at start */
	uint64_t rearm_retry_ms; /* when the unarmed are tried again */
	/*
	 * Flights that are over with a step still in the kernel (stuck on
	 * a dead storage): kept, buffers and all, until it ends, if ever.
	 */
	struct list_head stuck_flights;
	bool starting; /* re-arming from the state file, socket not open */
	struct target_watch targets; /* does each target name what was armed */
	bool queueing_rearm; /* setup_rearm() is still queueing its flights */
	gid_t socket_gid; /* may connect and query; (gid_t)-1: root only */
	gid_t control_gid; /* may change state; (gid_t)-1: root only */
	int sigfd;
	struct signalfd_siginfo siginfo;
	struct loop_op sig_op;
	uint64_t start_mono_ms;
	uint64_t requests; /* served since start */
	uint64_t handled; /* requests that reached a command handler */
	uint64_t handler_ns_total; /* daemon time in command handlers */
	uint64_t handler_ns_max;
	int ready_fd; /* tells the parent when detached; -1 otherwise */
	int exit_code;
};

/* SQ entries: enough for every connection's recv and send at once. */
#define DAEMON_LOOP_ENTRIES 1024
/* The control plane measures its lag this often. */
#define DAEMON_PULSE_MS 100
/* While re-arming, systemd's start timeout is extended this far ahead. */
#define SD_START_EXTEND_MS 20000
/*
 * The core reports every CORE_REPORT_MS; without a report for this long
 * it is not making progress, and systemd is not told otherwise.
 */
#define CORE_ALIVE_MS (4 * CORE_REPORT_MS)

/*
 * Everything but the signals and the systemd watchdog, which belong to
 * the process: the loop, the tracker, the state, re-arming from it (the
 * socket opens when that is done). On failure @d is released.
 */
int daemon_open(struct daemon *d, int ready_fd);
/*
 * SIGTERM: takes no more connections (they wait in the backlog for the
 * next daemon), tells systemd, and ends the loop. Every storage stays
 * armed: only a teardown disarms.
 */
void daemon_stop(struct daemon *d);
/* Cancels what is in flight and releases everything. */
void daemon_close(struct daemon *d);
/*
 * Makes the state dir (0700) and its missing parents (0755) when it is
 * not there, saying so. 0 or a negative errno, logged.
 */
int daemon_make_state_dir(const char *dir);

const char *host_state_name(enum host_state s);
int host_state_parse(const char *name, enum host_state *s);

/* The whole persisted state as one JSON document (new reference). */
json_t *daemon_state_doc(struct daemon *d);
/* Journals, and publishes once the next state write carries it. */
void daemon_event(struct daemon *d, const char *name, json_t *data);
/* Publishes the held @msg (borrowed) once a state write carries it. */
void daemon_event_defer(struct daemon *d, json_t *msg);
/* persist.c: a write carrying the first @n deferred events succeeded. */
void daemon_events_written(struct daemon *d, size_t n);
/*
 * The two halves, for an event that must be in the very write that makes
 * its fact durable: journal it, held (borrowed message back, or NULL),
 * then publish it once the write succeeded, or journal_drop() it if not.
 */
json_t *daemon_event_journal(struct daemon *d, const char *name, json_t *data);
void daemon_event_publish(struct daemon *d, json_t *msg);

/*
 * The network fence for rbd victims, opened the first time one is armed
 * (NULL: none: --no-bpf, or the kernel lacks it, said once); and lifting
 * a storage's marks (unfence, disarm).
 */
const struct netfence *daemon_net_fence(struct daemon *d);
void daemon_net_unfence(struct daemon *d, const struct storage *s);

/* Holds the watchdog's petting while a re-arm hung (the core decides). */
void daemon_watchdog_update(struct daemon *d);
/* The core reported recently: it is making progress. */
bool daemon_core_alive(const struct daemon *d);
/* setup.c: one best-effort flight per storage of the state file. */
void setup_rearm(struct daemon *d, json_t *storages);
/* ... and again for those that failed, now and then (REARM_RETRY_MS). */
void setup_rearm_retry(struct daemon *d);
/* iofenced.c: re-arming is over; open the socket and report ready. */
void daemon_started(struct daemon *d);
/* Disarms @s now: out of the table, the tracker and its files closed. */
void storage_disarm(struct daemon *d, struct storage *s);

#endif
