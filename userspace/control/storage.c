// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fencer.h"
#include "loop.h"
#include "rados_link.h"
#include "storage.h"

static const char *const type_names[] = {
	[STORAGE_FILE] = "file",
	[STORAGE_BLOCK] = "block",
	[STORAGE_RBD] = "rbd",
};

static const char *const strategy_names[] = {
	[FENCE_FORCE] = "force",
	[FENCE_KILL_ONLY] = "kill-only",
	[FENCE_PERMISSIVE] = "permissive",
};

const char *storage_type_name(enum storage_type type)
{
	return type_names[type];
}

const char *fence_strategy_name(enum fence_strategy s)
{
	return strategy_names[s];
}

bool storage_uuid_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > STORAGE_UUID_MAX || s[0] == '.')
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789._:-") == n;
}

struct storage *storage_find(struct storage_table *t, const char *uuid)
{
	struct storage *s;
	unsigned int i;

	storage_for_each(t, i, s)
		if (!strcmp(s->p.uuid, uuid))
			return s;
	return NULL;
}

int storage_insert(struct storage_table *t, struct storage *s)
{
	for (unsigned int i = 0; i < STORAGE_MAX; i++) {
		if (!t->slot[i]) {
			t->slot[i] = s;
			s->idx = i;
			t->count++;
			return 0;
		}
	}
	return -ENOSPC;
}

void storage_remove(struct storage_table *t, struct storage *s)
{
	if (t->slot[s->idx] == s) {
		t->slot[s->idx] = NULL;
		t->count--;
	}
}

unsigned int storage_dev_users(struct storage_table *t, const struct storage *s)
{
	struct storage *o;
	unsigned int i, n = 0;

	storage_for_each(t, i, o)
		if (o != s && o->dev && o->dev == s->dev)
			n++;
	return n;
}

unsigned int storage_host_count(struct storage_table *t, const char *host)
{
	struct storage *o;
	unsigned int i, n = 0;

	storage_for_each(t, i, o)
		if (!strcmp(o->host_uuid, host))
			n++;
	return n;
}

/* Only the control plane's thread frees storages. */
static struct loop *closer;

void storage_set_closer(struct loop *l)
{
	closer = l;
}

static void close_fd(int fd)
{
	if (fd < 0)
		return;
	if (closer)
		loop_close(closer, fd);
	else
		close(fd);
}

void storage_rbd_object(const char *host, char *buf, size_t len)
{
	snprintf(buf, len, "iofence.%s", host);
}

void storage_free(struct storage *s)
{
	if (!s)
		return;
	if (s->hb)
		fencer_stop(s->hb);
	close_fd(s->target_fd);
	close_fd(s->record_fd);
	rados_link_unref(s->rados);
	storage_params_free(&s->p);
	json_decref(s->status);
	free(s->host_uuid);
	free(s);
}
