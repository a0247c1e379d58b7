// SPDX-License-Identifier: GPL-2.0-only
#include <stdlib.h>
#include <string.h>

#include "fencer_msg.h"
#include "rados_link.h"

static const char *const hb_state_names[] = {
	[HB_HEALTHY] = "healthy",
	[HB_LATE] = "late",
	[HB_FENCED] = "fenced",
};

const char *hb_state_name(enum hb_state s)
{
	return hb_state_names[s];
}

void fencer_cfg_release(struct fencer_cfg *c)
{
	storage_params_free(&c->p);
	free(c->hook);
	c->hook = NULL;
	rados_link_unref(c->rados);
	c->rados = NULL;
}

json_t *scan_report_json(const struct scan_report *s)
{
	return json_pack("{s:i,s:i,s:s?,s:i,s:b}", "examined", s->examined,
			 "skipped", s->skipped, "last_error",
			 s->last_err ? strerror(-s->last_err) : NULL,
			 "last_pid", s->last_pid, "complete", s->complete);
}
