// SPDX-License-Identifier: GPL-2.0-only
/*
 * setup: arms a batch of a host's storages. Each target is looked up with
 * an asynchronous statx bounded by a linked timeout, so a hung file system
 * costs the request its deadline and never stalls the loop. Nothing is
 * changed until every lookup has succeeded; the changes are then applied
 * in order and undone in reverse if one of them fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "args.h"
#include "commands.h"
#include "deadlines.h"
#include "log.h"

struct setup_item {
	struct setup_job *job;
	struct loop_op op;
	struct statx stx;
	const char *uuid; /* in job->args */
	const char *target;
	enum storage_type type;
	int res;
	struct storage *added; /* armed by this job, for rollback */
};

struct setup_job {
	struct daemon *d;
	uint64_t conn_id;
	json_t *args; /* keeps the strings the items point into */
	json_t *id;
	const char *host_uuid;
	struct __kernel_timespec step_deadline;
	unsigned int n, pending;
	struct setup_item items[];
};

static const char *const setup_keys[] = { "host_uuid", "storages", NULL };
static const char *const storage_keys[] = { "uuid", "type", "target", NULL };

static void job_free(struct setup_job *job)
{
	json_decref(job->args);
	json_decref(job->id);
	free(job);
}

static struct storage *storage_new(struct setup_job *job,
				   const struct setup_item *it)
{
	struct storage *s = calloc(1, sizeof(*s));
	struct timespec now;

	if (!s)
		return NULL;
	s->uuid = strdup(it->uuid);
	s->host_uuid = strdup(job->host_uuid);
	s->target = strdup(it->target);
	if (!s->uuid || !s->host_uuid || !s->target) {
		storage_free(s);
		return NULL;
	}
	s->type = it->type;
	/* A file system's own device, or the block device itself. */
	if (it->type == STORAGE_BLOCK)
		s->dev = makedev(it->stx.stx_rdev_major, it->stx.stx_rdev_minor);
	else if (it->stx.stx_dev_major)
		s->dev = makedev(it->stx.stx_dev_major, it->stx.stx_dev_minor);
	clock_gettime(CLOCK_REALTIME, &now);
	s->armed_real_s = now.tv_sec;
	s->armed_mono_ms = loop_now_ms();
	return s;
}

static void storage_disarm(struct daemon *d, struct storage *s)
{
	if (s->dev && !storage_dev_users(&d->storages, s))
		tracker_del_dev(&d->tracker, tracker_kdev(s->dev));
	storage_remove(&d->storages, s);
	storage_free(s);
}

static int storage_arm(struct daemon *d, struct storage *s)
{
	int ret = storage_insert(&d->storages, s);

	if (ret)
		return ret;
	if (s->dev) {
		ret = tracker_add_dev(&d->tracker, tracker_kdev(s->dev),
				      s->idx);
		if (ret) {
			storage_remove(&d->storages, s);
			return ret;
		}
	}
	return 0;
}

/* Every lookup is back: apply all of them or none. */
static json_t *job_apply(struct setup_job *job)
{
	struct daemon *d = job->d;
	json_t *results = json_array();
	unsigned int i;
	int ret;

	for (i = 0; i < job->n; i++) {
		struct setup_item *it = &job->items[i];

		if (it->res == -ECANCELED || it->res == -ETIME)
			ret = -ETIMEDOUT;
		else
			ret = it->res;
		if (!ret && it->type == STORAGE_BLOCK &&
		    !S_ISBLK(it->stx.stx_mode))
			ret = -ENOTBLK;
		if (!ret && it->type == STORAGE_FILE &&
		    !S_ISDIR(it->stx.stx_mode))
			ret = -ENOTDIR;
		if (ret) {
			json_decref(results);
			return proto_error(ret == -ETIMEDOUT ? PROTO_TIMEOUT :
							       PROTO_ARMING_FAILED,
					   job->id,
					   "storages[%u].target: %s: %s", i,
					   it->target, strerror(-ret));
		}
	}
	for (i = 0; i < job->n; i++) {
		struct setup_item *it = &job->items[i];
		struct storage *s = storage_find(&d->storages, it->uuid);
		const char *result = "unchanged";

		if (!s) {
			s = storage_new(job, it);
			ret = s ? storage_arm(d, s) : -ENOMEM;
			if (ret) {
				storage_free(s);
				goto rollback;
			}
			it->added = s;
			result = "armed";
		}
		json_array_append_new(results,
				      json_pack("{s:s,s:s}", "uuid", it->uuid,
						"result", result));
	}
	return proto_return(json_pack("{s:o}", "storages", results), job->id);

rollback:
	for (unsigned int k = i; k-- > 0;)
		if (job->items[k].added)
			storage_disarm(d, job->items[k].added);
	json_decref(results);
	pr_err("setup: storages[%u] (%s): %s", i, job->items[i].uuid,
	       strerror(-ret));
	return proto_error(PROTO_ARMING_FAILED, job->id,
			   "storages[%u]: cannot arm: %s", i, strerror(-ret));
}

static void item_done(struct loop_op *op, int res, unsigned int flags)
{
	struct setup_item *it = container_of(op, struct setup_item, op);
	struct setup_job *job = it->job;

	it->res = res;
	if (--job->pending)
		return;
	cmd_reply_later(job->d, job->conn_id, job_apply(job));
	job_free(job);
}

static int parse_item(json_t *st, unsigned int i, struct setup_item *it,
		      struct args_err *e)
{
	const char *type = NULL;
	char path[32];
	int ret;

	snprintf(path, sizeof(path), "storages[%u]", i);
	if (!json_is_object(st))
		return args_fail(e, NULL, path, "must be an object");
	ret = args_only(st, path, storage_keys, e);
	if (!ret)
		ret = args_string(st, path, "uuid", true, &it->uuid, e);
	if (!ret)
		ret = args_string(st, path, "type", true, &type, e);
	if (!ret && storage_type_parse(type, &it->type))
		ret = args_fail(e, path, "type", "must be \"file\" or \"block\"");
	if (!ret)
		ret = args_path(st, path, "target", true, &it->target, e);
	return ret;
}

json_t *cmd_setup(struct daemon *d, struct ctl_conn *c,
		  struct proto_request *req)
{
	struct setup_job *job;
	struct args_err e;
	json_t *list, *st;
	size_t i, n;

	if (args_only(req->arguments, "", setup_keys, &e))
		goto invalid;
	list = json_object_get(req->arguments, "storages");
	n = json_array_size(list);
	if (!json_is_array(list) || !n || n > STORAGE_MAX) {
		args_fail(&e, "", "storages",
			  "must be an array of 1 to %d storages", STORAGE_MAX);
		goto invalid;
	}
	job = calloc(1, sizeof(*job) + n * sizeof(job->items[0]));
	if (!job)
		return proto_error(PROTO_GENERIC_ERROR, req->id,
				   "out of memory");
	job->d = d;
	job->conn_id = c->id;
	job->args = json_incref(req->arguments);
	job->id = json_incref(req->id);
	job->n = n;
	if (args_string(req->arguments, "", "host_uuid", true, &job->host_uuid,
			&e))
		goto invalid_job;
	json_array_foreach(list, i, st) {
		if (parse_item(st, i, &job->items[i], &e))
			goto invalid_job;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(job->items[j].uuid, job->items[i].uuid)) {
				args_fail(&e, "storages", "uuid",
					  "storages[%zu] and storages[%zu] are both %s",
					  j, i, job->items[i].uuid);
				goto invalid_job;
			}
	}

	job->step_deadline.tv_sec = SETUP_STEP_DEADLINE_MS / 1000;
	job->step_deadline.tv_nsec = (SETUP_STEP_DEADLINE_MS % 1000) * 1000000;
	job->pending = n;
	for (i = 0; i < n; i++) {
		struct setup_item *it = &job->items[i];
		struct io_uring_sqe *sqe;

		it->job = job;
		it->op.cb = item_done;
		sqe = loop_sqe(&d->loop, &it->op);
		io_uring_prep_statx(sqe, AT_FDCWD, it->target, 0,
				    STATX_TYPE | STATX_MODE, &it->stx);
		sqe->flags |= IOSQE_IO_LINK;
		sqe = loop_sqe(&d->loop, NULL);
		io_uring_prep_link_timeout(sqe, &job->step_deadline, 0);
	}
	return NULL;

invalid_job:
	job_free(job);
invalid:
	return proto_error(PROTO_INVALID_ARGUMENT, req->id, "%s", e.msg);
}
