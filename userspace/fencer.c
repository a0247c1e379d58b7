// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/ioprio.h>

#include "daemon.h"
#include "deadlines.h"
#include "fencer.h"
#include "fence_hook.h"
#include "log.h"
#include "record.h"
#include "timeline.h"
#include "victims.h"

#define NS_PER_MS 1000000ull
_Static_assert(LOOP_BOUNDED_WORKERS > STORAGE_MAX,
	       "a worker for every storage's heartbeat, and some to spare");

/* Victims one scan returns; more are counted, and found at the next. */
#define FENCE_VICTIMS_MAX 128

enum hb_state {
	HB_HEALTHY,
	HB_LATE,
	HB_FENCED,
};

static const char *const hb_state_names[] = {
	[HB_HEALTHY] = "healthy",
	[HB_LATE] = "late",
	[HB_FENCED] = "fenced",
};

struct fence_victim {
	struct loop_op poll; /* the pidfd turns readable: the victim is gone */
	struct fencer *f;
	struct victim v;
	int kill_err; /* 0, or why SIGKILL could not be sent */
	uint64_t died_ns; /* 0 while alive */
	uint64_t killed_ns; /* when SIGKILL was sent */
	bool orphan; /* released while its poll was in flight */
};

struct fencer {
	struct daemon *d;
	struct storage *s; /* NULL once stopping */
	int fd; /* own duplicate of the record fd: outlives the storage */
	uint32_t size;
	uint64_t offset;
	void *buf;
	struct timed_op io;
	bool writing; /* the write is still in the kernel */
	enum {
		FINAL_NONE,
		FINAL_OWED, /* after the write in flight */
		FINAL_SENT,
	} final; /* the clean-shutdown record */
	void *final_buf;
	uint64_t final_timeout_ms;
	uint64_t seq; /* of the next record */
	uint64_t t_ok_ns;
	uint64_t ok_seen_ns; /* when that success was seen */
	uint64_t attempt_ns; /* start of the write in flight or last one */
	uint64_t next_ns; /* when the next write is due */
	enum hb_state state;
	bool failing; /* the last write failed: the next success restores */
	int ioprio;
	struct devset devs;
	struct victim_filter filter;

	/* counters, for query-status */
	uint64_t writes_ok, writes_failed, writes_timed_out;
	int last_error;
	uint64_t last_latency_ns, max_latency_ns;

	/* the fence, while fenced */
	uint64_t fenced_ns;
	uint64_t contract_ns; /* t_ok + T: when the fence was due */
	uint64_t rekill_ns; /* next look for new victims while fenced */
	int64_t fenced_real_s;
	char reason[96];
	bool completed; /* every victim died, or kill_grace passed */
	bool escalated;
	struct fence_victim **victims;
	unsigned int nvictims, victims_alive, victims_omitted;

	/* the VMs on this storage, for the record */
	char (*vms)[37];
	unsigned int nvms, vms_found;
	uint64_t vms_ns;

	struct fence_hook hook;

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
	return &f->s->p;
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
	return timeline_fence_deadline_ms(params(f), f->d->wd.timeout_ms);
}

/* --- lifetime ------------------------------------------------------------ */

static bool idle(const struct fencer *f)
{
	return !f->writing && !f->pending && fence_hook_idle(&f->hook);
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
			io_uring_prep_poll_remove(loop_sqe(&f->d->loop, NULL),
						  (__u64)(uintptr_t)&fv->poll);
			continue;
		}
		victims_release(&fv->v, 1);
		free(fv);
	}
	free(f->victims);
	f->victims = NULL;
	f->nvictims = f->victims_alive = f->victims_omitted = 0;
}

/* Nothing of it is in the kernel any more, or the loop is gone. */
static void fencer_free(struct fencer *f)
{
	for (unsigned int i = 0; i < f->nvictims; i++) {
		victims_release(&f->victims[i]->v, 1);
		free(f->victims[i]);
	}
	free(f->victims);
	if (f->fd >= 0)
		close(f->fd);
	free(f->vms);
	free(f->final_buf);
	free(f->buf);
	free(f);
}

/* A stopping fencer goes once nothing of it is in the kernel. */
static bool settle(struct fencer *f)
{
	if (f->s || !idle(f))
		return false;
	fencer_free(f);
	return true;
}

/* --- the timer: one per fencer, at the next moment the contract names ---- */

static void timer_done(struct loop_op *op, int res, unsigned int flags)
{
	struct fencer *f = container_of(op, struct fencer, timer);

	f->pending--;
	f->timer_ns = 0;
	if (settle(f) || f->d->loop.stopping || !f->s)
		return;
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
		sqe = loop_sqe(&f->d->loop, NULL);
		io_uring_prep_timeout_update(sqe, &f->timer_ts,
					     (__u64)(uintptr_t)&f->timer,
					     IORING_TIMEOUT_ABS);
	} else {
		sqe = loop_sqe(&f->d->loop, &f->timer);
		io_uring_prep_timeout(sqe, &f->timer_ts, 0, IORING_TIMEOUT_ABS);
		f->pending++;
	}
	f->timer_ns = when_ns;
}

static void timer_cancel(struct fencer *f)
{
	if (!f->timer_ns)
		return;
	io_uring_prep_timeout_remove(loop_sqe(&f->d->loop, NULL),
				     (__u64)(uintptr_t)&f->timer, 0);
}

/* --- events --------------------------------------------------------------- */

static json_t *base_event(const struct fencer *f)
{
	return json_pack("{s:s,s:s}", "storage", f->s->p.uuid, "host_uuid",
			 f->s->host_uuid);
}

static void fencer_event(struct fencer *f, const char *name, json_t *data)
{
	json_t *msg = base_event(f);

	json_object_update_new(msg, data);
	daemon_event(f->d, name, msg);
}

static json_t *victim_json(const struct fencer *f,
			   const struct fence_victim *fv)
{
	json_t *o = json_pack("{s:i,s:s,s:s}", "pid", fv->v.pid, "exe",
			      fv->v.exe, "why", fv->v.why);

	if (fv->v.vm_uuid[0])
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
		 fv->killed_ns + ms_ns(params(f)->kill_grace_ms))
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

/* The VMs on the storage, for the record, at most every VM_CENSUS_MS. */
static void census(struct fencer *f, uint64_t now)
{
	int n;

	if (f->vms_ns && now - f->vms_ns < ms_ns(VM_CENSUS_MS))
		return;
	f->vms_ns = now;
	n = victims_vm_uuids(&f->devs, &f->filter, "/proc", f->vms,
			     RECORD_VMS_MAX, NULL);
	if (n < 0) {
		pr_warn("%s: cannot list its VMs: %s", f->s->p.uuid,
			strerror(-n));
		return;
	}
	f->vms_found = n;
	f->nvms = n < RECORD_VMS_MAX ? n : RECORD_VMS_MAX;
}

static int encode(struct fencer *f, void *buf, enum record_state state,
		  uint64_t now)
{
	const struct storage_params *p = params(f);
	const char *uuids[RECORD_VMS_MAX];
	struct timespec rt;
	struct record r = {
		.size = f->size,
		.state = state,
		.seq = f->seq,
		.monotonic_ns = now,
		.interval_ms = p->interval_ms,
		.timeout_ms = p->timeout_ms,
		.fence_deadline_ms = fence_deadline_ms(f),
	};

	clock_gettime(CLOCK_REALTIME, &rt);
	r.realtime_ns = (uint64_t)rt.tv_sec * 1000000000ull + rt.tv_nsec;
	memcpy(r.boot_id, record_boot_id(), sizeof(r.boot_id));
	snprintf(r.host_uuid, sizeof(r.host_uuid), "%s", f->s->host_uuid);
	snprintf(r.storage_uuid, sizeof(r.storage_uuid), "%s", p->uuid);
	for (unsigned int i = 0; i < f->nvms; i++)
		uuids[i] = f->vms[i];
	record_set_vms(&r, uuids, f->nvms);
	r.vms_omitted += f->vms_found - f->nvms;
	return record_encode(&r, buf);
}

static void write_submit(struct fencer *f, void *buf, uint64_t now,
			 uint64_t timeout_ms)
{
	struct io_uring_sqe *sqe = timed_op_sqe(&f->d->loop, &f->io);

	io_uring_prep_write(sqe, f->fd, buf, f->size, f->offset);
	/* Guest I/O on the same device must not starve the heartbeat. */
	sqe->ioprio = f->ioprio;
	f->writing = true;
	f->attempt_ns = now;
	f->seq++;
	timed_op_submit(&f->d->loop, &f->io, timeout_ms);
}

static void write_start(struct fencer *f, uint64_t now)
{
	int ret;

	census(f, now);
	ret = encode(f, f->buf, record_state(f), now);
	if (ret) {
		/* Cannot happen with validated parameters; never silent. */
		pr_err("%s: cannot encode its record: %s", f->s->p.uuid,
		       strerror(-ret));
		f->next_ns = now + ms_ns(timeline_retry_ms(params(f)));
		return;
	}
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
	f->last_error = 0;
	f->next_ns = at(f, timeline_next_write_ms(params(f)));
	if (f->state == HB_LATE) {
		f->state = HB_HEALTHY;
		fencer_event(f, "HEARTBEAT_RESTORED",
			     json_pack("{s:I,s:I}", "seq",
				       (json_int_t)f->seq - 1, "latency_us",
				       (json_int_t)(lat / 1000)));
	} else if (f->state == HB_FENCED && was_failing) {
		fencer_event(
			f, "STORAGE_RESTORED",
			json_pack("{s:I,s:b,s:s}", "seq",
				  (json_int_t)f->seq - 1, "fenced", 1, "hint",
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
	if (res != -ETIMEDOUT && res < 0 && res == -EPERM && f->ioprio) {
		/* Only privileged callers may ask for the RT class. */
		pr_warn("%s: real-time I/O priority refused; heartbeats at the default priority",
			f->s->p.uuid);
		f->ioprio = 0;
		f->next_ns = now;
	}
}

static void io_done(struct timed_op *t, int res)
{
	struct fencer *f = container_of(t, struct fencer, io);
	uint64_t now = loop_now_ns();

	if (!f->s)
		return;
	if (res == (int)f->size)
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

	if (f->s && res == (int)f->size)
		succeeded(f, loop_now_ns());
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
	if (f->final == FINAL_OWED) {
		final_submit(f);
		return;
	}
	if (settle(f) || f->d->loop.stopping || f->final == FINAL_SENT)
		return;
	step(f);
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
	}
	if (settle(f) || f->d->loop.stopping || !f->s)
		return;
	step(f);
}

static void watch(struct fencer *f, struct fence_victim *fv)
{
	struct io_uring_sqe *sqe = loop_sqe(&f->d->loop, &fv->poll);

	io_uring_prep_poll_add(sqe, fv->v.pidfd, POLLIN);
	f->pending++;
	f->victims_alive++;
}

static bool known(const struct fencer *f, pid_t pid)
{
	for (unsigned int i = 0; i < f->nvictims; i++)
		if (f->victims[i]->v.pid == pid && !f->victims[i]->died_ns)
			return true;
	return false;
}

/*
 * Finds the storage's victims and, unless the strategy is permissive,
 * kills each through its pidfd. Returns how many new ones were found.
 */
static unsigned int kill_victims(struct fencer *f, uint64_t now)
{
	struct victim found[FENCE_VICTIMS_MAX];
	bool spare = params(f)->strategy == FENCE_PERMISSIVE;
	unsigned int added = 0;
	int n;

	n = victims_scan(&f->devs, &f->filter, "/proc", found,
			 FENCE_VICTIMS_MAX);
	if (n < 0) {
		pr_err("%s: cannot look for victims: %s", f->s->p.uuid,
		       strerror(-n));
		return 0;
	}
	if (n > FENCE_VICTIMS_MAX) {
		f->victims_omitted += n - FENCE_VICTIMS_MAX;
		n = FENCE_VICTIMS_MAX;
	}
	for (int i = 0; i < n; i++) {
		struct fence_victim *fv, **grown;

		if (known(f, found[i].pid)) {
			if (!spare)
				victim_kill(&found[i]);
			victims_release(&found[i], 1);
			continue;
		}
		fv = calloc(1, sizeof(*fv));
		grown = fv ? realloc(f->victims,
				     (f->nvictims + 1) * sizeof(*grown)) :
			     NULL;
		if (!grown) {
			/* The kill matters more than remembering it. */
			if (!spare)
				victim_kill(&found[i]);
			victims_release(&found[i], 1);
			free(fv);
			f->victims_omitted++;
			continue;
		}
		f->victims = grown;
		*fv = (struct fence_victim){ .f = f, .v = found[i] };
		fv->poll.cb = victim_gone;
		f->victims[f->nvictims++] = fv;
		added++;
		if (spare)
			continue;
		fv->kill_err = victim_kill(&fv->v);
		fv->killed_ns = now;
		if (!fv->kill_err || fv->kill_err == -ESRCH)
			watch(f, fv);
	}
	return added;
}

static void run_hook(struct fencer *f)
{
	const char *path = f->s->p.fence_hook ? f->s->p.fence_hook :
						f->d->cfg.fence_hook;
	char storage[96], host[96], strategy[48], reason[128], *victims = NULL;
	size_t len = 0;
	FILE *m;

	if (!path)
		return;
	m = open_memstream(&victims, &len);
	if (!m)
		return;
	fputs("IOFENCE_VICTIMS=", m);
	for (unsigned int i = 0; i < f->nvictims; i++)
		fprintf(m, "%s%d:%s:%s", i ? " " : "", f->victims[i]->v.pid,
			f->victims[i]->v.exe, f->victims[i]->v.vm_uuid);
	if (fclose(m))
		return;
	snprintf(storage, sizeof(storage), "IOFENCE_STORAGE=%s", f->s->p.uuid);
	snprintf(host, sizeof(host), "IOFENCE_HOST=%s", f->s->host_uuid);
	snprintf(strategy, sizeof(strategy), "IOFENCE_STRATEGY=%s",
		 fence_strategy_name(f->s->p.strategy));
	snprintf(reason, sizeof(reason), "IOFENCE_REASON=%s", f->reason);
	fence_hook_run(
		&f->hook, path,
		(const char *const[]){
			storage, host, strategy, reason, victims,
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			NULL });
	free(victims);
}

static void fence(struct fencer *f, uint64_t now)
{
	const struct storage_params *p = params(f);
	uint64_t deadline = fence_deadline_ms(f);
	struct timespec rt;

	f->state = HB_FENCED;
	f->failing = true;
	f->fenced_ns = now;
	f->contract_ns = at(f, timeline_timeout_ms(p));
	f->rekill_ns = now + ms_ns(p->interval_ms);
	clock_gettime(CLOCK_REALTIME, &rt);
	f->fenced_real_s = rt.tv_sec;
	snprintf(f->reason, sizeof(f->reason),
		 "no heartbeat succeeded for %u ms (%s)", p->timeout_ms,
		 f->last_error ? write_error(f->last_error) : "no write done");
	kill_victims(f, now);
	/* Nothing to wait for: no FENCE_COMPLETED, there is no kill. */
	if (p->strategy == FENCE_PERMISSIVE)
		f->completed = true;
	pr_crit("%s: storage lost: fence (%s), %u victims", p->uuid,
		fence_strategy_name(p->strategy), f->nvictims);
	fencer_event(
		f, "FENCE_FIRED",
		json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:i}", "strategy",
			  fence_strategy_name(p->strategy), "reason", f->reason,
			  "since_ok_ms", (json_int_t)ns_ms(now - f->t_ok_ns),
			  "late_by_us",
			  (json_int_t)(now - f->contract_ns) / 1000,
			  "fence_deadline_ms", (json_int_t)deadline,
			  "deadline_left_ms",
			  (json_int_t)(deadline ? ns_ms(at(f, deadline) - now) :
						  0),
			  "victims", victims_json(f, 0), "victims_omitted",
			  f->victims_omitted));
	run_hook(f);
}

/* Every victim died, or kill_grace is over. */
static void fence_settled(struct fencer *f, uint64_t now)
{
	const struct storage_params *p = params(f);
	bool all_dead = !f->victims_alive;

	f->completed = true;
	fencer_event(f, "FENCE_COMPLETED",
		     json_pack("{s:b,s:I,s:o}", "all_dead", all_dead,
			       "elapsed_ms",
			       (json_int_t)ns_ms(now - f->fenced_ns), "victims",
			       victims_json(f, 0)));
	if (all_dead || p->strategy != FENCE_FORCE)
		return;
	f->escalated = true;
	fencer_event(f, "FENCE_ESCALATED",
		     json_pack("{s:i,s:s,s:I}", "alive", f->victims_alive,
			       "watchdog",
			       f->d->wd.fd >= 0 ? "petting stopped" :
						  "none: reporting and killing",
			       "reset_within_ms",
			       (json_int_t)f->d->wd.timeout_ms));
	daemon_watchdog_update(f->d);
}

/* --- the state machine ---------------------------------------------------- */

static uint64_t min_ns(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

static void step(struct fencer *f)
{
	const struct storage_params *p = params(f);
	uint64_t now = loop_now_ns(), wake = 0;

	if (f->state != HB_FENCED && now >= at(f, timeline_timeout_ms(p))) {
		fence(f, now);
		f->next_ns = now;
	}
	if (f->state == HB_HEALTHY && now >= late_at(f)) {
		f->state = HB_LATE;
		f->next_ns = now; /* the extra attempt, at once */
		fencer_event(
			f, "HEARTBEAT_LATE",
			json_pack("{s:I,s:I,s:s?}", "since_ok_ms",
				  (json_int_t)ns_ms(now - f->t_ok_ns),
				  "fence_in_ms",
				  (json_int_t)ns_ms(
					  at(f, timeline_timeout_ms(p)) - now),
				  "error",
				  f->last_error ? write_error(f->last_error) :
						  "write still in flight"));
	}
	if (f->state == HB_FENCED && !f->completed &&
	    (!f->victims_alive ||
	     now >= f->fenced_ns + ms_ns(p->kill_grace_ms)))
		fence_settled(f, now);
	/*
	 * Fenced: whatever started on the lost storage meanwhile goes, at
	 * every interval, whether or not a write is stuck.
	 */
	if (f->state == HB_FENCED && p->strategy != FENCE_PERMISSIVE &&
	    now >= f->rekill_ns) {
		unsigned int first = f->nvictims;

		f->rekill_ns = now + ms_ns(p->interval_ms);
		if (kill_victims(f, now))
			fencer_event(f, "FENCE_KILLED",
				     json_pack("{s:o}", "victims",
					       victims_json(f, first)));
	}
	if (!f->writing && now >= f->next_ns)
		write_start(f, now);

	if (!f->writing)
		wake = min_ns(wake, f->next_ns);
	if (f->state == HB_HEALTHY)
		wake = min_ns(wake, late_at(f));
	if (f->state != HB_FENCED)
		wake = min_ns(wake, at(f, timeline_timeout_ms(p)));
	if (f->state == HB_FENCED && p->strategy != FENCE_PERMISSIVE)
		wake = min_ns(wake, f->rekill_ns);
	if (f->state == HB_FENCED && !f->completed)
		wake = min_ns(wake, f->fenced_ns + ms_ns(p->kill_grace_ms));
	if (wake)
		timer_at(f, wake < now ? now : wake);
}

/* --- the interface -------------------------------------------------------- */

static void attach(struct fencer *f, struct storage *s)
{
	f->s = s;
	s->hb = f;
	f->filter = (struct victim_filter){
		.patterns = s->p.victims,
		.npatterns = s->p.nvictims,
		.self = getpid(),
	};
	f->devs.n = 0;
	if (s->p.type == STORAGE_FILE)
		devset_add(&f->devs, s->fs_dev);
	if (s->dev)
		devset_add_stack(&f->devs, s->dev, "/sys");
	f->vms_ns = 0;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = dup(s->record_fd);
	f->size = s->record_size;
	f->offset = s->record_offset;
}

/* Re-armed at start-up: a fence outlives the restart. */
static void restore(struct fencer *f, json_t *fence)
{
	const char *reason =
		json_string_value(json_object_get(fence, "reason"));

	if (!json_is_object(fence))
		return;
	/*
	 * Still fenced after a restart. The victims of then are not known
	 * any more; new ones are killed at every interval.
	 */
	f->state = HB_FENCED;
	f->failing = true;
	f->completed = true;
	f->fenced_ns = f->contract_ns = loop_now_ns();
	f->fenced_real_s =
		json_integer_value(json_object_get(fence, "fenced_at"));
	f->escalated = json_is_true(json_object_get(fence, "escalated"));
	snprintf(f->reason, sizeof(f->reason), "%s",
		 reason ? reason : "fenced before a restart");
	pr_warn("%s: still fenced (%s)%s", f->s->p.uuid, f->reason,
		f->escalated ? "; escalated: the watchdog is not petted" : "");
	daemon_watchdog_update(f->d);
}

int fencer_start(struct daemon *d, struct storage *s, json_t *fence)
{
	struct fencer *f = calloc(1, sizeof(*f));
	uint64_t now = loop_now_ns();

	if (!f)
		return -ENOMEM;
	f->fd = -1;
	f->vms = calloc(RECORD_VMS_MAX, sizeof(*f->vms));
	if (!f->vms ||
	    posix_memalign(&f->buf, RECORD_SIZE_MAX, RECORD_SIZE_MAX)) {
		free(f->vms);
		free(f);
		return -ENOMEM;
	}
	f->d = d;
	f->timer.cb = timer_done;
	timed_op_init(&f->io, io_done, io_late);
	f->io.idle = io_idle;
	f->ioprio = IOPRIO_PRIO_VALUE(IOPRIO_CLASS_RT, 0);
	attach(f, s);
	if (f->fd < 0) {
		int ret = -errno;

		s->hb = NULL;
		fencer_free(f);
		return ret;
	}
	f->seq = s->next_seq ? s->next_seq : 1;
	/* On this boot the record on the storage says when it last succeeded. */
	f->t_ok_ns = s->t_ok_ns && s->t_ok_ns <= now ? s->t_ok_ns : now;
	fence_hook_init(&f->hook, &d->loop);
	if (fence)
		restore(f, fence);
	step(f);
	return 0;
}

void fencer_move(struct storage *from, struct storage *to)
{
	struct fencer *f = from->hb;

	from->hb = NULL;
	if (!f)
		return;
	/* The record may have moved: the sequence never goes back. */
	if (to->next_seq > f->seq)
		f->seq = to->next_seq;
	attach(f, to);
	step(f);
}

/*
 * The clean-shutdown record, encoded now (the storage may be gone when
 * it is written) and sent once no heartbeat is in the kernel any more.
 */
static void final_record(struct fencer *f)
{
	if (f->final != FINAL_NONE || f->fd < 0)
		return;
	if (posix_memalign(&f->final_buf, RECORD_SIZE_MAX, RECORD_SIZE_MAX)) {
		f->final_buf = NULL;
		return;
	}
	if (encode(f, f->final_buf, RECORD_CLEAN_SHUTDOWN, loop_now_ns()))
		return;
	/* The heartbeat in flight, if any, has the number before it. */
	f->final = FINAL_OWED;
	f->final_timeout_ms = params(f)->io_timeout_ms;
	if (!f->writing)
		final_submit(f);
}

void fencer_shutdown(struct fencer *f)
{
	timer_cancel(f);
	final_record(f);
}

void fencer_stop(struct fencer *f)
{
	struct daemon *d = f->d;

	if (!d->loop.stopping) {
		fencer_shutdown(f);
		release_victims(f);
	}
	f->s->hb = NULL;
	f->s = NULL;
	if (d->loop.stopping) {
		/* The loop is gone: what is still in the kernel is abandoned. */
		fencer_free(f);
		return;
	}
	settle(f);
	daemon_watchdog_update(d);
}

bool fencer_writing(const struct fencer *f)
{
	return f->writing;
}

bool fencer_holds_watchdog(const struct fencer *f)
{
	return f->escalated;
}

json_t *fencer_state_json(const struct fencer *f)
{
	if (f->state != HB_FENCED)
		return NULL;
	return json_pack("{s:I,s:s,s:b}", "fenced_at",
			 (json_int_t)f->fenced_real_s, "reason", f->reason,
			 "escalated", f->escalated);
}

int fencer_unfence(struct fencer *f, uid_t uid, char *err, size_t len)
{
	uint64_t now = loop_now_ns();

	if (f->state != HB_FENCED) {
		snprintf(err, len, "storage %s is not fenced", f->s->p.uuid);
		return -EINVAL;
	}
	if (f->failing || now >= late_at(f)) {
		snprintf(
			err, len,
			"storage %s is still lost (no heartbeat succeeded for %lld ms); it stays fenced",
			f->s->p.uuid, (long long)ns_ms(now - f->t_ok_ns));
		return -EAGAIN;
	}
	release_victims(f);
	f->state = HB_HEALTHY;
	f->completed = f->escalated = false;
	f->reason[0] = '\0';
	fencer_event(f, "STORAGE_UNFENCED",
		     json_pack("{s:i}", "uid", (int)uid));
	daemon_watchdog_update(f->d);
	step(f);
	return 0;
}

json_t *fencer_status_json(const struct fencer *f)
{
	const struct storage_params *p = params(f);
	uint64_t now = loop_now_ns();
	json_t *o = json_pack(
		"{s:s,s:I,s:I,s:b,s:b,s:i,s:b,s:I,s:I,s:I,s:s?,s:{s:I,s:I}}",
		"state", hb_state_names[f->state], "seq",
		(json_int_t)f->seq - 1, "since_ok_ms",
		(json_int_t)ns_ms(now - f->t_ok_ns), "in_flight", f->writing,
		"direct", f->s->record_direct, "record_size", f->size,
		"rt_ioprio", f->ioprio != 0, "writes_ok",
		(json_int_t)f->writes_ok, "writes_failed",
		(json_int_t)f->writes_failed, "writes_timed_out",
		(json_int_t)f->writes_timed_out, "last_error",
		f->last_error ? write_error(f->last_error) : NULL, "latency_us",
		"last", (json_int_t)(f->last_latency_ns / 1000), "max",
		(json_int_t)(f->max_latency_ns / 1000));

	if (f->state != HB_FENCED) {
		json_object_set_new(
			o, "fence_in_ms",
			json_integer(
				ns_ms(at(f, timeline_timeout_ms(p)) - now)));
		return o;
	}
	json_object_set_new(o, "fence",
			    json_pack("{s:I,s:s,s:b,s:b,s:b,s:o}", "fenced_at",
				      (json_int_t)f->fenced_real_s, "reason",
				      f->reason, "completed", f->completed,
				      "escalated", f->escalated, "restored",
				      !f->failing, "victims",
				      victims_json(f, 0)));
	return o;
}
