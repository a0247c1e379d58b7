/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What crosses between the control plane and the fencing core about one
 * storage's fencer. The control plane stages and commits storages; the
 * core owns their fencers. They share no memory: the control plane sends
 * a fencer everything it needs (a copy of the parameters, its own
 * duplicate of the record fd, the device set), and the core sends back
 * a snapshot of the fencer's state after every change, with the event,
 * if any, that the change made. query-status is answered from the last
 * snapshot; the state file's fence comes from it too. The one thing both
 * see is the storage's slot in the BPF tracker's mapped maps, which the
 * kernel writes and the core only reads (its evidence).
 */
#ifndef IOFENCE_FENCER_MSG_H
#define IOFENCE_FENCER_MSG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include <linux/types.h>

#include "chan.h"

struct netfence;
#include "iofence.h"
#include "storage.h"
#include "victims.h"

enum hb_state {
	HB_HEALTHY,
	HB_LATE,
	HB_FENCED,
};

#define FENCE_REASON_MAX 96

/* Everything a fencer works from; owned by whoever holds it. */
struct fencer_cfg {
	struct storage_params p;
	char host_uuid[STORAGE_UUID_MAX + 1];
	char *hook; /* the fence hook to run; NULL: none */
	int fd; /* the record's own duplicate; closed by its owner; rbd: -1 */
	/* rbd: a reference to the storage's link, the object, the addresses */
	struct rados_link *rados;
	char rados_oid[STORAGE_RBD_OBJECT_MAX];
	char rados_addrs[256];
	/* rbd: the network fence its victims are marked in; NULL: none */
	const struct netfence *net;
	uint32_t size;
	uint64_t offset;
	bool direct;
	struct devset devs;
	uint64_t seq_floor; /* the sequence goes on after the record found */
	uint64_t t_ok_ns; /* from that record, on this boot; or 0 */
	/*
	 * The storage's slot in the BPF tracker, mapped, read only; NULL
	 * without the tracker. Its generation as armed: a slot that shows
	 * another is another storage's since, and says nothing of this one.
	 */
	const struct iofence_slot *slot;
	const struct iofence_write_ages *ages;
	uint32_t slot_gen;
};

/* Frees what @c holds, the fd aside (its owner closes it); drops the link. */
void fencer_cfg_release(struct fencer_cfg *c);

/* A fence the state file kept across a restart. */
struct fence_restore {
	bool fenced;
	bool escalated;
	int64_t fenced_real_s;
	char reason[FENCE_REASON_MAX];
};

/* The victim search of a fence, as the last scan saw it. */
struct scan_report {
	unsigned int examined, skipped;
	int last_err;
	pid_t last_pid;
	bool complete;
};

const char *hb_state_name(enum hb_state s);
json_t *scan_report_json(const struct scan_report *s);

/* A process a fence would kill, as the VM census last saw it. */
struct census_vm {
	pid_t pid;
	char exe[VICTIM_EXE_MAX];
	char uuid[37]; /* "" when it names no VM */
};

/* Of the census, what query-status lists; the rest are counted. */
#define CENSUS_REPORT_MAX 32

/* The last census of a fencer, for the control plane. */
struct census_report {
	struct census_vm vms[CENSUS_REPORT_MAX];
	unsigned int n; /* listed */
	unsigned int found; /* in all: more than n when some are not listed */
	uint64_t started_ns; /* monotonic: it saw processes from then on */
	struct scan_report scan; /* what it could not read */
};

struct hb_snap {
	enum hb_state state;
	uint64_t seq; /* of the last record sent */
	uint64_t t_ok_ns;
	bool writing;
	bool failing;
	bool rt_ioprio;
	uint64_t writes_ok, writes_failed, writes_timed_out;
	int last_error;
	uint64_t last_latency_ns, max_latency_ns;
	uint64_t last_jitter_ns, max_jitter_ns;
	/* while fenced */
	int64_t fenced_real_s;
	char reason[FENCE_REASON_MAX];
	bool completed, escalated;
	struct scan_report scan;
	uint64_t fences; /* fired since the fencer started */
};

/* control -> core */
struct msg_fencer_start {
	struct msg m;
	uint64_t id;
	uint32_t idx;
	struct fencer_cfg cfg;
	struct fence_restore restore;
};

struct msg_fencer_update {
	struct msg m;
	uint64_t id;
	uint32_t idx;
	struct fencer_cfg cfg;
};

struct msg_fencer_stop {
	struct msg m;
	uint64_t id;
};

struct msg_unfence {
	struct msg m;
	uint64_t id;
	uid_t uid;
	uint64_t conn_id;
	json_t *req_id;
};

/* core -> control */
struct msg_fencer_report {
	struct msg m;
	uint64_t id;
	uint32_t idx;
	struct hb_snap snap;
	json_t *victims; /* the fence's victims now; NULL: unchanged */
	struct census_report *census; /* a census done; NULL: unchanged */
	const char *event; /* NULL: none */
	json_t *data;
};

struct msg_unfence_done {
	struct msg m;
	uint64_t conn_id;
	json_t *req_id;
	char uuid[STORAGE_UUID_MAX + 1];
	int ret;
	char err[256];
};

#endif
