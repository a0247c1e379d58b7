// SPDX-License-Identifier: GPL-2.0-only
/*
 * The fencer of one armed storage, run by the core (core.h): it writes
 * the heartbeat record every interval and walks the timeline contract
 * (timeline.h) from the last write that succeeded:
 *
 *   healthy --(no success by t_ok + late)--> late   HEARTBEAT_LATE
 *   late    --(a write succeeds)-----------> healthy HEARTBEAT_RESTORED
 *   any     --(no success by t_ok + T)-----> fenced  FENCE_FIRED
 *
 * A fence starts a victim search in a worker, which kills each victim
 * the moment it is found (strategy permitting) and sends it here, where
 * its pidfd is polled for its death. FENCE_FIRED goes out with the
 * victims once the search is over, or at kill_grace if it is not (a
 * process the search could not get past, e.g. one stuck in D state
 * holding its mmap lock). At kill_grace, or once every victim died:
 * FENCE_COMPLETED, and with "force" and a survivor or an unfinished
 * search, FENCE_ESCALATED, which stops the watchdog's petting.
 * Heartbeats go on while fenced; when one succeeds again the storage is
 * STORAGE_RESTORED but stays fenced (and new victims are killed at every
 * interval) until `unfence` or a teardown.
 *
 * Never more than one heartbeat write is in flight: a write stuck in the
 * kernel counts as failed at its deadline, and the next attempt waits
 * until it has left the kernel. Writes run in io-wq, never inline.
 *
 * After every change the fencer sends the control plane a snapshot, with
 * the event the change made, if any (fencer_msg.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/ioprio.h>

#include "core.h"
#include "deadlines.h"
#include "fencer_core.h"
#include "fencer_msg.h"
#include "log.h"
#include "netfence.h"
#include "rados_link.h"
#include "record.h"
#include "spawner.h"
#include "timed_op.h"
#include "timeline.h"
#include "write_ages.h"

#define NS_PER_MS 1000000ull
_Static_assert(LOOP_BOUNDED_WORKERS > STORAGE_MAX,
	       "a worker for every storage's heartbeat, and some to spare");

/* Victims a fence remembers; more are killed, and counted. */
#define FENCE_VICTIMS_MAX 128
/* Victim searches of one storage under way at once. */
#define FENCER_SCANS_MAX 2

/* VMs one census remembers; more are counted in the record. */
#define CENSUS_VMS_MAX 256
_Static_assert(CENSUS_VMS_MAX >= RECORD_VMS_MAX, "the record's VMs fit");

struct fence_victim {
	struct loop_op poll; /* the pidfd turns readable: the victim is gone */
	struct fencer *f;
	struct victim v;
	int kill_err; /* 0, or why SIGKILL could not be sent */
	uint64_t died_ns; /* 0 while alive */
	uint64_t killed_ns; /* when SIGKILL was sent */
	uint64_t grace_from; /* its kill_grace counts from here */
	bool orphan; /* released while its poll was in flight */
};

struct fencer {
	struct core *c;
	struct list_head link;
	uint64_t id;
	uint32_t idx;
	struct fencer_cfg cfg;
	bool stopping; /* the storage is gone: last record, then free */
	void *buf;
	struct timed_op io;
	bool writing; /* the write is still in the kernel */
	/*
	 * The fd the write in flight names. io-wq looks an fd up only when
	 * a worker takes the request: closed before that (an update that
	 * brings a new fd), the number could name another file by then,
	 * and the record would land there. So it is closed once the write
	 * is out of the kernel.
	 */
	int write_fd;
	bool write_fd_retired;
	enum {
		FINAL_NONE,
		FINAL_OWED, /* after the write in flight */
		FINAL_SENT,
	} final; /* the last record: teardown's or the daemon stop's */
	void *final_buf;
	uint64_t final_timeout_ms;
	uint64_t seq; /* of the next record */
	uint64_t t_ok_ns;
	uint64_t ok_seen_ns; /* when that success was seen */
	uint64_t attempt_ns; /* start of the write in flight or last one */
	uint64_t next_ns; /* when the next write is due */
	enum hb_state state;
	bool failing; /* the last write failed: the next success restores */
	bool blocklisted; /* rbd: refused so, since the last success */
	int ioprio;

	/* counters, for query-status */
	uint64_t writes_ok, writes_failed, writes_timed_out;
	int last_error;
	uint64_t last_latency_ns, max_latency_ns;
	uint64_t last_jitter_ns, max_jitter_ns;

	/* the fence, while fenced */
	unsigned int gen; /* of the fence: bumped by unfence */
	uint64_t fenced_ns;
	uint64_t contract_ns; /* t_ok + T: when the fence was due */
	uint64_t fence_t_ok_ns; /* t_ok then: writes may succeed meanwhile */
	uint64_t rekill_ns; /* next look for new victims while fenced */
	int64_t fenced_real_s;
	char reason[FENCE_REASON_MAX];
	bool fired; /* FENCE_FIRED sent */
	bool completed; /* every victim died, or kill_grace passed */
	bool escalated;
	struct fence_victim **victims;
	unsigned int nvictims, victims_alive, victims_omitted;
	unsigned int scans; /* searches under way */
	unsigned int first_new; /* of the victims the next report lists */
	struct scan_report scan;
	bool victims_changed; /* since the last snapshot */
	bool dirty; /* something a snapshot shows changed since the last */

	/* the VMs on this storage, for the record and to name victims */
	struct census_vm *vms;
	unsigned int nvms, vms_found;
	uint64_t vms_ns;
	bool census_busy;
	struct census_report *census; /* done, for the next report */
	uint64_t fences;

	/* the kernel's evidence: when to look next, and what the last saw */
	uint64_t ev_next_ns;
	uint64_t ev_failed; /* the slot's failed completions then */
	bool ev_stuck, ev_burst; /* reported on a look that first sees one */

	struct loop_op timer;
	struct __kernel_timespec timer_ts;
	uint64_t timer_ns; /* when the pending timer fires; 0: none */
	unsigned int pending; /* victim polls and timer CQEs to come */
};

static void step(struct fencer *f);

static uint64_t ms_ns(uint64_t ms)
{
	return ms * NS_PER_MS;
}

static int64_t ns_ms(int64_t ns)
{
	return ns / (int64_t)NS_PER_MS;
}

static const struct storage_params *params(const struct fencer *f)
{
	return &f->cfg.p;
}

static struct loop *loop_of(const struct fencer *f)
{
	return &f->c->loop;
}

/* Absolute monotonic time of a contract figure, in ns. */
static uint64_t at(const struct fencer *f, uint64_t ms_after_ok)
{
	return f->t_ok_ns + ms_ns(ms_after_ok);
}

/*
 * When the storage turns late. A write that took longer than an interval
 * succeeded with t_ok already past t_ok + I + D; the write after it (due
 * at once) gets its own deadline before the storage counts as late again,
 * so one slow write is one HEARTBEAT_LATE, not two. Only this warning
 * waits: the fence still counts from t_ok.
 */
static uint64_t late_at(const struct fencer *f)
{
	uint64_t by_ok = at(f, timeline_late_ms(params(f)));
	uint64_t by_seen = f->ok_seen_ns + ms_ns(params(f)->io_timeout_ms);

	return by_ok > by_seen ? by_ok : by_seen;
}

static uint64_t fence_deadline_ms(const struct fencer *f)
{
	return timeline_fence_deadline_ms(params(f), f->c->wd.timeout_ms);
}

static struct fencer *fencer_find(struct core *c, uint64_t id)
{
	struct list_head *pos;

	for (pos = c->fencers.next; pos != &c->fencers; pos = pos->next) {
		struct fencer *f = list_entry(pos, struct fencer, link);

		if (f->id == id && !f->stopping)
			return f;
	}
	return NULL;
}

/* --- reports to the control plane ---------------------------------------- */

static json_t *victims_json(const struct fencer *f, unsigned int first);

static void snapshot(const struct fencer *f, struct hb_snap *s)
{
	*s = (struct hb_snap){
		.state = f->state,
		.seq = f->seq - 1,
		.t_ok_ns = f->t_ok_ns,
		.writing = f->writing,
		.failing = f->failing,
		.rt_ioprio = f->ioprio != 0,
		.writes_ok = f->writes_ok,
		.writes_failed = f->writes_failed,
		.writes_timed_out = f->writes_timed_out,
		.last_error = f->last_error,
		.last_latency_ns = f->last_latency_ns,
		.max_latency_ns = f->max_latency_ns,
		.last_jitter_ns = f->last_jitter_ns,
		.max_jitter_ns = f->max_jitter_ns,
		.fenced_real_s = f->fenced_real_s,
		.completed = f->completed,
		.escalated = f->escalated,
		.scan = f->scan,
		.fences = f->fences,
	};
	memcpy(s->reason, f->reason, sizeof(s->reason));
}

/* The snapshot, with @name's event when not NULL (@data stolen). */
static void report(struct fencer *f, const char *name, json_t *data)
{
	struct msg_fencer_report *r = calloc(1, sizeof(*r));

	if (!r) {
		/* Never silent: the event is at least in the log. */
		pr_err("%s: out of memory; event %s not reported",
		       f->cfg.p.uuid, name ? name : "(snapshot)");
		json_decref(data);
		return;
	}
	r->id = f->id;
	r->idx = f->idx;
	f->dirty = false;
	snapshot(f, &r->snap);
	if (f->victims_changed) {
		r->victims = victims_json(f, 0);
		f->victims_changed = false;
	}
	r->census = f->census;
	f->census = NULL;
	r->event = name;
	if (data) {
		json_object_set_new(data, "storage",
				    json_string(f->cfg.p.uuid));
		json_object_set_new(data, "host_uuid",
				    json_string(f->cfg.host_uuid));
	}
	r->data = data;
	core_report(f->c, &r->m, f->c->ops->fencer_report);
}

static json_t *victim_json(const struct fencer *f,
			   const struct fence_victim *fv)
{
	json_t *o = json_pack("{s:i,s:s,s:s}", "pid", fv->v.pid, "exe",
			      fv->v.exe, "why", fv->v.why);

	/* An executable's name is anyone's bytes; the victim still counts. */
	if (!o)
		o = json_pack("{s:i,s:s,s:s}", "pid", fv->v.pid, "exe",
			      "(not UTF-8)", "why", fv->v.why);
	if (o && fv->v.vm_uuid[0])
		json_object_set_new(o, "vm_uuid", json_string(fv->v.vm_uuid));
	/* From the moment the contract says "fence" to the death seen. */
	if (fv->died_ns)
		json_object_set_new(o, "dead_after_us",
				    json_integer((json_int_t)(fv->died_ns -
							      f->contract_ns) /
						 1000));
	if (params(f)->strategy == FENCE_PERMISSIVE)
		json_object_set_new(o, "result", json_string("spared"));
	else if (fv->kill_err && fv->kill_err != -ESRCH)
		json_object_set_new(o, "result",
				    json_sprintf("kill failed: %s",
						 strerror(-fv->kill_err)));
	else if (fv->died_ns)
		json_object_set_new(o, "result", json_string("dead"));
	else if (loop_now_ns() >=
		 fv->grace_from + ms_ns(params(f)->kill_grace_ms))
		json_object_set_new(o, "result", json_string("alive"));
	else
		json_object_set_new(o, "result", json_string("killed"));
	return o;
}

/* The victims from index @first on. */
static json_t *victims_json(const struct fencer *f, unsigned int first)
{
	json_t *list = json_array();

	for (unsigned int i = first; i < f->nvictims; i++)
		json_array_append_new(list, victim_json(f, f->victims[i]));
	return list;
}

/* --- lifetime ------------------------------------------------------------ */

static bool idle(const struct fencer *f)
{
	return !f->writing && !f->pending;
}

/*
 * A victim whose poll is still in the kernel is let go of only when its
 * CQE comes: the poll is cancelled, and its completion frees it.
 */
static void release_victims(struct fencer *f)
{
	for (unsigned int i = 0; i < f->nvictims; i++) {
		struct fence_victim *fv = f->victims[i];

		if (fv->poll.busy) {
			fv->orphan = true;
			io_uring_prep_poll_remove(loop_sqe(loop_of(f), NULL),
						  (__u64)(uintptr_t)&fv->poll);
			continue;
		}
		victims_release(&fv->v, 1);
		free(fv);
	}
	free(f->victims);
	f->victims = NULL;
	f->nvictims = f->victims_alive = f->victims_omitted = 0;
	f->first_new = 0;
	f->victims_changed = true;
}

/*
 * Buffers a stuck write may still read, kept for good (and reachable, so
 * a leak checker knows they are kept on purpose). Only at exit, and one
 * or two per storage stuck then.
 */
struct abandoned {
	struct abandoned *next;
	void *buf;
};
static struct abandoned *abandoned;

static void abandon(void *buf)
{
	struct abandoned *a;

	if (!buf)
		return;
	a = malloc(sizeof(*a));
	if (!a)
		return; /* still never freed, only not listed */
	*a = (struct abandoned){ .next = abandoned, .buf = buf };
	abandoned = a;
}

/* Nothing of it is in the kernel any more, or the loop is gone. */
static void fencer_free(struct fencer *f)
{
	for (unsigned int i = 0; i < f->nvictims; i++) {
		victims_release(&f->victims[i]->v, 1);
		free(f->victims[i]);
	}
	free(f->victims);
	list_del(&f->link);
	f->c->nfencers--;
	if (f->write_fd_retired && !f->writing)
		loop_close(loop_of(f), f->write_fd);
	loop_close(loop_of(f), f->cfg.fd);
	fencer_cfg_release(&f->cfg);
	free(f->vms);
	free(f->census);
	/*
	 * A write the kernel still holds (stuck on a dead storage at exit)
	 * may read its buffer whenever the storage answers: never free it.
	 */
	if (f->writing) {
		abandon(f->buf);
		abandon(f->final_buf);
	} else {
		free(f->final_buf);
		free(f->buf);
	}
	free(f);
}

/* A stopping fencer goes once nothing of it is in the kernel. */
static bool settle(struct fencer *f)
{
	if (!f->stopping || !idle(f))
		return false;
	fencer_free(f);
	return true;
}

/* --- the timer: one per fencer, at the next moment the contract names ---- */

static void timer_done(struct loop_op *op, int res, unsigned int flags)
{
	struct fencer *f = container_of(op, struct fencer, timer);
	uint64_t due = f->timer_ns;

	f->pending--;
	f->timer_ns = 0;
	if (settle(f) || loop_of(f)->stopping || f->stopping)
		return;
	if (res == -ETIME)
		core_lag_sample(f->c, due, loop_now_ns());
	step(f);
}

static void timer_at(struct fencer *f, uint64_t when_ns)
{
	struct io_uring_sqe *sqe;

	if (f->timer_ns == when_ns)
		return;
	f->timer_ts.tv_sec = when_ns / 1000000000ull;
	f->timer_ts.tv_nsec = when_ns % 1000000000ull;
	if (f->timer_ns) {
		/* The pending timer moves; if it fired already, step() runs. */
		sqe = loop_sqe(loop_of(f), NULL);
		io_uring_prep_timeout_update(sqe, &f->timer_ts,
					     (__u64)(uintptr_t)&f->timer,
					     IORING_TIMEOUT_ABS);
	} else {
		sqe = loop_sqe(loop_of(f), &f->timer);
		io_uring_prep_timeout(sqe, &f->timer_ts, 0, IORING_TIMEOUT_ABS);
		f->pending++;
	}
	f->timer_ns = when_ns;
}

static void timer_cancel(struct fencer *f)
{
	if (!f->timer_ns)
		return;
	io_uring_prep_timeout_remove(loop_sqe(loop_of(f), NULL),
				     (__u64)(uintptr_t)&f->timer, 0);
}

/* --- the heartbeat write ------------------------------------------------- */

/* strerror() calls ETIMEDOUT "Connection timed out", which misleads here. */
static const char *write_error(int err)
{
	return err == ETIMEDOUT ? "write deadline passed" : strerror(err);
}

static enum record_state record_state(const struct fencer *f)
{
	if (f->state != HB_FENCED)
		return RECORD_ARMED;
	return f->completed ? RECORD_FENCED : RECORD_FENCING;
}

static void census_start(struct fencer *f, uint64_t now);

static int encode(struct fencer *f, void *buf, enum record_state state,
		  uint64_t now)
{
	const struct storage_params *p = params(f);
	const char *uuids[RECORD_VMS_MAX];
	unsigned int n = 0;
	struct timespec rt;
	struct record r = {
		.size = f->cfg.size,
		.state = state,
		.seq = f->seq,
		.monotonic_ns = now,
		.interval_ms = p->interval_ms,
		.timeout_ms = p->timeout_ms,
		/* A released storage promises nothing: no reset comes. */
		.fence_deadline_ms = state == RECORD_CLEAN_SHUTDOWN ?
					     0 :
					     fence_deadline_ms(f),
	};

	clock_gettime(CLOCK_REALTIME, &rt);
	r.realtime_ns = (uint64_t)rt.tv_sec * 1000000000ull + rt.tv_nsec;
	memcpy(r.boot_id, record_boot_id(), sizeof(r.boot_id));
	snprintf(r.host_uuid, sizeof(r.host_uuid), "%s", f->cfg.host_uuid);
	snprintf(r.storage_uuid, sizeof(r.storage_uuid), "%s", p->uuid);
	for (unsigned int i = 0; i < f->nvms && n < RECORD_VMS_MAX; i++)
		if (f->vms[i].uuid[0])
			uuids[n++] = f->vms[i].uuid;
	record_set_vms(&r, uuids, n);
	r.vms_omitted += f->vms_found - n;
	if (f->cfg.rados &&
	    record_addrs_encode(f->cfg.rados_addrs,
				(uint8_t *)buf + RECORD_SIZE_MAX))
		return -EINVAL;
	return record_encode(&r, buf);
}

/*
 * rbd: the write goes to the storage's link thread, and its answer comes
 * back as a message (fencer_on_rados). The deadline is the core's own,
 * as for a file: the link cannot hold it up.
 */
static void rados_submit(struct fencer *f, void *buf, uint64_t now,
			 uint64_t timeout_ms)
{
	int ret;

	timed_op_begin_remote(loop_of(f), &f->io);
	ret = rados_link_write(f->cfg.rados, f->cfg.rados_oid, buf,
			       RECORD_BUF_SIZE, &f->c->in, fencer_on_rados,
			       f->id);
	f->writing = true;
	f->attempt_ns = now;
	f->seq++;
	timed_op_submit(loop_of(f), &f->io, timeout_ms);
	if (ret)
		timed_op_complete(&f->io, ret);
}

static void write_submit(struct fencer *f, void *buf, uint64_t now,
			 uint64_t timeout_ms)
{
	struct io_uring_sqe *sqe;

	if (f->cfg.rados) {
		rados_submit(f, buf, now, timeout_ms);
		return;
	}
	sqe = timed_op_sqe(loop_of(f), &f->io);
	io_uring_prep_write(sqe, f->cfg.fd, buf, f->cfg.size, f->cfg.offset);
	/*
	 * Never inline: io_uring issues an O_DIRECT write to FUSE or NFS in
	 * io_uring_enter itself, and a dead server would hold the core
	 * there. Guest I/O on the same device must not starve it either.
	 */
	sqe->flags |= IOSQE_ASYNC;
	sqe->ioprio = f->ioprio;
	f->write_fd = f->cfg.fd;
	f->writing = true;
	f->attempt_ns = now;
	f->seq++;
	timed_op_submit(loop_of(f), &f->io, timeout_ms);
}

static void write_start(struct fencer *f, uint64_t now)
{
	uint64_t jitter = now > f->next_ns ? now - f->next_ns : 0;
	int ret;

	census_start(f, now);
	ret = encode(f, f->buf, record_state(f), now);
	if (ret) {
		/* Cannot happen with validated parameters; never silent. */
		pr_err("%s: cannot encode its record: %s", f->cfg.p.uuid,
		       strerror(-ret));
		f->next_ns = now + ms_ns(timeline_retry_ms(params(f)));
		return;
	}
	f->last_jitter_ns = jitter;
	if (jitter > f->max_jitter_ns)
		f->max_jitter_ns = jitter;
	write_submit(f, f->buf, now, params(f)->io_timeout_ms);
}

static void succeeded(struct fencer *f, uint64_t now)
{
	uint64_t lat = now - f->attempt_ns;
	bool was_failing = f->failing;

	f->writes_ok++;
	f->last_latency_ns = lat;
	if (lat > f->max_latency_ns)
		f->max_latency_ns = lat;
	/*
	 * The record may have become visible as soon as the write began,
	 * and the completion may be seen late (a busy or stopped loop):
	 * counting from the start never puts a deadline after the one
	 * peers compute.
	 */
	f->t_ok_ns = f->attempt_ns;
	f->ok_seen_ns = now;
	f->failing = false;
	f->blocklisted = false;
	f->last_error = 0;
	f->next_ns = at(f, timeline_next_write_ms(params(f)));
	if (f->state == HB_LATE) {
		f->state = HB_HEALTHY;
		report(f, "HEARTBEAT_RESTORED",
		       json_pack("{s:I,s:I}", "seq", (json_int_t)f->seq - 1,
				 "latency_us", (json_int_t)(lat / 1000)));
	} else if (f->state == HB_FENCED && was_failing) {
		report(f, "STORAGE_RESTORED",
		       json_pack("{s:I,s:b,s:s}", "seq", (json_int_t)f->seq - 1,
				 "fenced", 1, "hint",
				 "stays fenced until unfence or teardown"));
	}
}

static void failed(struct fencer *f, int res, uint64_t now)
{
	f->failing = true;
	if (res == -ETIMEDOUT)
		f->writes_timed_out++;
	else
		f->writes_failed++;
	f->last_error = res < 0 ? -res : EIO;
	f->next_ns = f->attempt_ns + ms_ns(timeline_retry_ms(params(f)));
	if (res == -EPERM && f->ioprio) {
		/* Only privileged callers may ask for the RT class. */
		pr_warn("%s: real-time I/O priority refused; heartbeats at the default priority",
			f->cfg.p.uuid);
		f->ioprio = 0;
		f->next_ns = now;
	}
}

static void io_done(struct timed_op *t, int res)
{
	struct fencer *f = container_of(t, struct fencer, io);
	uint64_t now = loop_now_ns();

	if (f->stopping)
		return;
	f->dirty = true;
	if (res == (int)f->cfg.size)
		succeeded(f, now);
	else
		failed(f, res >= 0 ? -EIO : res, now);
}

/*
 * A write that lands after its deadline still made the record visible:
 * peers saw progress then, so that is when the heartbeat succeeded.
 */
static void io_late(struct timed_op *t, int res)
{
	struct fencer *f = container_of(t, struct fencer, io);

	if (!f->stopping && res == (int)f->cfg.size)
		succeeded(f, loop_now_ns());
}

static void blocklisted(struct fencer *f, uint64_t now);

void fencer_on_rados(struct msg *m, void *ctx)
{
	struct rados_reply *r = container_of(m, struct rados_reply, m);
	struct fencer *f = fencer_find(ctx, r->tag);
	int res = r->res;

	if (!f || !f->io.io.busy) {
		rados_reply_free(r);
		return;
	}
	if (r->addrs[0] && strcmp(r->addrs, f->cfg.rados_addrs)) {
		/* A reconnect may come from another address: publish it. */
		snprintf(f->cfg.rados_addrs, sizeof(f->cfg.rados_addrs), "%s",
			 r->addrs);
	}
	rados_reply_free(r);
	if (res == -ESHUTDOWN && !f->stopping)
		blocklisted(f, loop_now_ns());
	timed_op_complete(&f->io, res ? res : (int)f->cfg.size);
}

static void final_submit(struct fencer *f)
{
	f->final = FINAL_SENT;
	write_submit(f, f->final_buf, loop_now_ns(), f->final_timeout_ms);
}

static void io_idle(struct timed_op *t)
{
	struct fencer *f = container_of(t, struct fencer, io);

	f->writing = false;
	f->dirty = true;
	if (f->write_fd_retired) {
		f->write_fd_retired = false;
		loop_close(loop_of(f), f->write_fd);
	}
	/*
	 * Once the loop has stopped, the shutdown's time for last records
	 * is up, and nothing would reap a new write or its deadline. A
	 * heartbeat that comes back after that (a rados reply drained at
	 * exit) is the last record: the restarted daemon goes on from it.
	 */
	if (f->final == FINAL_OWED && !loop_of(f)->stopping) {
		final_submit(f);
		return;
	}
	if (settle(f) || loop_of(f)->stopping || f->final == FINAL_SENT)
		return;
	step(f);
}

/* --- work for the workers: victim searches, census, fence hook ----------- */

struct scan_job {
	struct work w;
	struct core *c;
	uint64_t id;
	unsigned int gen;
	bool kill;
	bool first; /* the fence's own search, which FENCE_FIRED waits for */
	bool census; /* only the VM uuids, for the record */
	struct devset devs;
	/* rbd: the victims are the qemus with a disk in this pool */
	char pool[RADOS_NAME_MAX + 1];
	char ns[RADOS_NAME_MAX + 1];
	const struct netfence *net; /* rbd: where victims are marked */
	uint32_t idx;
	char *patterns[STORAGE_VICTIMS_MAX];
	unsigned int npatterns;
	pid_t self;
	struct msg_scan_done *done; /* the report, filled as it goes */
};

struct msg_victim {
	struct msg m;
	uint64_t id;
	unsigned int gen;
	struct victim v;
	int kill_err;
	uint64_t killed_ns;
	bool named; /* only the VM uuid of an earlier one */
};

struct msg_scan_done {
	struct msg m;
	uint64_t id;
	unsigned int gen;
	bool first;
	bool census;
	struct scan_report report;
	int found; /* victims found, or -errno */
	/* census: the VMs seen (with a uuid: vms_named of them) */
	struct census_vm *vms;
	unsigned int nvms, vms_named;
	uint64_t started_ns;
};

static void scan_job_free(struct scan_job *j)
{
	for (unsigned int i = 0; i < j->npatterns; i++)
		free(j->patterns[i]);
	free(j);
}

static void on_victim(struct msg *m, void *ctx);
static void on_scan_done(struct msg *m, void *ctx);

/* Worker, census: a VM on the storage, remembered by pid. */
static void census_found(struct victim *v, void *arg)
{
	struct scan_job *j = arg;
	struct msg_scan_done *d = j->done;

	if (d->nvms < CENSUS_VMS_MAX) {
		d->vms[d->nvms] = (struct census_vm){ .pid = v->pid };
		memcpy(d->vms[d->nvms].exe, v->exe, sizeof(v->exe));
		d->nvms++;
	}
	victims_release(v, 1);
}

static void census_named(pid_t pid, const char *vm_uuid, void *arg)
{
	struct msg_scan_done *d = ((struct scan_job *)arg)->done;

	for (unsigned int i = 0; i < d->nvms; i++) {
		if (d->vms[i].pid != pid)
			continue;
		snprintf(d->vms[i].uuid, sizeof(d->vms[i].uuid), "%s", vm_uuid);
		d->vms_named++;
	}
}

/* Worker: a victim known; it is killed here and now, then reported. */
static void scan_found(struct victim *v, void *arg)
{
	struct scan_job *j = arg;
	struct msg_victim *mv = calloc(1, sizeof(*mv));
	int err = 0;

	/*
	 * rbd: the victim's sockets go quiet first, in the kernel, so that
	 * what it queued for the cluster never leaves, even once it is dead
	 * (an orphaned socket still sends its queue). Only BPF map updates:
	 * never a file, never /proc.
	 */
	if (j->kill && j->net) {
		int ret = netfence_mark(j->net, v->pid, j->idx);

		if (ret && ret != -ENOEXEC)
			pr_warn("victim %d: network fence: %s; killed all the same",
				(int)v->pid, strerror(-ret));
	}
	if (j->kill)
		err = victim_kill(v);
	if (!mv) {
		victims_release(v, 1);
		return;
	}
	mv->id = j->id;
	mv->gen = j->gen;
	mv->v = *v;
	mv->kill_err = err;
	mv->killed_ns = loop_now_ns();
	chan_send(&j->c->in, &mv->m, on_victim);
}

static void scan_named(pid_t pid, const char *vm_uuid, void *arg)
{
	struct scan_job *j = arg;
	struct msg_victim *mv = calloc(1, sizeof(*mv));

	if (!mv)
		return;
	mv->id = j->id;
	mv->gen = j->gen;
	mv->named = true;
	mv->v.pid = pid;
	mv->v.pidfd = -1;
	snprintf(mv->v.vm_uuid, sizeof(mv->v.vm_uuid), "%s", vm_uuid);
	chan_send(&j->c->in, &mv->m, on_victim);
}

static void scan_run(struct work *w)
{
	struct scan_job *j = container_of(w, struct scan_job, w);
	struct victim_filter filter = {
		.patterns = j->patterns,
		.npatterns = j->npatterns,
		.self = j->self,
		.rbd_pool = j->pool[0] ? j->pool : NULL,
		.rbd_ns = j->ns,
	};
	struct victim_scan_stats st = { 0 };
	struct msg_scan_done *d = calloc(1, sizeof(*d));
	int ret;

	if (d && j->census)
		d->vms = calloc(CENSUS_VMS_MAX, sizeof(*d->vms));
	if (!d || (j->census && !d->vms)) {
		/* The core hears nothing: a search it waits for ends at kill_grace. */
		pr_err("out of memory: a victim search did not run");
		if (d)
			free(d->vms);
		free(d);
		scan_job_free(j);
		return;
	}
	j->done = d;
	d->started_ns = loop_now_ns();
	if (j->census)
		ret = victims_scan_each(&j->devs, &filter, "/proc",
					census_found, census_named, j, &st);
	else
		ret = victims_scan_each(&j->devs, &filter, "/proc", scan_found,
					scan_named, j, &st);
	d->id = j->id;
	d->gen = j->gen;
	d->first = j->first;
	d->census = j->census;
	d->found = ret;
	d->report = (struct scan_report){
		.examined = st.examined,
		.skipped = st.skipped,
		.last_err = ret < 0 ? ret : st.last_err,
		.last_pid = st.last_pid,
		.complete = ret >= 0 && st.complete,
	};
	chan_send(&j->c->in, &d->m, on_scan_done);
	scan_job_free(j);
}

static struct scan_job *scan_job_new(struct fencer *f)
{
	struct scan_job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->c = f->c;
	j->id = f->id;
	j->gen = f->gen;
	j->devs = f->cfg.devs;
	j->self = getpid();
	j->net = f->cfg.net;
	j->idx = f->idx;
	if (params(f)->type == STORAGE_RBD) {
		snprintf(j->pool, sizeof(j->pool), "%s", params(f)->pool);
		snprintf(j->ns, sizeof(j->ns), "%s",
			 params(f)->ns ? params(f)->ns : "");
	}
	/* The parameters may change while the job runs: its own copy. */
	for (unsigned int i = 0; i < params(f)->nvictims; i++) {
		j->patterns[i] = strdup(params(f)->victims[i]);
		if (!j->patterns[i]) {
			scan_job_free(j);
			return NULL;
		}
		j->npatterns++;
	}
	return j;
}

/* A victim search in a worker; false when none could be started. */
static bool scan_start(struct fencer *f, bool first)
{
	struct scan_job *j;

	if (f->scans >= FENCER_SCANS_MAX)
		return false;
	j = scan_job_new(f);
	if (!j) {
		pr_err("%s: out of memory: no victim search", f->cfg.p.uuid);
		return false;
	}
	j->kill = params(f)->strategy != FENCE_PERMISSIVE;
	j->first = first;
	j->w.urgent = true;
	f->scans++;
	pool_submit(&f->c->pool, &j->w, scan_run);
	return true;
}

/* The VMs on the storage, for the record, at most every VM_CENSUS_MS. */
static void census_start(struct fencer *f, uint64_t now)
{
	struct scan_job *j;

	/*
	 * A census is no kill: a few at a time, so that a burst of new
	 * storages does not start a worker each. The others try again at
	 * their next heartbeat.
	 */
	if (f->census_busy || f->c->censuses >= CORE_CENSUSES_MAX ||
	    (f->vms_ns && now - f->vms_ns < ms_ns(VM_CENSUS_MS)))
		return;
	j = scan_job_new(f);
	if (!j)
		return;
	j->census = true;
	f->vms_ns = now;
	f->census_busy = true;
	f->c->censuses++;
	pool_submit(&f->c->pool, &j->w, scan_run);
}

struct hook_job {
	struct spawn_job sj;
	struct work w; /* without a spawner */
	char *path;
	char *env[8];
	char what[96];
};

static void hook_job_free(struct hook_job *h)
{
	free(h->path);
	for (unsigned int i = 0; h->env[i]; i++)
		free(h->env[i]);
	free(h);
}

/*
 * Runs the fence hook with the default scheduling policy and signal
 * mask, stdin from /dev/null, killed when FENCE_HOOK_DEADLINE_MS passes,
 * on a thread of the spawner (spawner.h: one whose fd table holds no
 * storage, so that the hook's execve() closes none). A hook on a hung
 * file system blocks only this thread.
 */
static void hook_exec(struct hook_job *h)
{
	char *const argv[] = { h->path, NULL };
	struct sched_param sp = { 0 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	struct pollfd pfd;
	int status, ret, pidfd;
	pid_t pid;

	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setschedpolicy(&attr, SCHED_OTHER);
	posix_spawnattr_setschedparam(&attr, &sp);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
						POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETSCHEDULER);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	ret = posix_spawn(&pid, h->path, &fa, &attr, argv, h->env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (ret) {
		pr_err("%s: cannot start: %s", h->what, strerror(ret));
		goto out;
	}
	pr_info("%s: started, pid %d", h->what, pid);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	pfd = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	if (pidfd < 0 || poll(&pfd, 1, FENCE_HOOK_DEADLINE_MS) == 0) {
		pr_warn("%s: still running after %d ms; killed", h->what,
			FENCE_HOOK_DEADLINE_MS);
		kill(pid, SIGKILL);
	}
	if (pidfd >= 0)
		close(pidfd);
	/* A hook in D state keeps this worker, and no one else. */
	if (waitpid(pid, &status, 0) != pid)
		pr_warn("%s: waitpid: %s", h->what, strerror(errno));
	else if (WIFEXITED(status) && !WEXITSTATUS(status))
		pr_info("%s: done", h->what);
	else if (WIFEXITED(status))
		pr_warn("%s: exit status %d", h->what, WEXITSTATUS(status));
	else
		pr_warn("%s: killed by %s", h->what,
			strsignal(WTERMSIG(status)));
out:
	hook_job_free(h);
}

static void hook_spawned(struct spawn_job *sj)
{
	hook_exec(container_of(sj, struct hook_job, sj));
}

static void hook_run(struct work *w)
{
	hook_exec(container_of(w, struct hook_job, w));
}

static void run_hook(struct fencer *f)
{
	struct hook_job *h;
	char *victims = NULL;
	size_t len = 0;
	FILE *m;
	int n = 0;

	if (!f->cfg.hook)
		return;
	h = calloc(1, sizeof(*h));
	m = open_memstream(&victims, &len);
	if (!h || !m) {
		if (m)
			fclose(m);
		free(h);
		pr_err("%s: out of memory: fence hook not run", f->cfg.p.uuid);
		return;
	}
	fputs("IOFENCE_VICTIMS=", m);
	for (unsigned int i = 0; i < f->nvictims; i++)
		fprintf(m, "%s%d:%s:%s", i ? " " : "", f->victims[i]->v.pid,
			f->victims[i]->v.exe, f->victims[i]->v.vm_uuid);
	if (fclose(m))
		victims = NULL;
	h->env[n++] = victims;
	if (asprintf(&h->env[n++], "IOFENCE_STORAGE=%s", f->cfg.p.uuid) < 0 ||
	    asprintf(&h->env[n++], "IOFENCE_HOST=%s", f->cfg.host_uuid) < 0 ||
	    asprintf(&h->env[n++], "IOFENCE_STRATEGY=%s",
		     fence_strategy_name(f->cfg.p.strategy)) < 0 ||
	    asprintf(&h->env[n++], "IOFENCE_REASON=%s", f->reason) < 0 ||
	    !(h->env[n++] = strdup(
		      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")) ||
	    !victims || !(h->path = strdup(f->cfg.hook))) {
		h->env[n - 1] = NULL;
		hook_job_free(h);
		pr_err("%s: out of memory: fence hook not run", f->cfg.p.uuid);
		return;
	}
	snprintf(h->what, sizeof(h->what), "fence hook %s for %s", h->path,
		 f->cfg.p.uuid);
	/* Without a spawner (iofenced warned at start): from a worker. */
	if (spawner_submit(&h->sj, hook_spawned))
		pool_submit(&f->c->pool, &h->w, hook_run);
}

/* --- the fence ------------------------------------------------------------ */

static void victim_gone(struct loop_op *op, int res, unsigned int flags)
{
	struct fence_victim *fv = container_of(op, struct fence_victim, poll);
	struct fencer *f = fv->f;

	f->pending--;
	if (fv->orphan) {
		victims_release(&fv->v, 1);
		free(fv);
		settle(f);
		return;
	}
	if (res > 0 && (res & POLLIN) && !fv->died_ns) {
		fv->died_ns = loop_now_ns();
		f->victims_alive--;
		f->victims_changed = true;
	}
	if (settle(f) || loop_of(f)->stopping || f->stopping)
		return;
	step(f);
}

static void watch(struct fencer *f, struct fence_victim *fv)
{
	struct io_uring_sqe *sqe = loop_sqe(loop_of(f), &fv->poll);

	io_uring_prep_poll_add(sqe, fv->v.pidfd, POLLIN);
	f->pending++;
	f->victims_alive++;
}

static struct fence_victim *known(const struct fencer *f, pid_t pid)
{
	for (unsigned int i = 0; i < f->nvictims; i++)
		if (f->victims[i]->v.pid == pid && !f->victims[i]->died_ns)
			return f->victims[i];
	return NULL;
}

/*
 * A victim is killed before its command line is read (that takes its
 * mmap lock, and it is dying): its name comes from the last census.
 */
static void census_name(const struct fencer *f, struct fence_victim *fv)
{
	for (unsigned int i = 0; i < f->nvms; i++)
		if (f->vms[i].pid == fv->v.pid)
			memcpy(fv->v.vm_uuid, f->vms[i].uuid,
			       sizeof(fv->v.vm_uuid));
}

/* A victim the search found (and, strategy permitting, killed). */
static void add_victim(struct fencer *f, struct msg_victim *mv)
{
	struct fence_victim *fv, **grown;

	fv = known(f, mv->v.pid);
	if (fv) {
		victims_release(&mv->v, 1);
		return;
	}
	if (f->nvictims >= FENCE_VICTIMS_MAX) {
		f->victims_omitted++;
		victims_release(&mv->v, 1);
		return;
	}
	fv = calloc(1, sizeof(*fv));
	grown = fv ? realloc(f->victims, (f->nvictims + 1) * sizeof(*grown)) :
		     NULL;
	if (!grown) {
		/* It was killed already; only its record is lost. */
		free(fv);
		f->victims_omitted++;
		victims_release(&mv->v, 1);
		return;
	}
	f->victims = grown;
	*fv = (struct fence_victim){ .f = f, .v = mv->v };
	fv->poll.cb = victim_gone;
	fv->kill_err = mv->kill_err;
	fv->killed_ns = mv->killed_ns;
	/* The fence's own search has the fence's grace; later ones their own. */
	fv->grace_from = f->fired ? mv->killed_ns : f->contract_ns;
	if (!fv->v.vm_uuid[0])
		census_name(f, fv);
	f->victims[f->nvictims++] = fv;
	f->victims_changed = true;
	if (params(f)->strategy != FENCE_PERMISSIVE &&
	    (!fv->kill_err || fv->kill_err == -ESRCH))
		watch(f, fv);
}

static void on_victim(struct msg *m, void *ctx)
{
	struct msg_victim *mv = container_of(m, struct msg_victim, m);
	struct fencer *f = fencer_find(ctx, mv->id);

	if (!f || f->state != HB_FENCED || mv->gen != f->gen) {
		/* Killed for a fence that is over: nothing more to watch. */
		victims_release(&mv->v, 1);
	} else if (mv->named) {
		for (unsigned int i = 0; i < f->nvictims; i++)
			if (f->victims[i]->v.pid == mv->v.pid &&
			    mv->v.vm_uuid[0])
				memcpy(f->victims[i]->v.vm_uuid, mv->v.vm_uuid,
				       sizeof(mv->v.vm_uuid));
		f->victims_changed = true;
	} else {
		add_victim(f, mv);
		step(f);
	}
	free(mv);
}

static void fence_fired(struct fencer *f, uint64_t now)
{
	const struct storage_params *p = params(f);
	uint64_t deadline = fence_deadline_ms(f);

	f->fired = true;
	f->first_new = f->nvictims;
	pr_crit("%s: storage lost: fenced (%s), %u victims%s", p->uuid,
		fence_strategy_name(p->strategy), f->nvictims,
		f->scan.complete ? "" : ", victim search not finished");
	report(f, "FENCE_FIRED",
	       json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:i,s:o}", "strategy",
			 fence_strategy_name(p->strategy), "reason", f->reason,
			 "since_ok_ms",
			 (json_int_t)ns_ms(f->fenced_ns - f->fence_t_ok_ns),
			 "late_by_us",
			 (json_int_t)(f->fenced_ns - f->contract_ns) / 1000,
			 "fence_deadline_ms", (json_int_t)deadline,
			 "deadline_left_ms",
			 (json_int_t)(deadline ?
					      ns_ms((int64_t)(f->fence_t_ok_ns +
							      ms_ns(deadline)) -
						    (int64_t)now) :
					      0),
			 "victims", victims_json(f, 0), "victims_omitted",
			 f->victims_omitted, "scan",
			 scan_report_json(&f->scan)));
	run_hook(f);
}

/*
 * What a fence would kill now, for query-status: the census searched
 * with the fence's own rules (filter, device set, the same /proc walk),
 * so it lists every victim, named or not.
 */
static void census_report(struct fencer *f, const struct msg_scan_done *d)
{
	struct census_report *c = f->census;

	if (!c && !(c = f->census = malloc(sizeof(*c))))
		return;
	c->n = d->nvms < CENSUS_REPORT_MAX ? d->nvms : CENSUS_REPORT_MAX;
	memcpy(c->vms, d->vms, c->n * sizeof(*c->vms));
	c->found = (unsigned int)d->found;
	c->started_ns = d->started_ns;
	c->scan = d->report;
	report(f, NULL, NULL);
}

static void on_scan_done(struct msg *m, void *ctx)
{
	struct msg_scan_done *d = container_of(m, struct msg_scan_done, m);
	struct fencer *f = fencer_find(ctx, d->id);

	if (d->census)
		((struct core *)ctx)->censuses--;
	if (!f)
		goto out;
	if (d->census) {
		f->census_busy = false;
		if (d->found < 0) {
			pr_warn("%s: cannot list its VMs: %s", f->cfg.p.uuid,
				strerror(-d->found));
		} else {
			/* The VMs past what a census keeps still count. */
			f->vms_found = d->vms_named + (d->found - d->nvms);
			f->nvms = d->nvms;
			memcpy(f->vms, d->vms, f->nvms * sizeof(*f->vms));
			census_report(f, d);
		}
		goto out;
	}
	f->scans--;
	if (d->gen != f->gen || f->state != HB_FENCED)
		goto out;
	/*
	 * A process that cannot be read is skipped by every search, one
	 * per interval while fenced: say so when what is skipped changes,
	 * not at every interval (query-status always shows the last one).
	 */
	if (d->report.skipped && (d->report.skipped != f->scan.skipped ||
				  d->report.last_pid != f->scan.last_pid))
		pr_warn("%s: victim search skipped %u processes it could not read (last: pid %d, %s)",
			f->cfg.p.uuid, d->report.skipped, d->report.last_pid,
			strerror(-d->report.last_err));
	f->scan = d->report;
	if (d->found < 0)
		pr_err("%s: cannot look for victims: %s", f->cfg.p.uuid,
		       strerror(-d->found));
	if (!f->fired) {
		fence_fired(f, loop_now_ns());
	} else if (f->nvictims > f->first_new) {
		unsigned int first = f->first_new;

		f->first_new = f->nvictims;
		report(f, "FENCE_KILLED",
		       json_pack("{s:o,s:o}", "victims", victims_json(f, first),
				 "scan", scan_report_json(&f->scan)));
	}
	step(f);
out:
	free(d->vms);
	free(d);
}

/* The slot still describes this storage (see struct fencer_cfg). */
static const struct iofence_slot *own_slot(const struct fencer *f)
{
	const struct iofence_slot *s = f->cfg.slot;

	if (!s || __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE) !=
			  f->cfg.slot_gen)
		return NULL;
	return s;
}

/*
 * Writes on the storage's devices in flight now, the heartbeat write in
 * flight aside: on a block storage that is one request, stuck with the
 * others, and it carries only this host's record. -1: no evidence.
 */
static int64_t guest_writes_in_flight(const struct fencer *f)
{
	const struct iofence_slot *s = own_slot(f);
	int64_t n;

	if (!s)
		return -1;
	n = __atomic_load_n(&s->writes_in_flight, __ATOMIC_RELAXED);
	if (f->writing && f->cfg.p.type == STORAGE_BLOCK)
		n--;
	return n > 0 ? n : 0;
}

/*
 * The kernel write fence's proof, read from the slot (iofence.h): whether
 * writes to the storage are refused now (the daemon's own aside), since
 * when, counted from t_ok + T, and how many were refused. NULL: no slot.
 */
static json_t *kernel_fence_json(const struct fencer *f, uint64_t now)
{
	const struct iofence_slot *s = own_slot(f);
	uint64_t fenced, since, at;
	bool active;

	if (!s)
		return NULL;
	fenced = __atomic_load_n(&s->fenced, __ATOMIC_ACQUIRE);
	since = __atomic_load_n(&s->fenced_at_ns, __ATOMIC_RELAXED);
	at = iofence_deadman_at(s);
	/* A switch that ran out refuses from then on, seen a write or not. */
	if (at && now > at && (!fenced || !since || at < since))
		since = at;
	active = s->guarded && (fenced || (at && now > at));
	return json_pack("{s:b,s:o,s:I}", "active", active, "since_ms",
			 active ? json_integer(ns_ms(
					  (int64_t)(since - f->contract_ns))) :
				  json_null(),
			 "writes_refused",
			 (json_int_t)__atomic_load_n(&s->writes_refused,
						     __ATOMIC_RELAXED));
}

static void fence(struct fencer *f, uint64_t now, const char *why)
{
	const struct storage_params *p = params(f);
	struct timespec rt;

	f->state = HB_FENCED;
	f->failing = true;
	f->fences++;
	f->fenced_ns = now;
	f->contract_ns = at(f, timeline_timeout_ms(p));
	f->fence_t_ok_ns = f->t_ok_ns;
	f->rekill_ns = now + ms_ns(p->interval_ms);
	f->fired = f->completed = f->escalated = false;
	f->scan = (struct scan_report){ 0 };
	clock_gettime(CLOCK_REALTIME, &rt);
	f->fenced_real_s = rt.tv_sec;
	if (why)
		snprintf(f->reason, sizeof(f->reason), "%s", why);
	else
		snprintf(f->reason, sizeof(f->reason),
			 "no heartbeat succeeded for %u ms (%s)", p->timeout_ms,
			 f->last_error ? write_error(f->last_error) :
					 "no write done");
	/* Before the contract's point: it is now. */
	if (f->contract_ns > now)
		f->contract_ns = now;
	if (!scan_start(f, true))
		fence_fired(f, now);
	/* Nothing to wait for: no FENCE_COMPLETED, there is no kill. */
	if (p->strategy == FENCE_PERMISSIVE)
		f->completed = true;
}

/*
 * The cluster refuses this host's writes: another host blocklisted it
 * (fence-peer) because it took it for dead, and is restarting its VMs.
 * Nothing of this host can write there any more, so the fence is due now,
 * whatever the timeline says: the VMs left running would only fail, and
 * must not come back to a cluster that has moved on.
 */
static void blocklisted(struct fencer *f, uint64_t now)
{
	bool was_fenced = f->state == HB_FENCED;
	char why[FENCE_REASON_MAX];

	/* Said once: every retry is refused the same way until it lifts. */
	if (f->blocklisted)
		return;
	f->blocklisted = true;
	report(f, "STORAGE_BLOCKLISTED",
	       json_pack("{s:s,s:b}", "addrs", f->cfg.rados_addrs, "fenced",
			 was_fenced));
	if (was_fenced)
		return;
	snprintf(why, sizeof(why), "the cluster blocklisted this host (%.50s)",
		 f->cfg.rados_addrs);
	fence(f, now, why);
	f->next_ns = now;
}

/* Every victim died, or kill_grace is over. */
static void fence_settled(struct fencer *f, uint64_t now)
{
	const struct storage_params *p = params(f);
	bool all_dead = !f->victims_alive && f->scan.complete;
	int64_t inflight = guest_writes_in_flight(f);
	json_t *data;

	f->completed = true;
	/* Elapsed since the contract's fence moment, as kill_grace counts. */
	data = json_pack("{s:b,s:I,s:o,s:o}", "all_dead", all_dead,
			 "elapsed_ms", (json_int_t)ns_ms(now - f->contract_ns),
			 "victims", victims_json(f, 0), "scan",
			 scan_report_json(&f->scan));
	/* What the kernel saw: dead victims' writes may still land. */
	if (inflight >= 0) {
		json_object_set_new(data, "writes_in_flight",
				    json_integer(inflight));
		json_object_set_new(data, "kernel_fence",
				    kernel_fence_json(f, now));
	}
	report(f, "FENCE_COMPLETED", data);
	if ((all_dead && inflight <= 0) || p->strategy != FENCE_FORCE)
		return;
	f->escalated = true;
	data = json_pack("{s:i,s:b,s:s,s:I}", "alive", f->victims_alive,
			 "search_complete", f->scan.complete, "watchdog",
			 f->c->wd.fd >= 0 ? "petting stopped" :
					    "none: reporting and killing",
			 "reset_within_ms", (json_int_t)f->c->wd.timeout_ms);
	if (inflight >= 0)
		json_object_set_new(data, "writes_in_flight",
				    json_integer(inflight));
	report(f, "FENCE_ESCALATED", data);
	core_watchdog_update(f->c);
}

/* --- the state machine ---------------------------------------------------- */

static uint64_t min_ns(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

/*
 * What the kernel saw since the last look (timeline.h): a write stuck on
 * the storage's devices, or a burst of failed completions, as the
 * "evidence" of an early HEARTBEAT_LATE; NULL when nothing new. Each is
 * told on the first look that sees it, again only after one that did not.
 */
static json_t *evidence_look(struct fencer *f, uint64_t now)
{
	const struct iofence_slot *s = own_slot(f);
	uint64_t min = 0, max = 0, failed;
	bool stuck, burst;
	json_t *ev = NULL;

	if (!s)
		return NULL;
	failed = __atomic_load_n(&s->done_failed, __ATOMIC_RELAXED);
	stuck = __atomic_load_n(&s->writes_in_flight, __ATOMIC_RELAXED) > 0 &&
		write_ages_oldest(f->cfg.ages, now, &min, &max) &&
		min >= ms_ns(timeline_stuck_write_ms(params(f)));
	burst = f->ev_next_ns && failed - f->ev_failed >= TL_ERROR_BURST;
	if (stuck && !f->ev_stuck)
		ev = json_pack("{s:s,s:I,s:I}", "kind", "write stuck",
			       "oldest_write_ms", (json_int_t)ns_ms(min),
			       "writes_in_flight",
			       (json_int_t)__atomic_load_n(&s->writes_in_flight,
							   __ATOMIC_RELAXED));
	else if (burst && !f->ev_burst)
		ev = json_pack("{s:s,s:I,s:i}", "kind", "errors", "failed",
			       (json_int_t)(failed - f->ev_failed),
			       "last_status",
			       (int)__atomic_load_n(&s->last_error_status,
						    __ATOMIC_RELAXED));
	f->ev_stuck = stuck;
	f->ev_burst = burst;
	f->ev_failed = failed;
	return ev;
}

/* HEARTBEAT_LATE: by the clock, or earlier by the kernel's @evidence. */
static void turn_late(struct fencer *f, uint64_t now, json_t *evidence)
{
	const struct storage_params *p = params(f);
	json_t *data;

	f->state = HB_LATE;
	f->next_ns = now; /* the extra attempt, at once */
	/*
	 * A fence may come: the VMs on the storage are named now, while
	 * their command lines can still be read (a victim is killed before
	 * its own is).
	 */
	f->vms_ns = 0;
	census_start(f, now);
	data = json_pack("{s:I,s:I,s:s}", "since_ok_ms",
			 (json_int_t)ns_ms(now - f->t_ok_ns), "fence_in_ms",
			 (json_int_t)ns_ms(at(f, timeline_timeout_ms(p)) - now),
			 "error",
			 f->last_error ? write_error(f->last_error) :
			 evidence      ? "none yet: the kernel's evidence" :
					 "write still in flight");
	if (evidence)
		json_object_set_new(data, "evidence", evidence);
	report(f, "HEARTBEAT_LATE", data);
}

static void step(struct fencer *f)
{
	const struct storage_params *p = params(f);
	uint64_t now = loop_now_ns(), wake = 0;
	uint64_t grace_end;
	bool changed = false;

	/*
	 * Once the loop has stopped, messages drained at exit (a victim
	 * search's end) must start nothing: no one would reap it.
	 */
	if (loop_of(f)->stopping)
		return;
	if (f->state != HB_FENCED && now >= at(f, timeline_timeout_ms(p))) {
		fence(f, now, NULL);
		f->next_ns = now;
		changed = true;
	}
	if (f->state == HB_HEALTHY && now >= late_at(f))
		turn_late(f, now, NULL);
	if (f->cfg.slot && f->state != HB_FENCED && now >= f->ev_next_ns) {
		json_t *ev = evidence_look(f, now);

		f->ev_next_ns = now + ms_ns(timeline_evidence_poll_ms(p));
		if (ev && f->state == HB_HEALTHY)
			turn_late(f, now, ev);
		else
			json_decref(ev);
	}
	/*
	 * The grace counts from the moment the contract names (t_ok + T,
	 * so this is t_ok + timeline_escalate_ms()), not from when the fence
	 * ran: a late core never moves the reset past T + G + W.
	 */
	grace_end = f->contract_ns + ms_ns(p->kill_grace_ms);
	if (f->state == HB_FENCED && !f->fired && now >= grace_end)
		fence_fired(f, now); /* the search did not finish in time */
	if (f->state == HB_FENCED && f->fired && !f->completed &&
	    ((!f->victims_alive && f->scan.complete) || now >= grace_end))
		fence_settled(f, now);
	/*
	 * Fenced: whatever started on the lost storage meanwhile goes, at
	 * every interval, whether or not a write is stuck.
	 */
	if (f->state == HB_FENCED && f->fired &&
	    p->strategy != FENCE_PERMISSIVE && now >= f->rekill_ns) {
		f->rekill_ns = now + ms_ns(p->interval_ms);
		scan_start(f, false);
	}
	if (!f->writing && now >= f->next_ns) {
		write_start(f, now);
		changed = true;
	}

	if (!f->writing)
		wake = min_ns(wake, f->next_ns);
	if (f->state == HB_HEALTHY)
		wake = min_ns(wake, late_at(f));
	if (f->cfg.slot && f->state != HB_FENCED)
		wake = min_ns(wake, f->ev_next_ns);
	if (f->state != HB_FENCED)
		wake = min_ns(wake, at(f, timeline_timeout_ms(p)));
	if (f->state == HB_FENCED && p->strategy != FENCE_PERMISSIVE)
		wake = min_ns(wake, f->rekill_ns);
	if (f->state == HB_FENCED && !f->completed)
		wake = min_ns(wake, grace_end);
	if (wake)
		timer_at(f, wake < now ? now : wake);
	if (changed || f->dirty || f->victims_changed)
		report(f, NULL, NULL);
}

/* --- the control plane's messages ----------------------------------------- */

static void take_cfg(struct fencer *f, struct fencer_cfg *cfg)
{
	if (f->cfg.fd >= 0 && f->cfg.fd != cfg->fd) {
		if (f->writing && f->write_fd == f->cfg.fd)
			f->write_fd_retired = true;
		else
			loop_close(loop_of(f), f->cfg.fd);
	}
	fencer_cfg_release(&f->cfg);
	f->cfg = *cfg;
	/* The record may have moved: the sequence never goes back. */
	if (cfg->seq_floor > f->seq)
		f->seq = cfg->seq_floor;
	memset(cfg, 0, sizeof(*cfg));
	cfg->fd = -1;
	f->vms_ns = 0;
}

/* Re-armed at start-up: a fence outlives the restart. */
static void restore(struct fencer *f, const struct fence_restore *r)
{
	/*
	 * Still fenced after a restart. The victims of then are not known
	 * any more, and the daemon before may have died while killing them:
	 * the first search, at once, is held to kill_grace as a new fence's
	 * own is (FENCE_COMPLETED, and under "force" FENCE_ESCALATED when it
	 * cannot finish or a victim survives). Taken as completed, a search
	 * stuck on an unreadable /proc entry would spare the victims with
	 * nothing said. FENCE_FIRED went out before the restart. New
	 * victims are killed at every interval after that.
	 */
	f->state = HB_FENCED;
	f->failing = true;
	f->fired = true;
	f->escalated = r->escalated;
	/* Escalated already, or killing nothing: nothing left to settle. */
	f->completed = f->escalated || params(f)->strategy == FENCE_PERMISSIVE;
	f->scan.complete = f->completed;
	f->fenced_ns = f->contract_ns = loop_now_ns();
	f->rekill_ns = f->fenced_ns;
	f->fenced_real_s = r->fenced_real_s;
	snprintf(f->reason, sizeof(f->reason), "%s",
		 r->reason[0] ? r->reason : "fenced before a restart");
	pr_warn("%s: still fenced (%s)%s", f->cfg.p.uuid, f->reason,
		f->escalated ? "; escalated: the watchdog is not petted" : "");
	core_watchdog_update(f->c);
}

void fencer_on_start(struct msg *m, void *ctx)
{
	struct msg_fencer_start *s =
		container_of(m, struct msg_fencer_start, m);
	struct core *c = ctx;
	struct fencer *f = calloc(1, sizeof(*f));
	uint64_t now = loop_now_ns();

	if (f)
		f->vms = calloc(CENSUS_VMS_MAX, sizeof(*f->vms));
	if (!f || !f->vms ||
	    posix_memalign(&f->buf, RECORD_SIZE_MAX, RECORD_BUF_SIZE)) {
		/* The control plane sees no snapshot; never silent here. */
		pr_crit("%s: out of memory: no heartbeats for it",
			s->cfg.p.uuid);
		if (f)
			free(f->vms);
		free(f);
		loop_close(&c->loop, s->cfg.fd);
		fencer_cfg_release(&s->cfg);
		free(s);
		return;
	}
	f->c = c;
	f->id = s->id;
	f->idx = s->idx;
	f->cfg.fd = -1;
	f->timer.cb = timer_done;
	timed_op_init(&f->io, io_done, io_late);
	f->io.idle = io_idle;
	f->ioprio = IOPRIO_PRIO_VALUE(IOPRIO_CLASS_RT, 0);
	f->seq = 1;
	list_add_tail(&f->link, &c->fencers);
	c->nfencers++;
	take_cfg(f, &s->cfg);
	/* On this boot the record on the storage says when it last succeeded. */
	f->t_ok_ns = f->cfg.t_ok_ns && f->cfg.t_ok_ns <= now ? f->cfg.t_ok_ns :
							       now;
	f->next_ns = now;
	if (s->restore.fenced)
		restore(f, &s->restore);
	free(s);
	step(f);
}

void fencer_on_update(struct msg *m, void *ctx)
{
	struct msg_fencer_update *u =
		container_of(m, struct msg_fencer_update, m);
	struct fencer *f = fencer_find(ctx, u->id);

	if (!f) {
		loop_close(&((struct core *)ctx)->loop, u->cfg.fd);
		fencer_cfg_release(&u->cfg);
		free(u);
		return;
	}
	f->idx = u->idx;
	take_cfg(f, &u->cfg);
	free(u);
	step(f);
	report(f, NULL, NULL);
}

/*
 * The last record, encoded now and sent once no heartbeat is in the
 * kernel any more: @state is RECORD_CLEAN_SHUTDOWN at a teardown, which
 * releases the storage, and the record's own state at a daemon stop,
 * which keeps it armed for the next start: a last heartbeat, with the
 * same contract, from which the restarted daemon's deadlines go on.
 */
static void final_record(struct fencer *f, enum record_state state)
{
	if (f->final != FINAL_NONE || (f->cfg.fd < 0 && !f->cfg.rados))
		return;
	if (posix_memalign(&f->final_buf, RECORD_SIZE_MAX, RECORD_BUF_SIZE)) {
		f->final_buf = NULL;
		return;
	}
	if (encode(f, f->final_buf, state, loop_now_ns()))
		return;
	/* The heartbeat in flight, if any, has the number before it. */
	f->final = FINAL_OWED;
	f->final_timeout_ms = params(f)->io_timeout_ms;
	if (!f->writing)
		final_submit(f);
}

static void retire(struct fencer *f)
{
	timer_cancel(f);
	final_record(f, RECORD_CLEAN_SHUTDOWN);
	release_victims(f);
	f->stopping = true;
	settle(f);
}

void fencer_on_stop(struct msg *m, void *ctx)
{
	struct msg_fencer_stop *s = container_of(m, struct msg_fencer_stop, m);
	struct core *c = ctx;
	struct fencer *f = fencer_find(c, s->id);

	free(s);
	if (!f)
		return;
	retire(f);
	core_watchdog_update(c);
}

static int unfence(struct fencer *f, uid_t uid, char *err, size_t len)
{
	uint64_t now = loop_now_ns();

	if (f->state != HB_FENCED) {
		snprintf(err, len, "storage %s is not fenced", f->cfg.p.uuid);
		return -EINVAL;
	}
	if (f->failing || now >= late_at(f)) {
		snprintf(
			err, len,
			"storage %s is still lost (no heartbeat succeeded for %lld ms); it stays fenced",
			f->cfg.p.uuid, (long long)ns_ms(now - f->t_ok_ns));
		return -EAGAIN;
	}
	release_victims(f);
	f->gen++;
	f->state = HB_HEALTHY;
	f->fired = f->completed = f->escalated = false;
	f->reason[0] = '\0';
	f->scan = (struct scan_report){ 0 };
	report(f, "STORAGE_UNFENCED", json_pack("{s:i}", "uid", (int)uid));
	core_watchdog_update(f->c);
	step(f);
	return 0;
}

void fencer_on_unfence(struct msg *m, void *ctx)
{
	struct msg_unfence *u = container_of(m, struct msg_unfence, m);
	struct msg_unfence_done *r = calloc(1, sizeof(*r));
	struct fencer *f = fencer_find(ctx, u->id);

	if (!r) {
		/* The caller's request stays unanswered: say so, at least. */
		pr_err("out of memory: unfence not answered");
		json_decref(u->req_id);
		free(u);
		return;
	}
	r->conn_id = u->conn_id;
	r->req_id = u->req_id;
	if (!f) {
		r->ret = -ENOENT;
		snprintf(r->err, sizeof(r->err), "no such storage is armed");
	} else {
		snprintf(r->uuid, sizeof(r->uuid), "%s", f->cfg.p.uuid);
		r->ret = unfence(f, u->uid, r->err, sizeof(r->err));
	}
	free(u);
	core_report(ctx, &r->m, ((struct core *)ctx)->ops->unfence_done);
}

/* --- all fencers ---------------------------------------------------------- */

#define for_each_fencer(c, f, pos)                                 \
	for ((pos) = (c)->fencers.next;                            \
	     (pos) != &(c)->fencers &&                             \
	     ((f) = list_entry((pos), struct fencer, link), true); \
	     (pos) = (pos)->next)

void fencers_shutdown(struct core *c)
{
	struct list_head *pos, *next;

	for (pos = c->fencers.next; pos != &c->fencers; pos = next) {
		struct fencer *f = list_entry(pos, struct fencer, link);

		next = pos->next;
		timer_cancel(f);
		/* One being torn down has its clean-shutdown record already. */
		final_record(f, record_state(f));
	}
}

bool fencers_writing(const struct core *c)
{
	const struct list_head *pos;
	struct fencer *f;

	/*
	 * One past its deadline is stuck on a dead storage: not awaited.
	 * One done in time still is, until its ticket is back: it may owe
	 * the last record.
	 */
	for_each_fencer(c, f, pos)
		if (f->writing && !timed_op_overdue(&f->io))
			return true;
	return false;
}

void fencers_free(struct core *c)
{
	while (!list_empty(&c->fencers))
		fencer_free(list_entry(c->fencers.next, struct fencer, link));
}

unsigned int fencers_promising_reset(const struct core *c)
{
	const struct list_head *pos;
	struct fencer *f;
	unsigned int n = 0;

	for_each_fencer(c, f, pos)
		if (!f->stopping && fence_deadline_ms(f))
			n++;
	return n;
}

bool fencers_hold_watchdog(const struct core *c)
{
	const struct list_head *pos;
	struct fencer *f;

	for_each_fencer(c, f, pos)
		if (!f->stopping && f->escalated)
			return true;
	return false;
}

uint32_t fencers_min_interval_ms(const struct core *c)
{
	const struct list_head *pos;
	struct fencer *f;
	uint32_t min = 0;

	for_each_fencer(c, f, pos)
		if (!f->stopping && (!min || f->cfg.p.interval_ms < min))
			min = f->cfg.p.interval_ms;
	return min;
}
