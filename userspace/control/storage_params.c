// SPDX-License-Identifier: GPL-2.0-only
/* A storage's setup arguments: validation, defaults, comparison, JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array_size.h"
#include "rados_link.h"
#include "storage.h"
#include "timeline.h"

static const char *const storage_keys[] = {
	"uuid",		"type",	      "target",	     "region_offset",
	"slot",		"connected",  "interval_ms", "io_timeout_ms",
	"max_attempts", "timeout_ms", "strategy",    "kill_grace_ms",
	"victims",	"fence_hook", "pool",	     "namespace",
	"ceph_conf",	"client",     "keyring",     NULL,
};

/* Keys of one type only, and the rule that says so. */
static const struct {
	const char *key;
	enum storage_type type;
	const char *rule;
} type_keys[] = {
	{ "region_offset", STORAGE_BLOCK, "only for block storages" },
	{ "slot", STORAGE_BLOCK, "only for block storages" },
	{ "pool", STORAGE_RBD, "only for rbd storages" },
	{ "namespace", STORAGE_RBD, "only for rbd storages" },
	{ "ceph_conf", STORAGE_RBD, "only for rbd storages" },
	{ "client", STORAGE_RBD, "only for rbd storages" },
	{ "keyring", STORAGE_RBD, "only for rbd storages" },
};

static const char *const type_names[] = { "file", "block", "rbd" };
static const char *const strategy_names[] = { "force", "kill-only",
					      "permissive" };

static const char *const default_victims[] = {
	"qemu-system-*",
	"qemu-kvm",
	"qemu",
};

#define BLOCK_REGION_MAX (1ull << 50)

static int parse_enum(json_t *obj, const char *path, const char *key,
		      const char *const *names, unsigned int n,
		      const char *rule, unsigned int *out, struct args_err *e)
{
	const char *v = NULL;
	int ret = args_string(obj, path, key, false, &v, e);

	if (ret || !v)
		return ret;
	for (unsigned int i = 0; i < n; i++) {
		if (!strcmp(v, names[i])) {
			*out = i;
			return 0;
		}
	}
	return args_fail(e, path, key, "must be %s", rule);
}

static int parse_u32(json_t *obj, const char *path, const char *key,
		     uint64_t min, uint64_t max, uint32_t *out,
		     struct args_err *e)
{
	uint64_t v = *out;
	int ret = args_uint(obj, path, key, false, min, max, &v, e);

	*out = v;
	return ret;
}

/*
 * The range of @e's member has a bound that is another member's value:
 * the lower one (@which 0) or the upper one (1).
 */
static void bound_by(struct args_err *e, int which, const char *path,
		     const char *key)
{
	if (e->rule == ARGS_RANGE || e->rule == ARGS_TYPE)
		snprintf(e->other[which], sizeof(e->other[which]), "%s.%s",
			 path, key);
}

/*
 * Pool and namespace names go into an object name, a command line match
 * and a log line: the characters Ceph users put in them, nothing that
 * needs quoting. The client is "client.<id>" or just the id, as the ceph
 * tool's --name and --id take it.
 */
static bool rbd_name_valid(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (!n || n > max || s[0] == '.')
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789._+-") == n;
}

#define RBD_NAME_RULE \
	"must be 1 to %d of A-Z a-z 0-9 . _ + - and not start with '.'"

static int parse_rbd(json_t *obj, const char *path, struct storage_params *p,
		     struct args_err *e)
{
	const char *pool = NULL, *ns = NULL, *conf = RADOS_CONF_DEFAULT;
	const char *client = RADOS_CLIENT_DEFAULT, *keyring = NULL;
	char name[RADOS_NAME_MAX + 8];
	int ret;

	ret = args_string(obj, path, "pool", true, &pool, e);
	if (!ret && !rbd_name_valid(pool, RADOS_NAME_MAX))
		ret = args_fail(e, path, "pool", RBD_NAME_RULE, RADOS_NAME_MAX);
	if (!ret)
		ret = args_string(obj, path, "namespace", false, &ns, e);
	if (!ret && ns && *ns && !rbd_name_valid(ns, RADOS_NAME_MAX))
		ret = args_fail(e, path, "namespace",
				RBD_NAME_RULE " (or \"\": the default one)",
				RADOS_NAME_MAX);
	if (!ret)
		ret = args_path(obj, path, "ceph_conf", false, &conf, e);
	if (!ret)
		ret = args_path(obj, path, "keyring", false, &keyring, e);
	if (!ret)
		ret = args_string(obj, path, "client", false, &client, e);
	if (ret)
		return ret;
	if (!strncmp(client, "client.", 7))
		client += 7;
	if (!rbd_name_valid(client, 64))
		return args_fail(
			e, path, "client",
			"must be client.ID or ID, ID 1 to 64 of A-Z a-z 0-9 . _ + - and not starting with '.'");
	snprintf(name, sizeof(name), "client.%s", client);
	p->pool = strdup(pool);
	p->ns = ns && *ns ? strdup(ns) : NULL;
	p->ceph_conf = strdup(conf);
	p->ceph_client = strdup(name);
	p->keyring = keyring ? strdup(keyring) : NULL;
	if (asprintf(&p->target, "rbd:%s%s%s", pool, p->ns ? "/" : "",
		     p->ns ? p->ns : "") < 0)
		p->target = NULL;
	if (!p->pool || (ns && *ns && !p->ns) || !p->ceph_conf ||
	    !p->ceph_client || (keyring && !p->keyring) || !p->target)
		return -ENOMEM;
	return 0;
}

static int parse_victims(json_t *obj, const char *path,
			 struct storage_params *p, struct args_err *e)
{
	json_t *list = json_object_get(obj, "victims"), *v;
	size_t i;

	if (!list) {
		for (i = 0;
		     i < sizeof(default_victims) / sizeof(*default_victims);
		     i++)
			if (!(p->victims[p->nvictims++] =
				      strdup(default_victims[i])))
				return -ENOMEM;
		return 0;
	}
	if (!json_is_array(list) || !json_array_size(list) ||
	    json_array_size(list) > STORAGE_VICTIMS_MAX)
		return args_fail(
			e, path, "victims",
			"must be a list of 1 to %d executable name patterns",
			STORAGE_VICTIMS_MAX);
	json_array_foreach(list, i, v) {
		const char *s = json_string_value(v);

		char key[32];

		snprintf(key, sizeof(key), "victims[%zu]", i);
		if (!s || !*s || strlen(s) > 64 || strchr(s, '/'))
			return args_fail(
				e, path, key,
				"must be an executable name pattern of 1 to 64 characters without '/'");
		if (!(p->victims[p->nvictims++] = strdup(s)))
			return -ENOMEM;
	}
	return 0;
}

int storage_params_parse(json_t *obj, unsigned int i, struct storage_params *p,
			 struct args_err *e)
{
	const char *uuid = NULL, *target = NULL, *hook = NULL;
	uint64_t timeout = 0, offset = 0;
	unsigned int type = 0, strategy = FENCE_FORCE;
	char path[32];
	int ret;

	memset(p, 0, sizeof(*p));
	snprintf(path, sizeof(path), "storages[%u]", i);
	if (!json_is_object(obj))
		return args_fail(e, NULL, path, "must be an object");
	p->connected = true;
	p->interval_ms = TL_INTERVAL_DEFAULT_MS;
	p->max_attempts = TL_ATTEMPTS_DEFAULT;
	p->kill_grace_ms = TL_KILL_GRACE_DEFAULT_MS;

	ret = args_only(obj, path, storage_keys, e);
	if (!ret)
		ret = args_string(obj, path, "uuid", true, &uuid, e);
	if (!ret && !storage_uuid_valid(uuid))
		ret = args_fail(
			e, path, "uuid",
			"must be 1 to %d of A-Z a-z 0-9 . _ : - and not start with '.'",
			STORAGE_UUID_MAX);
	if (!ret && !json_object_get(obj, "type"))
		ret = args_fail_rule(e, ARGS_MISSING, path, "type", "missing");
	if (!ret)
		ret = parse_enum(obj, path, "type", type_names,
				 ARRAY_SIZE(type_names),
				 "\"file\", \"block\" or \"rbd\"", &type, e);
	for (unsigned int k = 0; !ret && k < ARRAY_SIZE(type_keys); k++)
		if (type != type_keys[k].type &&
		    json_object_get(obj, type_keys[k].key))
			ret = args_fail(e, path, type_keys[k].key, "%s",
					type_keys[k].rule);
	if (!ret && type == STORAGE_RBD) {
		ret = parse_rbd(obj, path, p, e);
		if (!ret)
			ret = args_string(obj, path, "target", false, &target,
					  e);
		/* Said back by query-status and the state file: the same. */
		if (!ret && target && strcmp(target, p->target))
			ret = args_fail(
				e, path, "target",
				"an rbd storage's target is %s, from its pool and namespace; give \"pool\" (and \"namespace\"), not a target",
				p->target);
		target = NULL;
	} else if (!ret) {
		ret = args_path(obj, path, "target", true, &target, e);
	}
	if (!ret)
		ret = args_bool(obj, path, "connected", &p->connected, e);
	if (!ret)
		ret = args_uint(obj, path, "region_offset", false, 0,
				BLOCK_REGION_MAX, &offset, e);
	if (!ret && offset % 4096)
		ret = args_fail(e, path, "region_offset",
				"must be a multiple of 4096");
	if (!ret)
		ret = parse_u32(obj, path, "slot", 0, BLOCK_SLOT_MAX, &p->slot,
				e);
	if (!ret)
		ret = parse_u32(obj, path, "interval_ms", TL_INTERVAL_MIN_MS,
				TL_INTERVAL_MAX_MS, &p->interval_ms, e);
	p->io_timeout_ms = p->interval_ms;
	if (!ret) {
		ret = parse_u32(obj, path, "io_timeout_ms",
				TL_IO_TIMEOUT_MIN_MS, p->interval_ms,
				&p->io_timeout_ms, e);
		if (ret)
			bound_by(e, 1, path, "interval_ms");
	}
	if (!ret)
		ret = parse_u32(obj, path, "max_attempts", TL_ATTEMPTS_MIN,
				TL_ATTEMPTS_MAX, &p->max_attempts, e);
	if (!ret) {
		ret = args_uint(obj, path, "timeout_ms", false, p->interval_ms,
				TL_TIMEOUT_MAX_MS, &timeout, e);
		/* Fenced before the next heartbeat is even due: refused. */
		if (ret)
			bound_by(e, 0, path, "interval_ms");
	}
	if (!ret)
		ret = parse_enum(obj, path, "strategy", strategy_names, 3,
				 "\"force\", \"kill-only\" or \"permissive\"",
				 &strategy, e);
	if (!ret)
		ret = parse_u32(obj, path, "kill_grace_ms", 0,
				TL_KILL_GRACE_MAX_MS, &p->kill_grace_ms, e);
	if (!ret)
		ret = args_path(obj, path, "fence_hook", false, &hook, e);
	if (!ret)
		ret = parse_victims(obj, path, p, e);
	if (ret)
		return ret;

	p->type = type;
	p->strategy = strategy;
	p->region_offset = offset;
	/* T defaults to I × attempts, and is never shorter than I. */
	if (!timeout) {
		timeout = (uint64_t)p->interval_ms * p->max_attempts;
		if (timeout > TL_TIMEOUT_MAX_MS) {
			args_fail_rule(
				e, ARGS_PRODUCT, path, "timeout_ms",
				"interval_ms × max_attempts = %llu exceeds %d; lower one of them or give timeout_ms",
				(unsigned long long)timeout, TL_TIMEOUT_MAX_MS);
			e->max = TL_TIMEOUT_MAX_MS;
			e->value = timeout;
			snprintf(e->other[0], sizeof(e->other[0]),
				 "%s.interval_ms", path);
			snprintf(e->other[1], sizeof(e->other[1]),
				 "%s.max_attempts", path);
			return -EINVAL;
		}
	}
	p->timeout_ms = timeout;
	p->uuid = strdup(uuid);
	if (target)
		p->target = strdup(target);
	p->fence_hook = hook ? strdup(hook) : NULL;
	if (!p->uuid || !p->target || (hook && !p->fence_hook))
		return -ENOMEM;
	return 0;
}

json_t *storage_params_json(const struct storage_params *p)
{
	json_t *victims = json_array();
	json_t *o;

	for (unsigned int i = 0; i < p->nvictims; i++)
		json_array_append_new(victims, json_string(p->victims[i]));
	o = json_pack("{s:s,s:s,s:b,s:i,s:i,s:i,s:i,s:s,s:i,s:o}", "uuid",
		      p->uuid, "type", storage_type_name(p->type), "connected",
		      p->connected, "interval_ms", p->interval_ms,
		      "io_timeout_ms", p->io_timeout_ms, "max_attempts",
		      p->max_attempts, "timeout_ms", p->timeout_ms, "strategy",
		      fence_strategy_name(p->strategy), "kill_grace_ms",
		      p->kill_grace_ms, "victims", victims);
	if (o)
		json_object_set_new(o, "target", json_string(p->target));
	if (o && p->type == STORAGE_RBD) {
		json_object_set_new(o, "pool", json_string(p->pool));
		if (p->ns)
			json_object_set_new(o, "namespace", json_string(p->ns));
		json_object_set_new(o, "ceph_conf", json_string(p->ceph_conf));
		json_object_set_new(o, "client", json_string(p->ceph_client));
		if (p->keyring)
			json_object_set_new(o, "keyring",
					    json_string(p->keyring));
	}
	if (o && p->type == STORAGE_BLOCK) {
		json_object_set_new(o, "region_offset",
				    json_integer((json_int_t)p->region_offset));
		json_object_set_new(o, "slot", json_integer(p->slot));
	}
	if (o && p->fence_hook)
		json_object_set_new(o, "fence_hook",
				    json_string(p->fence_hook));
	return o;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

bool storage_params_equal(const struct storage_params *a,
			  const struct storage_params *b)
{
	if (!str_eq(a->uuid, b->uuid) || a->type != b->type ||
	    !str_eq(a->target, b->target) ||
	    a->region_offset != b->region_offset || a->slot != b->slot ||
	    a->interval_ms != b->interval_ms ||
	    a->io_timeout_ms != b->io_timeout_ms ||
	    a->max_attempts != b->max_attempts ||
	    a->timeout_ms != b->timeout_ms || a->strategy != b->strategy ||
	    a->kill_grace_ms != b->kill_grace_ms ||
	    !str_eq(a->fence_hook, b->fence_hook) ||
	    a->nvictims != b->nvictims || !str_eq(a->pool, b->pool) ||
	    !str_eq(a->ns, b->ns) || !str_eq(a->ceph_conf, b->ceph_conf) ||
	    !str_eq(a->ceph_client, b->ceph_client) ||
	    !str_eq(a->keyring, b->keyring))
		return false;
	for (unsigned int i = 0; i < a->nvictims; i++)
		if (strcmp(a->victims[i], b->victims[i]))
			return false;
	return true;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int storage_params_copy(struct storage_params *dst,
			const struct storage_params *src)
{
	*dst = *src;
	dst->uuid = strdup(src->uuid);
	dst->target = strdup(src->target);
	dst->fence_hook = src->fence_hook ? strdup(src->fence_hook) : NULL;
	dst->pool = dup_or_null(src->pool);
	dst->ns = dup_or_null(src->ns);
	dst->ceph_conf = dup_or_null(src->ceph_conf);
	dst->ceph_client = dup_or_null(src->ceph_client);
	dst->keyring = dup_or_null(src->keyring);
	for (unsigned int i = 0; i < src->nvictims; i++)
		dst->victims[i] = strdup(src->victims[i]);
	if (!dst->uuid || !dst->target ||
	    (src->fence_hook && !dst->fence_hook) ||
	    (src->pool && !dst->pool) || (src->ns && !dst->ns) ||
	    (src->ceph_conf && !dst->ceph_conf) ||
	    (src->ceph_client && !dst->ceph_client) ||
	    (src->keyring && !dst->keyring))
		return -ENOMEM;
	for (unsigned int i = 0; i < src->nvictims; i++)
		if (!dst->victims[i])
			return -ENOMEM;
	return 0;
}

void storage_params_free(struct storage_params *p)
{
	free(p->uuid);
	free(p->target);
	free(p->fence_hook);
	free(p->pool);
	free(p->ns);
	free(p->ceph_conf);
	free(p->ceph_client);
	free(p->keyring);
	for (unsigned int i = 0; i < p->nvictims; i++)
		free(p->victims[i]);
	memset(p, 0, sizeof(*p));
}
