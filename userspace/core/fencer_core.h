/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The fencers, as the core runs them (the control plane's side is
 * fencer.h). Each handler runs on the core's thread.
 */
#ifndef IOFENCE_FENCER_CORE_H
#define IOFENCE_FENCER_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "chan.h"

struct core;

/* Handlers of the control plane's messages (fencer_msg.h). */
void fencer_on_start(struct msg *m, void *ctx);
void fencer_on_update(struct msg *m, void *ctx);
void fencer_on_stop(struct msg *m, void *ctx);
void fencer_on_unfence(struct msg *m, void *ctx);
/* An rbd heartbeat's answer from its link thread (rados_link.h). */
void fencer_on_rados(struct msg *m, void *ctx);

/*
 * Storages still armed whose published fence deadline counts on the
 * watchdog: while there is one, nothing may disarm the device.
 */
unsigned int fencers_promising_reset(const struct core *c);

/* Daemon stop: every fencer's last heartbeat; they stay armed. */
void fencers_shutdown(struct core *c);
/* A record write of any fencer may still land (is within its deadline). */
bool fencers_writing(const struct core *c);
/* After the loop stopped: frees them all. */
void fencers_free(struct core *c);
/* Some "force" fence could not finish: no more petting. */
bool fencers_hold_watchdog(const struct core *c);
/* The smallest heartbeat interval armed; 0 when none. */
uint32_t fencers_min_interval_ms(const struct core *c);

#endif
