// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"

static const char *const type_names[] = {
	[STORAGE_FILE] = "file",
	[STORAGE_BLOCK] = "block",
};

const char *storage_type_name(enum storage_type type)
{
	return type_names[type];
}

int storage_type_parse(const char *name, enum storage_type *type)
{
	for (unsigned int i = 0; i < sizeof(type_names) / sizeof(*type_names);
	     i++) {
		if (!strcmp(name, type_names[i])) {
			*type = i;
			return 0;
		}
	}
	return -EINVAL;
}

struct storage *storage_find(struct storage_table *t, const char *uuid)
{
	struct storage *s;
	unsigned int i;

	storage_for_each(t, i, s)
		if (!strcmp(s->uuid, uuid))
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

unsigned int storage_dev_users(struct storage_table *t,
			       const struct storage *s)
{
	struct storage *o;
	unsigned int i, n = 0;

	storage_for_each(t, i, o)
		if (o != s && o->dev && o->dev == s->dev)
			n++;
	return n;
}

void storage_free(struct storage *s)
{
	if (!s)
		return;
	free(s->uuid);
	free(s->host_uuid);
	free(s->target);
	free(s);
}
